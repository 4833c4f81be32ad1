// Package dlmctest runs a fake dlm_controld for tests: it answers the
// libdlmcontrol protocol from fixed data, on abstract sockets whose names
// are private to the test, and records what it was asked.
package dlmctest

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/godlm/godlm/controld/dlmc"
)

// Lockspace is a lockspace the fake daemon reports, with the nodes of
// each LOCKSPACE_NODES kind.
type Lockspace struct {
	dlmc.Lockspace
	Members []dlmc.Node // NodesMembers
	Next    []dlmc.Node // NodesNext
	All     []dlmc.Node // NodesAll
}

// Daemon is the fake daemon's data. Set the fields before [Start]; after
// it, use the methods, which lock.
type Daemon struct {
	Lockspaces []Lockspace
	// Status is sent, without a header, in answer to DUMP_STATUS.
	Status []dlmc.State
	// Debug, Config and LogPlock answer the dumps; Plocks, keyed by
	// lockspace, answers DUMP_PLOCKS.
	Debug, Config, LogPlock string
	Plocks                  map[string]string
	// JoinErrno, when set, makes JOIN and LEAVE fail with it and
	// ErrText as the reply's text.
	JoinErrno syscall.Errno
	ErrText   string
	// Hook, when set, sees each request first; if it returns true it has
	// answered (or deliberately not answered) and the built-in handling
	// is skipped.
	Hook func(conn *net.UnixConn, req dlmc.Header, payload []byte) bool

	mu       sync.Mutex
	requests []dlmc.Header
	open     map[*net.UnixConn]bool
	closed   bool
	conns    atomic.Int64
}

var seq atomic.Int64

// Start serves d on two fresh abstract sockets until the test ends and
// returns a client that reaches them.
func Start(tb testing.TB, d *Daemon) *dlmc.Client {
	tb.Helper()
	n := seq.Add(1)
	c := &dlmc.Client{
		QuerySocket:   fmt.Sprintf("godlm-dlmctest-%d-%d-query", os.Getpid(), n),
		CommandSocket: fmt.Sprintf("godlm-dlmctest-%d-%d-cmd", os.Getpid(), n),
		// The fake daemon runs as the test does.
		ServerUID: uint32(os.Getuid()),
	}
	var (
		wg        sync.WaitGroup
		listeners []*net.UnixListener
	)
	// Stop when the test ends: close the listeners and the open
	// connections, then wait for every goroutine.
	tb.Cleanup(func() {
		for _, l := range listeners {
			l.Close()
		}
		d.mu.Lock()
		d.closed = true
		for conn := range d.open {
			conn.Close()
		}
		d.mu.Unlock()
		wg.Wait()
	})
	for _, s := range []struct {
		name  string
		query bool
	}{{c.QuerySocket, true}, {c.CommandSocket, false}} {
		l, err := dlmc.ListenAbstract(s.name)
		if err != nil {
			tb.Fatalf("dlmctest: %v", err)
		}
		listeners = append(listeners, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.serve(l, s.query)
		}()
	}
	return c
}

// Requests returns the requests received so far, in order.
func (d *Daemon) Requests() []dlmc.Header {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dlmc.Header(nil), d.requests...)
}

// Connections returns how many connections were accepted so far.
func (d *Daemon) Connections() int { return int(d.conns.Load()) }

// LockspaceNames returns the names of the current lockspaces.
func (d *Daemon) LockspaceNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, ls := range d.Lockspaces {
		names = append(names, ls.Name)
	}
	return names
}

func (d *Daemon) serve(l *net.UnixListener, query bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		d.conns.Add(1)
		if !d.track(conn) {
			conn.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.untrack(conn)
			for {
				req, payload, err := dlmc.ReadMessage(conn)
				if err != nil {
					return
				}
				d.mu.Lock()
				d.requests = append(d.requests, req)
				d.mu.Unlock()
				if d.Hook == nil || !d.Hook(conn, req, payload) {
					d.handle(conn, req, query)
				}
				if query {
					return // one request per connection
				}
			}
		}()
	}
}

// track records an open connection; false once the daemon has stopped.
func (d *Daemon) track(conn *net.UnixConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.open == nil {
		d.open = map[*net.UnixConn]bool{}
	}
	d.open[conn] = true
	return true
}

func (d *Daemon) untrack(conn *net.UnixConn) {
	d.mu.Lock()
	delete(d.open, conn)
	d.mu.Unlock()
	conn.Close()
}

func reply(conn net.Conn, req dlmc.Header, data int32, payload []byte) {
	_ = dlmc.WriteMessage(conn, dlmc.Header{Command: req.Command, Name: req.Name, Data: data}, payload)
}

