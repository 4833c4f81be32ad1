package raftcluster

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The consensus library trusts its peers: a message with inconsistent
// fields can make it panic. Step therefore checks every message from the
// network first. The checks are structural (addressee, sender, types,
// indexes and terms that fit together, a snapshot that decodes), plus
// two that are about this cluster layer: proposals must be entries a
// node may propose for itself (never a Fail, which only the leader
// proposes, locally), and no configuration changes at all (the voter
// list is fixed).

// networkTypes are the message types peers exchange.
var networkTypes = map[raftpb.MessageType]bool{
	raftpb.MsgProp:          true,
	raftpb.MsgApp:           true,
	raftpb.MsgAppResp:       true,
	raftpb.MsgVote:          true,
	raftpb.MsgVoteResp:      true,
	raftpb.MsgSnap:          true,
	raftpb.MsgHeartbeat:     true,
	raftpb.MsgHeartbeatResp: true,
	raftpb.MsgTimeoutNow:    true,
	raftpb.MsgPreVote:       true,
	raftpb.MsgPreVoteResp:   true,
	raftpb.MsgReadIndex:     true, // a follower catching up before it reports quorum
	raftpb.MsgReadIndexResp: true,
}

// checkMessage returns the message to step, or an error wrapping
// ErrBadMessage. It may return a corrected copy (see checkHeartbeat).
func (c *Core) checkMessage(m *raftpb.Message) (*raftpb.Message, error) {
	if m == nil {
		return nil, fmt.Errorf("nil message: %w", ErrBadMessage)
	}
	t, from := m.GetType(), m.GetFrom()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s from %d: %s: %w", t, from, fmt.Sprintf(format, args...), ErrBadMessage)
	}
	switch {
	case !networkTypes[t]:
		return nil, bad("not a type peers send")
	case m.GetTo() != c.self:
		return nil, bad("addressed to %d, this is %d", m.GetTo(), c.self)
	case !c.voters[from]:
		return nil, bad("sender is not a configured node")
	case t == raftpb.MsgProp:
		return m, c.checkProposal(m, bad)
	case t == raftpb.MsgReadIndex:
		// Forwarded by a follower, like a proposal: no term; one entry
		// holding the request's small context. Like a proposal, it is
		// taken only by the leader (see checkProposal).
		if c.rn.BasicStatus().RaftState != raft.StateLeader {
			return nil, fmt.Errorf("%s from %d: this node is not the leader: %w", t, from, raft.ErrProposalDropped)
		}
		if es := m.GetEntries(); len(es) != 1 || len(es[0].GetData()) > 64 {
			return nil, bad("read index request without exactly one small context")
		}
		return m, nil
	case from == c.self:
		return nil, bad("sent by this node's id")
	case m.GetTerm() == 0:
		return nil, bad("no term")
	}
	switch t {
	case raftpb.MsgAppResp:
		return m, c.checkAppendResp(m, bad)
	case raftpb.MsgApp:
		return m, c.checkAppend(m, bad)
	case raftpb.MsgSnap:
		return m, c.checkSnapshot(m, bad)
	case raftpb.MsgHeartbeat:
		return c.checkHeartbeat(m), nil
	}
	return m, nil
}

// checkProposal checks a proposal forwarded by a follower. The sender
// may propose only its own Hello, Batch and Leave, and a Hello only for
// an incarnation up to MaxIncarnation. The transport delivers a message
// only from the node its connection authenticated, so the sender is the
// node that proposed, and it can speak for itself alone. A proposal
// therefore must come straight from its proposer: a node that is not
// the leader drops it rather than forward it (the consensus library
// would pass it on under the proposer's id, which the leader's
// transport refuses); the proposer proposes again after a leader change
// or a timeout.
func (c *Core) checkProposal(m *raftpb.Message, bad func(string, ...any) error) error {
	if c.rn.BasicStatus().RaftState != raft.StateLeader {
		return fmt.Errorf("%s from %d: this node is not the leader: %w", m.GetType(), m.GetFrom(), raft.ErrProposalDropped)
	}
	if m.GetTerm() != 0 {
		return bad("proposal with a term")
	}
	if len(m.GetEntries()) == 0 {
		return bad("empty proposal")
	}
	for _, e := range m.GetEntries() {
		if e.GetType() != raftpb.EntryNormal {
			return bad("proposes a %s", e.GetType())
		}
		ent, err := decodeEntry(e.GetData())
		if err != nil {
			return bad("%v", err)
		}
		if ent.Kind == kindFail {
			return bad("proposes a failure: only the leader does")
		}
		if uint64(ent.Node) != m.GetFrom() {
			return bad("proposes %s for another node", ent)
		}
		if ent.Kind == kindHello && ent.Inc > MaxIncarnation {
			return bad("proposes %s: incarnation beyond %d", ent, uint64(MaxIncarnation))
		}
	}
	return nil
}

