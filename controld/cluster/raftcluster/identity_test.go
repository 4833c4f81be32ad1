package raftcluster

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// proposalOf is a forwarded proposal of e, as a follower sends it.
func proposalOf(from, to int, es ...entry) *raftpb.Message {
	m := &raftpb.Message{Type: raftpb.MsgProp.Enum(), From: new(uint64(from)), To: new(uint64(to)), Term: new(uint64(0))}
	for _, e := range es {
		m.Entries = append(m.Entries, &raftpb.Entry{Type: raftpb.EntryNormal.Enum(), Data: e.encode()})
	}
	return m
}

// memberInc is node id's incarnation in n's view, 0 when not a member.
func memberInc(n *tnode, id int) uint64 {
	for _, m := range n.core.Status().Members {
		if m.ID == id {
			return m.Incarnation
		}
	}
	return 0
}

// A Hello for an absurd incarnation is refused at the leader and never
// drives the node it names out of the cluster or out of incarnations.
func TestAbsurdIncarnationRefused(t *testing.T) {
	for _, inc := range []uint64{math.MaxUint64, math.MaxUint64 - 1, MaxIncarnation + 1} {
		tn := newTestNet(t, 3, nil)
		tn.form()
		lead := tn.leaders()[0]
		victim := 1 + lead%3 // a follower
		before := memberInc(tn.nodes[victim], victim)
		tn.lenient = true
		err := tn.nodes[lead].core.Step(proposalOf(victim, lead, entry{Kind: kindHello, Node: victim, Inc: inc}))
		if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "incarnation beyond") {
			t.Errorf("inc %d: Step: %v, want ErrBadMessage for the incarnation", inc, err)
		}
		tn.run(3 * DefaultFailTicks)
		tn.lenient = false
		for _, n := range tn.nodes {
			if !n.up || n.core.fatal != nil {
				t.Fatalf("inc %d: node %d stopped: %v", inc, n.id, n.core.fatal)
			}
			if got := memberInc(n, victim); got != before {
				t.Errorf("inc %d: node %d sees node %d as incarnation %d, want %d", inc, n.id, victim, got, before)
			}
			if n.sawFailed(victim, 0) {
				t.Errorf("inc %d: node %d saw node %d fail", inc, n.id, victim)
			}
		}
	}
}

// The apply rules refuse such a Hello too, whoever put it in the log.
func TestApplyRefusesAbsurdIncarnation(t *testing.T) {
	s := newClusterState()
	s.apply(10, entry{Kind: kindHello, Node: 3, Inc: 7})
	for _, inc := range []uint64{MaxIncarnation + 1, math.MaxUint64} {
		if evs := s.apply(11, entry{Kind: kindHello, Node: 3, Inc: inc}); evs != nil {
			t.Errorf("Hello{3, %d} applied: %v", inc, evs)
		}
	}
	if got := s.nodes[3]; got != (nodeRecord{Inc: 7, Status: statusMember}) {
		t.Errorf("node 3 record %+v", got)
	}
	if evs := s.apply(12, entry{Kind: kindHello, Node: 3, Inc: MaxIncarnation}); len(evs) != 1 {
		t.Errorf("Hello{3, MaxIncarnation}: %v, want one view", evs)
	}
}

// A node restarting with a persisted log that holds a Hello of its own
// for an absurd incarnation (written before such Hellos were refused)
// starts, and joins.
func TestRestartIgnoresAbsurdIncarnation(t *testing.T) {
	store := &MemoryPersister{}
	c, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 5}, Voters: []int{1}, SM: &testSM{}, Storage: store})
	if err != nil {
		t.Fatal(err)
	}
	c.Process()
	st, _ := store.Load()
	last := st.Entries[len(st.Entries)-1]
	st.Entries = append(st.Entries, &raftpb.Entry{
		Type: raftpb.EntryNormal.Enum(), Index: new(last.GetIndex() + 1), Term: new(last.GetTerm()),
		Data: entry{Kind: kindHello, Node: 1, Inc: math.MaxUint64}.encode(),
	})
	if err := store.Save(st); err != nil {
		t.Fatal(err)
	}
	c, err = NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 9}, Voters: []int{1}, SM: &testSM{}, Storage: store})
	if err != nil {
		t.Fatal(err)
	}
	out := c.Process()
	if out.Err != nil {
		t.Fatalf("core failed: %v", out.Err)
	}
	if ms := c.Status().Members; !slices.Equal(ms, []cluster.Member{{ID: 1, Incarnation: 9}}) {
		t.Errorf("members %v, want node 1 as incarnation 9", ms)
	}
}

// A node that is not the leader drops a proposal rather than forward it
// under the proposer's id; the proposer's own retry gets it applied.
func TestFollowerDoesNotForwardProposals(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	lead := tn.leaders()[0]
	a, b := 1+lead%3, 1+(lead+1)%3 // the two followers
	inc := memberInc(tn.nodes[a], a)
	err := tn.nodes[b].core.Step(proposalOf(a, b, entry{Kind: kindBatch, Node: a, Inc: inc, Seq: 1, Msgs: [][]byte{[]byte("via b")}}))
	if !errors.Is(err, raft.ErrProposalDropped) {
		t.Errorf("Step of a proposal on a follower: %v, want ErrProposalDropped", err)
	}
	for _, m := range tn.nodes[b].core.Process().Messages {
		if m.GetType() == raftpb.MsgProp {
			t.Errorf("follower forwarded a proposal: %v", m)
		}
	}
}
