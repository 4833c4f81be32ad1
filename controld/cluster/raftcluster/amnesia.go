package raftcluster

import (
	"fmt"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Amnesia. Raft counts on every node keeping what it acknowledged: an
// entry is committed once a majority stored it, and an election needs
// the votes of a majority, so some voter of every later leader holds
// the entry and refuses candidates without it. A node that lost its
// state (memory-only state, a wiped or replaced disk) breaks that: it
// may have been one of the majority that stored an entry, and with an
// empty log it votes for anyone. Three nodes show it: the leader and
// one follower commit an entry the other follower has not received;
// the leader is cut off; the first follower restarts empty and votes
// for the second, which wins without the entry, and the entry is gone.
//
// The rule: a node that starts without state is amnesiac, and an
// amnesiac node grants no vote and no pre-vote until it caught up with
// the cluster. It still acknowledges entries (what it acknowledges now
// it has persisted) and may campaign (it cannot win with an empty log
// against nodes that remember). It caught up when, following a leader,
// it knows committed an entry of that leader's term, which is its own
// current term: a leader's entries of its own term commit only after
// every entry committed before, the node's log matches the leader's up
// to that entry, and
// that leader was elected by voters that are not amnesiac (or by the
// fresh-cluster rule below), so the node's log then holds every
// committed entry and its votes are as good as anyone's. The mark is
// persisted (PersistentState.Amnesiac), so an amnesiac node that
// restarts again stays amnesiac.
//
// With the rule, a committed entry is held by a majority M of nodes
// that remember it; a leader elected later had the votes of a majority
// V of nodes that are not amnesiac; M and V share a node, which held
// the entry and so voted only for a candidate that has it. Amnesiac
// nodes in M do not break this, because they are not in V.
//
// A fresh cluster: at the first boot every node starts without state,
// so every node is amnesiac and nobody would vote. An amnesiac node
// therefore votes once it knows that a majority of the voters, itself
// included, are amnesiac too or have nothing beyond the initial
// snapshot (index 1): either the cluster is new, or a majority lost its
// state, and then nothing that only they held can be saved anyway. It
// learns it from the peers' (pre-)vote requests: they carry the
// candidate's last index, and an amnesiac candidate marks its requests
// (markVoteRequests). The first boot may already leave entries behind
// (a leader elected, its first entry appended, then a partition), so
// a blank log alone is not the test. Limits of the exception, which no
// local rule can close: if a majority of the nodes lost their state,
// what only the others held may be lost; and since a node that lost its
// state looks new, one that was in the majority holding an entry may,
// if the rest of that majority is cut off, form a majority with nodes
// that never received anything at all, which takes a cluster that ran
// with some of its nodes never started.

// blankIndex is the last index of a log holding nothing beyond the
// initial snapshot every node starts from.
const blankIndex = 1

// voteAmnesiac, in the Commit field of a (pre-)vote request (which the
// consensus library leaves unused there), says that the candidate is
// amnesiac.
const voteAmnesiac = 1

// noteVoteRequest records what a (pre-)vote request shows of its
// sender's log, and says whether this node may answer it.
func (c *Core) noteVoteRequest(m *raftpb.Message) bool {
	from := int(m.GetFrom())
	c.blank[from] = m.GetIndex() <= blankIndex || m.GetCommit() == voteAmnesiac
	if !c.amnesiac {
		return true
	}
	if c.freshCluster() {
		return true
	}
	c.log.Debug("not answering a vote request: this node lost its state and has not caught up yet", "from", from, "type", m.GetType())
	return false
}

// freshCluster says whether this amnesiac node knows that a majority of
// the voters, itself among them, are amnesiac or blank.
func (c *Core) freshCluster() bool {
	n := 1
	for id, b := range c.blank {
		if b && id != c.cfg.Self.ID {
			n++
		}
	}
	return n > len(c.cfg.Voters)/2
}

// markVoteRequests marks this node's outgoing (pre-)vote requests while
// it is amnesiac.
func (c *Core) markVoteRequests(msgs []*raftpb.Message) {
	if !c.amnesiac {
		return
	}
	for _, m := range msgs {
		if t := m.GetType(); t == raftpb.MsgPreVote || t == raftpb.MsgVote {
			m.Commit = new(uint64(voteAmnesiac))
		}
	}
}

// checkCaughtUp ends amnesia once this node's commit index reached an
// entry of its leader's current term. The mark is cleared on disk with
// the next write, which it asks for.
func (c *Core) checkCaughtUp() {
	if !c.amnesiac {
		return
	}
	bs := c.rn.BasicStatus()
	if bs.Lead == 0 || bs.GetCommit() <= blankIndex {
		return
	}
	if t, err := c.storage.Term(bs.GetCommit()); err != nil || t != bs.GetTerm() {
		return
	}
	c.amnesiac = false
	c.dirty = true
	c.log.Info("caught up with the cluster after starting without state; voting again", "commit", bs.GetCommit(), "term", bs.GetTerm())
}

// A diverged history. When a majority lost its state and went on
// without a node that was cut off, that node holds committed entries
// the cluster no longer has, and the cluster's leader sends entries
// that conflict with them. Raft has no way back from that: the node
// would refuse every append from then on. It cannot be undone either,
// since the cluster has moved on; the node drops its history and starts
// over as an amnesiac node: an empty log (only the initial snapshot,
// keeping its term and vote, so that it votes at most once per term),
// the replicated state and the StateMachine as they were before
// anything was applied (a Restored event says so), and a new
// incarnation. The leader then sends it the cluster's history. An
// append shows the conflict when it comes from a leader of this node's
// term or a later one and either its previous entry or one of its
// entries has, at an index this node knows committed, another term
// than this node's entry.
//
// Terms tell the two histories apart only if they did not reuse the
// same terms, and every fresh cluster would count its terms from 1: a
// majority that lost its state and started over would write a second
// history under the very terms of the first, and an old node would then
// take the new entries after its own as if they were one log. So a
// node without state starts its current term at its incarnation (a
// start time, in the daemon) rather than at 1: a cluster that starts
// over counts its terms from beyond any term of its earlier life, and
// the conflict shows. This assumes incarnations larger than any term
// the cluster used, which start times in nanoseconds are. It also
// closes two gaps of amnesia besides votes: the node never takes part
// in a term it may have voted in before it lost its state, and it never
// acknowledges entries for a leader elected before (that leader's term
// is lower, so it steps down instead), which could otherwise let a
// stale leader commit over entries a later one committed. The cost: a
// node that restarts without state in a running cluster answers its
// leader with a larger term, which makes the cluster hold one election
// at that term.

// divergesFrom says whether the append m conflicts with this node's
// committed log.
func (c *Core) divergesFrom(m *raftpb.Message) bool {
	bs := c.rn.BasicStatus()
	if m.GetTerm() < bs.GetTerm() {
		return false // a stale message, which the consensus ignores
	}
	committed := bs.GetCommit()
	differs := func(idx, term uint64) bool {
		if idx > committed {
			return false
		}
		t, err := c.storage.Term(idx)
		return err == nil && t != term
	}
	if differs(m.GetIndex(), m.GetLogTerm()) {
		return true
	}
	for _, e := range m.GetEntries() {
		if differs(e.GetIndex(), e.GetTerm()) {
			return true
		}
	}
	return false
}

// startOver drops this node's history after m showed that it diverged
// from the cluster's (see above).
func (c *Core) startOver(m *raftpb.Message) error {
	bs := c.rn.BasicStatus()
	c.log.Error("this node's committed log conflicts with the cluster's: the cluster lost entries this node applied (a majority lost its state?); dropping this node's history and catching up", "leader", m.GetFrom(), "term", m.GetTerm(), "commit", bs.GetCommit())
	st := c.bootstrapState()
	st.HardState.Term, st.HardState.Vote = new(bs.GetTerm()), new(bs.GetVote())
	c.storage = raft.NewMemoryStorage()
	if err := c.load(st); err != nil {
		return err
	}
	if err := c.cfg.SM.Restore(c.emptySM); err != nil {
		return fmt.Errorf("restoring the state machine's initial state: %w", err)
	}
	c.state = newClusterState()
	c.applied = blankIndex
	c.nextSnap = c.applied + c.cfg.SnapshotEntries
	c.out.Events = append(c.out.Events, &cluster.Restored{Seq: c.applied})
	c.held, c.readCtx, c.readIndex = nil, nil, 0
	c.lead, c.lostLog, c.forced = 0, false, false
	c.leaseLead, c.leaseTerm, c.leaseUntil = 0, 0, 0
	clear(c.failing)
	c.amnesiac = len(c.voters) > 1
	c.dirty = true
	c.expel()
	return c.start()
}
