package controld

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/configfs"
)

// touchKernel records whether anything asked the kernel adapter to look
// at or change configfs.
type touchKernel struct {
	Kernel
	touched *atomic.Bool
}

func (k touchKernel) EnsureConfigfs() error { k.touched.Store(true); return k.Kernel.EnsureConfigfs() }
func (k touchKernel) Lockspaces() ([]string, error) {
	k.touched.Store(true)
	return k.Kernel.Lockspaces()
}
func (k touchKernel) ClearCluster() error  { k.touched.Store(true); return k.Kernel.ClearCluster() }
func (k touchKernel) CreateCluster() error { k.touched.Store(true); return k.Kernel.CreateCluster() }

// tree lists every file and directory under root with its inode and
// contents, so a removed and recreated entry shows as a change.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		v := fmt.Sprintf("ino=%d", fi.Sys().(*syscall.Stat_t).Ino)
		if !e.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[strings.TrimPrefix(p, root)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSecondDaemonChangesNothing: a second daemon on the same state
// directory fails on the lock, naming the first one's pid, before it
// looks at the kernel, and leaves the first one's configfs alone.
func TestSecondDaemonChangesNothing(t *testing.T) {
	root := kernelRoot(t, nil)
	conf := oneNode + "cluster_state_dir=" + t.TempDir() + "\n"
	d1, _ := newTestDaemon(t, configfs.New(root), conf)
	run(t, d1)
	before := tree(t, root)

	var touched atomic.Bool
	d2, _ := newTestDaemon(t, touchKernel{configfs.New(root), &touched}, conf)
	bound := false
	d2.bind = func(*Daemon) error { bound = true; return nil }
	err := d2.Setup()
	d2.Close()
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Setup: %v; want %v naming pid %d", err, ErrAlreadyRunning, os.Getpid())
	}
	if touched.Load() || bound {
		t.Errorf("second daemon touched configfs (%v) or bound its sockets (%v) before failing", touched.Load(), bound)
	}
	if diff := cmp.Diff(before, tree(t, root)); diff != "" {
		t.Errorf("kernel files changed by the second daemon (-before +after):\n%s", diff)
	}
	if read(t, root, "sys/kernel/config/dlm/cluster/comms/1/nodeid") != "1" {
		t.Errorf("first daemon's comm: %q", read(t, root, "sys/kernel/config/dlm/cluster/comms/1/nodeid"))
	}
}

// TestSecondDaemonStopsOnItsSockets: a second daemon with another state
// directory still stops before configfs, on the query socket the first
// one holds.
func TestSecondDaemonStopsOnItsSockets(t *testing.T) {
	root := kernelRoot(t, nil)
	q := fmt.Sprintf("godlm-test-second-%d", os.Getpid())
	d1, _ := newTestDaemon(t, configfs.New(root), oneNode)
	d1.bind = func(d *Daemon) error {
		s, err := ListenQueryOn(d, q, q+"-cmd")
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return err
	}
	run(t, d1)
	before := tree(t, root)

	var touched atomic.Bool
	d2, _ := newTestDaemon(t, touchKernel{configfs.New(root), &touched}, oneNode)
	d2.bind = func(d *Daemon) error {
		s, err := ListenQueryOn(d, q, q+"-cmd")
		if err == nil {
			s.Close()
		}
		return err
	}
	err := d2.Setup()
	d2.Close()
	if err == nil || !strings.Contains(err.Error(), "another dlm_controld") {
		t.Fatalf("second Setup: %v; want the query socket's error", err)
	}
	if touched.Load() {
		t.Error("second daemon touched configfs before failing")
	}
	if diff := cmp.Diff(before, tree(t, root)); diff != "" {
		t.Errorf("kernel files changed by the second daemon (-before +after):\n%s", diff)
	}
}

// TestStateLock: the lock is exclusive, names its holder, and is free
// again once released.
func TestStateLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l1, err := LockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockStateDir(dir); !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
	// A file that is not a directory cannot hold the lock.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := LockStateDir(f); err == nil || errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("lock in a file: %v", err)
	}
}
