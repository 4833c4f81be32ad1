package configfs

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"

	"github.com/godlm/godlm/internal/lsname"
)

// ValidLockspaceName returns an error wrapping ErrInvalid, naming the
// problem, unless ls is a lockspace name the kernel accepts and that is
// safe as a path element: 1..64 bytes, no '/', no NUL, not "." or "..".
func ValidLockspaceName(ls string) error {
	if err := lsname.Check(ls); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

// GlobalID returns the cluster-wide id of lockspace ls as the reference
// daemon computes it: the IEEE CRC-32 of "dlm:ls:<ls>" including a
// trailing NUL. All nodes must agree on it; it goes into the lockspace's
// id file.
func GlobalID(ls string) uint32 {
	return crc32.ChecksumIEEE([]byte("dlm:ls:" + ls + "\x00"))
}

// lsFile is the path of one of lockspace ls's sysfs files, relative to the
// root.
func lsFile(ls, name string) string { return sysfsDLM + "/" + ls + "/" + name }

// Lockspaces returns the sorted names of the lockspaces the kernel has, as
// the directories of sys/kernel/dlm. A missing directory (dlm module not
// loaded) means none.
func (k *Kernel) Lockspaces() ([]string, error) {
	names, err := k.subdirs(sysfsDLM)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configfs: list lockspaces: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// lsWrite writes data to lockspace ls's sysfs file name.
func (k *Kernel) lsWrite(ls, name string, data string) error {
	if err := ValidLockspaceName(ls); err != nil {
		return fmt.Errorf("configfs: write %s: %w", name, err)
	}
	if err := k.write(lsFile(ls, name), []byte(data)); err != nil {
		return fmt.Errorf("configfs: write %q to %s of lockspace %s: %w", data, name, ls, err)
	}
	return nil
}

// SetControl stops (start false, written "0") or starts (start true,
// written "1") lockspace ls. Stopping blocks until the kernel has stopped
// locking. The kernel does not report start failures to the writer.
func (k *Kernel) SetControl(ls string, start bool) error {
	v := "0"
	if start {
		v = "1"
	}
	return k.lsWrite(ls, "control", v)
}

// EventDone answers the kernel's online or offline uevent for lockspace ls:
// 0 for success, a negative errno-like value for failure (the lockspace's
// creator then fails).
func (k *Kernel) EventDone(ls string, result int) error {
	return k.lsWrite(ls, "event_done", fmt.Sprint(result))
}

// SetID writes lockspace ls's cluster-wide id (see GlobalID); it must be set
// before the first start.
func (k *Kernel) SetID(ls string, id uint32) error {
	return k.lsWrite(ls, "id", fmt.Sprint(id))
}

// ID reads lockspace ls's cluster-wide id back.
func (k *Kernel) ID(ls string) (uint32, error) {
	v, err := k.lsUint(ls, "id", 10)
	return uint32(v), err
}

// SetNodir turns on lockspace ls's no-directory mode; it must be set before
// the first start and cannot be turned off.
func (k *Kernel) SetNodir(ls string) error {
	return k.lsWrite(ls, "nodir", "1")
}

// Nodir reports whether lockspace ls runs without a resource directory.
func (k *Kernel) Nodir(ls string) (bool, error) {
	v, err := k.lsUint(ls, "nodir", 10)
	return v != 0, err
}

// RecoverStatus reads lockspace ls's recovery status bits (DLM_RS_*).
func (k *Kernel) RecoverStatus(ls string) (uint32, error) {
	v, err := k.lsUint(ls, "recover_status", 16)
	return uint32(v), err
}

// RecoverNodeID reads the node that lockspace ls's recovery last sent a
// request to, which is the node recovery is waiting on.
func (k *Kernel) RecoverNodeID(ls string) (int, error) {
	if err := ValidLockspaceName(ls); err != nil {
		return 0, fmt.Errorf("configfs: read recover_nodeid: %w", err)
	}
	v, err := k.readInt(lsFile(ls, "recover_nodeid"))
	if err != nil {
		return 0, fmt.Errorf("configfs: read recover_nodeid of lockspace %s: %w", ls, err)
	}
	return v, nil
}

// lsUint reads a 32-bit unsigned number in base from lockspace ls's sysfs
// file name.
func (k *Kernel) lsUint(ls, name string, base int) (uint64, error) {
	if err := ValidLockspaceName(ls); err != nil {
		return 0, fmt.Errorf("configfs: read %s: %w", name, err)
	}
	v, err := k.readUint(lsFile(ls, name), base, 32)
	if err != nil {
		return 0, fmt.Errorf("configfs: read %s of lockspace %s: %w", name, ls, err)
	}
	return v, nil
}
