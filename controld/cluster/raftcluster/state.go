package raftcluster

import (
	"maps"
	"slices"

	"github.com/godlm/godlm/controld/cluster"
)

// nodeRecord is what the replicated state remembers of one node id.
type nodeRecord struct {
	// Inc is the node's latest accepted incarnation, which is also the
	// highest ever seen: a Hello is accepted only with a larger one.
	Inc uint64
	// Seq is the sequence number of the last batch of Inc applied.
	// It is kept after Inc failed or left, so a node that learns of
	// its own failure from a snapshot can still tell which of its
	// batches were applied before.
	Seq uint64
	// Status says whether Inc is a member, failed or left.
	Status memberStatus
}

// memberStatus is the status of a node's latest incarnation.
type memberStatus byte

const (
	statusFailed memberStatus = iota // declared failed, or replaced by a later incarnation
	statusMember
	statusLeft // left cleanly
)

// clusterState is the replicated state of the cluster layer itself:
// who is a member, in which incarnation, and the batch sequence numbers
// that make re-proposed batches idempotent. Every node derives it from
// the same log, so apply must be deterministic and depend on nothing
// but its arguments.
type clusterState struct {
	nodes map[int]nodeRecord
}

func newClusterState() *clusterState {
	return &clusterState{nodes: map[int]nodeRecord{}}
}

// members returns the current members, sorted by ID.
func (s *clusterState) members() []cluster.Member {
	var ms []cluster.Member
	for _, id := range slices.Sorted(maps.Keys(s.nodes)) {
		if r := s.nodes[id]; r.Status == statusMember {
			ms = append(ms, cluster.Member{ID: id, Incarnation: r.Inc})
		}
	}
	return ms
}

// isMember reports whether m is a current member.
func (s *clusterState) isMember(m cluster.Member) bool {
	r, ok := s.nodes[m.ID]
	return ok && r.Status == statusMember && r.Inc == m.Incarnation
}

// apply applies the entry at log position index and returns the events
// it causes, in order: nothing when the entry is rejected (a duplicate,
// or from an incarnation that is not the current member), one *View for
// an accepted membership change, one *Message per payload of an accepted
// batch. The rules:
//
//   - Hello{n, inc} is accepted only if inc is larger than every
//     incarnation of n seen before and at most MaxIncarnation. If an
//     older incarnation of n was a member, the same view fails it and
//     adds the new one.
//   - Batch{n, inc, seq} is accepted only from the current member n/inc
//     and only if seq follows the last applied batch of n/inc, so a
//     batch proposed twice (after a leader change or a timeout) is
//     applied once.
//   - Fail{n, inc} and Leave{n, inc} are accepted only for the current
//     member n/inc.
func (s *clusterState) apply(index uint64, e entry) []cluster.Event {
	r := s.nodes[e.Node]
	m := cluster.Member{ID: e.Node, Incarnation: e.Inc}
	switch e.Kind {
	case kindHello:
		if e.Inc <= r.Inc || e.Inc > MaxIncarnation {
			return nil
		}
		v := &cluster.View{Seq: index, Joined: []cluster.Member{m}}
		if r.Status == statusMember {
			v.Failed = []cluster.Member{{ID: e.Node, Incarnation: r.Inc}}
		}
		s.nodes[e.Node] = nodeRecord{Inc: e.Inc, Status: statusMember}
		v.Members = s.members()
		return []cluster.Event{v}
	case kindBatch:
		if !s.isMember(m) || e.Seq != r.Seq+1 {
			return nil
		}
		r.Seq = e.Seq
		s.nodes[e.Node] = r
		evs := make([]cluster.Event, len(e.Msgs))
		for i, data := range e.Msgs {
			evs[i] = &cluster.Message{Seq: index, From: m, Data: data}
		}
		return evs
	case kindFail, kindLeave:
		if !s.isMember(m) {
			return nil
		}
		v := &cluster.View{Seq: index}
		if e.Kind == kindFail {
			r.Status = statusFailed
			v.Failed = []cluster.Member{m}
		} else {
			r.Status = statusLeft
			v.Left = []cluster.Member{m}
		}
		s.nodes[e.Node] = r
		v.Members = s.members()
		return []cluster.Event{v}
	}
	return nil
}
