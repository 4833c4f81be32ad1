package raftcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Options configure a Node.
type Options struct {
	// Core configures the consensus node. Start fills in TickInterval,
	// Voters when empty (this node and the Peers), and Storage from
	// StateDir.
	Core Config
	// Tick is the interval of Core ticks (default 100ms); every
	// timeout of the Core is a number of ticks.
	Tick time.Duration
	// Listen is this node's address and cluster port. Its address is
	// also the source address of the connections it makes, which the
	// peers check, so it must be a specific address.
	Listen netip.AddrPort
	// Listener, when set, is used instead of listening on Listen (for
	// tests and socket activation); Listen still gives the source
	// address.
	Listener net.Listener
	// Peers lists every other configured node with its addresses.
	Peers map[int][]netip.AddrPort
	// ClusterName must be the same on every node.
	ClusterName string
	// Key is the shared cluster key (MinKeySize to MaxKeySize bytes,
	// see LoadKey). It is required when there are peers: without it
	// any local process could bind a peer's address and speak for it.
	// A one-node cluster needs none.
	Key []byte
	// StateDir keeps the consensus state across restarts; "" keeps it
	// in memory (or in Core.Storage, when set).
	StateDir string

	// allowNoKey lets this package's tests run peers without a key.
	allowNoKey bool
}

// DefaultTick is the default Options.Tick.
const DefaultTick = 100 * time.Millisecond

// Node is the embedded cluster layer: a Core driven by one goroutine
// with a real clock and a TCP transport. It implements cluster.Cluster.
type Node struct {
	core   *Core
	log    *slog.Logger
	tick   time.Duration
	tr     *transport
	events chan cluster.Event
	evq    *eventQueue
	inbox  chan *raftpb.Message
	reqs   chan func()
	stop   chan struct{}      // closed by Close
	done   chan struct{}      // closed when the Core's goroutine ended
	cancel context.CancelFunc // the transport's context
	wg     sync.WaitGroup

	waiting map[uint64]*call // owned by the Core's goroutine

	mu      sync.Mutex
	status  cluster.Status // as of the last Process
	cause   error          // why the Core's goroutine ended early
	closing atomic.Bool
	quorate atomic.Bool
	epoch   atomic.Uint64 // counts changes to quorate

	closeOnce sync.Once
	closeErr  error
}

var _ cluster.Cluster = (*Node)(nil)

// call is a Broadcast or Leave waiting for its Result.
type call struct {
	id  uint64
	res chan error // buffered
}

