package controld

import (
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/fence"
	"github.com/godlm/godlm/controld/lockspace"
	"github.com/google/go-cmp/cmp"
)

func member(id int) cluster.Member { return cluster.Member{ID: id, Incarnation: uint64(id) * 10} }

// TestRecoveryWaitsForFencing: a lockspace that lost a failed node
// starts again only once that node is fenced, though every member
// stopped.
func TestRecoveryWaitsForFencing(t *testing.T) {
	r := NewReplicated()
	seq := uint64(0)
	apply := func(e cluster.Event) { r.Apply(e) }
	msg := func(from int, data []byte) {
		seq++
		apply(&cluster.Message{Seq: seq, From: member(from), Data: data})
	}
	view := func(members []int, failed ...int) {
		seq++
		v := &cluster.View{Seq: seq}
		for _, m := range members {
			v.Members = append(v.Members, member(m))
		}
		for _, f := range failed {
			v.Failed = append(v.Failed, member(f))
		}
		apply(v)
	}
	stopped := func(from int) {
		sp := r.Lockspaces.Spaces["gfs0"]
		msg(from, lockspace.Msg{Kind: lockspace.KindStopped, Lockspace: "gfs0", Change: sp.Change, Incarnation: member(from).Incarnation}.Encode())
	}
	view([]int{1, 2, 3})
	msg(1, []byte("not a message")) // counted by the lockspace state, nothing more
	msg(1, lockspace.Msg{Kind: lockspace.KindJoin, Lockspace: "early", Incarnation: 10}.Encode())
	stoppedIn := func(ls string, from int) {
		msg(from, lockspace.Msg{Kind: lockspace.KindStopped, Lockspace: ls, Change: r.Lockspaces.Spaces[ls].Change, Incarnation: member(from).Incarnation}.Encode())
	}
	stoppedIn("early", 1)
	if r.Lockspaces.Spaces["early"].Complete() {
		t.Fatal("a lockspace started before the startup check")
	}
	msg(1, fence.Msg{Kind: fence.KindStartup, Nodes: []int{1, 2, 3}}.Encode())
	if !r.Lockspaces.Spaces["early"].Complete() {
		t.Fatal("the startup check did not release the waiting change")
	}
	for _, n := range []int{1, 2, 3} {
		msg(n, lockspace.Msg{Kind: lockspace.KindJoin, Lockspace: "gfs0", Incarnation: member(n).Incarnation}.Encode())
		for _, m := range r.Lockspaces.Spaces["gfs0"].Members {
			stopped(m)
		}
	}
	if sp := r.Lockspaces.Spaces["gfs0"]; !sp.Complete() || !cmp.Equal(sp.StartedMembers, []int{1, 2, 3}) {
		t.Fatalf("three joined: %+v", sp)
	}
	view([]int{1, 2}, 3)
	stopped(1)
	stopped(2)
	sp := r.Lockspaces.Spaces["gfs0"]
	if sp.Complete() || !cmp.Equal(r.Lockspaces.WaitingFence(sp), []int{3}) {
		t.Fatalf("started before node 3 was fenced: %+v", sp)
	}
	// A failed attempt changes nothing; the result does.
	msg(1, fence.Msg{Kind: fence.KindProgress, Node: 3, FailSeq: r.Fence.Pending[3].FailSeq, Device: "lab", Err: "x"}.Encode())
	if r.Lockspaces.Spaces["gfs0"].Complete() {
		t.Fatal("started after a failed attempt")
	}
	msg(1, fence.Msg{Kind: fence.KindResult, Node: 3, FailSeq: r.Fence.Pending[3].FailSeq, OK: true}.Encode())
	if sp := r.Lockspaces.Spaces["gfs0"]; !sp.Complete() || !cmp.Equal(sp.StartedMembers, []int{1, 2}) || r.Lockspaces.Seq != seq {
		t.Fatalf("after the fence: %+v (seq %d, want %d)", sp, r.Lockspaces.Seq, seq)
	}
	// A garbled fence message is counted, not applied.
	msg(2, []byte{fence.MsgTag, 0xff})
	if r.Fence.Rejected != 1 {
		t.Errorf("rejected %d", r.Fence.Rejected)
	}
}

