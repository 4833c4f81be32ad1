package raftcluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

// messages returns the payloads n applied, in order.
func (n *tnode) messages() []string {
	var ms []string
	for _, e := range n.events {
		if m, ok := e.(*cluster.Message); ok {
			ms = append(ms, string(m.Data))
		}
	}
	return ms
}

// TestWipedFollowerKeepsCommittedEntry: an entry committed by the
// leader and one follower must survive when that follower loses its
// state and the leader is cut off. The wiped follower must not help the
// other follower, which lacks the entry, win an election.
func TestWipedFollowerKeepsCommittedEntry(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	lead := tn.leaders()[0]
	holder := lead%3 + 1    // acknowledges the entry, then loses its state
	lagging := holder%3 + 1 // never sees the entry before the leader is cut off
	cut := func(a, b int) { tn.cut[[2]int{a, b}], tn.cut[[2]int{b, a}] = true, true }

	cut(lead, lagging)
	id := tn.nodes[lead].core.Broadcast([]byte("precious"))
	tn.runUntil("entry committed", 20, func() bool { return tn.nodes[lead].allDone([]uint64{id}) })
	if err := tn.nodes[lead].done[id]; err != nil {
		t.Fatalf("broadcast: %v", err)
	}
	if slices.Contains(tn.nodes[lagging].messages(), "precious") {
		t.Fatalf("node %d got the entry; the scenario needs it not to", lagging)
	}

	// The leader is cut off; the holder restarts with nothing.
	tn.partition([]int{lead}, []int{holder, lagging})
	tn.nodes[holder].up = false
	wiped := tn.start(holder, &MemoryPersister{})
	cfg := wiped.core.cfg
	tn.run(10 * cfg.FailTicks)
	if ls := tn.leaders(); slices.Contains(ls, lagging) || slices.Contains(ls, holder) {
		t.Errorf("leaders %v: the partition without the entry elected one", ls)
	}
	for _, id := range []int{holder, lagging} {
		if tn.nodes[id].quorate {
			t.Errorf("node %d quorate without the leader that holds the entry", id)
		}
	}
	if st := tn.nodes[lead].core.Status(); st.Quorate {
		t.Errorf("the cut-off leader reports itself quorate, members %v", st.Members)
	}

	tn.heal()
	tn.runUntil("formed again", 400, func() bool { return tn.formed(tn.ids...) })
	tn.settle()
	tn.sameState()
	for _, n := range tn.up() {
		if !slices.Contains(n.messages(), "precious") && !restoredAfter(n) {
			t.Errorf("node %d never applied the committed entry: %q", n.id, n.messages())
		}
	}
	// The entry is in every node's replicated history: a node that
	// caught up by snapshot carries it in its state machine.
	for _, n := range tn.up() {
		if !slices.ContainsFunc(n.sm.log, func(s string) bool {
			return s == fmt.Sprintf("msg %d from %v: precious", seqOf(tn.nodes[lead], "precious"), sender(tn.nodes[lead], "precious"))
		}) {
			t.Errorf("node %d's state lacks the committed entry:\n%q", n.id, n.sm.log)
		}
	}
}

// restoredAfter says whether n restored a snapshot.
func restoredAfter(n *tnode) bool {
	return slices.ContainsFunc(n.events, func(e cluster.Event) bool { _, ok := e.(*cluster.Restored); return ok })
}

func seqOf(n *tnode, data string) uint64 {
	for _, e := range n.events {
		if m, ok := e.(*cluster.Message); ok && string(m.Data) == data {
			return m.Seq
		}
	}
	return 0
}

func sender(n *tnode, data string) cluster.Member {
	for _, e := range n.events {
		if m, ok := e.(*cluster.Message); ok && string(m.Data) == data {
			return m.From
		}
	}
	return cluster.Member{}
}

