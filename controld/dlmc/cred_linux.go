//go:build linux

package dlmc

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred returns the credentials of the process at the other end of c
// (SO_PEERCRED), taken when it connected.
func PeerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred *unix.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return nil, fmt.Errorf("peer credentials: getsockopt SO_PEERCRED: %w", gerr)
	}
	return cred, nil
}

// peerUID returns the user and process at the other end of c.
func peerUID(c *net.UnixConn) (uid uint32, pid int32, err error) {
	cred, err := PeerCred(c)
	if err != nil {
		return 0, 0, err
	}
	return cred.Uid, cred.Pid, nil
}
