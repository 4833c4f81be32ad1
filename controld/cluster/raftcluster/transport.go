package raftcluster

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Transport timings.
const (
	dialTimeout      = 3 * time.Second
	handshakeTimeout = 5 * time.Second
	writeTimeout     = 10 * time.Second
	flushTimeout     = 200 * time.Millisecond // sending what is queued at Close
	minBackoff       = 50 * time.Millisecond
	maxBackoff       = 2 * time.Second
	peerQueueLen     = 1024
)

// transport carries consensus messages between the nodes over TCP: one
// connection per peer and direction. A sender goroutine per peer dials
// it (from this node's configured address, so the peer can check it),
// reconnects with backoff, and writes the frames queued for it. The
// accept loop serves incoming connections, one reader goroutine each,
// and hands the messages to the Core's goroutine. Enqueueing never
// blocks: a full queue drops the message, and so does a peer that
// cannot be reached; the consensus retransmits.
type transport struct {
	self     int
	selfAddr netip.Addr
	cluster  string
	key      []byte
	peers    map[int]*peer
	addrs    map[netip.Addr][]int // configured address -> node ids
	ln       net.Listener
	log      *slog.Logger
	deliver  func(*raftpb.Message) bool // false: stopping
	ctx      context.Context            // cancelled at stop
	wg       *sync.WaitGroup            // the accept loop and the readers
	senders  sync.WaitGroup             // the sender of each peer

	mu      sync.Mutex
	stopped bool
	conns   map[net.Conn]bool // every open connection
	inbound map[int]net.Conn  // the current incoming connection of each peer
	refused map[string]bool   // warnings already logged at Warn (warnOnce), at most maxWarnings
}

// maxWarnings bounds the warnings warnOnce remembers: refused
// connections come from outside, and each new address or reason adds
// one. When the bound is reached the memory starts afresh, so a flood
// of refusals costs a repeated warning now and then, never memory.
const maxWarnings = 256

// peer is the sending side of one configured peer.
type peer struct {
	id        int
	addrs     []netip.AddrPort
	queue     chan []byte
	connected atomic.Bool
	addrIdx   atomic.Int32 // address in use or tried last
	dropped   atomic.Uint64
}

func (p *peer) addr() string { return p.addrs[int(p.addrIdx.Load())%len(p.addrs)].String() }

// enqueue queues a frame payload, or drops it when the queue is full.
func (p *peer) enqueue(b []byte) {
	select {
	case p.queue <- b:
	default:
		p.dropped.Add(1)
	}
}

// track registers a connection to close at stop; false when stopping.
func (t *transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.conns[c] = true
	return true
}

func (t *transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	for id, ic := range t.inbound {
		if ic == c {
			delete(t.inbound, id)
		}
	}
	t.mu.Unlock()
	c.Close()
}

// close stops accepting and closes every connection; the goroutines
// then end.
func (t *transport) close() {
	t.mu.Lock()
	t.stopped = true
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.ln.Close()
	for _, c := range conns {
		c.Close()
	}
}

// warnOnce logs at Warn the first time a message is seen for key, at
// Debug after: a misconfigured peer retries every few seconds.
func (t *transport) warnOnce(key, msg string, args ...any) {
	t.mu.Lock()
	seen := t.refused[key]
	if !seen && len(t.refused) >= maxWarnings {
		clear(t.refused)
	}
	t.refused[key] = true
	t.mu.Unlock()
	level := slog.LevelWarn
	if seen {
		level = slog.LevelDebug
	}
	t.log.Log(context.Background(), level, msg, args...)
}

func (t *transport) forgetWarnings(prefix string) {
	t.mu.Lock()
	for k := range t.refused {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(t.refused, k)
		}
	}
	t.mu.Unlock()
}

