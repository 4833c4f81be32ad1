package raftcluster

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestNoQuorumWhileFailureProposed: the leader proposes the failure of a
// silent follower, and the follower comes back before the failure is
// committed; its catch-up is slow (here: the leader's appends to it are
// lost for a while, as when it is probed one append at a time), while
// heartbeats get through. The follower must not report quorum for the
// incarnation being failed: its catch-up read index, the commit index,
// does not cover the proposal, so only the leader, which knows it
// proposed the failure, can keep it from holding a lease meanwhile.
func TestNoQuorumWhileFailureProposed(t *testing.T) {
	for run := range 10 {
		tn := newTestNet(t, 3, nil)
		tn.form()
		tn.settle()
		lead := tn.leaders()[0]
		f := lead%3 + 1
		other := 6 - lead - f
		n, l := tn.nodes[f], tn.nodes[lead].core
		inc := n.core.Status().Self.Incarnation
		tn.partition([]int{f}, []int{lead, other})
		tn.runUntil("the leader counts the follower silent", 10*l.cfg.FailTicks, func() bool { return l.silence[f] >= l.cfg.FailTicks })
		// The proposal, with the leader alone: it cannot commit.
		tn.partition([]int{lead}, []int{f}, []int{other})
		tn.runUntil("the leader proposes the follower's failure", 3, func() bool { return len(l.failing) > 0 })
		// The follower is back, the other voter cut off, and the
		// leader's appends to the follower lost for a while.
		tn.partition([]int{lead, f}, []int{other})
		tn.drop = func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgApp && int(m.GetTo()) == f }
		for tick := 0; !n.sawFailed(f, inc); tick++ {
			if tick == 2*l.cfg.FailTicks {
				tn.drop = nil
			}
			if tick > 10*l.cfg.FailTicks {
				t.Fatalf("run %d: the follower never applied its failure", run)
			}
			tn.tick()
			if n.quorate && n.core.Status().Self.Incarnation == inc && !n.sawFailed(f, inc) {
				t.Fatalf("run %d, tick %d: node %d reports quorum while its failure, proposed before it came back, is not applied", run, tick, f)
			}
		}
	}
}
