package raftcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/internal/testenv"
)

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if os.Getenv("RAFTCLUSTER_LOG") != "" {
		os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testNode is a Node with its log and the events it delivered.
type testNode struct {
	*Node
	id   int
	inc  uint64
	logs *syncBuffer

	mu     sync.Mutex
	events []cluster.Event
	closed chan struct{} // Events() was closed
}

func (n *testNode) collect() {
	defer close(n.closed)
	for e := range n.Events() {
		n.mu.Lock()
		n.events = append(n.events, e)
		n.mu.Unlock()
	}
}

func (n *testNode) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ms []string
	for _, e := range n.events {
		if m, ok := e.(*cluster.Message); ok {
			ms = append(ms, fmt.Sprintf("%d %v %s", m.Seq, m.From, m.Data))
		}
	}
	return ms
}

func (n *testNode) sawLeft(m cluster.Member) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.events {
		if v, ok := e.(*cluster.View); ok && slices.Contains(v.Left, m) {
			return true
		}
	}
	return false
}

// listeners opens a listener on 127.0.0.id for each id, on a free port.
func listeners(t *testing.T, ids ...int) map[int]net.Listener {
	t.Helper()
	lns := map[int]net.Listener{}
	for _, id := range ids {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", id))
		if err != nil {
			testenv.Missing(t, "cannot listen on 127.0.0.%d (loopback network needed): %v", id, err)
		}
		lns[id] = ln
	}
	return lns
}

func addrOf(ln net.Listener) netip.AddrPort { return ln.Addr().(*net.TCPAddr).AddrPort() }

// testKey is the cluster key of the test nodes that are given none.
var testKey = []byte("0123456789abcdef-test-cluster-key")

// noKey, as a node's key, starts it without any key.
var noKey = []byte("(no key)")

// startNodes starts one node per listener; keys gives each node's key
// (testKey when nil).
func startNodes(t *testing.T, lns map[int]net.Listener, keys map[int][]byte) map[int]*testNode {
	t.Helper()
	nodes := map[int]*testNode{}
	for id, ln := range lns {
		peers := map[int][]netip.AddrPort{}
		for other, oln := range lns {
			if other != id {
				peers[other] = []netip.AddrPort{addrOf(oln)}
			}
		}
		nodes[id] = startNode(t, id, ln, peers, keys[id], Config{})
	}
	return nodes
}

func startNode(t *testing.T, id int, ln net.Listener, peers map[int][]netip.AddrPort, key []byte, cfg Config) *testNode {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Self = cluster.Member{ID: id, Incarnation: uint64(time.Now().UnixNano())}
	if cfg.SM == nil {
		cfg.SM = &testSM{}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o := Options{
		Core:        cfg,
		Tick:        10 * time.Millisecond,
		Listen:      addrOf(ln),
		Listener:    ln,
		Peers:       peers,
		ClusterName: "test",
		Key:         key,
	}
	switch {
	case key == nil:
		o.Key = testKey
	case bytes.Equal(key, noKey):
		o.Key, o.allowNoKey = nil, true
	}
	n, err := Start(o)
	if err != nil {
		t.Fatalf("Start(%d): %v", id, err)
	}
	tn := &testNode{Node: n, id: id, inc: cfg.Self.Incarnation, logs: logs, closed: make(chan struct{})}
	go tn.collect()
	return tn
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noLeaks checks that the goroutine count falls back to base.
func noLeaks(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func formed(nodes map[int]*testNode, ids ...int) func() bool {
	return func() bool {
		for _, id := range ids {
			st := nodes[id].Status()
			if !st.Quorate || len(st.Members) != len(ids) {
				return false
			}
		}
		return true
	}
}

func TestNodeCluster(t *testing.T) {
	base := runtime.NumGoroutine()
	nodes := startNodes(t, listeners(t, 1, 2, 3), nil)
	eventually(t, "the cluster formed", formed(nodes, 1, 2, 3))

	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			for i := range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := n.Broadcast(ctx, fmt.Appendf(nil, "%d-%d", n.id, i))
				cancel()
				if err != nil {
					t.Errorf("node %d broadcast %d: %v", n.id, i, err)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, "every node delivered 15 messages", func() bool {
		for _, n := range nodes {
			if len(n.messages()) != 15 {
				return false
			}
		}
		return true
	})
	for _, id := range []int{2, 3} {
		if diff := cmp.Diff(nodes[1].messages(), nodes[id].messages()); diff != "" {
			t.Errorf("order differs between node 1 and node %d (-1 +%d):\n%s", id, id, diff)
		}
	}
	// The leader hears from everyone (followers only from the leader).
	var lead int
	eventually(t, "a leader is known", func() bool { lead = nodes[1].Status().Leader; return lead != 0 })
	st := nodes[lead].Status()
	if len(st.Peers) != 2 || st.Protocol != "raft" || st.Timeout != 10*DefaultFailTicks*time.Millisecond || st.Leader != st.Self.ID {
		t.Errorf("status %+v", st)
	}
	for _, p := range st.Peers {
		if !p.Connected || p.LastHeard < 0 || !strings.HasPrefix(p.Addr, fmt.Sprintf("127.0.0.%d:", p.ID)) {
			t.Errorf("peer %+v", p)
		}
	}

	// Node 3 leaves cleanly: the others see Left.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[3].Close(ctx); err != nil {
		t.Fatalf("Close(3): %v", err)
	}
	me3 := cluster.Member{ID: 3, Incarnation: nodes[3].inc}
	eventually(t, "nodes 1 and 2 saw node 3 leave", func() bool { return nodes[1].sawLeft(me3) && nodes[2].sawLeft(me3) })
	if err := nodes[3].Broadcast(ctx, []byte("late")); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Broadcast after Close: %v, want ErrClosed", err)
	}
	<-nodes[3].closed

	// Two of three voters still make a quorum.
	if err := nodes[2].Close(ctx); err != nil {
		t.Fatalf("Close(2): %v", err)
	}
	// The last one cannot leave without a quorum, and still stops.
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := nodes[1].Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close of the last node: %v, want a deadline error", err)
	}
	for _, n := range nodes {
		<-n.closed
	}
	noLeaks(t, base)
}

