package raftcluster

import (
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
)

func TestApplyRules(t *testing.T) {
	m := func(id int, inc uint64) cluster.Member { return cluster.Member{ID: id, Incarnation: inc} }
	ms := func(x ...cluster.Member) []cluster.Member { return x }
	// Each step applies one entry, at index = position + 10, to the
	// state left by the steps before.
	steps := []struct {
		name string
		e    entry
		want []cluster.Event
	}{
		{"first hello", entry{Kind: kindHello, Node: 1, Inc: 5},
			[]cluster.Event{&cluster.View{Seq: 10, Members: ms(m(1, 5)), Joined: ms(m(1, 5))}}},
		{"second node", entry{Kind: kindHello, Node: 2, Inc: 3},
			[]cluster.Event{&cluster.View{Seq: 11, Members: ms(m(1, 5), m(2, 3)), Joined: ms(m(2, 3))}}},
		{"duplicate hello", entry{Kind: kindHello, Node: 1, Inc: 5}, nil},
		{"older hello", entry{Kind: kindHello, Node: 1, Inc: 4}, nil},
		{"batch", entry{Kind: kindBatch, Node: 1, Inc: 5, Seq: 1, Msgs: [][]byte{[]byte("a"), []byte("b")}},
			[]cluster.Event{
				&cluster.Message{Seq: 14, From: m(1, 5), Data: []byte("a")},
				&cluster.Message{Seq: 14, From: m(1, 5), Data: []byte("b")},
			}},
		{"batch again", entry{Kind: kindBatch, Node: 1, Inc: 5, Seq: 1, Msgs: [][]byte{[]byte("a")}}, nil},
		{"batch skipping a seq", entry{Kind: kindBatch, Node: 1, Inc: 5, Seq: 3, Msgs: [][]byte{[]byte("c")}}, nil},
		{"batch of another incarnation", entry{Kind: kindBatch, Node: 1, Inc: 4, Seq: 2, Msgs: [][]byte{[]byte("c")}}, nil},
		{"batch of a non-member", entry{Kind: kindBatch, Node: 3, Inc: 1, Seq: 1, Msgs: [][]byte{[]byte("c")}}, nil},
		{"next batch", entry{Kind: kindBatch, Node: 1, Inc: 5, Seq: 2, Msgs: [][]byte{[]byte("c")}},
			[]cluster.Event{&cluster.Message{Seq: 19, From: m(1, 5), Data: []byte("c")}}},
		{"new incarnation replaces", entry{Kind: kindHello, Node: 1, Inc: 6},
			[]cluster.Event{&cluster.View{Seq: 20, Members: ms(m(1, 6), m(2, 3)), Joined: ms(m(1, 6)), Failed: ms(m(1, 5))}}},
		{"batch of the old incarnation", entry{Kind: kindBatch, Node: 1, Inc: 5, Seq: 3, Msgs: [][]byte{[]byte("d")}}, nil},
		{"new incarnation starts at seq 1", entry{Kind: kindBatch, Node: 1, Inc: 6, Seq: 1, Msgs: [][]byte{[]byte("e")}},
			[]cluster.Event{&cluster.Message{Seq: 22, From: m(1, 6), Data: []byte("e")}}},
		{"fail of an old incarnation", entry{Kind: kindFail, Node: 1, Inc: 5}, nil},
		{"leave", entry{Kind: kindLeave, Node: 2, Inc: 3},
			[]cluster.Event{&cluster.View{Seq: 24, Members: ms(m(1, 6)), Left: ms(m(2, 3))}}},
		{"fail after leave", entry{Kind: kindFail, Node: 2, Inc: 3}, nil},
		{"fail", entry{Kind: kindFail, Node: 1, Inc: 6},
			[]cluster.Event{&cluster.View{Seq: 26, Failed: ms(m(1, 6))}}},
		{"fail again", entry{Kind: kindFail, Node: 1, Inc: 6}, nil},
		{"rejoin after leave", entry{Kind: kindHello, Node: 2, Inc: 4},
			[]cluster.Event{&cluster.View{Seq: 28, Members: ms(m(2, 4)), Joined: ms(m(2, 4))}}},
	}
	s := newClusterState()
	for i, st := range steps {
		got := s.apply(uint64(10+i), st.e)
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("step %d, %s: events (-want +got):\n%s", i, st.name, diff)
		}
	}
	want := map[int]nodeRecord{
		1: {Inc: 6, Seq: 1, Status: statusFailed},
		2: {Inc: 4, Status: statusMember},
	}
	if diff := cmp.Diff(want, s.nodes); diff != "" {
		t.Errorf("final state (-want +got):\n%s", diff)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := newClusterState()
	s.nodes[1] = nodeRecord{Inc: 6, Seq: 1, Status: statusFailed}
	s.nodes[2] = nodeRecord{Inc: 4, Status: statusMember}
	s.nodes[40000] = nodeRecord{Inc: 1 << 60, Seq: 99, Status: statusLeft}
	for _, sm := range [][]byte{{}, []byte("state machine")} {
		got, gotSM, err := decodeSnapshot(encodeSnapshot(s, sm))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.nodes, got.nodes); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sm, gotSM); diff != "" {
			t.Errorf("state machine bytes (-want +got):\n%s", diff)
		}
	}
	// Empty data is the fresh cluster: nothing to restore.
	got, sm, err := decodeSnapshot(nil)
	if err != nil || sm != nil || len(got.nodes) != 0 {
		t.Errorf("empty snapshot: %v, %v, %v", got.nodes, sm, err)
	}
}
