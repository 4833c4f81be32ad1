package dlmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Client sends requests to a daemon. The zero value talks to the
// standard sockets; tests set the names to reach a private server. A
// Client holds no connection: each request dials, as the reference
// library does, so a Client is safe for concurrent use.
type Client struct {
	// QuerySocket is the abstract name of the query socket, without the
	// leading NUL; "" means [QuerySocket].
	QuerySocket string
	// CommandSocket is the abstract name of the command socket; ""
	// means [CommandSocket].
	CommandSocket string
	// ServerUID is the uid the daemon must run as; the zero value is
	// root. Anyone may bind an abstract socket name first, so the
	// client checks who serves it (SO_PEERCRED) before it sends a
	// request, and refuses anyone else with [ErrUntrustedServer].
	ServerUID uint32
}

// DefaultClient is the Client of the package-level [Query] and
// [Control]; the typed requests (DumpDebug, Lockspaces, Join, ...) are
// Client methods only, since their names are those of the commands.
var DefaultClient = &Client{}

func (c *Client) querySocket() string {
	if c == nil || c.QuerySocket == "" {
		return QuerySocket
	}
	return c.QuerySocket
}

func (c *Client) commandSocket() string {
	if c == nil || c.CommandSocket == "" {
		return CommandSocket
	}
	return c.CommandSocket
}

// Query sends one request on the query socket and reads one reply.
func (c *Client) Query(ctx context.Context, req Header, payload []byte) (Header, []byte, error) {
	return c.exchange(ctx, c.querySocket(), req, payload)
}

// Control sends one request on the command socket, on a connection of
// its own, and reads one reply. (It is not named Command because that
// is the type of a header's command field.) Requests the daemon does not
// answer, such as FENCE_ACK, would wait for ctx to end.
func (c *Client) Control(ctx context.Context, req Header, payload []byte) (Header, []byte, error) {
	return c.exchange(ctx, c.commandSocket(), req, payload)
}

// Query sends a request on the query socket with [DefaultClient].
func Query(ctx context.Context, req Header, payload []byte) (Header, []byte, error) {
	return DefaultClient.Query(ctx, req, payload)
}

// Control sends a request on the command socket with [DefaultClient].
func Control(ctx context.Context, req Header, payload []byte) (Header, []byte, error) {
	return DefaultClient.Control(ctx, req, payload)
}

func (c *Client) exchange(ctx context.Context, socket string, req Header, payload []byte) (h Header, p []byte, err error) {
	err = c.roundTrip(ctx, socket, req, payload, func(conn net.Conn) error {
		var rerr error
		h, p, rerr = ReadMessage(conn)
		return rerr
	})
	if err != nil {
		return Header{}, nil, err
	}
	return h, p, nil
}

// roundTrip dials socket, sends req and payload, and lets read consume
// the reply. ctx bounds the whole exchange.
func (c *Client) roundTrip(ctx context.Context, socket string, req Header, payload []byte, read func(net.Conn) error) error {
	conn, err := dial(ctx, socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := c.checkServer(conn, socket); err != nil {
		return err
	}
	// When ctx ends, a past deadline unblocks the reads and writes; by
	// then ctx.Err() is set, so ctxErr reports it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := WriteMessage(conn, req, payload); err != nil {
		return ctxErr(ctx, fmt.Errorf("send %v to @%s: %w", req.Command, socket, err))
	}
	if err := read(conn); err != nil {
		return ctxErr(ctx, fmt.Errorf("%v reply from @%s: %w", req.Command, socket, err))
	}
	return nil
}

// checkServer makes sure the process serving socket runs as
// c.ServerUID.
func (c *Client) checkServer(conn net.Conn, socket string) error {
	var want uint32
	if c != nil {
		want = c.ServerUID
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("@%s: not a unix socket: %w", socket, ErrUntrustedServer)
	}
	uid, pid, err := peerUID(uc)
	if err != nil {
		return fmt.Errorf("@%s: %w: %w", socket, ErrUntrustedServer, err)
	}
	if uid != want {
		return fmt.Errorf("@%s is served by uid %d (pid %d), not uid %d: %w", socket, uid, pid, want, ErrUntrustedServer)
	}
	return nil
}

// ctxErr prefers the context's error to the i/o timeout it caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

func dial(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", "@"+socket)
	if err == nil {
		return conn, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return nil, &noDaemonError{socket: socket, err: err}
	}
	return nil, ctxErr(ctx, fmt.Errorf("connect to @%s: %w", socket, err))
}

// noDaemonError wraps ErrNoDaemon and the connect error.
type noDaemonError struct {
	socket string
	err    error
}

func (e *noDaemonError) Error() string {
	return fmt.Sprintf("%v (cannot connect to @%s)", ErrNoDaemon, e.socket)
}

func (e *noDaemonError) Unwrap() []error { return []error{ErrNoDaemon, e.err} }

// readAllLimited reads r to EOF, failing past limit bytes.
func readAllLimited(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}
