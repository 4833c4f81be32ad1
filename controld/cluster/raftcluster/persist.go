package raftcluster

import (
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// PersistentState is what a node must keep across restarts for the
// consensus to stay safe: the term and vote (HardState), the latest
// snapshot and the log entries after it. The Core compacts the log
// often, so the whole state stays small and is saved in one piece.
type PersistentState struct {
	HardState *raftpb.HardState
	Snapshot  *raftpb.Snapshot
	Entries   []*raftpb.Entry
	// Amnesiac marks the state of a node that started without one and
	// has not caught up with the cluster since: it must not vote, even
	// after a restart (see amnesia.go).
	Amnesiac bool
}

// Persister keeps a PersistentState. Save must be durable when it
// returns: the Core sends no message that depends on the state before
// Save returned. Load returns nil and no error when nothing was saved
// yet.
type Persister interface {
	Load() (*PersistentState, error)
	Save(*PersistentState) error
}

// MemoryPersister is a Persister in memory, for tests and simulations:
// a Core restarted with the same MemoryPersister finds what it saved.
// It keeps the state in the same encoding as the file, so every save
// and load goes through the codec and its checks. It is safe for
// concurrent use.
type MemoryPersister struct {
	mu   sync.Mutex
	data []byte
}

// Load implements Persister.
func (p *MemoryPersister) Load() (*PersistentState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.data == nil {
		return nil, nil
	}
	return decodeState(p.data)
}

// Save implements Persister.
func (p *MemoryPersister) Save(st *PersistentState) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.data = b
	p.mu.Unlock()
	return nil
}

// Failed writes. A node whose state cannot be written (a full disk, an
// I/O error) must not act on what is only in memory: a message sent
// after a failed write may acknowledge entries or grant a vote that a
// restart would forget. So the Core holds the Ready whose write failed
// (its messages unsent, the consensus not advanced), takes no further
// Ready, reports itself not quorate (the daemon stops its lockspaces),
// stands still (the consensus is not ticked, messages from the network
// are dropped: the others see a silent node), and retries the write, first on the next tick and then after twice
// the previous wait, up to maxSaveBackoff ticks. The first write that
// succeeds releases the held Ready, without its messages: they are as
// old as the failure, and the consensus sends again what is still
// needed. The node goes on where it stopped; the others have meanwhile
// treated it as silent, and may have declared it failed, in which case
// it rejoins as a new incarnation.

// maxSaveBackoff is the longest wait, in ticks, between two attempts to
// write the state.
const maxSaveBackoff = 64

// save writes the in-memory storage and reports whether it is on disk.
func (c *Core) save() bool {
	if err := c.persist(); err != nil {
		c.saveFailed(err)
		return false
	}
	if c.saveErr != nil {
		c.log.Info("cluster state written again; resuming", "after", c.saveErr)
	}
	c.dirty, c.saveErr, c.backoff = false, nil, 0
	return true
}

// saveFailed records a failed write and schedules the next attempt.
func (c *Core) saveFailed(err error) {
	if c.backoff == 0 {
		c.backoff = 1
	} else {
		c.backoff = min(2*c.backoff, maxSaveBackoff)
	}
	c.retryAt = c.ticks + c.backoff
	if c.saveErr == nil {
		c.log.Error("cannot write the cluster state; not quorate and silent until it is written", "err", err, "retry_in_ticks", c.backoff)
	} else {
		c.log.Warn("still cannot write the cluster state", "err", err, "retry_in_ticks", c.backoff)
	}
	c.saveErr = err
}

// retrySave writes the state again when a write failed and the wait is
// over, and then finishes the held Ready.
func (c *Core) retrySave() {
	if c.saveErr == nil || c.ticks < c.retryAt {
		return
	}
	if !c.save() {
		return
	}
	if rd := c.held; rd != nil {
		c.held = nil
		var snapsTo []uint64
		for _, m := range rd.Messages {
			if m.GetType() == raftpb.MsgSnap {
				snapsTo = append(snapsTo, m.GetTo())
			}
		}
		rd.Messages = nil
		if err := c.finishReady(*rd); err != nil {
			c.fail(err)
			return
		}
		// A snapshot not sent must be reported, or the leader waits
		// for it.
		for _, to := range snapsTo {
			c.rn.ReportSnapshot(to, raft.SnapshotFailure)
		}
	}
}
