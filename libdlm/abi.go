package libdlm

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/godlm/godlm/libdlm/internal/uapi"
)

// LVBLen is the size of a lock value block for userspace locks.
const LVBLen = uapi.LVBLen

// Status flags of a completion (dlm_lksb.sb_flags).
const (
	// SBDemoted: a ConvDeadlk conversion was demoted to NL.
	SBDemoted = uapi.SBDemoted
	// SBValNotValid: the lock value block is not valid (a holder of PW
	// or EX died, or IVValBlk was used).
	SBValNotValid = uapi.SBValNotValid
	// SBAltMode: the alternate mode (AltPR, AltCW) was granted.
	SBAltMode = uapi.SBAltMode
)

// Markers the kernel echoes back in results. It never dereferences the
// "pointers" of a request, so they carry a lock's token and which
// callback fired instead.
const (
	castMarker = 1
	bastMarker = 2
)

// lockRequest is one DLM_USER_LOCK write.
type lockRequest struct {
	mode  Mode
	flags Flags
	lkid  uint32
	token uint64
	bast  bool
	lvb   *[LVBLen]byte
	name  string
}

func putVersion(b []byte) {
	binary.NativeEndian.PutUint32(b[0:], uapi.VersionMajor)
	binary.NativeEndian.PutUint32(b[4:], uapi.VersionMinor)
	binary.NativeEndian.PutUint32(b[8:], uapi.VersionPatch)
}

// reqPool recycles request buffers: a request is written and dropped
// at once, and a buffer the CPU (and, under emulation, its TLB) has just
// touched is cheaper for the kernel to copy than a fresh one.
var reqPool = sync.Pool{New: func() any { b := make([]byte, uapi.RequestSize+MaxNameLen); return &b }}

func getReq(n int) []byte {
	b := *reqPool.Get().(*[]byte)
	b = b[:n]
	clear(b)
	return b
}

func putReq(b []byte) { reqPool.Put(&b) }

func (r lockRequest) encode() []byte {
	b := getReq(uapi.RequestSize + len(r.name))
	putVersion(b)
	if r.flags&Notify != 0 {
		binary.NativeEndian.PutUint32(b[uapi.OffReqVersion+4:], uapi.VersionMinorNotify)
	}
	b[uapi.OffReqCmd] = uapi.CmdLock
	b[uapi.OffReqIs64bit] = 1
	b[uapi.OffLockMode] = byte(r.mode)
	b[uapi.OffLockNamelen] = byte(len(r.name))
	binary.NativeEndian.PutUint32(b[uapi.OffLockFlags:], uint32(r.flags))
	binary.NativeEndian.PutUint32(b[uapi.OffLockLkid:], r.lkid)
	binary.NativeEndian.PutUint64(b[uapi.OffLockCastparam:], r.token)
	binary.NativeEndian.PutUint64(b[uapi.OffLockCastaddr:], castMarker)
	if r.bast {
		binary.NativeEndian.PutUint64(b[uapi.OffLockBastparam:], r.token)
		binary.NativeEndian.PutUint64(b[uapi.OffLockBastaddr:], bastMarker)
	}
	binary.NativeEndian.PutUint64(b[uapi.OffLockLksb:], r.token)
	if r.lvb != nil {
		copy(b[uapi.OffLockLVB:uapi.OffLockLVB+LVBLen], r.lvb[:])
	}
	copy(b[uapi.OffLockName:], r.name)
	return b
}

// unlockRequest encodes DLM_USER_UNLOCK (and cancel, with cancelFlag).
// The request carries lvb, which the kernel copies into the lock's value
// block on unlock: it must hold the caller's value, never garbage.
func unlockRequest(lkid uint32, flags Flags, token uint64, lvb *[LVBLen]byte) []byte {
	b := getReq(uapi.RequestSize)
	putVersion(b)
	b[uapi.OffReqCmd] = uapi.CmdUnlock
	b[uapi.OffReqIs64bit] = 1
	binary.NativeEndian.PutUint32(b[uapi.OffLockFlags:], uint32(flags))
	binary.NativeEndian.PutUint32(b[uapi.OffLockLkid:], lkid)
	binary.NativeEndian.PutUint64(b[uapi.OffLockCastparam:], token)
	binary.NativeEndian.PutUint64(b[uapi.OffLockLksb:], token)
	if lvb != nil {
		copy(b[uapi.OffLockLVB:uapi.OffLockLVB+LVBLen], lvb[:])
	}
	return b
}

// astResult is one callback read from a lockspace device.
type astResult struct {
	bast     bool
	token    uint64
	status   int32 // kernel sign: 0 or -errno
	lkid     uint32
	sbFlags  uint8
	bastMode Mode
	lvb      []byte // nil unless the kernel copied the value block
}

// decodeResult parses a struct dlm_lock_result (and its value block).
func decodeResult(b []byte) (astResult, error) {
	if len(b) < uapi.ResultSize {
		return astResult{}, fmt.Errorf("libdlm: short result of %d bytes", len(b))
	}
	if v := binary.NativeEndian.Uint32(b[uapi.OffResVersion:]); v != uapi.VersionMajor {
		return astResult{}, fmt.Errorf("libdlm: result of device version %d", v)
	}
	r := astResult{
		token:  binary.NativeEndian.Uint64(b[uapi.OffResAstparam:]),
		status: int32(binary.NativeEndian.Uint32(b[uapi.OffResStatus:])),
		lkid:   binary.NativeEndian.Uint32(b[uapi.OffResLkid:]),
	}
	switch addr := binary.NativeEndian.Uint64(b[uapi.OffResAstaddr:]); addr {
	case castMarker:
		r.sbFlags = b[uapi.OffResSbFlags]
	case bastMarker:
		r.bast = true
		r.bastMode = Mode(b[uapi.OffResBastMode])
	default:
		return astResult{}, fmt.Errorf("libdlm: result for unknown callback address %#x", addr)
	}
	if off := binary.NativeEndian.Uint32(b[uapi.OffResLvbOffset:]); off != 0 && !r.bast {
		if int(off)+LVBLen > len(b) {
			return astResult{}, fmt.Errorf("libdlm: value block at %d beyond the %d-byte result", off, len(b))
		}
		r.lvb = b[off : off+LVBLen]
	}
	return r, nil
}
