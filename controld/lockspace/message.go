package lockspace

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/godlm/godlm/internal/lsname"
)

// Kind is the type of a lockspace message.
type Kind uint8

// Message kinds.
const (
	// KindJoin asks to add the sender to a lockspace.
	KindJoin Kind = iota + 1
	// KindLeave asks to remove the sender from a lockspace.
	KindLeave
	// KindStopped reports that the sender's kernel has stopped the
	// lockspace for change Change.
	KindStopped
	// KindResync asks for a new change with the same members: the
	// sender stopped its lockspace without a change (it lost quorum)
	// and needs a full stop and start to run it again.
	KindResync
)

func (k Kind) String() string {
	switch k {
	case KindJoin:
		return "join"
	case KindLeave:
		return "leave"
	case KindStopped:
		return "stopped"
	case KindResync:
		return "resync"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Msg is what a node broadcasts about a lockspace.
type Msg struct {
	Kind      Kind
	Lockspace string
	Change    uint64 // KindStopped: the change the sender stopped for
}

func (m Msg) String() string {
	if m.Kind == KindStopped {
		return fmt.Sprintf("%s %s %d", m.Kind, m.Lockspace, m.Change)
	}
	return fmt.Sprintf("%s %s", m.Kind, m.Lockspace)
}

// msgVersion is the first byte of every encoded message.
const msgVersion = 1

// ErrBadMessage marks a message that cannot be decoded.
var ErrBadMessage = errors.New("bad lockspace message")

// Encode returns the wire form: version, kind, change (8 bytes,
// little-endian), name length, name.
func (m Msg) Encode() []byte {
	b := make([]byte, 0, 11+len(m.Lockspace))
	b = append(b, msgVersion, byte(m.Kind))
	b = binary.LittleEndian.AppendUint64(b, m.Change)
	b = append(b, byte(len(m.Lockspace)))
	return append(b, m.Lockspace...)
}

// Decode parses a message made by Encode, checking every field.
func Decode(b []byte) (Msg, error) {
	if len(b) < 11 {
		return Msg{}, fmt.Errorf("%w: %d bytes, want at least 11", ErrBadMessage, len(b))
	}
	if b[0] != msgVersion {
		return Msg{}, fmt.Errorf("%w: version %d, want %d", ErrBadMessage, b[0], msgVersion)
	}
	m := Msg{Kind: Kind(b[1]), Change: binary.LittleEndian.Uint64(b[2:10])}
	if m.Kind < KindJoin || m.Kind > KindResync {
		return Msg{}, fmt.Errorf("%w: unknown kind %d", ErrBadMessage, b[1])
	}
	n := int(b[10])
	if len(b) != 11+n {
		return Msg{}, fmt.Errorf("%w: name length %d but %d bytes follow", ErrBadMessage, n, len(b)-11)
	}
	m.Lockspace = string(b[11:])
	if err := lsname.Check(m.Lockspace); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if m.Kind != KindStopped && m.Change != 0 {
		return Msg{}, fmt.Errorf("%w: %s carries change %d", ErrBadMessage, m.Kind, m.Change)
	}
	return m, nil
}
