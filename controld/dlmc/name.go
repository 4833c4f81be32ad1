package dlmc

import (
	"bytes"
	"fmt"
	"strings"
)

// NameLen is the longest lockspace name, in bytes (DLM_LOCKSPACE_LEN).
const NameLen = 64

// CheckName reports whether name can name a lockspace on the wire: not
// empty, at most [NameLen] bytes, no NUL byte. The error wraps
// [ErrNameTooLong] or [ErrBadName].
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrBadName)
	case len(name) > NameLen:
		return &nameLenError{n: len(name)}
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q holds a NUL byte", ErrBadName, name)
	}
	return nil
}

type nameLenError struct{ n int }

func (e *nameLenError) Error() string {
	return fmt.Sprintf("lockspace name is %d bytes; the limit is %d", e.n, NameLen)
}

func (e *nameLenError) Is(target error) bool { return target == ErrNameTooLong }

// cstring returns b up to its first NUL byte.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
