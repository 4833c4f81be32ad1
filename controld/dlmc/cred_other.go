//go:build !linux

package dlmc

import (
	"errors"
	"fmt"
	"net"
)

// peerUID cannot tell who serves a socket off Linux, so the client
// trusts no server there: dlm_controld runs on Linux only.
func peerUID(c *net.UnixConn) (uid uint32, pid int32, err error) {
	return 0, 0, fmt.Errorf("peer credentials: %w", errors.ErrUnsupported)
}