// TestAmnesiaPersists: a node that lost its state stays amnesiac across
// a restart until it caught up, and then its state says so.
func TestAmnesiaPersists(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	if tn.nodes[3].core.amnesiac {
		t.Fatal("node 3 still amnesiac after the cluster formed")
	}
	tn.nodes[3].up = false
	tn.partition([]int{1, 2}, []int{3})
	store := &MemoryPersister{}
	tn.start(3, store)
	tn.run(3)
	tn.nodes[3].up = false
	n := tn.start(3, store) // restarts before it could catch up
	if !n.core.amnesiac {
		t.Fatal("restarted on the state of an amnesiac start: not amnesiac")
	}
	if st, err := store.Load(); err != nil || !st.Amnesiac {
		t.Fatalf("saved state: %v, %v; want amnesiac", st, err)
	}
	tn.heal()
	tn.runUntil("formed", 200, func() bool { return tn.formed(tn.ids...) })
	if n.core.amnesiac {
		t.Error("caught up, still amnesiac")
	}
	if st, err := store.Load(); err != nil || st.Amnesiac {
		t.Errorf("saved state after catching up: amnesiac %v, %v", st.Amnesiac, err)
	}
}

// TestFreshClusterForms: nodes that all start without state form a
// cluster, also with one of three never started.
func TestFreshClusterForms(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.nodes[3].up = false
	tn.runUntil("two of three formed", 200, func() bool { return tn.formed(1, 2) })
	for _, id := range []int{1, 2} {
		if tn.nodes[id].core.amnesiac {
			t.Errorf("node %d still amnesiac in a formed cluster", id)
		}
	}
	tn.nodes[3].up = true
	tn.runUntil("all formed", 200, func() bool { return tn.formed(tn.ids...) })
}

// TestStateFlags: the amnesiac mark round-trips, a state written before
// it existed (version 1) reads as not amnesiac, and unknown flags are
// refused.
func TestStateFlags(t *testing.T) {
	plain, err := encodeState(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	reseal := func(b []byte) []byte {
		b = b[:len(b)-4]
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	v1 := slices.Concat(plain[:len(stateMagic)], []byte{1}, plain[len(stateMagic)+2:])
	unknown := slices.Clone(plain)
	unknown[len(stateMagic)+1] = 0x80
	for _, tc := range []struct {
		name     string
		data     []byte
		amnesiac bool
		err      error
	}{
		{"current", plain, false, nil},
		{"version 1", reseal(v1), false, nil},
		{"unknown flag", reseal(unknown), false, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := decodeState(tc.data)
			if !errors.Is(err, tc.err) {
				t.Fatalf("decodeState: %v, want %v", err, tc.err)
			}
			if err == nil && st.Amnesiac != tc.amnesiac {
				t.Errorf("amnesiac %v, want %v", st.Amnesiac, tc.amnesiac)
			}
		})
	}
	st := sampleState()
	st.Amnesiac = true
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got, protocmp.Transform()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestDivergedNodeRecovers: when a majority lost its state and went on
// without a node that was cut off, that node's committed log conflicts
// with the cluster's. It must not refuse every append from then on: it
// drops its history and catches up with the cluster as it is.
func TestDivergedNodeRecovers(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	for i := range 3 {
		tn.nodes[1].core.Broadcast(fmt.Appendf(nil, "before %d", i))
	}
	tn.settle()
	// Node 3 is cut off; nodes 1 and 2 lose their state and start over.
	tn.partition([]int{1, 2}, []int{3})
	for _, id := range []int{1, 2} {
		tn.nodes[id].up = false
		tn.start(id, &MemoryPersister{})
	}
	tn.runUntil("1 and 2 formed anew", 300, func() bool { return tn.formed(1, 2) })
	bc := tn.nodes[1].core.Broadcast([]byte("after"))
	tn.runUntil("broadcast done", 100, func() bool { return tn.nodes[1].allDone([]uint64{bc}) })

	tn.heal()
	tn.runUntil("all formed", 400, func() bool { return tn.formed(tn.ids...) })
	tn.settle()
	tn.sameState()
	// Node 3 dropped its history (its state machine back to the
	// initial state) and took the cluster's.
	n := tn.nodes[3]
	if !slices.ContainsFunc(n.events, func(e cluster.Event) bool {
		r, ok := e.(*cluster.Restored)
		return ok && r.Seq == blankIndex && len(r.Members) == 0
	}) {
		t.Errorf("node 3 never started over: %q", n.sm.log)
	}
	if !slices.ContainsFunc(n.sm.log, func(s string) bool { return strings.HasSuffix(s, ": after") }) {
		t.Errorf("node 3 lacks the cluster's history: %q", n.sm.log)
	}
}
