package libdlm

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// The device ABI (include/uapi/linux/dlm_device.h), native 64-bit layout.
// A test checks these offsets against the kernel headers.
const (
	// struct dlm_write_request
	offReqVersion = 0
	offReqCmd     = 12
	offReqIs64bit = 13
	offReqParams  = 16
	// struct dlm_lock_params, at offReqParams
	offLockMode      = 16
	offLockNamelen   = 17
	offLockFlags     = 20
	offLockLkid      = 24
	offLockParent    = 28
	offLockXid       = 32
	offLockTimeout   = 40
	offLockCastparam = 48
	offLockCastaddr  = 56
	offLockBastparam = 64
	offLockBastaddr  = 72
	offLockLksb      = 80
	offLockLVB       = 88
	offLockName      = 120
	// struct dlm_lspace_params, at offReqParams
	offLspaceFlags = 16
	offLspaceMinor = 20
	offLspaceName  = 24

	// struct dlm_lock_result
	offResVersion    = 0
	offResLength     = 12
	offResAstaddr    = 16
	offResAstparam   = 24
	offResLksb       = 32
	offResStatus     = 40 // lksb.sb_status
	offResLkid       = 44 // lksb.sb_lkid
	offResSbFlags    = 48 // lksb.sb_flags
	offResLvbptr     = 56 // lksb.sb_lvbptr
	offResBastMode   = 64
	offResLvbOffset  = 68
	resultSize       = 72
	resultSizeWithLV = resultSize + LVBLen

	lockRequestBase = offLockName // sizeof(struct dlm_write_request)
)

// LVBLen is the size of a lock value block for userspace locks.
const LVBLen = 32

// Status flags of a completion (dlm_lksb.sb_flags).
const (
	// SBDemoted: a ConvDeadlk conversion was demoted to NL.
	SBDemoted = 0x01
	// SBValNotValid: the lock value block is not valid (a holder of PW
	// or EX died, or IVValBlk was used).
	SBValNotValid = 0x02
	// SBAltMode: the alternate mode (AltPR, AltCW) was granted.
	SBAltMode = 0x04
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
	binary.NativeEndian.PutUint32(b[0:], deviceMajor)
	binary.NativeEndian.PutUint32(b[4:], deviceMinor)
	binary.NativeEndian.PutUint32(b[8:], devicePatch)
}

// reqPool recycles request buffers: a request is written and dropped
// at once, and a buffer the CPU (and, under emulation, its TLB) has just
// touched is cheaper for the kernel to copy than a fresh one.
var reqPool = sync.Pool{New: func() any { b := make([]byte, lockRequestBase+MaxNameLen); return &b }}

func getReq(n int) []byte {
	b := *reqPool.Get().(*[]byte)
	b = b[:n]
	clear(b)
	return b
}

func putReq(b []byte) { reqPool.Put(&b) }

func (r lockRequest) encode() []byte {
	b := getReq(lockRequestBase + len(r.name))
	putVersion(b)
	b[offReqCmd] = cmdLock
	b[offReqIs64bit] = 1
	b[offLockMode] = byte(r.mode)
	b[offLockNamelen] = byte(len(r.name))
	binary.NativeEndian.PutUint32(b[offLockFlags:], uint32(r.flags))
	binary.NativeEndian.PutUint32(b[offLockLkid:], r.lkid)
	binary.NativeEndian.PutUint64(b[offLockCastparam:], r.token)
	binary.NativeEndian.PutUint64(b[offLockCastaddr:], castMarker)
	if r.bast {
		binary.NativeEndian.PutUint64(b[offLockBastparam:], r.token)
		binary.NativeEndian.PutUint64(b[offLockBastaddr:], bastMarker)
	}
	binary.NativeEndian.PutUint64(b[offLockLksb:], r.token)
	if r.lvb != nil {
		copy(b[offLockLVB:offLockLVB+LVBLen], r.lvb[:])
	}
	copy(b[offLockName:], r.name)
	return b
}

// unlockRequest encodes DLM_USER_UNLOCK (and cancel, with cancelFlag).
// The request carries lvb, which the kernel copies into the lock's value
// block on unlock: it must hold the caller's value, never garbage.
func unlockRequest(lkid uint32, flags Flags, token uint64, lvb *[LVBLen]byte) []byte {
	b := getReq(lockRequestBase)
	putVersion(b)
	b[offReqCmd] = cmdUnlock
	b[offReqIs64bit] = 1
	binary.NativeEndian.PutUint32(b[offLockFlags:], uint32(flags))
	binary.NativeEndian.PutUint32(b[offLockLkid:], lkid)
	binary.NativeEndian.PutUint64(b[offLockCastparam:], token)
	binary.NativeEndian.PutUint64(b[offLockLksb:], token)
	if lvb != nil {
		copy(b[offLockLVB:offLockLVB+LVBLen], lvb[:])
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
	if len(b) < resultSize {
		return astResult{}, fmt.Errorf("libdlm: short result of %d bytes", len(b))
	}
	if v := binary.NativeEndian.Uint32(b[offResVersion:]); v != deviceMajor {
		return astResult{}, fmt.Errorf("libdlm: result of device version %d", v)
	}
	r := astResult{
		token:  binary.NativeEndian.Uint64(b[offResAstparam:]),
		status: int32(binary.NativeEndian.Uint32(b[offResStatus:])),
		lkid:   binary.NativeEndian.Uint32(b[offResLkid:]),
	}
	switch addr := binary.NativeEndian.Uint64(b[offResAstaddr:]); addr {
	case castMarker:
		r.sbFlags = b[offResSbFlags]
	case bastMarker:
		r.bast = true
		r.bastMode = Mode(b[offResBastMode])
	default:
		return astResult{}, fmt.Errorf("libdlm: result for unknown callback address %#x", addr)
	}
	if off := binary.NativeEndian.Uint32(b[offResLvbOffset:]); off != 0 && !r.bast {
		if int(off)+LVBLen > len(b) {
			return astResult{}, fmt.Errorf("libdlm: value block at %d beyond the %d-byte result", off, len(b))
		}
		r.lvb = b[off : off+LVBLen]
	}
	return r, nil
}