// Start starts a Node: it listens, connects to the peers and starts the
// Core's goroutine. The node joins the cluster as soon as it is part of
// a quorate partition.
func Start(o Options) (*Node, error) {
	if o.Tick == 0 {
		o.Tick = DefaultTick
	}
	cfg := o.Core
	switch {
	case o.Tick < 0:
		return nil, fmt.Errorf("tick %v: %w", o.Tick, ErrConfig)
	case !o.Listen.IsValid() || o.Listen.Addr().IsUnspecified():
		return nil, fmt.Errorf("listen address %v: need this node's own address: %w", o.Listen, ErrConfig)
	case o.Key != nil && (len(o.Key) < MinKeySize || len(o.Key) > MaxKeySize):
		return nil, fmt.Errorf("cluster key of %d bytes (need %d to %d): %w", len(o.Key), MinKeySize, MaxKeySize, ErrConfig)
	case o.Key == nil && len(o.Peers) > 0 && !o.allowNoKey:
		return nil, fmt.Errorf("a cluster of more than one node needs a cluster key to authenticate its peers: %w", ErrConfig)
	case len(o.ClusterName) > maxClusterName:
		return nil, fmt.Errorf("cluster name longer than %d bytes: %w", maxClusterName, ErrConfig)
	}
	voters := []int{cfg.Self.ID}
	addrs := map[netip.Addr][]int{}
	for id, as := range o.Peers {
		if id == cfg.Self.ID {
			return nil, fmt.Errorf("peers list this node %d: %w", id, ErrConfig)
		}
		if len(as) == 0 {
			return nil, fmt.Errorf("peer %d has no address: %w", id, ErrConfig)
		}
		voters = append(voters, id)
		for _, a := range as {
			if !a.IsValid() {
				return nil, fmt.Errorf("peer %d: invalid address: %w", id, ErrConfig)
			}
			ip := a.Addr().Unmap()
			if !slices.Contains(addrs[ip], id) {
				addrs[ip] = append(addrs[ip], id)
			}
		}
	}
	slices.Sort(voters)
	if len(cfg.Voters) == 0 {
		cfg.Voters = voters
	} else if !slices.Equal(slices.Sorted(slices.Values(cfg.Voters)), voters) {
		return nil, fmt.Errorf("voters %v differ from this node and its peers %v: %w", cfg.Voters, voters, ErrConfig)
	}
	if o.StateDir != "" {
		if cfg.Storage != nil {
			return nil, fmt.Errorf("both a state directory and a Persister: %w", ErrConfig)
		}
		p, err := NewFilePersister(o.StateDir)
		if err != nil {
			return nil, err
		}
		cfg.Storage = p
	}
	cfg.TickInterval = o.Tick
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	cfg.Logger = log
	core, err := NewCore(cfg)
	if err != nil {
		return nil, err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen.String()); err != nil {
			return nil, fmt.Errorf("cluster port: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		core:    core,
		log:     log.With("node", cfg.Self.ID),
		tick:    o.Tick,
		events:  make(chan cluster.Event),
		evq:     newEventQueue(),
		inbox:   make(chan *raftpb.Message, 1024),
		reqs:    make(chan func(), 64),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		cancel:  cancel,
		waiting: map[uint64]*call{},
	}
	n.tr = &transport{
		self:     cfg.Self.ID,
		selfAddr: o.Listen.Addr().Unmap(),
		cluster:  o.ClusterName,
		key:      slices.Clone(o.Key),
		peers:    map[int]*peer{},
		addrs:    addrs,
		ln:       ln,
		log:      n.log,
		deliver:  n.deliver,
		ctx:      ctx,
		wg:       &n.wg,
		conns:    map[net.Conn]bool{},
		inbound:  map[int]net.Conn{},
		refused:  map[string]bool{},
	}
	for _, id := range slices.Sorted(maps.Keys(o.Peers)) {
		n.tr.peers[id] = &peer{id: id, addrs: slices.Clone(o.Peers[id]), queue: make(chan []byte, peerQueueLen)}
	}
	n.status = core.Status()
	n.handle(core.Process())
	// From here on only the Core's goroutine touches the Core.
	n.log.Info("cluster node started", "self", n.status.Self, "listen", ln.Addr().String(), "voters", cfg.Voters, "authenticated", o.Key != nil)
	n.wg.Add(3)
	go n.run()
	go func() {
		defer n.wg.Done()
		n.evq.feed(n.events, n.done, n.stop)
	}()
	go n.tr.acceptLoop()
	n.tr.senders.Add(len(n.tr.peers))
	for _, p := range n.tr.peers {
		go n.tr.sendLoop(p)
	}
	return n, nil
}

// deliver hands a message from the network to the Core's goroutine.
func (n *Node) deliver(m *raftpb.Message) bool {
	select {
	case n.inbox <- m:
		return true
	case <-n.done:
		return false
	}
}

// run is the Core's goroutine: it owns the Core and the waiting calls.
func (n *Node) run() {
	defer n.wg.Done()
	defer close(n.done)
	t := time.NewTicker(n.tick)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			n.finishWaiting(fmt.Errorf("raftcluster: %w", cluster.ErrClosed))
			return
		case <-t.C:
			n.core.Tick()
		case m := <-n.inbox:
			if err := n.core.Step(m); err != nil {
				level := slog.LevelDebug
				if errors.Is(err, ErrBadMessage) {
					level = slog.LevelWarn
				}
				n.log.Log(context.Background(), level, "message not taken", "err", err)
			}
		case f := <-n.reqs:
			f()
		}
		if !n.handle(n.core.Process()) {
			return
		}
	}
}

// handle acts on an Output; false when the Core failed.
func (n *Node) handle(out Output) bool {
	for _, m := range out.Messages {
		p := n.tr.peers[int(m.GetTo())]
		if p == nil {
			continue
		}
		b, err := proto.Marshal(m)
		if err == nil && len(b) > MaxFrameSize {
			err = fmt.Errorf("%s of %d bytes: %w", m.GetType(), len(b), ErrTooLarge)
		}
		if err != nil {
			n.log.Error("cannot send a consensus message", "peer", p.id, "err", err)
			continue
		}
		p.enqueue(b)
	}
	for _, e := range out.Events {
		if q, ok := e.(*cluster.Quorum); ok {
			n.quorate.Store(q.Quorate)
			if q.Quorate {
				n.epoch.Add(1)
			}
		}
	}
	n.evq.push(out.Events...)
	for _, d := range out.Done {
		if c := n.waiting[d.ID]; c != nil {
			c.res <- d.Err
			delete(n.waiting, d.ID)
		}
	}
	st := n.core.Status()
	n.mu.Lock()
	n.status = st
	if out.Err != nil {
		n.cause = out.Err
	}
	n.mu.Unlock()
	if out.Err != nil {
		n.log.Error("cluster layer failed", "err", out.Err)
		n.finishWaiting(fmt.Errorf("raftcluster: %w: %w", cluster.ErrClosed, out.Err))
		return false
	}
	return true
}

