package dlmc

import "fmt"

// Sizes of the fixed records.
const (
	ChangeSize    = 32  // struct dlmc_change
	LockspaceSize = 140 // struct dlmc_lockspace
)

// Lockspace flags (Lockspace.Flags, DLMC_LF_*).
const (
	LFJoining       = 0x01
	LFLeaving       = 0x02
	LFKernelStopped = 0x04
	LFFSRegistered  = 0x08
	LFNeedPlocks    = 0x10
	LFSavePlocks    = 0x20
)

// Wait conditions of a pending change (Change.WaitCondition when
// WaitMessages is 0; DLMC_LS_WAIT_*).
const (
	WaitRingID  = 1
	WaitQuorum  = 2
	WaitFencing = 3
	WaitFSDone  = 4
)

// Change is struct dlmc_change: one membership change of a lockspace.
type Change struct {
	MemberCount int32
	JoinedCount int32
	RemoveCount int32
	FailedCount int32
	// WaitCondition is a Wait* constant, or when WaitMessages is 1 the
	// number of start messages still awaited.
	WaitCondition int32
	WaitMessages  int32
	Seq           uint32
	CombinedSeq   uint32
}

// AppendChange appends c's 32-byte encoding to b.
func AppendChange(b []byte, c Change) []byte {
	for _, v := range [...]uint32{
		uint32(c.MemberCount), uint32(c.JoinedCount), uint32(c.RemoveCount),
		uint32(c.FailedCount), uint32(c.WaitCondition), uint32(c.WaitMessages),
		c.Seq, c.CombinedSeq,
	} {
		b = ne.AppendUint32(b, v)
	}
	return b
}

// ParseChange decodes the first ChangeSize bytes of b.
func ParseChange(b []byte) (Change, error) {
	if len(b) < ChangeSize {
		return Change{}, fmt.Errorf("dlmc_change of %d bytes, want %d: %w", len(b), ChangeSize, ErrTruncated)
	}
	i32 := func(off int) int32 { return int32(ne.Uint32(b[off:])) }
	return Change{
		MemberCount:   i32(0),
		JoinedCount:   i32(4),
		RemoveCount:   i32(8),
		FailedCount:   i32(12),
		WaitCondition: i32(16),
		WaitMessages:  i32(20),
		Seq:           ne.Uint32(b[24:]),
		CombinedSeq:   ne.Uint32(b[28:]),
	}, nil
}

// Lockspace is struct dlmc_lockspace.
type Lockspace struct {
	// Prev is the last completed change, Next the one in progress (its
	// Seq is 0 when there is none).
	Prev, Next Change
	Flags      uint32 // LF* bits
	GlobalID   uint32
	// Name is up to 64 bytes; the wire field is name[65], NUL-terminated.
	Name string
}

// Byte offsets of the fields of struct dlmc_lockspace.
const (
	offLSPrev     = 0
	offLSNext     = 32
	offLSFlags    = 64
	offLSGlobalID = 68
	offLSName     = 72
	lsNameField   = NameLen + 1
)

// AppendLockspace appends l's 140-byte encoding to b. A name longer than
// 64 bytes is cut to 64.
func AppendLockspace(b []byte, l Lockspace) []byte {
	b = AppendChange(b, l.Prev)
	b = AppendChange(b, l.Next)
	b = ne.AppendUint32(b, l.Flags)
	b = ne.AppendUint32(b, l.GlobalID)
	name := l.Name
	if len(name) > NameLen {
		name = name[:NameLen]
	}
	b = appendFixed(b, name, lsNameField)
	return append(b, 0, 0, 0) // padding to a multiple of 4
}

// ParseLockspace decodes the first LockspaceSize bytes of b.
func ParseLockspace(b []byte) (Lockspace, error) {
	if len(b) < LockspaceSize {
		return Lockspace{}, fmt.Errorf("dlmc_lockspace of %d bytes, want %d: %w", len(b), LockspaceSize, ErrTruncated)
	}
	prev, _ := ParseChange(b[offLSPrev:])
	next, _ := ParseChange(b[offLSNext:])
	return Lockspace{
		Prev:     prev,
		Next:     next,
		Flags:    ne.Uint32(b[offLSFlags:]),
		GlobalID: ne.Uint32(b[offLSGlobalID:]),
		Name:     cstring(b[offLSName : offLSName+lsNameField]),
	}, nil
}

// ParseLockspaces decodes a LOCKSPACES reply payload: whole records only.
func ParseLockspaces(b []byte) ([]Lockspace, error) {
	if len(b)%LockspaceSize != 0 {
		return nil, fmt.Errorf("%d bytes of dlmc_lockspace records of %d: %w", len(b), LockspaceSize, ErrTruncated)
	}
	out := make([]Lockspace, 0, len(b)/LockspaceSize)
	for off := 0; off < len(b); off += LockspaceSize {
		l, _ := ParseLockspace(b[off:])
		out = append(out, l)
	}
	return out, nil
}
