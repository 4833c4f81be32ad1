// Package lsname holds the kernel's rule for lockspace names, shared by
// the kernel adapter and the Go binding.
package lsname

import (
	"fmt"
	"strings"
)

// MaxLen is the longest lockspace name the kernel takes (DLM_LOCKSPACE_LEN).
const MaxLen = 64

// Check returns a message-bearing error if name cannot name a kernel
// lockspace: empty, over MaxLen bytes, holding '/' or NUL (it becomes a
// sysfs and configfs directory and a device name), or "." or "..".
// Callers wrap it with their own sentinel.
func Check(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("lockspace name is empty")
	case len(name) > MaxLen:
		return fmt.Errorf("lockspace name is %d bytes; the limit is %d", len(name), MaxLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("lockspace name %q contains '/' or NUL", name)
	case name == "." || name == "..":
		return fmt.Errorf("lockspace name %q is not a directory name", name)
	}
	return nil
}
