package libdlm

import (
	"fmt"
	"strings"
)

// Flags modify a lock request, conversion or unlock (the kernel's
// DLM_LKF_* values).
type Flags uint32

// The flags the kernel accepts from userspace. Cancellation is Cancel,
// not a flag; LKF_TIMEOUT is gone from current kernels.
const (
	// NoQueue: fail with ErrWouldBlock instead of waiting when the
	// request cannot be granted at once.
	NoQueue Flags = 0x1
	// Convert marks a conversion; Lock.Convert sets it.
	Convert Flags = 0x4
	// ValBlk: on a request, give the lock a lock value block; on an
	// up-conversion, read the resource's value into it; on a
	// down-conversion from PW or EX, or an unlock, write it.
	ValBlk Flags = 0x8
	// QueCvt: queue the conversion behind the waiting ones even if it
	// could be granted at once (conversions only).
	QueCvt Flags = 0x10
	// IVValBlk: invalidate the resource's value block.
	IVValBlk Flags = 0x20
	// ConvDeadlk: resolve a conversion deadlock by demoting this lock to
	// NL (the result then has Demoted set) rather than failing.
	ConvDeadlk Flags = 0x40
	// Persistent: the lock survives the closing of its lockspace
	// device, as an orphan that Orphan can adopt.
	Persistent Flags = 0x80
	// NoDlckWt: leave this request out of deadlock detection.
	NoDlckWt Flags = 0x100
	// NoDlckBlk: this lock never blocks deadlock detection.
	NoDlckBlk Flags = 0x200
	// Expedite: grant a new NL request ahead of any waiting request.
	Expedite Flags = 0x400
	// NoQueueBast: with NoQueue, send blocking callbacks to the holders
	// that prevent the grant.
	NoQueueBast Flags = 0x800
	// HeadQue: queue the request at the head of the waiters.
	HeadQue Flags = 0x1000
	// NoOrder: grant as soon as compatible, ignoring queue order.
	NoOrder Flags = 0x2000
	// Orphan: adopt an orphaned persistent lock of the same resource and
	// mode instead of requesting a new one.
	Orphan Flags = 0x4000
	// AltPR: if PR cannot be granted, try CW (the result has AltMode).
	AltPR Flags = 0x8000
	// AltCW: if CW cannot be granted, try PR (the result has AltMode).
	AltCW Flags = 0x10000
	// ForceUnlock: unlock even while a conversion or request is pending.
	ForceUnlock Flags = 0x20000
	// Notify promises that the resource name of a new lock is new: no
	// node holds or has recently held a lock on it. In a lockspace
	// created with LSFlagNotify on every node, the first request for the
	// name is then mastered and granted by this node without first
	// asking the resource directory. New requests only. It needs a
	// kernel with the DLM NOTIFY patches: on one without them the request
	// fails with ErrNotifySupport.
	Notify Flags = 0x80000

	cancelFlag Flags = 0x2 // LKF_CANCEL: used by Cancel only
)

var flagNames = []struct {
	f Flags
	n string
}{
	{NoQueue, "NOQUEUE"}, {cancelFlag, "CANCEL"}, {Convert, "CONVERT"}, {ValBlk, "VALBLK"},
	{QueCvt, "QUECVT"}, {IVValBlk, "IVVALBLK"}, {ConvDeadlk, "CONVDEADLK"}, {Persistent, "PERSISTENT"},
	{NoDlckWt, "NODLCKWT"}, {NoDlckBlk, "NODLCKBLK"}, {Expedite, "EXPEDITE"}, {NoQueueBast, "NOQUEUEBAST"},
	{HeadQue, "HEADQUE"}, {NoOrder, "NOORDER"}, {Orphan, "ORPHAN"}, {AltPR, "ALTPR"}, {AltCW, "ALTCW"},
	{ForceUnlock, "FORCEUNLOCK"}, {Notify, "NOTIFY"},
}

// String lists the flags' names, joined by "|".
func (f Flags) String() string {
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.n)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(f)))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

const lockFlags = NoQueue | Convert | ValBlk | QueCvt | IVValBlk | ConvDeadlk | Persistent | NoDlckWt |
	NoDlckBlk | Expedite | NoQueueBast | HeadQue | NoOrder | Orphan | AltPR | AltCW | Notify

const unlockFlags = ValBlk | IVValBlk | ForceUnlock

// checkLock applies the kernel's rules for a request or conversion
// (fs/dlm/lock.c set_lock_args), so a bad call fails here with a clear
// message rather than with EINVAL from the kernel.
func checkLock(mode Mode, f Flags, convert, hasLVB bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, a...))
	}
	if !mode.Valid() {
		return bad("mode %v: must be NL, CR, CW, PR, PW or EX", mode)
	}
	if extra := f &^ lockFlags; extra != 0 {
		return bad("flags %v not allowed on a lock request", extra)
	}
	if convert != (f&Convert != 0) {
		return bad("CONVERT is for conversions only (use Lock.Convert)")
	}
	if !convert && f&(QueCvt|ConvDeadlk) != 0 {
		return bad("QUECVT and CONVDEADLK are for conversions only")
	}
	if f&ConvDeadlk != 0 && f&NoQueue != 0 {
		return bad("CONVDEADLK cannot be combined with NOQUEUE")
	}
	if f&Expedite != 0 && (convert || mode != ModeNL || f&(QueCvt|NoQueue) != 0) {
		return bad("EXPEDITE is only for new NL requests without QUECVT or NOQUEUE")
	}
	if f&Notify != 0 && (convert || f&Orphan != 0) {
		return bad("NOTIFY is for new requests only, not conversions or ORPHAN")
	}
	if f&ValBlk != 0 && convert && !hasLVB {
		return bad("VALBLK on a lock that was requested without a value block")
	}
	return nil
}

func checkUnlock(f Flags, hasLVB bool) error {
	if extra := f &^ unlockFlags; extra != 0 {
		return fmt.Errorf("%w: flags %v not allowed on an unlock (only VALBLK, IVVALBLK, FORCEUNLOCK)", ErrInvalidArgument, extra)
	}
	if f&ValBlk != 0 && !hasLVB {
		return fmt.Errorf("%w: VALBLK on a lock that was requested without a value block", ErrInvalidArgument)
	}
	return nil
}
