package raftcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// testSM records every event applied, as text; its snapshot is that
// record, so two machines are equal when their records are.
type testSM struct {
	log      []string
	restores int
}

func (s *testSM) Apply(e cluster.Event) { s.log = append(s.log, describe(e)) }

func (s *testSM) Snapshot() ([]byte, error) { return json.Marshal(s.log) }

func (s *testSM) Restore(b []byte) error {
	s.restores++
	s.log = nil
	return json.Unmarshal(b, &s.log)
}

func describe(e cluster.Event) string {
	switch e := e.(type) {
	case *cluster.View:
		return fmt.Sprintf("view %d members=%v joined=%v left=%v failed=%v", e.Seq, e.Members, e.Joined, e.Left, e.Failed)
	case *cluster.Message:
		return fmt.Sprintf("msg %d from %v: %s", e.Seq, e.From, e.Data)
	case *cluster.Restored:
		return fmt.Sprintf("restored %d members=%v", e.Seq, e.Members)
	case *cluster.Quorum:
		return fmt.Sprintf("quorum %v", e.Quorate)
	}
	return fmt.Sprintf("%T", e)
}

// tnode is one node of the test network.
type tnode struct {
	id      int
	core    *Core
	sm      *testSM
	store   *MemoryPersister
	events  []cluster.Event
	done    map[uint64]error
	up      bool // ticked and reachable
	quorate bool
}

// testNet drives cores over an in-memory network, deterministically but
// for the consensus library's election jitter.
type testNet struct {
	t       testing.TB
	nodes   map[int]*tnode
	ids     []int
	cut     map[[2]int]bool // links down, both directions listed
	dup     bool            // deliver every message twice
	ticks   int
	nextInc uint64
	tune    func(*Config)
	record  func(*raftpb.Message)      // sees every message sent, if set
	drop    func(*raftpb.Message) bool // loses a message it returns true for, if set
	// lenient: a refused message is no error, and a network that does
	// not settle within a tick is left as it is (for forged input).
	lenient bool
}

func testLogger() *slog.Logger {
	if os.Getenv("RAFTCLUSTER_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newTestNet(t testing.TB, n int, tune func(*Config)) *testNet {
	t.Helper()
	tn := &testNet{t: t, nodes: map[int]*tnode{}, cut: map[[2]int]bool{}, nextInc: 100, tune: tune}
	for id := 1; id <= n; id++ {
		tn.ids = append(tn.ids, id)
	}
	for _, id := range tn.ids {
		tn.start(id, &MemoryPersister{})
	}
	return tn
}

func (tn *testNet) config(id int, store Persister, sm cluster.StateMachine) Config {
	tn.nextInc++
	cfg := Config{
		Self:    cluster.Member{ID: id, Incarnation: tn.nextInc},
		Voters:  tn.ids,
		Storage: store,
		SM:      sm,
		Logger:  testLogger(),
		NewIncarnation: func() uint64 {
			tn.nextInc++
			return tn.nextInc
		},
	}
	if tn.tune != nil {
		tn.tune(&cfg)
	}
	return cfg
}

// start (re)starts node id with store, a new state machine and a new
// incarnation.
func (tn *testNet) start(id int, store *MemoryPersister) *tnode {
	tn.t.Helper()
	sm := &testSM{}
	c, err := NewCore(tn.config(id, store, sm))
	if err != nil {
		tn.t.Fatalf("NewCore(%d): %v", id, err)
	}
	n := &tnode{id: id, core: c, sm: sm, store: store, done: map[uint64]error{}, up: true}
	tn.nodes[id] = n
	return n
}

func (tn *testNet) partition(groups ...[]int) {
	clear(tn.cut)
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					tn.cut[[2]int{a, b}] = true
				}
			}
		}
	}
}

func (tn *testNet) heal() { clear(tn.cut) }

// tick advances every node that is up by one tick. Nodes tick one
// after the other, each followed by message delivery until the network
// is quiet: clocks of real nodes are not in phase, and two followers
// timing out in the very same instant would split every vote.
func (tn *testNet) tick() {
	tn.ticks++
	for _, id := range tn.ids {
		if n := tn.nodes[id]; n.up {
			n.core.Tick()
			tn.deliver()
		}
	}
}

