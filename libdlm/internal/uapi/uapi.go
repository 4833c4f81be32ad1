// Package uapi holds the layout of the kernel DLM's lockspace device
// ABI (include/uapi/linux/dlm_device.h and dlmconstants.h), native
// 64-bit, shared by libdlm, which speaks it, and dlmtest, which fakes
// the kernel's side of it. libdlm's tests check every offset against
// the kernel's headers.
package uapi

// The device ABI version. The kernel accepts a request whose major
// equals its own and whose minor is not above its own.
const (
	VersionMajor = 6
	VersionMinor = 0
	VersionPatch = 2
	// VersionMinorNotify is the minor a request using the NOTIFY flags
	// says: a kernel that predates them (minor 0) refuses it.
	VersionMinorNotify = 1
)

// Device commands (dlm_write_request.cmd).
const (
	CmdLock            = 1
	CmdUnlock          = 2
	CmdCreateLockspace = 4
	CmdRemoveLockspace = 5
)

// Offsets in struct dlm_write_request and its unions.
const (
	OffReqVersion = 0
	OffReqCmd     = 12
	OffReqIs64bit = 13
	OffReqParams  = 16
	// struct dlm_lock_params, at OffReqParams
	OffLockMode      = 16
	OffLockNamelen   = 17
	OffLockFlags     = 20
	OffLockLkid      = 24
	OffLockParent    = 28
	OffLockXid       = 32
	OffLockTimeout   = 40
	OffLockCastparam = 48
	OffLockCastaddr  = 56
	OffLockBastparam = 64
	OffLockBastaddr  = 72
	OffLockLksb      = 80
	OffLockLVB       = 88
	OffLockName      = 120
	// struct dlm_lspace_params, at OffReqParams
	OffLspaceFlags = 16
	OffLspaceMinor = 20
	OffLspaceName  = 24

	// RequestSize is sizeof(struct dlm_write_request); a lock
	// request's resource name follows it.
	RequestSize = OffLockName
)

// Offsets in struct dlm_lock_result, which a read of the device
// returns, followed by the value block when it carries one.
const (
	OffResVersion   = 0
	OffResLength    = 12
	OffResAstaddr   = 16
	OffResAstparam  = 24
	OffResLksb      = 32
	OffResStatus    = 40 // lksb.sb_status
	OffResLkid      = 44 // lksb.sb_lkid
	OffResSbFlags   = 48 // lksb.sb_flags
	OffResLvbptr    = 56 // lksb.sb_lvbptr
	OffResBastMode  = 64
	OffResLvbOffset = 68

	ResultSize       = 72
	ResultSizeWithLV = ResultSize + LVBLen
)

// LVBLen is the size of a userspace lock's value block.
const LVBLen = 32

// Completion statuses beyond errno (negated in sb_status).
const (
	StatusECancel = 0x10001
	StatusEUnlock = 0x10002
)

// Lock flags the fake kernel interprets (DLM_LKF_*).
const (
	FlagNoQueue     = 0x1
	FlagCancel      = 0x2
	FlagConvert     = 0x4
	FlagValBlk      = 0x8
	FlagQueCvt      = 0x10
	FlagIVValBlk    = 0x20
	FlagConvDeadlk  = 0x40
	FlagPersistent  = 0x80
	FlagExpedite    = 0x400
	FlagNoQueueBast = 0x800
	FlagHeadQue     = 0x1000
	FlagNoOrder     = 0x2000
	FlagOrphan      = 0x4000
	FlagAltPR       = 0x8000
	FlagAltCW       = 0x10000
	FlagForceUnlock = 0x20000
)

// Status block flags (dlm_lksb.sb_flags).
const (
	SBDemoted     = 0x01
	SBValNotValid = 0x02
	SBAltMode     = 0x04
)
