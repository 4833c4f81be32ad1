package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// processAlive tells whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// childEnv marks the test binary re-run by TestQEMUEndsWithTestProcess.
const childEnv = "GODLM_LAB_CHILD_REPORT"

// TestQEMUEndsWithTestProcess runs a test process that boots a VM and then
// dies abruptly (a panic, as with go test's timeout), and checks that the
// VM's QEMU ended with it.
func TestQEMUEndsWithTestProcess(t *testing.T) {
	needVMs(t)
	if os.Getenv(childEnv) != "" {
		t.Skip("runs only in the parent test process")
	}
	report := filepath.Join(t.TempDir(), "report")
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildBootsThenPanics$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+report)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child test process did not die:\n%s", out)
	}
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("child booted no VM (%v):\n%s", rerr, out)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("bad child report %q", b)
	}
	pid, _ := strconv.Atoi(f[0])
	defer os.RemoveAll(f[1])
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("qemu pid %d outlived the test process that started it", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChildBootsThenPanics is the child of TestQEMUEndsWithTestProcess.
func TestChildBootsThenPanics(t *testing.T) {
	report := os.Getenv(childEnv)
	if report == "" {
		t.Skip("helper process of TestQEMUEndsWithTestProcess")
	}
	ctx, cancel := context.WithTimeout(context.Background(), lab.BootTimeout)
	defer cancel()
	c, err := lab.Boot(ctx, lab.Config{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, fmt.Appendf(nil, "%d %s\n", c.Node(1).PID(), c.Dir()), 0o644); err != nil {
		t.Fatal(err)
	}
	panic("dying with a VM running")
}

// TestBootFailsClearly checks that a lab whose QEMU cannot run fails with
// a message that says so, and leaves nothing running.
func TestBootFailsClearly(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), lab.BootTimeout)
	defer cancel()

	t.Run("NoQEMU", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := lab.Boot(ctx, lab.Config{Nodes: 1})
		if err == nil || !strings.Contains(err.Error(), "qemu-system-x86_64 not found") {
			t.Fatalf("Boot without QEMU: %v", err)
		}
	})

	t.Run("QEMUExits", func(t *testing.T) {
		bin := t.TempDir()
		fake := "#!/bin/sh\necho 'qemu: cannot open /dev/broken' >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
		dir := t.TempDir()
		_, err := lab.Boot(ctx, lab.Config{Nodes: 2, Dir: dir})
		if err == nil || !strings.Contains(err.Error(), "qemu exited during boot") ||
			!strings.Contains(err.Error(), "cannot open /dev/broken") {
			t.Fatalf("Boot with a failing QEMU: %v", err)
		}
		if pids := lab.LivePIDs(); len(pids) > 0 {
			t.Errorf("processes left running: %v", pids)
		}
	})
}