// checkAppend checks that the entries of a MsgApp follow its previous
// index, in order, with terms between the previous entry's and the
// message's, and that none rewrites an entry this node knows committed.
func (c *Core) checkAppend(m *raftpb.Message, bad func(string, ...any) error) error {
	prevTerm := m.GetLogTerm()
	if prevTerm > m.GetTerm() {
		return bad("previous entry's term %d after the message's %d", prevTerm, m.GetTerm())
	}
	committed := c.rn.BasicStatus().GetCommit()
	first, _ := c.storage.FirstIndex()
	last, _ := c.storage.LastIndex()
	for i, e := range m.GetEntries() {
		idx := m.GetIndex() + 1 + uint64(i)
		switch {
		case e == nil:
			return bad("nil entry")
		case e.GetIndex() != idx:
			return bad("entry %d at position of %d", e.GetIndex(), idx)
		case e.GetTerm() < prevTerm || e.GetTerm() > m.GetTerm():
			return bad("entry %d has term %d, outside [%d, %d]", idx, e.GetTerm(), prevTerm, m.GetTerm())
		case e.GetType() != raftpb.EntryNormal:
			return bad("entry %d is a %s", idx, e.GetType())
		}
		if idx <= committed && idx >= first && idx <= last {
			if t, err := c.storage.Term(idx); err == nil && t != e.GetTerm() {
				return bad("entry %d of term %d rewrites a committed entry of term %d", idx, e.GetTerm(), t)
			}
		}
		prevTerm = e.GetTerm()
	}
	return nil
}

// checkAppendResp refuses, on the leader, an acknowledgement of entries
// beyond its own log in its own term: a follower acknowledges only what
// the leader sent, and the leader sends only what it persisted. The
// consensus library would take it and loop sending snapshots.
func (c *Core) checkAppendResp(m *raftpb.Message, bad func(string, ...any) error) error {
	bs := c.rn.BasicStatus()
	if m.GetReject() || bs.RaftState != raft.StateLeader || m.GetTerm() != bs.GetTerm() {
		return nil
	}
	if last, err := c.storage.LastIndex(); err == nil && m.GetIndex() > last {
		return bad("acknowledges index %d beyond this leader's log (%d)", m.GetIndex(), last)
	}
	return nil
}

// checkSnapshot checks a snapshot's metadata and decodes its data, so a
// snapshot the Core could not restore is refused before the consensus
// takes it.
func (c *Core) checkSnapshot(m *raftpb.Message, bad func(string, ...any) error) error {
	s := m.GetSnapshot()
	md := s.GetMetadata()
	cs := md.GetConfState()
	switch {
	case s == nil || md == nil || cs == nil:
		return bad("no snapshot")
	case md.GetIndex() == 0 || md.GetTerm() == 0 || md.GetTerm() > m.GetTerm():
		return bad("snapshot at index %d, term %d", md.GetIndex(), md.GetTerm())
	case !slices.Equal(slices.Sorted(slices.Values(cs.GetVoters())), c.voterList()) ||
		len(cs.GetLearners())+len(cs.GetVotersOutgoing())+len(cs.GetLearnersNext()) > 0 || cs.GetAutoLeave():
		return bad("snapshot of another configuration (voters %v)", cs.GetVoters())
	case len(cs.ProtoReflect().GetUnknown()) > 0:
		// The library compares configurations field by field, unknown
		// ones included, and panics when they differ.
		return bad("snapshot configuration with unknown fields")
	}
	if _, _, err := decodeSnapshot(s.GetData()); err != nil {
		return bad("%v", err)
	}
	return nil
}

// checkHeartbeat deals with a leader that believes this node has log
// entries it does not have. A leader attaches to a heartbeat the commit
// index up to what the follower acknowledged; a follower acknowledges
// only what it persisted, so a commit beyond this node's log means the
// node lost its log (it restarted with empty storage). The consensus
// library would panic on it. The heartbeat is stepped without the
// commit, and the node forces a new term (see forceElection).
func (c *Core) checkHeartbeat(m *raftpb.Message) *raftpb.Message {
	last, err := c.storage.LastIndex()
	if err != nil || m.GetCommit() <= last {
		return m
	}
	c.lostLog = true
	m = proto.Clone(m).(*raftpb.Message)
	m.Commit = new(c.rn.BasicStatus().GetCommit())
	return m
}

// forceElection starts an election that bypasses the other nodes'
// leader leases, as if the leader had handed over leadership
// (MsgTimeoutNow). A leader never lowers what it believes a follower
// has, except when a new term starts: then it probes every follower
// from scratch. This node cannot win with its empty log, but the new
// term makes the next leader find what it lacks and send it entries or
// a snapshot. It is safe (votes still go only to up-to-date logs) and
// costs one election; it happens at most once per two election
// timeouts.
func (c *Core) forceElection() {
	c.lostLog = false
	if c.forced && c.ticks-c.forcedAt < c.retryTicks() {
		return
	}
	bs := c.rn.BasicStatus()
	if bs.Lead == 0 || bs.Lead == c.self {
		return
	}
	c.forced, c.forcedAt = true, c.ticks
	c.log.Warn("the leader believes this node has log entries it lacks (restarted with empty storage?); forcing a new term so the leader probes it again", "leader", bs.Lead, "term", bs.GetTerm())
	if err := c.rn.Step(&raftpb.Message{
		Type: raftpb.MsgTimeoutNow.Enum(),
		From: new(bs.Lead),
		To:   new(c.self),
		Term: new(bs.GetTerm()),
	}); err != nil {
		c.log.Warn("forcing an election failed", "err", err)
	}
}
