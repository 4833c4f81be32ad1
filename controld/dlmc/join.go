package dlmc

import (
	"context"
	"strconv"
)

// Join asks the daemon to create or join a lockspace (the godlm JOIN
// extension, on the command socket): flags are DLM_LSFL_* lockspace
// create flags, mode the permission bits of the lockspace's device node.
// The name is checked first, without contacting the daemon. A refusal
// for lack of privilege wraps os.ErrPermission; any other failure is a
// [*DaemonError] wrapping the errno.
func (c *Client) Join(ctx context.Context, name string, flags, mode uint32) error {
	return c.control(ctx, Header{Command: Join, Name: name, Option: flags, Data: int32(mode)})
}

// Leave asks the daemon to release a lockspace (the godlm LEAVE
// extension); force releases it even while locks remain. Errors are as
// for [Client.Join]; an unknown lockspace wraps [ErrNoLockspace].
func (c *Client) Leave(ctx context.Context, name string, force bool) error {
	req := Header{Command: Leave, Name: name}
	if force {
		req.Option = 1
	}
	return c.control(ctx, req)
}

func (c *Client) control(ctx context.Context, req Header) error {
	if err := CheckName(req.Name); err != nil {
		return err
	}
	h, p, err := c.Control(ctx, req, nil)
	if err != nil {
		return err
	}
	if err := checkReply(h, req); err != nil {
		return err
	}
	if h.Data < 0 {
		return daemonError(h, req, p)
	}
	return nil
}

// FenceAckReply in a FENCE_ACK request's option asks godlm's daemon to
// answer once the ack is recorded; the reference neither sets nor
// answers it.
const FenceAckReply = 1

// FenceAck tells the daemon that an operator made sure node is fenced
// (powered off, or cut off from the storage): its locks are recovered
// without fencing it. A daemon that does not answer (the reference's)
// leaves it to ctx's deadline. Errors are as for [Client.Join]; for a
// node that is not waiting to be fenced, a [*DaemonError] wrapping
// syscall.ENOENT.
func (c *Client) FenceAck(ctx context.Context, node int) error {
	return c.control(ctx, Header{Command: FenceAck, Name: strconv.Itoa(node), Option: FenceAckReply})
}
