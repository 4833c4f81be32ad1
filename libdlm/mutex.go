package libdlm

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Mutex is a cluster-wide mutual exclusion lock on one resource: Lock
// takes it in EX mode, so one holder at a time in the whole cluster
// (across nodes, processes and goroutines). The zero value is not
// usable; make one with Lockspace.Mutex.
type Mutex struct {
	ls   *Lockspace
	name string
	mu   sync.Mutex
	held *Lock
}

// Mutex returns a cluster-wide mutex on the resource name.
func (ls *Lockspace) Mutex(name string) *Mutex { return &Mutex{ls: ls, name: name} }

// Lock waits until the mutex is held, or ctx ends (the request is then
// cancelled in the kernel).
func (m *Mutex) Lock(ctx context.Context) error {
	l, err := m.ls.Lock(ctx, m.name, ModeEX, 0)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.held = l
	m.mu.Unlock()
	return nil
}

// TryLock takes the mutex only if it is free now; it reports whether it
// did.
func (m *Mutex) TryLock(ctx context.Context) (bool, error) {
	l, err := m.ls.Lock(ctx, m.name, ModeEX, NoQueue)
	if err != nil {
		if errors.Is(err, ErrWouldBlock) {
			return false, nil
		}
		return false, err
	}
	m.mu.Lock()
	m.held = l
	m.mu.Unlock()
	return true, nil
}

// Unlock releases the mutex. It is an error if it is not held.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	l := m.held
	m.held = nil
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("libdlm: %w: unlock of mutex %q, which is not held", ErrInvalidArgument, m.name)
	}
	return l.Unlock(ctx, 0)
}

// RWMutex is a cluster-wide reader/writer lock on one resource: readers
// hold PR (shared), the writer EX. The zero value is not usable; make one
// with Lockspace.RWMutex.
type RWMutex struct {
	Mutex
	readers []*Lock
}

// RWMutex returns a cluster-wide reader/writer lock on the resource name.
func (ls *Lockspace) RWMutex(name string) *RWMutex {
	return &RWMutex{Mutex: Mutex{ls: ls, name: name}}
}

// RLock waits until the lock is held for reading.
func (m *RWMutex) RLock(ctx context.Context) error {
	l, err := m.ls.Lock(ctx, m.name, ModePR, 0)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.readers = append(m.readers, l)
	m.mu.Unlock()
	return nil
}

// RUnlock releases one read hold.
func (m *RWMutex) RUnlock(ctx context.Context) error {
	m.mu.Lock()
	if len(m.readers) == 0 {
		m.mu.Unlock()
		return fmt.Errorf("libdlm: %w: read unlock of %q, which is not read-locked", ErrInvalidArgument, m.name)
	}
	l := m.readers[len(m.readers)-1]
	m.readers = m.readers[:len(m.readers)-1]
	m.mu.Unlock()
	return l.Unlock(ctx, 0)
}
