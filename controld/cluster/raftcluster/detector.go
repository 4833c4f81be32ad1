package raftcluster

import (
	"fmt"
	"slices"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Failure detection: the Core counts, for each peer, the ticks since it
// last received any consensus message from it. Only the leader acts on
// the counts, because only the leader hears from every member (the
// followers do not talk to each other): a member silent for more than
// FailTicks gets a Fail entry, proposed once and again if it was not
// applied within two election timeouts.
//
// A node that just became leader has stale counts: as a follower it
// heard nothing from the other followers. It caps every count at one
// election timeout (ElectionTicks) rather than keeping them (false
// failures) or restarting them (a dead leader would be failed only
// FailTicks after the election). Why the cap is safe is in the lease
// rules below.
//
// # Leases
//
// A node that is cut off from the majority must stop its lockspaces
// before the majority declares it failed and recovers its locks. Let
//
//	T = FailTicks: a member is failed once the leader heard nothing
//	    from it for more than T ticks;
//	L = LeaseTicks: a node is quorate only while it holds a lease that
//	    is at most L ticks old;
//	margin = T - L (with the defaults T = 10, L = 5: 5 ticks, half the
//	    failure timeout).
//
// The leases: a leader holds one while a majority of the voters
// (itself included) acknowledged one of its messages of its current
// term within the last L ticks; it counts acknowledgements (append and
// heartbeat responses, granted votes), not just any message, since a
// peer that asks for votes does not follow it. A follower holds the
// lease its leader grants in every heartbeat: what is left of the
// leader's own lease, and no more than L ticks after the leader last
// heard from that follower. So no follower stays quorate longer than
// its leader may, nor longer than L after the leader last heard it.
// Nobody else (candidates, nodes without a leader) is quorate. These
// checks run every tick, not every election timeout as the consensus
// library's CheckQuorum does.
//
// Why a node N stops at least `margin` ticks before its failure is
// applied, with messages taking at most one tick:
//
//   - The leader fails N when it heard nothing from N for T ticks. If N
//     is its follower, N's lease ended at most L ticks after the
//     leader last heard N, so at least T - L ticks before.
//   - If the failing leader Z was elected while N followed another
//     leader X (or was X): every voter of Z had heard nothing from X
//     for at least ElectionTicks when it voted (the consensus library
//     ignores vote requests while its leader is live), so X heard its
//     last acknowledgement from them at most ElectionTicks - 1 ticks
//     before Z's election. Z's voters are a majority, so without them
//     X has none: X's lease, and every lease X granted (N's), ended at
//     most L ticks after that. Z counts N's silence from at most
//     ElectionTicks before its election (the cap), and fails N when the
//     count passes T, so at least T - L ticks after N stopped.
//
// The simulator checks this with random partitions and message loss:
// whenever a node's failure is applied, that node, if still running,
// has been not quorate for at least the margin. A node that is
// descheduled is not protected by any of this (it may still believe
// in a lease it no longer has when it runs again); fencing covers it.

// detectFailures proposes Fail for every silent member, on the leader.
func (c *Core) detectFailures() {
	if c.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	for _, m := range c.state.members() {
		if m.ID == c.cfg.Self.ID || c.silence[m.ID] <= c.cfg.FailTicks {
			continue
		}
		if at, ok := c.failing[m]; ok && c.ticks-at < c.retryTicks() {
			continue
		}
		e := entry{Kind: kindFail, Node: m.ID, Inc: m.Incarnation}
		if err := c.rn.Propose(e.encode()); err != nil {
			c.log.Debug("could not propose a failure", "member", m, "err", err)
			continue
		}
		c.failing[m] = c.ticks
		c.log.Info("member silent; proposing its failure", "member", m, "silent_ticks", c.silence[m.ID])
	}
}

// updateLeader follows leader changes: it re-proposes this node's entry
// in flight to the new leader, and on becoming leader caps the silence
// counts.
func (c *Core) updateLeader() {
	bs := c.rn.BasicStatus()
	if bs.Lead == c.lead {
		return
	}
	c.lead = bs.Lead
	if bs.Lead == 0 {
		return
	}
	if bs.Lead == c.self {
		for id := range c.silence {
			c.silence[id] = min(c.silence[id], c.cfg.ElectionTicks)
		}
		clear(c.failing)
		c.log.Info("became leader", "term", bs.GetTerm())
	} else {
		c.log.Debug("new leader", "leader", bs.Lead, "term", bs.GetTerm())
	}
	c.lastLeader = bs.Lead
	if c.inflight != nil {
		c.inflight.sent = false
	}
}

// noteAck records, before m is stepped, an acknowledgement of this
// node's current term: the peer follows this node (or voted for it).
func (c *Core) noteAck(m *raftpb.Message) {
	switch m.GetType() {
	case raftpb.MsgAppResp, raftpb.MsgHeartbeatResp:
	case raftpb.MsgVoteResp:
		if m.GetReject() {
			return
		}
	default:
		return
	}
	if term := c.rn.BasicStatus().GetTerm(); m.GetTerm() == term {
		from := int(m.GetFrom())
		c.ackTick[from], c.ackTerm[from] = c.ticks, term
	}
}

// leaderLease returns how many ticks this node's lease as leader has
// left, counting this one: positive while a majority acknowledged it
// within LeaseTicks.
func (c *Core) leaderLease() int {
	need := len(c.cfg.Voters) / 2 // peers besides this node
	if need == 0 {
		return c.cfg.LeaseTicks
	}
	term := c.rn.BasicStatus().GetTerm()
	var ages []uint64
	for _, v := range c.cfg.Voters {
		if v != c.cfg.Self.ID && c.ackTerm[v] == term {
			ages = append(ages, c.ticks-c.ackTick[v])
		}
	}
	if len(ages) < need {
		return 0
	}
	slices.Sort(ages)
	return c.cfg.LeaseTicks - int(min(ages[need-1], uint64(c.cfg.LeaseTicks)))
}

// heartbeatLease is the lease field of heartbeats: the consensus library
// leaves a heartbeat's Index unused, and the leader puts there the
// ticks of lease it grants the follower (0: none).
func heartbeatLease(m *raftpb.Message) uint64 { return m.GetIndex() }

// grantLeases writes into each outgoing heartbeat the lease this node,
// as leader, grants its addressee: what is left of its own lease, and
// no more than LeaseTicks after it last heard from the addressee.
func (c *Core) grantLeases(msgs []*raftpb.Message) {
	bs := c.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		return
	}
	own := c.leaderLease()
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgHeartbeat {
			continue
		}
		grant := 0
		if to := int(m.GetTo()); c.ackTerm[to] == bs.GetTerm() && c.saveErr == nil && !c.proposedFailure(to) {
			grant = min(own, c.cfg.LeaseTicks-int(min(c.ticks-c.ackTick[to], uint64(c.cfg.LeaseTicks))))
		}
		m.Index = new(uint64(max(grant, 0)))
	}
}

