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
	// Incarnation is the sender's incarnation the message was made by.
	// The replicated state ignores a message ordered under another one:
	// a message queued before the cluster expelled its sender must not
	// count for the sender's next incarnation. 0 (a version 1 message)
	// is not checked.
	Incarnation uint64
}

func (m Msg) String() string {
	if m.Kind == KindStopped {
		return fmt.Sprintf("%s %s %d", m.Kind, m.Lockspace, m.Change)
	}
	return fmt.Sprintf("%s %s", m.Kind, m.Lockspace)
}

// msgVersion is the first byte of every encoded message. Version 2
// added the incarnation; a version 1 message (in a log written before)
// decodes with Incarnation 0.
const msgVersion = 2

// Header sizes of the two versions, before the name.
const (
	msgHeader   = 19
	msgHeaderV1 = 11
)

// ErrBadMessage marks a message that cannot be decoded.
var ErrBadMessage = errors.New("bad lockspace message")

// Encode returns the wire form: version, kind, change and incarnation
// (8 bytes each, little-endian), name length, name.
func (m Msg) Encode() []byte {
	b := make([]byte, 0, msgHeader+len(m.Lockspace))
	b = append(b, msgVersion, byte(m.Kind))
	b = binary.LittleEndian.AppendUint64(b, m.Change)
	b = binary.LittleEndian.AppendUint64(b, m.Incarnation)
	b = append(b, byte(len(m.Lockspace)))
	return append(b, m.Lockspace...)
}

// Decode parses a message made by Encode, checking every field.
func Decode(b []byte) (Msg, error) {
	if len(b) < 1 || b[0] < 1 || b[0] > msgVersion {
		v := -1
		if len(b) > 0 {
			v = int(b[0])
		}
		return Msg{}, fmt.Errorf("%w: version %d, want 1 to %d", ErrBadMessage, v, msgVersion)
	}
	header := msgHeader
	if b[0] == 1 {
		header = msgHeaderV1
	}
	if len(b) < header {
		return Msg{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadMessage, len(b), header)
	}
	m := Msg{Kind: Kind(b[1]), Change: binary.LittleEndian.Uint64(b[2:10])}
	if b[0] > 1 {
		m.Incarnation = binary.LittleEndian.Uint64(b[10:18])
	}
	if m.Kind < KindJoin || m.Kind > KindResync {
		return Msg{}, fmt.Errorf("%w: unknown kind %d", ErrBadMessage, b[1])
	}
	n := int(b[header-1])
	if len(b) != header+n {
		return Msg{}, fmt.Errorf("%w: name length %d but %d bytes follow", ErrBadMessage, n, len(b)-header)
	}
	m.Lockspace = string(b[header:])
	if err := lsname.Check(m.Lockspace); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if m.Kind != KindStopped && m.Change != 0 {
		return Msg{}, fmt.Errorf("%w: %s carries change %d", ErrBadMessage, m.Kind, m.Change)
	}
	return m, nil
}

// Superseded reports whether the first of the messages q, queued to be
// broadcast in order, need not be sent: a "stopped" for a change when q
// also holds a "stopped" for a later change of the same lockspace. The
// engine reports a later change only once that change is ordered, and
// the replicated state ignores a "stopped" for any change but the
// current one, so the earlier report would arrive stale; skipping it
// saves a consensus round when several nodes join at once.
func Superseded(q []Msg) bool {
	if len(q) == 0 || q[0].Kind != KindStopped {
		return false
	}
	for _, m := range q[1:] {
		if m.Kind == KindStopped && m.Lockspace == q[0].Lockspace && m.Change > q[0].Change {
			return true
		}
	}
	return false
}
