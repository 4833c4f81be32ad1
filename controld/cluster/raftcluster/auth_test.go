package raftcluster

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// impostor connects to ln from 127.0.0.self as node self, with key,
// and runs the dialer's side of the handshake with node to.
func impostor(t *testing.T, ln net.Listener, self, to int, key []byte) (*frameConn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(self))}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial as node %d: %v", self, err)
	}
	t.Cleanup(func() { c.Close() })
	tr := &transport{self: self, cluster: "test", key: key}
	session, err := tr.dialHandshake(c, to)
	c.SetDeadline(time.Time{})
	return &frameConn{rw: c, key: session}, err
}

func sendMessage(t *testing.T, fc *frameConn, m *raftpb.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.writeFrame(b); err != nil {
		t.Fatalf("sending %s: %v", m.GetType(), err)
	}
}

// A keyed cluster refuses a peer without the key and one with another
// key, and a peer with the key speaks only for itself: messages that
// claim another sender are dropped, and so are proposals of entries of
// another node.
func TestNodeImpostors(t *testing.T) {
	base := runtime.NumGoroutine()
	lns := listeners(t, 1, 2, 3)
	nodes := startNodes(t, lns, nil)
	eventually(t, "the cluster formed", formed(nodes, 1, 2, 3))

	t.Run("unkeyed peer", func(t *testing.T) {
		_, err := impostor(t, lns[1], 2, 1, nil)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "requires the cluster key") {
			t.Errorf("handshake without a key: %v, want refused for the key", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, err := impostor(t, lns[1], 2, 1, []byte("0123456789abcdef-another-key"))
		if !errors.Is(err, ErrAuth) {
			t.Errorf("handshake with the wrong key: %v, want ErrAuth", err)
		}
		eventually(t, "node 1 logged the wrong key", func() bool { return strings.Contains(nodes[1].logs.String(), "wrong cluster key") })
	})
	t.Run("keyed node forging another's sender", func(t *testing.T) {
		var lead int
		eventually(t, "a leader is known", func() bool { lead = nodes[1].Status().Leader; return lead != 0 })
		others := slices.DeleteFunc([]int{1, 2, 3}, func(id int) bool { return id == lead })
		forger, victim := others[0], others[1]
		inc := nodes[victim].inc
		// The forger's daemon stops (the other two keep a quorum), so
		// its reconnecting does not replace the forging connection.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := nodes[forger].Close(ctx); err != nil {
			t.Fatalf("Close(%d): %v", forger, err)
		}
		fc, err := impostor(t, lns[lead], forger, lead, testKey)
		if err != nil {
			t.Fatalf("handshake with the key: %v", err)
		}
		// Messages claiming to come from the victim, on a connection
		// authenticated as the forger.
		sendMessage(t, fc, proposalOf(victim, lead, entry{Kind: kindBatch, Node: victim, Inc: inc, Seq: 1, Msgs: [][]byte{[]byte("forged batch")}}))
		sendMessage(t, fc, proposalOf(victim, lead, entry{Kind: kindHello, Node: victim, Inc: inc + 1}))
		// The forger's own id, proposing for the victim.
		sendMessage(t, fc, proposalOf(forger, lead, entry{Kind: kindBatch, Node: victim, Inc: inc, Seq: 1, Msgs: [][]byte{[]byte("forged entry")}}))

		if err := nodes[victim].Broadcast(ctx, []byte("genuine")); err != nil {
			t.Fatalf("broadcast of node %d: %v", victim, err)
		}
		delivered := func() bool {
			for _, n := range []*testNode{nodes[lead], nodes[victim]} {
				if !slices.ContainsFunc(n.messages(), func(s string) bool { return strings.HasSuffix(s, " genuine") }) {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(5 * time.Second); !delivered() && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if !delivered() {
			t.Error("the genuine message was not delivered")
		}
		for _, n := range nodes {
			for _, s := range n.messages() {
				if strings.Contains(s, "forged") {
					t.Errorf("node %d delivered %q", n.id, s)
				}
			}
			for _, m := range n.Status().Members {
				if m.ID == victim && m.Incarnation != inc {
					t.Errorf("node %d sees node %d as incarnation %d, want %d", n.id, victim, m.Incarnation, inc)
				}
			}
		}
		logs := nodes[lead].logs.String()
		if !strings.Contains(logs, "claims another sender") || !strings.Contains(logs, "for another node") {
			t.Errorf("node %d did not log the forgeries:\n%s", lead, logs)
		}
	})

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for _, n := range nodes {
		n.Close(short)
	}
	noLeaks(t, base)
}

// countingListener counts the connections its accepted connections
// closed.
type countingListener struct {
	net.Listener
	closed *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, closed: l.closed}, nil
}

type countingConn struct {
	net.Conn
	once   atomic.Bool
	closed *atomic.Int64
}

func (c *countingConn) Close() error {
	if !c.once.Swap(true) {
		c.closed.Add(1)
	}
	return c.Conn.Close()
}

// Refused connections from many addresses and ports leave the memory of
// logged warnings bounded.
func TestRefusedWarningsBounded(t *testing.T) {
	base := runtime.NumGoroutine()
	lns := listeners(t, 1, 2)
	lns[2].Close() // node 2 is configured, not running
	var closed atomic.Int64
	ln := countingListener{Listener: lns[1], closed: &closed}
	n := startNode(t, 1, ln, map[int][]netip.AddrPort{2: {addrOf(lns[2])}}, nil, Config{})
	target := lns[1].Addr().String()

	dial := func(ip net.IP) *net.TCPConn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		return c.(*net.TCPConn)
	}
	const strangers, resets = 2 * maxWarnings, 100
	for i := range strangers {
		c := dial(net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)))
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		c.Read(b[:]) // until node 1 closes it
		c.Close()
	}
	for range resets {
		// A configured address that resets the connection: the error
		// names both ports.
		c := dial(net.IPv4(127, 0, 0, 2))
		c.SetLinger(0)
		c.Close()
	}
	eventually(t, "node 1 closed every connection", func() bool { return closed.Load() >= strangers+resets })
	n.tr.mu.Lock()
	got := len(n.tr.refused)
	n.tr.mu.Unlock()
	if got > maxWarnings {
		t.Errorf("%d warnings remembered after %d refused connections, want at most %d", got, strangers+resets, maxWarnings)
	}
	if logs := n.logs.String(); !strings.Contains(logs, "address not in the configuration") {
		t.Errorf("refusals not logged:\n%.2000s", logs)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n.Close(short)
	noLeaks(t, base)
}
