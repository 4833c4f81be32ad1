package raftcluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// Every decoder of bytes from outside has a fuzz target. Each checks
// that the decoder never panics and that what it accepts re-encodes to
// something it decodes the same way.

func FuzzDecodeEntry(f *testing.F) {
	f.Add(entry{Kind: kindHello, Node: 1, Inc: 1}.encode())
	f.Add(entry{Kind: kindBatch, Node: 2, Inc: 3, Seq: 4, Msgs: [][]byte{[]byte("a"), {}}}.encode())
	f.Add(entry{Kind: kindLeave, Node: 5, Inc: 6}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := decodeEntry(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := e.encode()
		e2, err := decodeEntry(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if diff := cmp.Diff(e, e2); diff != "" {
			t.Fatalf("entry changed (-first +second):\n%s", diff)
		}
		if !bytes.Equal(enc, e2.encode()) {
			t.Fatal("encoding not stable")
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := newClusterState()
	s.nodes[1] = nodeRecord{Inc: 2, Seq: 3, Status: statusMember}
	s.nodes[9] = nodeRecord{Inc: 1, Status: statusLeft}
	f.Add(encodeSnapshot(s, []byte("sm")))
	f.Add(encodeSnapshot(newClusterState(), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		st, sm, err := decodeSnapshot(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(in) == 0 {
			return
		}
		st2, sm2, err := decodeSnapshot(encodeSnapshot(st, sm))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if diff := cmp.Diff(st.nodes, st2.nodes); diff != "" {
			t.Fatalf("state changed (-first +second):\n%s", diff)
		}
		if !bytes.Equal(sm, sm2) {
			t.Fatal("state machine bytes changed")
		}
		// Whatever decodes, the replicated state can go on from it.
		st.apply(100, entry{Kind: kindHello, Node: 1, Inc: 1 << 62})
		_ = st.members()
	})
}

func FuzzDecodeState(f *testing.F) {
	good, _ := encodeState(sampleState())
	f.Add(good, false)
	boot, _ := encodeState((&Core{conf: raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2}})}).bootstrapState())
	f.Add(boot, false)
	f.Add([]byte(stateMagic), true)
	f.Fuzz(fuzzDecodeState)
}

func fuzzDecodeState(t *testing.T, in []byte, fixSum bool) {
	{
		if fixSum && len(in) >= 4 {
			// Get past the checksum to the structure behind it.
			in = binary.BigEndian.AppendUint32(in[:len(in)-4:len(in)-4], crc32.Checksum(in[:len(in)-4], castagnoli))
		}
		st, err := decodeState(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrCorrupt", err)
			}
			return
		}
		enc, err := encodeState(st)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		st2, err := decodeState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if diff := cmp.Diff(st, st2, protocmp.Transform()); diff != "" {
			t.Fatalf("state changed (-first +second):\n%s", diff)
		}
		// A node starts from any state that decodes, or refuses it
		// with an error; it never panics.
		voters := st.Snapshot.GetMetadata().GetConfState().GetVoters()
		if len(voters) == 0 || voters[0] > 10 {
			return
		}
		var ids []int
		for _, v := range voters {
			ids = append(ids, int(v))
		}
		p := &MemoryPersister{data: in}
		c, err := NewCore(Config{Self: cluster.Member{ID: ids[0], Incarnation: 1}, Voters: ids, SM: &testSM{}, Storage: p})
		if err != nil {
			return
		}
		c.Tick()
		c.Broadcast([]byte("x"))
		c.Process()
	}
}

func FuzzReadFrame(f *testing.F) {
	key := []byte("fuzzing session key")
	for _, k := range [][]byte{nil, key} {
		var buf bytes.Buffer
		w := &frameConn{rw: &buf, key: k}
		w.writeFrame([]byte("payload"))
		w.writeFrame(nil)
		f.Add(buf.Bytes(), k != nil)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, in []byte, keyed bool) {
		var k []byte
		if keyed {
			k = key
		}
		r := &frameConn{rw: bytes.NewBuffer(in), key: k, max: 1 << 16}
		var payloads [][]byte
		for {
			p, err := r.readFrame()
			if err != nil {
				break
			}
			payloads = append(payloads, p)
		}
		// The frames read re-encode to the bytes they came from.
		var buf bytes.Buffer
		w := &frameConn{rw: &buf, key: k}
		for _, p := range payloads {
			if err := w.writeFrame(p); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(in, buf.Bytes()) {
			t.Fatal("frames do not re-encode to their input")
		}
	})
}

func FuzzDecodeHandshake(f *testing.F) {
	f.Add(hello{Keyed: true, From: 1, To: 2, Cluster: "c"}.encode())
	f.Add(reply{Kind: replyRefused, Reason: "no"}.encode())
	f.Add(reply{Kind: replyChallenge}.encode())
	f.Add(reply{Kind: replyProof}.encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		if h, err := decodeHello(in); err == nil {
			h2, err := decodeHello(h.encode())
			if err != nil {
				t.Fatalf("re-encoded hello does not decode: %v", err)
			}
			if diff := cmp.Diff(h, h2); diff != "" {
				t.Fatalf("hello changed:\n%s", diff)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("hello error %v does not wrap ErrMalformed", err)
		}
		if r, err := decodeReply(in); err == nil {
			r2, err := decodeReply(r.encode())
			if err != nil {
				t.Fatalf("re-encoded reply does not decode: %v", err)
			}
			if diff := cmp.Diff(r, r2); diff != "" {
				t.Fatalf("reply changed:\n%s", diff)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("reply error %v does not wrap ErrMalformed", err)
		}
	})
}

// FuzzCoreStep feeds a consensus message decoded from arbitrary bytes to
// a node of a working three-node cluster, then lets the cluster run. No
// node may panic or fail. A message the checks refuse must change
// nothing: the cluster goes on and converges. A well-formed message the
// checks let through may still lie (a forged snapshot, a term from
// nowhere, a snapshot the state machine cannot restore): peers are
// trusted once authenticated, so for those the check is only that no
// node panics; a node may stop with a clean error (ErrFailed).
func FuzzCoreStep(f *testing.F) {
	// Seeds: messages of every kind from a real run.
	seen := map[raftpb.MessageType]int{}
	tn := newTestNet(f, 3, func(c *Config) { c.SnapshotEntries = 4 })
	tn.record = func(m *raftpb.Message) {
		if seen[m.GetType()] < 3 {
			seen[m.GetType()]++
			b, _ := proto.Marshal(m)
			f.Add(b, byte(m.GetTo()))
		}
	}
	tn.form()
	for i := range 10 {
		tn.nodes[1+i%3].core.Broadcast([]byte("seed"))
		tn.tick()
	}
	tn.nodes[3].up = false
	tn.run(5)
	tn.start(3, &MemoryPersister{})
	tn.run(30)

	f.Fuzz(func(t *testing.T, in []byte, to byte) {
		m := new(raftpb.Message)
		if proto.Unmarshal(in, m) != nil {
			return
		}
		tn := newTestNet(t, 3, func(c *Config) { c.SnapshotEntries = 4 })
		tn.form()
		tn.nodes[1].core.Broadcast([]byte("before"))
		tn.deliver()
		tn.lenient = true
		target := tn.nodes[1+int(to)%3]
		err := target.core.Step(m)
		if err == nil || !errors.Is(err, ErrBadMessage) {
			// Accepted (or refused by the consensus library itself):
			// run, and let the harness check nothing fails.
			tn.run(3 * target.core.cfg.FailTicks)
			return
		}
		tn.lenient = false
		id := tn.nodes[2].core.Broadcast([]byte("after"))
		tn.runUntil("a broadcast after a refused message", 100, func() bool {
			_, ok := tn.nodes[2].done[id]
			return ok
		})
		tn.settle()
		tn.sameState()
		if err := tn.nodes[2].done[id]; err != nil {
			t.Fatalf("broadcast after a refused %s: %v", m.GetType(), err)
		}
	})
}
