package dlmc

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ListenAbstract listens on the abstract unix stream socket "\x00"+name,
// with the address length the reference uses (no trailing NUL).
func ListenAbstract(name string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on @%s: %w", name, err)
	}
	return l, nil
}

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
