package raftcluster

import "errors"

// Errors of this package; test for them with errors.Is. Broadcast and
// Close also return the errors of the cluster package (ErrNoQuorum,
// ErrClosed, ErrExpelled).
var (
	// ErrConfig: a Config or Options value is invalid.
	ErrConfig = errors.New("raftcluster: invalid configuration")
	// ErrMalformed: bytes from outside (a log entry, a snapshot, a
	// frame, a handshake message, a persisted state) do not decode.
	ErrMalformed = errors.New("raftcluster: malformed encoding")
	// ErrCorrupt: a persisted state file fails its checksum or is
	// truncated.
	ErrCorrupt = errors.New("raftcluster: corrupt state file")
	// ErrTooLarge: a broadcast, a frame or a persisted state exceeds its
	// size limit.
	ErrTooLarge = errors.New("raftcluster: too large")
	// ErrBadMessage: a consensus message from the network is not one
	// this node accepts (wrong addressee, unknown sender, inconsistent
	// fields); it was dropped.
	ErrBadMessage = errors.New("raftcluster: bad consensus message")
	// ErrRefused: a peer refused a connection, or this node refused one.
	ErrRefused = errors.New("raftcluster: connection refused")
	// ErrAuth: a peer failed authentication with the cluster key (a
	// wrong key, or a forged or replayed frame).
	ErrAuth = errors.New("raftcluster: authentication failed")
	// ErrFailed: the Core hit an error it cannot recover from (it could
	// not persist its state, or the consensus library detected a
	// broken invariant); it does nothing more.
	ErrFailed = errors.New("raftcluster: core failed")
)