// sendLoop connects to p and writes its queue, until stop.
func (t *transport) sendLoop(p *peer) {
	defer t.senders.Done()
	backoff := minBackoff
	for t.ctx.Err() == nil {
		conn, fc, err := t.dial(p)
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.warnOnce(fmt.Sprintf("out %d %s", p.id, errorClass(err)), "cannot connect to peer", "peer", p.id, "addr", p.addr(), "err", err)
			p.addrIdx.Add(1)
			t.discard(p)
			select {
			case <-time.After(backoff):
			case <-t.ctx.Done():
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		t.forgetWarnings(fmt.Sprintf("out %d ", p.id))
		p.connected.Store(true)
		t.log.Info("connected to peer", "peer", p.id, "addr", p.addr())
		err = t.write(p, conn, fc)
		p.connected.Store(false)
		t.untrack(conn)
		if t.ctx.Err() != nil {
			return
		}
		t.log.Info("lost connection to peer", "peer", p.id, "err", err)
	}
}

// discard empties p's queue: messages to an unreachable peer are stale
// by the time it is back.
func (t *transport) discard(p *peer) {
	for {
		select {
		case <-p.queue:
			p.dropped.Add(1)
		default:
			return
		}
	}
}

// write sends p's queue on conn until an error or stop; at stop it
// sends what is queued, briefly, so a Leave reaches the others.
func (t *transport) write(p *peer, conn net.Conn, fc *frameConn) error {
	for {
		select {
		case b := <-p.queue:
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := fc.writeFrame(b); err != nil {
				return err
			}
		case <-t.ctx.Done():
			conn.SetWriteDeadline(time.Now().Add(flushTimeout))
			for {
				select {
				case b := <-p.queue:
					if err := fc.writeFrame(b); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		}
	}
}

// dial connects to p and runs the dialer's side of the handshake.
func (t *transport) dial(p *peer) (net.Conn, *frameConn, error) {
	addr := p.addrs[int(p.addrIdx.Load())%len(p.addrs)]
	d := net.Dialer{Timeout: dialTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(t.selfAddr, 0))}
	conn, err := d.DialContext(t.ctx, "tcp", addr.String())
	if err != nil {
		return nil, nil, err
	}
	if !t.track(conn) {
		conn.Close()
		return nil, nil, net.ErrClosed
	}
	// Stopping interrupts the handshake; afterwards write handles it.
	unwatch := context.AfterFunc(t.ctx, func() { conn.Close() })
	session, err := t.dialHandshake(conn, p.id)
	if !unwatch() {
		err = net.ErrClosed
	}
	if err != nil {
		t.untrack(conn)
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, &frameConn{rw: conn, key: session}, nil
}

func (t *transport) dialHandshake(conn net.Conn, to int) ([]byte, error) {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	fc := &frameConn{rw: conn, max: maxHandshake}
	h := hello{Keyed: t.key != nil, From: t.self, To: to, Cluster: t.cluster}
	rand.Read(h.Nonce[:])
	if err := fc.writeFrame(h.encode()); err != nil {
		return nil, err
	}
	rep, err := readReply(fc)
	if err != nil {
		return nil, err
	}
	var session []byte
	if rep.Kind == replyChallenge {
		if t.key == nil {
			return nil, fmt.Errorf("peer %d demands a cluster key and this node has none: %w", to, ErrAuth)
		}
		tr := transcript(t.cluster, t.self, to, h.Nonce, rep.Nonce)
		want := acceptorProof(t.key, tr)
		// Send our proof even when the peer's is wrong, so it can
		// log the refusal too.
		if err := fc.writeFrame(reply{Kind: replyProof, Proof: dialerProof(t.key, tr)}.encode()); err != nil {
			return nil, err
		}
		if !hmac.Equal(rep.Proof[:], want[:]) {
			return nil, fmt.Errorf("peer %d does not know this cluster key (a wrong key on one side?): %w", to, ErrAuth)
		}
		if rep, err = readReply(fc); err != nil {
			return nil, err
		}
		session = sessionKey(t.key, tr)
	}
	switch rep.Kind {
	case replyAccepted:
		if t.key != nil && session == nil {
			return nil, fmt.Errorf("peer %d accepted without proving the cluster key: %w", to, ErrAuth)
		}
		return session, nil
	case replyRefused:
		return nil, fmt.Errorf("peer %d refused the connection: %s: %w", to, rep.Reason, ErrRefused)
	}
	return nil, fmt.Errorf("peer %d: unexpected handshake reply %d: %w", to, rep.Kind, ErrMalformed)
}

func readReply(fc *frameConn) (reply, error) {
	b, err := fc.readFrame()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return reply{}, fmt.Errorf("peer closed the connection during the handshake: %w", ErrRefused)
		}
		return reply{}, err
	}
	return decodeReply(b)
}

// acceptLoop serves incoming connections until the listener closes.
func (t *transport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("accepting a cluster connection", "err", err)
			select {
			case <-time.After(minBackoff):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		if !t.track(conn) {
			conn.Close()
			return
		}
		t.wg.Add(1)
		go t.serve(conn)
	}
}

// serve runs the acceptor's side of the handshake on conn and then
// reads consensus messages from it.
func (t *transport) serve(conn net.Conn) {
	defer t.wg.Done()
	defer t.untrack(conn)
	remote := remoteAddr(conn)
	ids := t.addrs[remote]
	if len(ids) == 0 {
		t.warnOnce("in addr "+remote.String(), "refused cluster connection from an address not in the configuration", "remote", conn.RemoteAddr().String())
		return
	}
	from, session, err := t.acceptHandshake(conn, remote, ids)
	if err != nil {
		t.warnOnce(fmt.Sprintf("in %s %s", remote, errorClass(err)), "refused cluster connection", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	conn.SetDeadline(time.Time{})
	t.mu.Lock()
	old := t.inbound[from]
	t.inbound[from] = conn
	t.mu.Unlock()
	if old != nil {
		old.Close() // the peer reconnected
	}
	t.forgetWarnings("in " + remote.String() + " ")
	t.log.Debug("accepted connection from peer", "peer", from, "remote", conn.RemoteAddr().String())
	fc := &frameConn{rw: struct {
		io.Reader
		io.Writer
	}{bufio.NewReader(conn), conn}, key: session, max: MaxFrameSize}
	for {
		b, err := fc.readFrame()
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Warn("dropping connection from peer", "peer", from, "err", err)
			}
			return
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(b, m); err != nil {
			t.log.Warn("dropping connection from peer: undecodable message", "peer", from, "err", err)
			return
		}
		// The connection speaks for the node it authenticated as and
		// for no other, proposals included: a node forwards no
		// proposal of a third one (see Core.checkProposal), so a
		// message that claims another sender is forged.
		if m.GetFrom() != uint64(from) {
			t.warnOnce(fmt.Sprintf("in %d claims %d", from, m.GetFrom()), "dropping a message from peer that claims another sender", "peer", from, "claimed", m.GetFrom(), "type", m.GetType())
			continue
		}
		if !t.deliver(m) {
			return
		}
	}
}

func (t *transport) acceptHandshake(conn net.Conn, remote netip.Addr, ids []int) (int, []byte, error) {
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	fc := &frameConn{rw: conn, max: maxHandshake}
	b, err := fc.readFrame()
	if err != nil {
		return 0, nil, fmt.Errorf("reading the hello: %w", err)
	}
	h, err := decodeHello(b)
	if err != nil {
		return 0, nil, err
	}
	refuse := func(err error) (int, []byte, error) {
		fc.writeFrame(reply{Kind: replyRefused, Reason: err.Error()}.encode())
		return 0, nil, fmt.Errorf("node %d: %w", h.From, err)
	}
	switch {
	case h.To != t.self:
		return refuse(fmt.Errorf("addressed to node %d, this is node %d: %w", h.To, t.self, ErrRefused))
	case !slices.Contains(ids, h.From):
		return refuse(fmt.Errorf("address %s is not configured for node %d: %w", remote, h.From, ErrRefused))
	case h.Cluster != t.cluster:
		return refuse(fmt.Errorf("cluster %q, this is cluster %q: %w", h.Cluster, t.cluster, ErrRefused))
	case h.Keyed && t.key == nil:
		return refuse(fmt.Errorf("peer uses a cluster key, this node has none: %w", ErrAuth))
	case !h.Keyed && t.key != nil:
		return refuse(fmt.Errorf("this node requires the cluster key, the peer has none: %w", ErrAuth))
	}
	var session []byte
	if t.key != nil {
		ch := reply{Kind: replyChallenge}
		rand.Read(ch.Nonce[:])
		tr := transcript(t.cluster, h.From, t.self, h.Nonce, ch.Nonce)
		ch.Proof = acceptorProof(t.key, tr)
		if err := fc.writeFrame(ch.encode()); err != nil {
			return 0, nil, err
		}
		p, err := readReply(fc)
		if err != nil {
			return 0, nil, fmt.Errorf("node %d: reading its proof: %w", h.From, err)
		}
		want := dialerProof(t.key, tr)
		if p.Kind != replyProof || !hmac.Equal(p.Proof[:], want[:]) {
			return refuse(fmt.Errorf("wrong cluster key: %w", ErrAuth))
		}
		session = sessionKey(t.key, tr)
	}
	if err := fc.writeFrame(reply{Kind: replyAccepted}.encode()); err != nil {
		return 0, nil, err
	}
	return h.From, session, nil
}

// errorClass is what tells connection errors apart for warnOnce: the
// text of a handshake's refusal, or only the operation of a network
// error, whose text names the ports of the connection, new with every
// attempt.
func errorClass(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return "net " + op.Op
	}
	return err.Error()
}

// remoteAddr is the IP address a connection comes from.
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
