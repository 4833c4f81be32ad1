// Package clustertest has an in-process cluster of one node, for tests
// of code written against the cluster contract.
package clustertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/godlm/godlm/controld/cluster"
)

// Loopback is a cluster whose only member is this node: every broadcast
// is ordered at once. It is always quorate until SetQuorate says
// otherwise; while not quorate, broadcasts wait.
type Loopback struct {
	self cluster.Member
	sm   cluster.StateMachine

	mu      sync.Mutex
	cond    *sync.Cond
	seq     uint64
	quorate bool
	closed  bool
	queue   []cluster.Event
	events  chan cluster.Event
	done    chan struct{}
}

// NewLoopback starts a one-node cluster applying events to sm. The first
// events are the view with this node and a quorum.
func NewLoopback(self cluster.Member, sm cluster.StateMachine) *Loopback {
	l := &Loopback{self: self, sm: sm, quorate: true, events: make(chan cluster.Event), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	l.mu.Lock()
	l.applyLocked(&cluster.View{Members: []cluster.Member{self}, Joined: []cluster.Member{self}})
	l.queue = append(l.queue, &cluster.Quorum{Quorate: true})
	l.mu.Unlock()
	go l.deliver()
	return l
}

func (l *Loopback) applyLocked(ev cluster.Event) {
	l.seq++
	switch ev := ev.(type) {
	case *cluster.View:
		ev.Seq = l.seq
	case *cluster.Message:
		ev.Seq = l.seq
	}
	l.sm.Apply(ev)
	l.queue = append(l.queue, ev)
	l.cond.Broadcast()
}

// deliver feeds Events from the queue, so ordering never waits for the
// reader.
func (l *Loopback) deliver() {
	defer close(l.done)
	defer close(l.events)
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.queue) == 0 {
			l.mu.Unlock()
			return
		}
		ev := l.queue[0]
		l.queue = l.queue[1:]
		l.mu.Unlock()
		l.events <- ev
	}
}

// Events implements cluster.Cluster.
func (l *Loopback) Events() <-chan cluster.Event { return l.events }

// Broadcast implements cluster.Cluster.
func (l *Loopback) Broadcast(ctx context.Context, data []byte) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.quorate && !l.closed && ctx.Err() == nil {
		l.cond.Wait()
	}
	switch {
	case l.closed:
		return cluster.ErrClosed
	case !l.quorate:
		return fmt.Errorf("broadcast: %w (%w)", cluster.ErrNoQuorum, ctx.Err())
	}
	l.applyLocked(&cluster.Message{From: l.self, Data: append([]byte(nil), data...)})
	return nil
}

// SetQuorate changes the node's quorum and delivers a Quorum event.
func (l *Loopback) SetQuorate(q bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.quorate = q
	l.queue = append(l.queue, &cluster.Quorum{Quorate: q})
	l.cond.Broadcast()
}

// Status implements cluster.Cluster.
func (l *Loopback) Status() cluster.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return cluster.Status{Self: l.self, Quorate: l.quorate, Leader: l.self.ID, Term: 1, Applied: l.seq,
		Voters: []int{l.self.ID}, Members: []cluster.Member{l.self}, Protocol: "loopback"}
}

// Close implements cluster.Cluster: the node leaves and Events closes
// once everything queued was delivered or dropped.
func (l *Loopback) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	// Drain whatever the reader no longer takes.
	for {
		select {
		case _, ok := <-l.events:
			if !ok {
				<-l.done
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
