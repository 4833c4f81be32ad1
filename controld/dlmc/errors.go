package dlmc

import "errors"

// Errors of the wire encoding; test for them with errors.Is.
var (
	// ErrBadMagic: a header's magic is not [Magic].
	ErrBadMagic = errors.New("dlmc: bad magic")
	// ErrVersion: a header's major version (upper 16 bits) differs
	// from [Version]'s.
	ErrVersion = errors.New("dlmc: unsupported protocol version")
	// ErrTooLarge: a length field exceeds its limit.
	ErrTooLarge = errors.New("dlmc: message too large")
	// ErrBadLength: a header's Len is smaller than the header itself.
	ErrBadLength = errors.New("dlmc: bad message length")
	// ErrTruncated: a buffer ends inside a record.
	ErrTruncated = errors.New("dlmc: truncated record")
)

// Errors of the client side.
var (
	// ErrNoDaemon: nothing listens on the daemon's socket.
	ErrNoDaemon = errors.New("dlm_controld is not running")
	// ErrNoLockspace: the daemon does not know the lockspace named.
	ErrNoLockspace = errors.New("no such lockspace")
	// ErrBadReply: the daemon's reply does not fit the request.
	ErrBadReply = errors.New("dlmc: malformed reply")
	// ErrNameTooLong: a lockspace name exceeds [NameLen] bytes.
	ErrNameTooLong = errors.New("lockspace name too long")
	// ErrBadName: a lockspace name is empty or holds a NUL byte.
	ErrBadName = errors.New("bad lockspace name")
	// ErrUntrustedServer: the daemon's socket is served by a process
	// that does not run as [Client.ServerUID] (root), which could be
	// any local user who bound the name first; nothing was sent to it.
	ErrUntrustedServer = errors.New("dlmc: the socket is served by an unexpected user")
)