// deliver processes every node and carries messages until none is left.
func (tn *testNet) deliver() {
	tn.t.Helper()
	for round := 0; ; round++ {
		if round > 1000 {
			if tn.lenient {
				return
			}
			tn.t.Fatal("network does not settle")
		}
		var msgs []*raftpb.Message
		for _, id := range tn.ids {
			n := tn.nodes[id]
			if !n.up {
				continue
			}
			out := n.core.Process()
			if out.Err != nil {
				if tn.lenient && !strings.Contains(out.Err.Error(), "panic") {
					// A forged message may make a node stop with
					// a clean error; it must not crash it.
					n.up = false
					continue
				}
				tn.t.Fatalf("node %d failed: %v", id, out.Err)
			}
			for _, e := range out.Events {
				n.events = append(n.events, e)
				if q, ok := e.(*cluster.Quorum); ok {
					n.quorate = q.Quorate
				}
			}
			for _, d := range out.Done {
				if _, dup := n.done[d.ID]; dup {
					tn.t.Errorf("node %d: request %d finished twice", id, d.ID)
				}
				n.done[d.ID] = d.Err
			}
			msgs = append(msgs, out.Messages...)
		}
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if tn.record != nil {
				tn.record(m)
			}
			from, to := int(m.GetFrom()), int(m.GetTo())
			dst := tn.nodes[to]
			if dst == nil || !dst.up || tn.cut[[2]int{from, to}] || tn.drop != nil && tn.drop(m) {
				continue
			}
			copies := 1
			if tn.dup {
				copies = 2
			}
			for range copies {
				err := dst.core.Step(wire(tn.t, m))
				if errors.Is(err, ErrBadMessage) && !tn.lenient {
					tn.t.Errorf("node %d refused %s from %d: %v", to, m.GetType(), from, err)
				}
			}
		}
	}
}

// wire sends m through the protobuf encoding, as the transport does.
func wire(t testing.TB, m *raftpb.Message) *raftpb.Message {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out raftpb.Message
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func (tn *testNet) run(ticks int) {
	for range ticks {
		tn.tick()
	}
}

// runUntil ticks until cond holds and returns the ticks it took; it
// fails the test after max ticks.
func (tn *testNet) runUntil(what string, max int, cond func() bool) int {
	tn.t.Helper()
	for i := 0; i <= max; i++ {
		if cond() {
			return i
		}
		tn.tick()
	}
	tn.t.Fatalf("after %d ticks: not %s", max, what)
	return 0
}

func (tn *testNet) up() []*tnode {
	var ns []*tnode
	for _, id := range tn.ids {
		if n := tn.nodes[id]; n.up {
			ns = append(ns, n)
		}
	}
	return ns
}

// leaders returns the ids of up nodes that are leaders.
func (tn *testNet) leaders() []int {
	var ls []int
	for _, n := range tn.up() {
		if st := n.core.Status(); st.Leader == n.id {
			ls = append(ls, n.id)
		}
	}
	return ls
}

// formed says whether every node in ids is quorate and sees all of ids
// as members.
func (tn *testNet) formed(ids ...int) bool {
	for _, id := range ids {
		n := tn.nodes[id]
		if !n.quorate {
			return false
		}
		var got []int
		for _, m := range n.core.Status().Members {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, ids) {
			return false
		}
	}
	return true
}

func (tn *testNet) form() {
	tn.t.Helper()
	tn.runUntil("formed", 200, func() bool { return tn.formed(tn.ids...) })
}

// allDone says whether every id finished on node n.
func (n *tnode) allDone(ids []uint64) bool {
	for _, id := range ids {
		if _, ok := n.done[id]; !ok {
			return false
		}
	}
	return true
}

// views returns the views n delivered.
func (n *tnode) views() []*cluster.View {
	var vs []*cluster.View
	for _, e := range n.events {
		if v, ok := e.(*cluster.View); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// sawFailed says whether n delivered a view failing member m (any
// incarnation when inc is 0).
func (n *tnode) sawFailed(id int, inc uint64) bool {
	for _, v := range n.views() {
		for _, f := range v.Failed {
			if f.ID == id && (inc == 0 || f.Incarnation == inc) {
				return true
			}
		}
	}
	return false
}

// sameState checks that the up nodes applied the same prefix and have
// equal state machines.
func (tn *testNet) sameState() {
	tn.t.Helper()
	ns := tn.up()
	for _, n := range ns[1:] {
		if a, b := ns[0].core.Status().Applied, n.core.Status().Applied; a != b {
			tn.t.Errorf("node %d applied %d, node %d applied %d", ns[0].id, a, n.id, b)
		}
		if !slices.Equal(ns[0].sm.log, n.sm.log) {
			tn.t.Errorf("state machines of nodes %d and %d differ:\n%d: %q\n%d: %q", ns[0].id, n.id, ns[0].id, ns[0].sm.log, n.id, n.sm.log)
		}
	}
}

// settle runs until every up node applied the same index and no
// request of theirs is pending.
func (tn *testNet) settle() {
	tn.t.Helper()
	tn.runUntil("settled", 200, func() bool {
		ns := tn.up()
		for _, n := range ns {
			if n.core.Status().Applied != ns[0].core.Status().Applied || n.core.inflight != nil || len(n.core.queue) > 0 {
				return false
			}
		}
		return true
	})
}
