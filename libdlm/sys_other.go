//go:build !linux

package libdlm

import (
	"errors"
	"fmt"
	"os"
)

// The kernel DLM exists on Linux only: elsewhere every call that needs
// it fails with errors.ErrUnsupported, and the rest of the package (modes,
// flags, errors) still builds, so that programs that use it do too.

var (
	errInterrupted = errors.New("interrupted")
	errNoneQueued  = errors.New("nothing queued")
	errNoDaemon    = errors.New("no daemon")
)

type deviceEvents struct {
	readable bool
	failed   error
	closed   bool
}

func unsupported(what string) error {
	return fmt.Errorf("libdlm: %s: the kernel DLM needs Linux: %w", what, errors.ErrUnsupported)
}

func waitDevice(fd, efd, wfd int, timeout int) (deviceEvents, error) {
	return deviceEvents{}, unsupported("poll")
}

func newEventfd() (int, error) { return -1, unsupported("eventfd") }

func closeFD(fd int) {}

func fchmod(fd int, mode os.FileMode) error { return unsupported("chmod") }

func openDevice(name string, minor int, o lsOptions) (*Lockspace, error) {
	return nil, unsupported("open lockspace " + name)
}

func signal(efd int) {}

func rawWrite(f *os.File, b []byte) (int, error) { return 0, unsupported("write") }
