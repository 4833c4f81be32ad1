package dlmc

import (
	"fmt"
	"net"
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