func (n *Node) finishWaiting(err error) {
	for id, c := range n.waiting {
		c.res <- err
		delete(n.waiting, id)
	}
}

// closedErr is the error for a call on a Node that stopped.
func (n *Node) closedErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cause != nil {
		return fmt.Errorf("raftcluster: %w: %w", cluster.ErrClosed, n.cause)
	}
	return fmt.Errorf("raftcluster: %w", cluster.ErrClosed)
}

// submit runs f on the Core's goroutine.
func (n *Node) submit(ctx context.Context, f func()) error {
	select {
	case n.reqs <- f:
		return nil
	case <-n.done:
		return n.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events implements cluster.Cluster. The channel is fed from an
// unbounded queue, so a slow reader never holds up the consensus. It is
// closed when the Node stops: at Close (events not read by then are
// dropped) or, after the remaining events, when the Core failed.
func (n *Node) Events() <-chan cluster.Event { return n.events }

// Broadcast implements cluster.Cluster. When ctx ends first, the error
// wraps cluster.ErrNoQuorum too if the node was not quorate when called
// and did not become quorate since; the broadcast is withdrawn if it was
// still queued, or else may still be applied.
func (n *Node) Broadcast(ctx context.Context, data []byte) error {
	if n.closing.Load() {
		return n.closedErr()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("raftcluster: broadcast: %w", err)
	}
	wasQuorate, epoch := n.quorate.Load(), n.epoch.Load()
	c := &call{res: make(chan error, 1)}
	data = slices.Clone(data)
	if err := n.submit(ctx, func() {
		c.id = n.core.Broadcast(data)
		n.waiting[c.id] = c
	}); err != nil {
		return n.broadcastErr(err, wasQuorate, epoch)
	}
	select {
	case err := <-c.res:
		if err != nil {
			return fmt.Errorf("raftcluster: broadcast: %w", err)
		}
		return nil
	case <-ctx.Done():
		select {
		case n.reqs <- func() {
			if n.core.Cancel(c.id) {
				delete(n.waiting, c.id)
			}
		}:
		default: // the call stays waiting; its result goes to the buffer
		}
		return n.broadcastErr(ctx.Err(), wasQuorate, epoch)
	case <-n.done:
		return n.closedErr()
	}
}

func (n *Node) broadcastErr(err error, wasQuorate bool, epoch uint64) error {
	if errors.Is(err, cluster.ErrClosed) {
		return err
	}
	if !wasQuorate && n.epoch.Load() == epoch {
		return fmt.Errorf("raftcluster: broadcast: %w: %w", cluster.ErrNoQuorum, err)
	}
	return fmt.Errorf("raftcluster: broadcast: %w", err)
}

// Status implements cluster.Status: the Core's view as of its last
// step, with the transport's connection state.
func (n *Node) Status() cluster.Status {
	n.mu.Lock()
	st := n.status
	n.mu.Unlock()
	st.Voters = slices.Clone(st.Voters)
	st.Members = slices.Clone(st.Members)
	st.Peers = slices.Clone(st.Peers)
	for i := range st.Peers {
		if p := n.tr.peers[st.Peers[i].ID]; p != nil {
			st.Peers[i].Addr = p.addr()
			st.Peers[i].Connected = p.connected.Load()
		}
	}
	return st
}

// Close implements cluster.Cluster: it proposes this node's Leave and
// waits until it was applied, or ctx ends, or the Core failed; then it
// stops every goroutine and closes every connection. It returns nil when
// the node left cleanly. Calls after the first return its result.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		err := n.leave(ctx)
		n.shutdown()
		if err != nil {
			n.closeErr = fmt.Errorf("raftcluster: leaving the cluster: %w", err)
		}
		n.log.Info("cluster node stopped", "left_cleanly", err == nil)
	})
	return n.closeErr
}

func (n *Node) leave(ctx context.Context) error {
	c := &call{res: make(chan error, 1)}
	if err := n.submit(ctx, func() {
		c.id = n.core.Leave()
		n.waiting[c.id] = c
	}); err != nil {
		return err
	}
	select {
	case err := <-c.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.closedErr()
	}
}

// shutdown stops in order: the Core's goroutine finishes its step; the
// senders send what it queued (briefly) and stop; then the listener and
// every connection close, which ends the readers.
func (n *Node) shutdown() {
	close(n.stop)
	<-n.done
	n.cancel()
	n.tr.senders.Wait()
	n.tr.close()
	n.wg.Wait()
}
