package libdlm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/godlm/godlm/internal/lsname"
	"github.com/godlm/godlm/libdlm/internal/uapi"
)

// LockspaceFlags are the flags of a lockspace creation.
type LockspaceFlags uint32

// Lockspace creation flags the kernel accepts from userspace.
const (
	// LSFlagFS marks a lockspace used by a filesystem (DLM_LSFL_FS).
	LSFlagFS LockspaceFlags = 0x4
	// LSFlagNewExcl makes creation fail with EEXIST if the lockspace
	// already exists (DLM_LSFL_NEWEXCL); without it an existing
	// lockspace is simply reused.
	LSFlagNewExcl LockspaceFlags = 0x8
	// LSFlagNotify opts the lockspace in to the Notify lock flag
	// (DLM_LSFL_NOTIFY), which takes effect while every node of the
	// lockspace has opted in. It needs a kernel with the DLM NOTIFY
	// patches: on one without them creation fails with ErrNotifySupport.
	LSFlagNotify LockspaceFlags = 0x10
)

const removeForceFree = 2 // DLM_USER_LSFLG_FORCEFREE

// MaxNameLen is the longest lockspace or resource name the kernel takes.
const MaxNameLen = 64

// ErrNoDaemon reports that the kernel refused a lockspace because no
// cluster daemon is running (EUNATCH): dlm_controld must be started first.
var ErrNoDaemon = errors.New("no DLM cluster daemon is running")

// ErrInvalidName reports a lockspace or resource name the kernel would
// refuse.
var ErrInvalidName = errors.New("invalid name")

// Control is the DLM control device, /dev/misc/dlm-control, through
// which lockspaces are created and removed. It needs CAP_SYS_ADMIN.
type Control struct {
	f    *os.File
	root string
}

// OpenControl opens the control device under root ("" or "/" for the
// real one), trying /dev/misc/dlm-control and then /dev/dlm-control.
func OpenControl(root string) (*Control, error) {
	if root == "" {
		root = "/"
	}
	var err error
	for _, p := range []string{"dev/misc/dlm-control", "dev/dlm-control"} {
		var f *os.File
		f, err = os.OpenFile(filepath.Join(root, p), os.O_RDWR, 0)
		if err == nil {
			return &Control{f: f, root: root}, nil
		}
	}
	return nil, fmt.Errorf("libdlm: open dlm-control (is the dlm module loaded?): %w", err)
}

// Close closes the control device.
func (c *Control) Close() error { return c.f.Close() }

// ValidateLockspaceName checks a lockspace name as the kernel will.
func ValidateLockspaceName(name string) error {
	if err := lsname.Check(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return nil
}

func lspaceRequest(cmd uint8, flags uint32, minor uint32, name string) []byte {
	b := make([]byte, uapi.RequestSize+len(name))
	putVersion(b)
	if cmd == uapi.CmdCreateLockspace && flags&uint32(LSFlagNotify) != 0 {
		binary.NativeEndian.PutUint32(b[uapi.OffReqVersion+4:], uapi.VersionMinorNotify)
	}
	b[uapi.OffReqCmd] = cmd
	b[uapi.OffReqIs64bit] = 1
	binary.NativeEndian.PutUint32(b[uapi.OffLspaceFlags:], flags)
	binary.NativeEndian.PutUint32(b[uapi.OffLspaceMinor:], minor)
	copy(b[uapi.OffLspaceName:], name) // NUL-terminated: the buffer is longer
	return b
}

func deviceError(op, name string, err error) error {
	if errors.Is(err, errNoDaemon) {
		return fmt.Errorf("libdlm: %s lockspace %q: %w (%v)", op, name, ErrNoDaemon, err)
	}
	return fmt.Errorf("libdlm: %s lockspace %q: %w", op, name, err)
}

// Create creates (or, without LSFlagNewExcl, joins the existing) lockspace
// name and returns the minor number of its device /dev/misc/dlm_<name>.
// The kernel asks the cluster daemon to join the lockspace first, so this
// blocks until the daemon has done so.
func (c *Control) Create(name string, flags LockspaceFlags) (int, error) {
	if err := ValidateLockspaceName(name); err != nil {
		return 0, err
	}
	n, err := rawWrite(c.f, lspaceRequest(uapi.CmdCreateLockspace, uint32(flags), 0, name))
	if err != nil {
		err = notifyError(err, flags&LSFlagNotify != 0)
		return 0, deviceError("create", name, err)
	}
	// The write returns the misc minor of the lockspace device.
	return n, nil
}

// Remove releases lockspace name. With force, the kernel frees it even
// if locks are still held (DLM_USER_LSFLG_FORCEFREE); without, a busy
// lockspace gives EBUSY. The lockspace is gone once its last creator
// removed it.
func (c *Control) Remove(name string, force bool) error {
	if err := ValidateLockspaceName(name); err != nil {
		return err
	}
	minor, err := LockspaceMinor(c.root, name)
	if err != nil {
		return err
	}
	var flags uint32
	if force {
		flags = removeForceFree
	}
	if _, err := rawWrite(c.f, lspaceRequest(uapi.CmdRemoveLockspace, flags, uint32(minor), name)); err != nil {
		return deviceError("remove", name, err)
	}
	return nil
}

// ErrNoLockspace reports a lockspace that has no device: it does not
// exist, or it is not a userspace lockspace.
var ErrNoLockspace = errors.New("no such lockspace")

// LockspaceMinor finds the misc minor of /dev/dlm_<name> in /proc/misc.
func LockspaceMinor(root, name string) (int, error) {
	if root == "" {
		root = "/"
	}
	f, err := os.Open(filepath.Join(root, "proc/misc"))
	if err != nil {
		return 0, fmt.Errorf("libdlm: %w", err)
	}
	defer f.Close()
	want := "dlm_" + name
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 2 && fields[1] == want {
			// A device minor has 20 bits, and no sign.
			m, err := strconv.ParseUint(fields[0], 10, 20)
			if err != nil {
				return 0, fmt.Errorf("libdlm: /proc/misc: bad line %q", s.Text())
			}
			return int(m), nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("libdlm: /proc/misc: %w", err)
	}
	return 0, fmt.Errorf("libdlm: lockspace %q: %w", name, ErrNoLockspace)
}