// proposedFailure reports whether this leader proposed the failure of
// node id's current incarnation and has not applied it yet. Such a node
// gets no lease: it may hear from the leader again before the failure
// is committed (its own acknowledgement may be what commits it), and
// its catch-up read index, the commit index, does not cover the
// proposal, so with a lease it would report quorum until its failure
// is applied. The proposal is in this leader's log and commits while it
// leads; a new leader starts with none, and its read index covers the
// entries of earlier terms.
func (c *Core) proposedFailure(id int) bool {
	for m := range c.failing {
		if m.ID == id {
			return true
		}
	}
	return false
}

// noteLease takes, after m was stepped, the lease a heartbeat from this
// node's leader grants. A message that takes one tick keeps the
// follower's lease within the leader's: a lease of g ticks granted at
// the leader's tick t lasts through its tick t+g-1, and the follower,
// receiving it at its tick t+1 at the latest, counts g-1 ticks from
// there.
func (c *Core) noteLease(m *raftpb.Message) {
	if m.GetType() != raftpb.MsgHeartbeat {
		return
	}
	bs := c.rn.BasicStatus()
	if bs.Lead != m.GetFrom() || bs.GetTerm() != m.GetTerm() {
		return
	}
	if c.leaseLead != bs.Lead || c.leaseTerm != bs.GetTerm() {
		c.leaseLead, c.leaseTerm, c.leaseUntil = bs.Lead, bs.GetTerm(), 0
	}
	if g := heartbeatLease(m); g > 0 {
		c.leaseUntil = max(c.leaseUntil, c.ticks+g-1)
	}
}

// isQuorate says whether this node is in a quorate partition now: it
// holds a lease (see above) and its state is written.
func (c *Core) isQuorate() bool {
	if c.saveErr != nil {
		return false
	}
	bs := c.rn.BasicStatus()
	if bs.RaftState == raft.StateLeader {
		return c.leaderLease() > 0
	}
	return bs.Lead != 0 && bs.Lead == c.leaseLead && bs.GetTerm() == c.leaseTerm && c.ticks < c.leaseUntil
}

// Margin is FailTicks minus LeaseTicks: how many ticks before the
// majority declares a cut-off node failed that node has stopped being
// quorate (see the lease rules above).
func (c *Core) Margin() int { return c.cfg.FailTicks - c.cfg.LeaseTicks }

// updateQuorum emits a Quorum event when quorum changed. A Core starts
// not quorate and says nothing until it first becomes quorate.
//
// Regaining contact is not enough to report quorum: the node must first
// apply everything the cluster committed meanwhile (which may include
// its own expulsion), or it would act on a stale state. So it asks the
// leader for a read index, confirmed by a majority, and reports quorum
// once it has applied up to that index.
func (c *Core) updateQuorum() {
	q := c.isQuorate()
	if !q {
		c.readCtx, c.readIndex = nil, 0
	} else if !c.quorate {
		if c.readIndex == 0 {
			if c.readCtx == nil || c.ticks-c.readAt >= uint64(c.cfg.ElectionTicks) {
				c.nextID++
				c.readCtx = fmt.Appendf(nil, "catch-up %d/%d", c.inc, c.nextID)
				c.readAt = c.ticks
				c.rn.ReadIndex(c.readCtx)
			}
			q = false
		} else if c.applied < c.readIndex {
			q = false
		}
	}
	if q != c.quorate {
		c.quorate = q
		c.out.Events = append(c.out.Events, &cluster.Quorum{Quorate: q})
		c.log.Info("quorum changed", "quorate", q)
	}
}
