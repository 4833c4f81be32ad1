package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/godlm/godlm/tests/lab/internal/wire"
)

// ErrNodeDown is returned for requests to a node whose VM is not running
// or whose agent connection was lost.
var ErrNodeDown = errors.New("node is down")

// agentClient speaks to one guest's agent over QEMU's chardev socket.
type agentClient struct {
	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan wire.Response
	closed  chan struct{}
	err     error
}

// dialAgent connects to the chardev socket QEMU creates at path, retrying
// while QEMU is still starting, until ctx ends.
func dialAgent(ctx context.Context, path string) (*agentClient, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			a := &agentClient{conn: c, pending: map[uint64]chan wire.Response{}, closed: make(chan struct{})}
			go a.readLoop()
			return a, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to agent socket %s: %w", path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (a *agentClient) readLoop() {
	var err error
	for {
		var resp wire.Response
		if err = wire.ReadFrame(a.conn, &resp); err != nil {
			break
		}
		a.mu.Lock()
		ch := a.pending[resp.ID]
		delete(a.pending, resp.ID)
		a.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
	a.mu.Lock()
	a.err = fmt.Errorf("%w: agent connection: %v", ErrNodeDown, err)
	a.mu.Unlock()
	close(a.closed)
}

func (a *agentClient) close() { a.conn.Close() }

// call sends req and waits for its response. If ctx ends first, the call
// returns ctx's error; the guest still bounds an exec by req.TimeoutMS.
func (a *agentClient) call(ctx context.Context, req wire.Request) (wire.Response, error) {
	ch := make(chan wire.Response, 1)
	a.mu.Lock()
	if a.err != nil {
		err := a.err
		a.mu.Unlock()
		return wire.Response{}, err
	}
	a.nextID++
	req.ID = a.nextID
	a.pending[req.ID] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.pending, req.ID)
		a.mu.Unlock()
	}()

	a.wmu.Lock()
	a.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := wire.WriteFrame(a.conn, req)
	a.wmu.Unlock()
	if err != nil {
		return wire.Response{}, fmt.Errorf("%w: send to agent: %v", ErrNodeDown, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-a.closed:
		a.mu.Lock()
		defer a.mu.Unlock()
		return wire.Response{}, a.err
	case <-ctx.Done():
		return wire.Response{}, ctx.Err()
	}
}

// waitReady pings the agent until it answers or ctx ends.
func (a *agentClient) waitReady(ctx context.Context) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := a.call(pctx, wire.Request{Op: wire.OpPing})
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrNodeDown) {
			return err
		}
	}
}
