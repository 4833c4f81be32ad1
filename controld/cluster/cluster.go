// Package cluster is the daemon core's only view of the other nodes: one
// stream of events, in a total order that is the same on every node that
// delivers it, and a way to add messages to that order.
//
// Two kinds of events are ordered: membership views (View) and messages
// broadcast by a member (Message). Every node applies them, in order, to
// its own copy of the replicated state (a StateMachine), so all copies
// agree after the same prefix. A node may stop delivering (it crashed or
// lost quorum), never diverge. A node that restarts is a new incarnation:
// it receives the replicated state as a snapshot (Restored), never a
// replay of what concerned its previous life.
//
// Local events (Quorum) are not ordered: they tell this node whether it
// is part of a quorate partition right now.
//
// The embedded implementation is in the raftcluster package; nothing in
// this package depends on it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Member is one incarnation of one node's daemon. Incarnations of a node
// only grow: each daemon start picks a larger one.
type Member struct {
	ID          int
	Incarnation uint64
}

func (m Member) String() string { return fmt.Sprintf("%d/%d", m.ID, m.Incarnation) }

// Event is one of *View, *Message, *Restored or *Quorum.
type Event interface{ isEvent() }

// View is a new membership of the cluster, in the total order.
type View struct {
	Seq     uint64   // position in the total order; equal on every node
	Members []Member // every member after the change, sorted by ID
	Joined  []Member // members new in this view
	Left    []Member // members that left cleanly
	Failed  []Member // members declared failed (silent for the timeout, or replaced by a new incarnation)
}

// Message is a payload a member broadcast, in the total order.
type Message struct {
	Seq  uint64 // position in the total order; several messages may share one
	From Member
	Data []byte
}

// Restored says the replicated state was replaced by a snapshot taken at
// Seq: this node started, or fell too far behind. Members is the view in
// the snapshot.
type Restored struct {
	Seq     uint64
	Members []Member
}

// Quorum is a local change of this node's quorum: whether it is in
// contact with a majority of the configured votes. It is not ordered
// with the other events; a node without quorum receives no ordered
// events until it has quorum again.
type Quorum struct {
	Quorate bool
}

func (*View) isEvent()     {}
func (*Message) isEvent()  {}
func (*Restored) isEvent() {}
func (*Quorum) isEvent()   {}

// StateMachine is the replicated state above the cluster layer. The
// cluster layer calls Apply with every *View and *Message, in order, and
// Restore when it replaces the state by a snapshot; it calls Snapshot to
// compact its log. Apply must be deterministic: the same events give the
// same state on every node. Calls never overlap.
type StateMachine interface {
	Apply(e Event)
	Snapshot() ([]byte, error)
	Restore(data []byte) error
}

// Cluster is what the daemon core is written against.
type Cluster interface {
	// Events delivers every event after it has been applied to the
	// StateMachine, in order. It is closed when the cluster stops.
	Events() <-chan Event
	// Broadcast adds data to the total order. It returns once the
	// message has been applied on this node, or with an error wrapping
	// ErrNoQuorum, ErrClosed or the context's error. A message is
	// applied at most once; messages of one node are applied in the
	// order Broadcast was called.
	Broadcast(ctx context.Context, data []byte) error
	// Status reports this node's view, for dlm_tool status.
	Status() Status
	// Close leaves the cluster cleanly (others see Left, not Failed)
	// when it can within ctx, and stops.
	Close(ctx context.Context) error
}

// Status is a snapshot of one node's cluster state.
type Status struct {
	Self     Member
	Quorate  bool
	Leader   int    // 0 when unknown
	Term     uint64 // consensus term
	Applied  uint64 // last applied position in the order
	Voters   []int  // configured nodes, each with one vote
	Members  []Member
	Peers    []Peer
	Timeout  time.Duration // failure timeout
	Protocol string        // "raft" for the embedded implementation
}

// Peer is one configured node other than this one, as seen from here.
type Peer struct {
	ID        int
	Addr      string
	Connected bool
	LastHeard time.Duration // since the last message from it; <0 when never
}

// Errors of Broadcast.
var (
	ErrNoQuorum = errors.New("cluster has no quorum")
	ErrClosed   = errors.New("cluster layer closed")
)

// ErrExpelled is returned by Broadcast for a message of an incarnation
// the cluster declared failed: it will never be applied. The node goes
// on as a new incarnation.
var ErrExpelled = errors.New("this incarnation was declared failed by the cluster")
