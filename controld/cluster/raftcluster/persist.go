package raftcluster

import (
	"sync"

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
