package dlmc

import "strconv"

// Command is the command field of a [Header].
type Command uint32

// Commands of the reference protocol (dlm_controld.h).
const (
	DumpDebug      Command = 1
	DumpPlocks     Command = 2
	LockspaceInfo  Command = 3
	NodeInfo       Command = 4
	Lockspaces     Command = 5
	LockspaceNodes Command = 6
	FSRegister     Command = 7
	FSUnregister   Command = 8
	FSNotified     Command = 9
	DeadlockCheck  Command = 10
	DumpLogPlock   Command = 11
	FenceAck       Command = 12
	DumpStatus     Command = 13
	DumpConfig     Command = 14
	RunStart       Command = 15
	RunCheck       Command = 16
	DumpRun        Command = 17
	ReloadConfig   Command = 18 // dlm 4.2
	SetConfig      Command = 19 // dlm 4.2
)

// godlm extensions, sent on the command socket.
const (
	// Join creates (or joins) a lockspace: Name is the lockspace,
	// Option the lockspace create flags (DLM_LSFL_*), Data the device
	// node's permission bits. The reply's Data is 0 or -errno, its
	// payload an optional UTF-8 error text.
	Join Command = 100
	// Leave releases a lockspace: Name is the lockspace, Option 1 to
	// force release while locks remain. The reply is as for Join.
	Leave Command = 101
)

var commandNames = map[Command]string{
	DumpDebug:      "DUMP_DEBUG",
	DumpPlocks:     "DUMP_PLOCKS",
	LockspaceInfo:  "LOCKSPACE_INFO",
	NodeInfo:       "NODE_INFO",
	Lockspaces:     "LOCKSPACES",
	LockspaceNodes: "LOCKSPACE_NODES",
	FSRegister:     "FS_REGISTER",
	FSUnregister:   "FS_UNREGISTER",
	FSNotified:     "FS_NOTIFIED",
	DeadlockCheck:  "DEADLOCK_CHECK",
	DumpLogPlock:   "DUMP_LOG_PLOCK",
	FenceAck:       "FENCE_ACK",
	DumpStatus:     "DUMP_STATUS",
	DumpConfig:     "DUMP_CONFIG",
	RunStart:       "RUN_START",
	RunCheck:       "RUN_CHECK",
	DumpRun:        "DUMP_RUN",
	ReloadConfig:   "RELOAD_CONFIG",
	SetConfig:      "SET_CONFIG",
	Join:           "JOIN",
	Leave:          "LEAVE",
}

// String returns the command's name as in the reference header without
// its DLMC_CMD_ prefix ("LOCKSPACE_INFO"), or "Command(n)" if unknown.
func (c Command) String() string {
	if s, ok := commandNames[c]; ok {
		return s
	}
	return "Command(" + strconv.FormatUint(uint64(c), 10) + ")"
}
