//go:build linux

package libdlm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The operating system's side of a Lockspace: the kernel's device, the
// eventfds that wake its pollers, and poll(2).

var (
	errInterrupted = unix.EINTR
	errNoneQueued  = unix.EAGAIN
	errNoDaemon    = unix.EUNATCH
)

// deviceEvents is what waitDevice saw.
type deviceEvents struct {
	readable bool  // a callback is queued
	failed   error // the device failed
	closed   bool  // Close signalled efd
}

// waitDevice waits up to timeout ms (-1: without limit) until the device
// fd has a callback queued or fails, or Close signals efd, or (if wfd is
// not -1) wfd is signalled, which it then resets. EINTR is an empty
// wake-up.
func waitDevice(fd, efd, wfd int, timeout int) (deviceEvents, error) {
	fds := [3]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN}, {Fd: int32(wfd), Events: unix.POLLIN}}
	n := 3
	if wfd < 0 {
		n = 2
	}
	var ev deviceEvents
	if _, err := unix.Poll(fds[:n], timeout); err != nil {
		if err == unix.EINTR {
			return ev, nil
		}
		return ev, fmt.Errorf("poll: %w", err)
	}
	ev.closed = fds[1].Revents != 0
	if r := fds[0].Revents; r&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		ev.failed = pollError(r)
	}
	ev.readable = fds[0].Revents&unix.POLLIN != 0
	if n == 3 && fds[2].Revents != 0 {
		var b [8]byte
		unix.Read(wfd, b[:])
	}
	return ev, nil
}

func newEventfd() (int, error) { return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK) }

func closeFD(fd int) { unix.Close(fd) }

func fchmod(fd int, mode os.FileMode) error { return unix.Fchmod(fd, uint32(mode.Perm())) }

// openDevice opens the lockspace's device node, waiting for it to appear
// (devtmpfs makes /dev/dlm_<name> at once; udev or mdev add the
// /dev/misc name) and checking it is the device of that minor.
func openDevice(name string, minor int, o lsOptions) (*Lockspace, error) {
	paths := []string{filepath.Join(o.root, "dev/misc/dlm_"+name), filepath.Join(o.root, "dev/dlm_"+name)}
	deadline := time.Now().Add(o.wait)
	delay := time.Millisecond
	for {
		for _, p := range paths {
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || int(unix.Minor(st.Rdev)) != minor {
				continue
			}
			fd, err := unix.Open(p, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("libdlm: open lockspace %q: %w", name, err)
			}
			ls, err := LockspaceOn(name, kernelDevice(fd))
			if err != nil {
				unix.Close(fd)
				return nil, err
			}
			ls.root = o.root
			return ls, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("libdlm: lockspace %q: no device node with minor %d in %s after %v", name, minor, filepath.Dir(paths[1]), o.wait)
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// kernelDevice is the kernel's lockspace device, opened non-blocking.
type kernelDevice int

func (d kernelDevice) Fd() int { return int(d) }

func (d kernelDevice) Write(b []byte) (int, error) {
	for {
		// A plain syscall: a request can sleep in the kernel while the
		// lockspace recovers, and must not hold up the Go scheduler then.
		n, err := unix.Write(int(d), b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (d kernelDevice) Read(b []byte) (int, error) { return rawRead(int(d), b) }

func (d kernelDevice) Close() error { return unix.Close(int(d)) }

// signal makes the eventfd efd readable, waking whoever polls it.
func signal(efd int) {
	var one [8]byte
	one[0] = 1
	unix.Write(efd, one[:])
}

// pollError describes what poll(2) reported on a failed device.
func pollError(revents int16) error {
	switch {
	case revents&unix.POLLNVAL != 0:
		return errors.New("poll: the device descriptor is not open")
	case revents&unix.POLLERR != 0:
		return errors.New("poll: error on the device")
	}
	return errors.New("poll: the device hung up")
}

// rawRead reads without telling the Go scheduler: a read of the
// non-blocking device never sleeps. Told, the scheduler's monitor would
// hand the goroutine's processor to another thread whenever a syscall
// outlasts 20 µs, which under emulation is most of them, and the thread
// switch costs more than the read.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return int(n), e
	}
	return int(n), nil
}

// rawWrite issues exactly one write(2) and returns its result. The DLM
// devices return a value (a minor, a lock id) rather than a byte count,
// which os.File.Write would take for a short write and retry. They never
// block on write, so EAGAIN is the kernel's answer (an orphan held in
// another mode), not a reason to wait and retry.
func rawWrite(f *os.File, b []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), b)
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
