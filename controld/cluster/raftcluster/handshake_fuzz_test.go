package raftcluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// scriptConn is a connection whose peer's side is a script: reads come
// from r, writes are kept.
type scriptConn struct {
	r      io.Reader
	mu     sync.Mutex
	w      bytes.Buffer
	remote *net.TCPAddr
}

func (c *scriptConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(b)
}
func (c *scriptConn) Close() error { return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 21065}
}
func (c *scriptConn) RemoteAddr() net.Addr             { return c.remote }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// frames encodes payloads as plain frames.
func frames(payloads ...[]byte) []byte {
	var buf bytes.Buffer
	fc := &frameConn{rw: &buf}
	for _, p := range payloads {
		fc.writeFrame(p)
	}
	return buf.Bytes()
}

func marshal(m *raftpb.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}

// fuzzTransport is node 1 of cluster "c", with node 2 at 127.0.0.2;
// delivered collects what it hands to the Core.
func fuzzTransport(key []byte) (*transport, *[]*raftpb.Message) {
	var delivered []*raftpb.Message
	return &transport{
		self:    1,
		cluster: "c",
		key:     key,
		addrs:   map[netip.Addr][]int{netip.MustParseAddr("127.0.0.2"): {2}},
		log:     discardLogger(),
		deliver: func(m *raftpb.Message) bool { delivered = append(delivered, m); return true },
		ctx:     context.Background(),
		wg:      &sync.WaitGroup{},
		conns:   map[net.Conn]bool{},
		inbound: map[int]net.Conn{},
		refused: map[string]bool{},
	}, &delivered
}

// handshakeSeeds are frame sequences a dialer or an acceptor may send.
func handshakeSeeds() [][]byte {
	hb := func(from uint64) []byte {
		return marshal(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(from), To: new(uint64(1)), Term: new(uint64(2))})
	}
	prop := marshal(proposalOf(3, 1, entry{Kind: kindBatch, Node: 3, Inc: 1, Seq: 1, Msgs: [][]byte{[]byte("x")}}))
	return [][]byte{
		frames(hello{From: 2, To: 1, Cluster: "c"}.encode(), hb(2), prop, hb(3)),
		frames(hello{Keyed: true, From: 2, To: 1, Cluster: "c"}.encode(), reply{Kind: replyProof}.encode(), hb(2)),
		frames(hello{From: 3, To: 1, Cluster: "c"}.encode()),
		frames(reply{Kind: replyAccepted}.encode(), hb(2)),
		frames(reply{Kind: replyChallenge}.encode(), reply{Kind: replyAccepted}.encode()),
		frames(reply{Kind: replyRefused, Reason: "no"}.encode()),
		{0, 0, 0, 5, 'G', 'D'},
		{},
	}
}

// FuzzAcceptHandshake plays an arbitrary sequence of frames as the
// dialer against the accepting side, handshake and then consensus
// messages. Nothing may panic; with a key, nothing may be delivered
// (the script cannot prove the key); without one, only messages whose
// sender is the node that connected.
func FuzzAcceptHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in []byte, keyed bool) {
		var key []byte
		if keyed {
			key = testKey
		}
		tr, delivered := fuzzTransport(key)
		conn := &scriptConn{r: bytes.NewReader(in), remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}}
		tr.conns[conn] = true
		tr.wg.Add(1)
		tr.serve(conn)
		if keyed && len(*delivered) > 0 {
			t.Fatalf("%d messages delivered without the key", len(*delivered))
		}
		for _, m := range *delivered {
			if m.GetFrom() != 2 {
				t.Fatalf("delivered %s from %d on node 2's connection", m.GetType(), m.GetFrom())
			}
		}
		if len(tr.refused) > maxWarnings || len(tr.conns) != 0 || len(tr.inbound) != 0 {
			t.Fatalf("left %d warnings, %d connections, %d inbound", len(tr.refused), len(tr.conns), len(tr.inbound))
		}
	})
}

// FuzzDialHandshake plays an arbitrary sequence of frames as the
// acceptor against the dialing side. Nothing may panic; every error
// says what failed (ErrMalformed, ErrRefused or ErrAuth); with a key
// the handshake never succeeds (the script cannot prove the key), and
// without one it succeeds only on an accepting verdict.
func FuzzDialHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in []byte, keyed bool) {
		var key []byte
		if keyed {
			key = testKey
		}
		tr, _ := fuzzTransport(key)
		conn := &scriptConn{r: bytes.NewReader(in), remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 21065}}
		session, err := tr.dialHandshake(conn, 2)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrAuth) {
				t.Fatalf("error %v wraps none of ErrMalformed, ErrRefused, ErrAuth", err)
			}
			return
		}
		if keyed {
			t.Fatal("keyed handshake succeeded without the peer proving the key")
		}
		if session != nil {
			t.Fatal("unkeyed handshake gave a session key")
		}
		fc := &frameConn{rw: &scriptConn{r: bytes.NewReader(in)}, max: maxHandshake}
		b, err := fc.readFrame()
		if err != nil {
			t.Fatalf("handshake succeeded on input without a frame: %v", err)
		}
		if rep, err := decodeReply(b); err != nil || rep.Kind != replyAccepted {
			t.Fatalf("handshake succeeded on %+v, %v; want an accepting verdict", rep, err)
		}
	})
}

// FuzzParseKey checks the key file parser: no panic, errors wrap
// ErrKey, and an accepted key is within the bounds, free of trailing
// newlines, and parses to itself.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef\n"))
	f.Add([]byte("short\n"))
	f.Add([]byte("\n\r\n"))
	f.Add(bytes.Repeat([]byte{0}, MaxKeySize+1))
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := ParseKey(in)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error %v does not wrap ErrKey", err)
			}
			return
		}
		if len(key) < MinKeySize || len(key) > MaxKeySize || bytes.HasSuffix(key, []byte("\n")) || bytes.HasSuffix(key, []byte("\r")) {
			t.Fatalf("accepted key %q", key)
		}
		if !bytes.HasPrefix(in, key) {
			t.Fatalf("key %q is not the start of %q", key, in)
		}
		again, err := ParseKey(key)
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("key %q parses to %q, %v", key, again, err)
		}
	})
}