func TestReplicatedSnapshot(t *testing.T) {
	r := NewReplicated()
	r.Apply(&cluster.View{Seq: 1, Members: []cluster.Member{member(1), member(2)}})
	r.Apply(&cluster.Message{Seq: 2, From: member(1), Data: lockspace.Msg{Kind: lockspace.KindJoin, Lockspace: "a", Incarnation: 10}.Encode()})
	r.Apply(&cluster.View{Seq: 3, Members: []cluster.Member{member(1)}, Failed: []cluster.Member{member(2)}})
	snap, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	o := NewReplicated()
	ls, fs := o.Lockspaces, o.Fence
	if err := o.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if o.Lockspaces != ls || o.Fence != fs {
		t.Error("Restore replaced the parts instead of restoring them in place")
	}
	if diff := cmp.Diff(r.Fence, o.Fence); diff != "" {
		t.Errorf("fence state (-want +got):\n%s", diff)
	}
	if !o.Fence.Blocks(2) || o.Lockspaces.Unfenced == nil || !o.Lockspaces.Unfenced(2) {
		t.Error("restored state lost its fencing link")
	}
	// A snapshot from before fencing: the lockspace state alone.
	old, _ := r.Lockspaces.Snapshot()
	if err := o.Restore(old); err != nil || o.Lockspaces.Spaces["a"] == nil || len(o.Fence.Pending) != 0 {
		t.Errorf("legacy snapshot: %v %+v", err, o.Fence)
	}
	for _, bad := range []string{`{`, `{"lockspaces":{},"fence":{"pending":{"3":{"node":4,"reason":1}}}}`} {
		if err := o.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%s) accepted", bad)
		}
	}
}

// TestLastMemberFailed: a lockspace whose members all failed or left,
// one failed member still not fenced, is not made anew without waiting:
// that node may still run it, holding its locks.
func TestLastMemberFailed(t *testing.T) {
	for _, c := range []struct {
		name    string
		members []int
		steps   func(r *Replicated, seq *uint64)
	}{
		{"the only member failed", []int{3}, func(r *Replicated, seq *uint64) {
			*seq++
			r.Apply(&cluster.View{Seq: *seq, Members: []cluster.Member{member(1), member(2)}, Failed: []cluster.Member{member(3)}})
		}},
		{"one failed, then the other left", []int{1, 3}, func(r *Replicated, seq *uint64) {
			*seq++
			r.Apply(&cluster.View{Seq: *seq, Members: []cluster.Member{member(1), member(2)}, Failed: []cluster.Member{member(3)}})
			*seq++
			r.Apply(&cluster.Message{Seq: *seq, From: member(1), Data: lockspace.Msg{Kind: lockspace.KindLeave, Lockspace: "gfs0", Incarnation: 10}.Encode()})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReplicated()
			seq := uint64(1)
			r.Apply(&cluster.View{Seq: seq, Members: []cluster.Member{member(1), member(2), member(3)}})
			msg := func(from int, m lockspace.Msg) {
				seq++
				m.Incarnation = member(from).Incarnation
				r.Apply(&cluster.Message{Seq: seq, From: member(from), Data: m.Encode()})
			}
			seq++
			r.Apply(&cluster.Message{Seq: seq, From: member(1), Data: fence.Msg{Kind: fence.KindStartup, Nodes: []int{1, 2, 3}}.Encode()})
			for _, m := range c.members {
				msg(m, lockspace.Msg{Kind: lockspace.KindJoin, Lockspace: "gfs0"})
				for _, s := range r.Lockspaces.Spaces["gfs0"].Members {
					msg(s, lockspace.Msg{Kind: lockspace.KindStopped, Lockspace: "gfs0", Change: r.Lockspaces.Spaces["gfs0"].Change})
				}
			}
			c.steps(r, &seq)
			msg(2, lockspace.Msg{Kind: lockspace.KindJoin, Lockspace: "gfs0"})
			msg(2, lockspace.Msg{Kind: lockspace.KindStopped, Lockspace: "gfs0", Change: r.Lockspaces.Spaces["gfs0"].Change})
			if sp := r.Lockspaces.Spaces["gfs0"]; sp.Complete() {
				t.Fatalf("node 2 started gfs0 alone before node 3 was fenced: %+v", sp)
			}
			seq++
			r.Apply(&cluster.Message{Seq: seq, From: member(1), Data: fence.Msg{Kind: fence.KindResult, Node: 3, FailSeq: r.Fence.Pending[3].FailSeq, OK: true}.Encode()})
			if sp := r.Lockspaces.Spaces["gfs0"]; !sp.Complete() || !cmp.Equal(sp.StartedMembers, []int{2}) {
				t.Fatalf("after the fence: %+v", sp)
			}
		})
	}
}
