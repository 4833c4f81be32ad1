package dlmc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"

	"github.com/godlm/godlm/internal/testenv"
)

// TestClientRefusesOtherServerUID: a server that does not run as the
// expected uid gets no request, and the error says why.
func TestClientRefusesOtherServerUID(t *testing.T) {
	c := dlmctest.Start(t, sampleDaemon())
	c.ServerUID = uint32(os.Getuid()) + 1
	ctx := context.Background()
	if _, err := c.DumpDebug(ctx); !errors.Is(err, dlmc.ErrUntrustedServer) ||
		!strings.Contains(err.Error(), fmt.Sprintf("served by uid %d", os.Getuid())) {
		t.Errorf("DumpDebug from a server of another uid: %v", err)
	}
	if _, err := c.DumpStatus(ctx); !errors.Is(err, dlmc.ErrUntrustedServer) {
		t.Errorf("DumpStatus from a server of another uid: %v", err)
	}
	if err := c.Join(ctx, "ls1", 0, 0); !errors.Is(err, dlmc.ErrUntrustedServer) {
		t.Errorf("Join on a server of another uid: %v", err)
	}
	// The right uid is served.
	c.ServerUID = uint32(os.Getuid())
	if _, err := c.DumpDebug(ctx); err != nil {
		t.Errorf("DumpDebug from the expected uid: %v", err)
	}
}

// fakeServerEnv makes the test binary a fake daemon that listens on the
// abstract socket it names, reports "listening", then reports how many
// bytes its first client sent.
const fakeServerEnv = "GODLM_DLMC_FAKE_SERVER"

func TestMain(m *testing.M) {
	if name := os.Getenv(fakeServerEnv); name != "" {
		os.Exit(fakeServer(name))
	}
	os.Exit(m.Run())
}

func fakeServer(name string) int {
	ln, err := dlmc.ListenAbstract(name)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("listening")
	c, err := ln.Accept()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	fmt.Println("received", n)
	return 0
}

// TestClientRefusesNonRootServer: an unprivileged user who binds the
// daemon's socket name first gets nothing from a root client.
func TestClientRefusesNonRootServer(t *testing.T) {
	if os.Getuid() != 0 {
		testenv.Missing(t, "needs root to run the fake server as another user; TestClientRefusesOtherServerUID covers the check")
	}
	// The test binary may sit in a directory only root can read.
	dir, err := os.MkdirTemp("", "dlmc-untrusted")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dlmc.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("godlm-untrusted-%d", os.Getpid())
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fakeServerEnv+"="+name)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "listening" {
		t.Fatalf("fake server: %q", lines.Text())
	}

	c := &dlmc.Client{QuerySocket: name, CommandSocket: name}
	err = c.Join(context.Background(), "ls1", 0, 0)
	if !errors.Is(err, dlmc.ErrUntrustedServer) || !strings.Contains(err.Error(), "served by uid 65534") {
		t.Errorf("Join on a socket served by uid 65534: %v, want %v", err, dlmc.ErrUntrustedServer)
	}
	if !lines.Scan() || lines.Text() != "received 0" {
		t.Errorf("fake server: %q, want it to have received nothing", lines.Text())
	}
	cmd.Wait()
	// The check does not depend on the name: a dial to a name nobody
	// serves still says the daemon is not running.
	if _, err := (&dlmc.Client{QuerySocket: name}).DumpDebug(context.Background()); !errors.Is(err, dlmc.ErrNoDaemon) {
		t.Errorf("no server: %v", err)
	}
}

// TestClientShowsRefusal: a daemon that refuses a connection (too many
// from this user) answers with EUSERS and its reason, which the error
// shows, for DUMP_STATUS too.
func TestClientShowsRefusal(t *testing.T) {
	name := fmt.Sprintf("godlm-refusing-%d", os.Getpid())
	ln, err := dlmc.ListenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h, _, err := dlmc.ReadMessage(c)
			if err == nil {
				dlmc.WriteMessage(c, dlmc.Header{Command: h.Command, Data: -int32(syscall.EUSERS)}, []byte("too many connections: uid 0 already has 16"))
			}
			c.Close()
		}
	}()
	c := &dlmc.Client{QuerySocket: name, ServerUID: uint32(os.Getuid())}
	ctx := context.Background()
	_, err = c.Lockspaces(ctx)
	var de *dlmc.DaemonError
	if !errors.As(err, &de) || !errors.Is(err, syscall.EUSERS) || !strings.Contains(err.Error(), "uid 0 already has 16") {
		t.Errorf("Lockspaces refused: %v", err)
	}
	_, err = c.DumpStatus(ctx)
	if !errors.Is(err, syscall.EUSERS) || !strings.Contains(err.Error(), "uid 0 already has 16") {
		t.Errorf("DumpStatus refused: %v", err)
	}
}
