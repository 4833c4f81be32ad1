package dlmc

import (
	"bytes"
	"fmt"
	"strings"
)

// StateSize is the size of struct dlmc_state.
const StateSize = 28

// Limits of a state's text and binary parts (DLMC_STATE_MAXSTR and
// DLMC_STATE_MAXBIN): the reference client reads them into buffers of
// this size.
const (
	MaxStateStr = 4096 // including the terminating NUL
	MaxStateBin = 4096
)

// State record types (State.Type, DLMC_STATE_*).
const (
	StateDaemon      = 1 // the daemon itself; NodeID is the local node
	StateDaemonNode  = 2 // one node of the daemon's cluster membership
	StateStartupNode = 3 // a node awaited at startup (startup fencing)
	StateRun         = 4 // a run operation (unused by DUMP_STATUS)
	// StateLockspace is godlm's: one lockspace's membership change
	// state, after the node records. NodeID is 0.
	StateLockspace = 100
)

// State is struct dlmc_state and the text and binary data that follow
// it. A DUMP_STATUS reply is a stream of them, with no header, ended by
// the daemon closing the connection.
type State struct {
	Type   uint32
	Flags  uint32
	NodeID int32
	Data32 uint32
	// Data64 is the field the reference names data64; it is only 32
	// bits wide on the wire.
	Data64 uint32
	// Str is "key=value " text. On the wire it is followed by a NUL that
	// str_len counts, as the reference daemon sends it.
	Str string
	Bin []byte
}

// Byte offsets of the fields of struct dlmc_state.
const (
	offStType   = 0
	offStFlags  = 4
	offStNodeID = 8
	offStData32 = 12
	offStData64 = 16
	offStStrLen = 20
	offStBinLen = 24
)

// AppendState appends s's record, its text plus a NUL (str_len counts
// the NUL; an empty Str is sent with str_len 0), then its binary data.
// Str is cut at its first NUL and to MaxStateStr-1 bytes, Bin to
// MaxStateBin bytes, so that the reference client can read the result.
func AppendState(b []byte, s State) []byte {
	str := s.Str
	if i := strings.IndexByte(str, 0); i >= 0 {
		str = str[:i]
	}
	if len(str) > MaxStateStr-1 {
		str = str[:MaxStateStr-1]
	}
	bin := s.Bin
	if len(bin) > MaxStateBin {
		bin = bin[:MaxStateBin]
	}
	strLen := 0
	if str != "" {
		strLen = len(str) + 1
	}
	b = ne.AppendUint32(b, s.Type)
	b = ne.AppendUint32(b, s.Flags)
	b = ne.AppendUint32(b, uint32(s.NodeID))
	b = ne.AppendUint32(b, s.Data32)
	b = ne.AppendUint32(b, s.Data64)
	b = ne.AppendUint32(b, uint32(strLen))
	b = ne.AppendUint32(b, uint32(len(bin)))
	if strLen > 0 {
		b = append(b, str...)
		b = append(b, 0)
	}
	return append(b, bin...)
}

// ParseStates decodes a stream of states filling b exactly. The text of
// each is read up to its first NUL. A str_len over MaxStateStr or a
// bin_len over MaxStateBin gives [ErrTooLarge]; a record cut short,
// [ErrTruncated].
func ParseStates(b []byte) ([]State, error) {
	var out []State
	for len(b) > 0 {
		if len(b) < StateSize {
			return out, fmt.Errorf("dlmc_state %d: %d bytes left, want %d: %w", len(out), len(b), StateSize, ErrTruncated)
		}
		s := State{
			Type:   ne.Uint32(b[offStType:]),
			Flags:  ne.Uint32(b[offStFlags:]),
			NodeID: int32(ne.Uint32(b[offStNodeID:])),
			Data32: ne.Uint32(b[offStData32:]),
			Data64: ne.Uint32(b[offStData64:]),
		}
		strLen, binLen := ne.Uint32(b[offStStrLen:]), ne.Uint32(b[offStBinLen:])
		if strLen > MaxStateStr || binLen > MaxStateBin {
			return out, fmt.Errorf("dlmc_state %d: str_len %d, bin_len %d, limits %d and %d: %w",
				len(out), strLen, binLen, MaxStateStr, MaxStateBin, ErrTooLarge)
		}
		b = b[StateSize:]
		if uint32(len(b)) < strLen+binLen {
			return out, fmt.Errorf("dlmc_state %d: %d bytes left, want %d: %w", len(out), len(b), strLen+binLen, ErrTruncated)
		}
		s.Str = cstring(b[:strLen])
		if binLen > 0 {
			s.Bin = bytes.Clone(b[strLen : strLen+binLen])
		}
		b = b[strLen+binLen:]
		out = append(out, s)
	}
	return out, nil
}

// Fields splits s.Str, "key=value key=value ", into a map. Words without
// "=" are ignored; a repeated key keeps its first value.
func (s State) Fields() map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(s.Str) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}