func TestNodeBroadcastNoQuorum(t *testing.T) {
	base := runtime.NumGoroutine()
	lns := listeners(t, 1)
	peers := map[int][]netip.AddrPort{2: {netip.MustParseAddrPort("127.0.0.2:1")}, 3: {netip.MustParseAddrPort("127.0.0.3:1")}}
	n := startNode(t, 1, lns[1], peers, nil, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := n.Broadcast(ctx, []byte("alone"))
	if !errors.Is(err, cluster.ErrNoQuorum) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Broadcast without quorum: %v, want ErrNoQuorum and DeadlineExceeded", err)
	}
	if n.Status().Quorate {
		t.Error("a lone node of three says quorate")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if err := n.Close(short); err == nil {
		t.Error("Close without quorum: no error")
	}
	if err := n.Close(short); err == nil {
		t.Error("second Close: no error, want the first one's")
	}
	<-n.closed
	noLeaks(t, base)
}

func TestNodeWrongKey(t *testing.T) {
	base := runtime.NumGoroutine()
	good := []byte("0123456789abcdef-cluster-key")
	bad := []byte("0123456789abcdef-another-key")
	nodes := startNodes(t, listeners(t, 1, 2, 3), map[int][]byte{1: good, 2: good, 3: bad})
	eventually(t, "nodes 1 and 2 formed", formed(nodes, 1, 2))
	eventually(t, "both sides logged the refusal", func() bool {
		return strings.Contains(nodes[1].logs.String(), "wrong cluster key") &&
			strings.Contains(nodes[3].logs.String(), "does not know this cluster key")
	})
	time.Sleep(200 * time.Millisecond)
	st := nodes[3].Status()
	if st.Quorate || len(st.Members) != 0 {
		t.Errorf("node 3 with the wrong key: quorate %v, members %v", st.Quorate, st.Members)
	}
	for _, p := range st.Peers {
		if p.Connected || p.LastHeard >= 0 {
			t.Errorf("node 3 peer %+v: connected or heard", p)
		}
	}
	for _, id := range []int{1, 2} {
		for _, p := range nodes[id].Status().Peers {
			if p.ID == 3 && (p.Connected || p.LastHeard >= 0) {
				t.Errorf("node %d peer 3: %+v", id, p)
			}
		}
	}
	// The authenticated pair works.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[1].Broadcast(ctx, []byte("signed")); err != nil {
		t.Errorf("broadcast between nodes with the key: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	for _, id := range []int{3, 1, 2} {
		nodes[id].Close(short)
	}
	noLeaks(t, base)
}

func TestNodeRefusesStrangers(t *testing.T) {
	base := runtime.NumGoroutine()
	lns := listeners(t, 1, 2)
	key := []byte("0123456789abcdef-cluster-key")
	n := startNode(t, 1, lns[1], map[int][]netip.AddrPort{2: {addrOf(lns[2])}}, key, Config{})
	lns[2].Close() // node 2 is configured, not running
	target := lns[1].Addr().String()

	dialFrom := func(ip string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	handshake := func(c net.Conn, h hello) (reply, error) {
		fc := &frameConn{rw: c, max: maxHandshake}
		if err := fc.writeFrame(h.encode()); err != nil {
			return reply{}, err
		}
		return readReply(fc)
	}

	t.Run("unknown address", func(t *testing.T) {
		c := dialFrom("127.0.0.9")
		defer c.Close()
		// Closed before anything is read or written.
		if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
			t.Errorf("read %q, %v; want a plain close", b, err)
		}
		eventually(t, "the refusal was logged", func() bool {
			return strings.Contains(n.logs.String(), "address not in the configuration") && strings.Contains(n.logs.String(), "127.0.0.9")
		})
	})
	for _, tc := range []struct {
		name string
		h    hello
		want string
	}{
		{"address of another node", hello{Keyed: true, From: 3, To: 1, Cluster: "test"}, "not configured for node 3"},
		{"wrong addressee", hello{Keyed: true, From: 2, To: 5, Cluster: "test"}, "addressed to node 5"},
		{"wrong cluster", hello{Keyed: true, From: 2, To: 1, Cluster: "other"}, `cluster "other"`},
		{"no key", hello{From: 2, To: 1, Cluster: "test"}, "requires the cluster key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom("127.0.0.2")
			defer c.Close()
			rep, err := handshake(c, tc.h)
			if err != nil || rep.Kind != replyRefused || !strings.Contains(rep.Reason, tc.want) {
				t.Errorf("reply %+v, %v; want refused: %q", rep, err, tc.want)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		c := dialFrom("127.0.0.2")
		defer c.Close()
		rep, err := handshake(c, hello{Keyed: true, From: 2, To: 1, Cluster: "test"})
		if err != nil || rep.Kind != replyChallenge {
			t.Fatalf("reply %+v, %v; want a challenge", rep, err)
		}
		fc := &frameConn{rw: c, max: maxHandshake}
		if err := fc.writeFrame(reply{Kind: replyProof}.encode()); err != nil {
			t.Fatal(err)
		}
		if rep, err := readReply(fc); err != nil || rep.Kind != replyRefused || !strings.Contains(rep.Reason, "wrong cluster key") {
			t.Errorf("verdict %+v, %v; want refused for the key", rep, err)
		}
	})
	if st := n.Status(); st.Peers[0].LastHeard >= 0 {
		t.Errorf("node 1 heard from a stranger: %+v", st.Peers)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n.Close(short)
	noLeaks(t, base)
}

func TestNodeStateDir(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	start := func() (*Node, *testSM) {
		ln := listeners(t, 1)[1]
		sm := &testSM{}
		n, err := Start(Options{
			Core:     Config{Self: cluster.Member{ID: 1, Incarnation: uint64(time.Now().UnixNano())}, SM: sm, SnapshotEntries: 4},
			Tick:     10 * time.Millisecond,
			Listen:   addrOf(ln),
			Listener: ln,
			StateDir: dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, sm
	}
	n, _ := start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 6 {
		if err := n.Broadcast(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	term := n.Status().Term
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n, sm := start()
	defer n.Close(ctx)
	first := <-n.Events()
	if _, ok := first.(*cluster.Restored); !ok || sm.restores != 1 {
		t.Errorf("first event %s, %d restores; want Restored from the state directory", describe(first), sm.restores)
	}
	if st := n.Status(); st.Term < term {
		t.Errorf("term %d after restart, was %d", st.Term, term)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	noLeaks(t, base)
}

func TestStartErrors(t *testing.T) {
	ok := Options{
		Core:   Config{Self: cluster.Member{ID: 1, Incarnation: 1}, SM: &testSM{}},
		Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Peers:  map[int][]netip.AddrPort{2: {netip.MustParseAddrPort("127.0.0.2:7000")}},
		Key:    testKey,
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"unspecified listen address", func(o *Options) { o.Listen = netip.MustParseAddrPort("0.0.0.0:7000") }},
		{"short key", func(o *Options) { o.Key = []byte("short") }},
		{"long key", func(o *Options) { o.Key = make([]byte, MaxKeySize+1) }},
		{"peers without a key", func(o *Options) { o.Key = nil }},
		{"peer without address", func(o *Options) { o.Peers = map[int][]netip.AddrPort{2: nil} }},
		{"self among peers", func(o *Options) { o.Peers = map[int][]netip.AddrPort{1: {netip.MustParseAddrPort("127.0.0.1:7000")}} }},
		{"voters disagree", func(o *Options) { o.Core.Voters = []int{1, 2, 3} }},
		{"negative tick", func(o *Options) { o.Tick = -time.Second }},
		{"no state machine", func(o *Options) { o.Core.SM = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			if n, err := Start(o); !errors.Is(err, ErrConfig) {
				if n != nil {
					short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
					n.Close(short)
					cancel()
				}
				t.Errorf("Start: %v, want ErrConfig", err)
			}
		})
	}
}
