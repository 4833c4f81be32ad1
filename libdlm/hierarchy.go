package libdlm

import (
	"context"
	"fmt"
)

// Separator joins a parent's resource name and a child's in Child.
const Separator = "/"

// Child takes a lock on a resource nested under l's, VMS-style
// (database, then table, then record): the child's resource is named
// l's name, Separator, then name, and it can only be taken while l is
// granted. l cannot be unlocked while it has children. The kernel keeps
// no hierarchy for userspace locks; this keeps the discipline and the
// names, so that all users of one scheme nest the same way.
func (l *Lock) Child(ctx context.Context, name string, mode Mode, flags Flags, opts ...LockOption) (*Lock, error) {
	full := l.name + Separator + name
	if err := l.adopt(); err != nil {
		return nil, &OpError{Op: "lock", Resource: full, Err: err}
	}
	c, err := l.ls.Lock(ctx, full, mode, flags, append(opts, func(c *Lock) { c.parent = l })...)
	if err != nil {
		l.release()
		return nil, err
	}
	return c, nil
}

// adopt counts a child about to be requested, if l is granted.
func (l *Lock) adopt() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone || l.granted == ModeIV {
		return fmt.Errorf("%w: parent %q is not granted", ErrInvalidArgument, l.name)
	}
	l.children++
	return nil
}

func (l *Lock) release() {
	l.mu.Lock()
	l.children--
	l.mu.Unlock()
}
