package dlmc

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// Largest counts that fit in one reply; sent as the max of LOCKSPACES
// and LOCKSPACE_NODES when the caller gives none.
const (
	maxLockspaces = MaxPayload / LockspaceSize
	maxNodes      = MaxPayload / NodeSize
)

// checkReply verifies that h answers req.
func checkReply(h, req Header) error {
	want := req.Command
	if want == DumpLogPlock {
		want = DumpDebug // as the reference daemon answers
	}
	if h.Command != want {
		return fmt.Errorf("%v request answered by %v: %w", req.Command, h.Command, ErrBadReply)
	}
	return nil
}

// ask sends a query and checks its reply: the right command, and a Data
// that is not an error (-E2BIG passes when partial is set: the reply
// then holds the first records).
func (c *Client) ask(ctx context.Context, req Header, partial bool) (Header, []byte, error) {
	h, p, err := c.Query(ctx, req, nil)
	if err != nil {
		return h, nil, err
	}
	if err := checkReply(h, req); err != nil {
		return h, nil, err
	}
	if h.Data < 0 && !(partial && h.Data == -int32(syscall.E2BIG)) {
		// The payload of an error explains it (a refused connection).
		return h, nil, daemonError(h, req, p)
	}
	return h, p, nil
}

func (c *Client) dump(ctx context.Context, req Header) (string, error) {
	_, p, err := c.ask(ctx, req, false)
	if err != nil {
		return "", err
	}
	return cstring(p), nil
}

// DumpDebug returns the daemon's debug log buffer (DUMP_DEBUG).
func (c *Client) DumpDebug(ctx context.Context) (string, error) {
	return c.dump(ctx, Header{Command: DumpDebug})
}

// DumpConfig returns the daemon's settings, "name=value" lines
// (DUMP_CONFIG).
func (c *Client) DumpConfig(ctx context.Context) (string, error) {
	return c.dump(ctx, Header{Command: DumpConfig})
}

// DumpLogPlock returns the daemon's posix lock log buffer
// (DUMP_LOG_PLOCK).
func (c *Client) DumpLogPlock(ctx context.Context) (string, error) {
	return c.dump(ctx, Header{Command: DumpLogPlock})
}

// DumpPlocks returns the posix locks of a lockspace (DUMP_PLOCKS).
func (c *Client) DumpPlocks(ctx context.Context, name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return c.dump(ctx, Header{Command: DumpPlocks, Name: name})
}

// DumpStatus returns the daemon's state records (DUMP_STATUS). The
// reply has no header: the records follow the request until the daemon
// closes the connection.
func (c *Client) DumpStatus(ctx context.Context) ([]State, error) {
	var states []State
	req := Header{Command: DumpStatus}
	err := c.roundTrip(ctx, c.querySocket(), req, nil, func(conn net.Conn) error {
		b, err := readAllLimited(conn, MaxPayload)
		if err != nil {
			return err
		}
		if len(b) >= 4 && ne.Uint32(b) == Magic {
			// A daemon that refused the connection says why.
			if h, err := ParseHeader(b); err == nil && h.Data < 0 && h.Command == req.Command && int(h.Len) == len(b) {
				return daemonError(h, req, b[HeaderSize:])
			}
			return fmt.Errorf("it starts with a dlmc_header, but DUMP_STATUS is answered with bare dlmc_state records: %w", ErrBadReply)
		}
		if len(b) == 0 {
			return fmt.Errorf("no state records: %w", ErrBadReply)
		}
		states, err = ParseStates(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return states, nil
}

// Lockspaces returns every lockspace the daemon manages (LOCKSPACES).
func (c *Client) Lockspaces(ctx context.Context) ([]Lockspace, error) {
	req := Header{Command: Lockspaces, Data: maxLockspaces}
	h, p, err := c.ask(ctx, req, true)
	if err != nil {
		return nil, err
	}
	lss, err := ParseLockspaces(p)
	if err != nil {
		return nil, fmt.Errorf("%v reply: %w: %w", req.Command, ErrBadReply, err)
	}
	return lss, countCheck(h, req, len(lss), maxLockspaces)
}

// countCheck applies the count convention of LOCKSPACES and
// LOCKSPACE_NODES: Data is the number of records, or -E2BIG when only
// max of them were sent (then the records and a DaemonError are
// returned).
func countCheck(h, req Header, n, max int) error {
	if h.Data < 0 {
		return daemonError(h, req, nil)
	}
	if int(h.Data) != n || n > max {
		return fmt.Errorf("%v reply counts %d records but holds %d (max %d): %w", req.Command, h.Data, n, max, ErrBadReply)
	}
	return nil
}

// LockspaceInfo returns one lockspace (LOCKSPACE_INFO). An unknown name
// gives an error wrapping [ErrNoLockspace].
func (c *Client) LockspaceInfo(ctx context.Context, name string) (Lockspace, error) {
	if err := CheckName(name); err != nil {
		return Lockspace{}, err
	}
	req := Header{Command: LockspaceInfo, Name: name}
	_, p, err := c.ask(ctx, req, false)
	if err != nil {
		return Lockspace{}, err
	}
	if len(p) != LockspaceSize {
		return Lockspace{}, fmt.Errorf("%v reply of %d bytes, want %d: %w", req.Command, len(p), LockspaceSize, ErrBadReply)
	}
	return ParseLockspace(p)
}

// LockspaceNodes returns nodes of a lockspace (LOCKSPACE_NODES); which
// is NodesAll, NodesMembers or NodesNext, max the most nodes wanted (0:
// as many as fit in a reply). When the daemon has more than max, it
// returns max of them and an error wrapping syscall.E2BIG.
func (c *Client) LockspaceNodes(ctx context.Context, name string, which, max int) ([]Node, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if max <= 0 || max > maxNodes {
		max = maxNodes
	}
	req := Header{Command: LockspaceNodes, Name: name, Option: uint32(which), Data: int32(max)}
	h, p, err := c.ask(ctx, req, true)
	if err != nil {
		return nil, err
	}
	nodes, err := ParseNodes(p)
	if err != nil {
		return nil, fmt.Errorf("%v reply: %w: %w", req.Command, ErrBadReply, err)
	}
	if h.Data == -int32(syscall.E2BIG) && len(nodes) > max {
		return nil, fmt.Errorf("%v reply holds %d records, max %d: %w", req.Command, len(nodes), max, ErrBadReply)
	}
	return nodes, countCheck(h, req, len(nodes), max)
}

// NodeInfo returns one node of a lockspace (NODE_INFO).
func (c *Client) NodeInfo(ctx context.Context, name string, nodeid int) (Node, error) {
	if err := CheckName(name); err != nil {
		return Node{}, err
	}
	req := Header{Command: NodeInfo, Name: name, Data: int32(nodeid)}
	_, p, err := c.ask(ctx, req, false)
	if err != nil {
		return Node{}, err
	}
	if len(p) != NodeSize {
		return Node{}, fmt.Errorf("%v reply of %d bytes, want %d: %w", req.Command, len(p), NodeSize, ErrBadReply)
	}
	return ParseNode(p)
}
