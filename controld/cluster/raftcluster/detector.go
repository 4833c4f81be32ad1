package raftcluster

import (
	"fmt"
	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3"
)

// Failure detection: the Core counts, for each peer, the ticks since it
// last received any consensus message from it. Only the leader acts on
// the counts, because only the leader hears from every member (the
// followers do not talk to each other): a member silent for more than
// FailTicks gets a Fail entry, proposed once and again if it was not
// applied within two election timeouts.
//
// A node that just became leader has stale counts for the other
// followers, so it restarts them all, except the previous leader's: that
// one's silence is genuine, it is why there was an election. So a dead
// leader is declared failed about FailTicks after it went silent, as
// soon as a new leader exists.

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
// in flight to the new leader, and on becoming leader restarts the
// silence counts.
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
			if uint64(id) != c.lastLeader {
				c.silence[id] = 0
			}
		}
		clear(c.failing)
		c.log.Info("became leader", "term", bs.GetTerm())
	} else {
		c.log.Debug("new leader", "leader", bs.Lead, "term", bs.GetTerm())
	}
	c.lastLeader = bs.Lead
	c.sinceLeader = 0
	if c.inflight != nil {
		c.inflight.sent = false
	}
}

// isQuorate says whether this node is in a quorate partition now: it is
// the leader (CheckQuorum makes a leader that lost its majority step
// down within an election timeout), or it is a follower that heard from
// its leader within an election timeout.
func (c *Core) isQuorate() bool {
	bs := c.rn.BasicStatus()
	if bs.RaftState == raft.StateLeader {
		return true
	}
	return bs.Lead != 0 && c.sinceLeader <= c.cfg.ElectionTicks
}

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