func errno(e syscall.Errno) int32 { return -int32(e) }

func (d *Daemon) handle(conn net.Conn, req dlmc.Header, query bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !query {
		d.handleCommand(conn, req)
		return
	}
	switch req.Command {
	case dlmc.DumpDebug:
		reply(conn, req, 0, []byte(d.Debug))
	case dlmc.DumpConfig:
		reply(conn, req, 0, []byte(d.Config))
	case dlmc.DumpLogPlock:
		reply(conn, dlmc.Header{Command: dlmc.DumpDebug}, 0, []byte(d.LogPlock))
	case dlmc.DumpPlocks:
		if d.find(req.Name) < 0 {
			reply(conn, req, errno(syscall.ENOENT), nil)
			return
		}
		reply(conn, req, 0, []byte(d.Plocks[req.Name]))
	case dlmc.DumpStatus:
		var b []byte
		for _, s := range d.Status {
			b = dlmc.AppendState(b, s)
		}
		_, _ = conn.Write(b)
	case dlmc.Lockspaces:
		var b []byte
		for _, ls := range d.Lockspaces {
			b = dlmc.AppendLockspace(b, ls.Lockspace)
		}
		reply(conn, req, int32(len(d.Lockspaces)), b)
	case dlmc.LockspaceInfo:
		i := d.find(req.Name)
		if i < 0 {
			reply(conn, req, errno(syscall.ENOENT), dlmc.AppendLockspace(nil, dlmc.Lockspace{}))
			return
		}
		reply(conn, req, 0, dlmc.AppendLockspace(nil, d.Lockspaces[i].Lockspace))
	case dlmc.NodeInfo:
		d.nodeInfo(conn, req)
	case dlmc.LockspaceNodes:
		d.lockspaceNodes(conn, req)
	default:
		// The reference closes the connection without a reply.
	}
}

func (d *Daemon) nodeInfo(conn net.Conn, req dlmc.Header) {
	i := d.find(req.Name)
	if i < 0 {
		reply(conn, req, errno(syscall.ENOENT), dlmc.AppendNode(nil, dlmc.Node{}))
		return
	}
	for _, n := range d.Lockspaces[i].All {
		if n.NodeID == req.Data {
			reply(conn, req, 0, dlmc.AppendNode(nil, n))
			return
		}
	}
	reply(conn, req, errno(syscall.ENOENT), dlmc.AppendNode(nil, dlmc.Node{}))
}

func (d *Daemon) lockspaceNodes(conn net.Conn, req dlmc.Header) {
	i := d.find(req.Name)
	if i < 0 {
		reply(conn, req, errno(syscall.ENOENT), nil)
		return
	}
	var nodes []dlmc.Node
	switch req.Option {
	case dlmc.NodesAll:
		nodes = d.Lockspaces[i].All
	case dlmc.NodesMembers:
		nodes = d.Lockspaces[i].Members
	case dlmc.NodesNext:
		nodes = d.Lockspaces[i].Next
	default:
		reply(conn, req, errno(syscall.EINVAL), nil)
		return
	}
	data := int32(len(nodes))
	if req.Data >= 0 && len(nodes) > int(req.Data) {
		nodes, data = nodes[:req.Data], errno(syscall.E2BIG)
	}
	var b []byte
	for _, n := range nodes {
		b = dlmc.AppendNode(b, n)
	}
	reply(conn, req, data, b)
}

func (d *Daemon) handleCommand(conn net.Conn, req dlmc.Header) {
	switch req.Command {
	case dlmc.Join, dlmc.Leave:
	default:
		reply(conn, req, errno(syscall.EOPNOTSUPP), nil)
		return
	}
	if d.JoinErrno != 0 {
		reply(conn, req, errno(d.JoinErrno), []byte(d.ErrText))
		return
	}
	i := d.find(req.Name)
	switch {
	case req.Command == dlmc.Join && i >= 0:
		reply(conn, req, errno(syscall.EEXIST), []byte("lockspace exists"))
	case req.Command == dlmc.Join:
		d.Lockspaces = append(d.Lockspaces, Lockspace{Lockspace: dlmc.Lockspace{Name: req.Name}})
		reply(conn, req, 0, nil)
	case i < 0:
		reply(conn, req, errno(syscall.ENOENT), nil)
	default:
		d.Lockspaces = append(d.Lockspaces[:i], d.Lockspaces[i+1:]...)
		reply(conn, req, 0, nil)
	}
}

func (d *Daemon) find(name string) int {
	for i, ls := range d.Lockspaces {
		if ls.Name == name {
			return i
		}
	}
	return -1
}
