package controld

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning means another dlm_controld holds the lock on the
// state directory: this one must not touch the kernel's configuration.
var ErrAlreadyRunning = errors.New("another dlm_controld is running")

// LockFileName is the file in cluster_state_dir that a running daemon
// holds an exclusive flock(2) on, and in which it writes its pid.
const LockFileName = "dlm_controld.lock"

// StateLock is the lock a daemon holds on its state directory for its
// whole life. The kernel drops it when the process ends, however it ends.
type StateLock struct {
	f *os.File
}

// LockStateDir creates dir if needed and takes the exclusive lock on its
// lock file without waiting. If another process holds it, the error
// wraps [ErrAlreadyRunning] and names the holder's pid when the file
// tells it.
func LockStateDir(dir string) (*StateLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder := "another process"
		if pid := readPid(f); pid > 0 {
			holder = fmt.Sprintf("pid %d", pid)
		}
		return nil, fmt.Errorf("%w: %s holds the lock on %s", ErrAlreadyRunning, holder, path)
	}
	if err := writePid(f, os.Getpid()); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid to %s: %w", path, err)
	}
	return &StateLock{f: f}, nil
}

// Release drops the lock. The pid stays in the file; the lock, not the
// file, says whether a daemon runs.
func (l *StateLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func flock(f *os.File, how int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// readPid reads the decimal pid a lock file holds; 0 if it holds none.
func readPid(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func writePid(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}
