package libdlm

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/godlm/godlm/libdlm/internal/uapi"
)

// Errors a lock operation can end with; test with errors.Is.
var (
	// ErrWouldBlock: a NoQueue request or conversion that could not be
	// granted at once (EAGAIN).
	ErrWouldBlock = errors.New("lock not granted at once")
	// ErrDeadlock: a conversion deadlock (EDEADLK).
	ErrDeadlock = errors.New("conversion deadlock")
	// ErrCancelled: the request or conversion was cancelled (ECANCEL).
	ErrCancelled = errors.New("request cancelled")
	// ErrNotFound: Orphan found no orphan lock to adopt (ENOENT).
	ErrNotFound = errors.New("no such lock")
	// ErrBusy: the lock has an operation in progress (EBUSY).
	ErrBusy = errors.New("lock busy")
	// ErrUnlocked: the lock has been unlocked (or lost with its
	// lockspace) and cannot be used any more.
	ErrUnlocked = errors.New("lock is unlocked")
	// ErrInvalidArgument: the call was refused before reaching the kernel.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrClosed: the lockspace handle is closed.
	ErrClosed = errors.New("lockspace closed")
	// ErrDeviceFailed: the lockspace device failed (poll or read
	// reported an error); every waiting operation ends with it, and so
	// does every later one. Only Close is left to do.
	ErrDeviceFailed = errors.New("lockspace device failed")
)

// Kernel AST status values beyond errno (include/uapi/linux/dlmconstants.h).
const (
	statusECancel = uapi.StatusECancel
	statusEUnlock = uapi.StatusEUnlock
)

// statusError turns a completion's kernel status (0 or negative) into an
// error. EUNLOCK is success for an unlock, ECANCEL for a cancel.
func statusError(status int32) error {
	switch -status {
	case 0:
		return nil
	case int32(syscall.EAGAIN):
		return ErrWouldBlock
	case int32(syscall.EDEADLK):
		return ErrDeadlock
	case statusECancel:
		return ErrCancelled
	case statusEUnlock:
		return ErrUnlocked
	case int32(syscall.ENOENT):
		return ErrNotFound
	case int32(syscall.EBUSY):
		return ErrBusy
	}
	return syscall.Errno(-status)
}

// writeError maps an error from write(2) on a lockspace device.
// ErrNotifySupport reports a request with Notify or LSFlagNotify that
// the running kernel refused because it lacks the DLM NOTIFY patches.
var ErrNotifySupport = errors.New("the running kernel lacks DLM NOTIFY (lockspace device older than 6.1)")

// notifyError turns the kernel's refusal of a request that said device
// version 6.1 for the NOTIFY flags into ErrNotifySupport: the arguments
// were checked before, so EINVAL means an older device.
func notifyError(err error, notify bool) error {
	if notify && errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("%w (%v)", ErrNotifySupport, err)
	}
	return err
}

func writeError(err error) error {
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%w (%v)", ErrWouldBlock, err)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%w (%v)", ErrBusy, err)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("%w: the kernel refused the request (%v)", ErrInvalidArgument, err)
	case errors.Is(err, syscall.EDEADLK):
		return fmt.Errorf("%w (%v)", ErrDeadlock, err)
	}
	return err
}

// OpError describes a failed lock operation.
type OpError struct {
	Op       string // "lock", "convert", "unlock", "cancel"
	Resource string
	Err      error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("libdlm: %s %q: %v", e.Op, e.Resource, e.Err)
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }
