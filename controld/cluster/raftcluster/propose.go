package raftcluster

import (
	"fmt"
	"slices"

	"github.com/godlm/godlm/controld/cluster"
)

// This node proposes at most one entry of its own at a time: first the
// Hello of its incarnation, then batches of broadcasts, then, when
// asked, its Leave. Broadcasts queue in call order (FIFO) while an entry
// is in flight and go out together in the next batch, so a node's
// messages are applied in the order Broadcast was called. An entry is
// proposed again after every leader change and when it has not been
// applied within two election timeouts; the apply rules drop the
// duplicates this can create. Without a leader nothing is proposed and
// broadcasts wait in the queue: the caller decides how long to wait.

// Broadcast queues data for the total order and returns an id; a Result
// with that id comes out of Process when the data was applied on this
// node, or when it never will be (ErrExpelled, ErrClosed after Leave,
// ErrTooLarge, ErrFailed).
func (c *Core) Broadcast(data []byte) uint64 {
	defer c.guard()
	id := c.newID()
	switch {
	case c.fatal != nil:
		c.finish([]uint64{id}, c.fatal)
	case len(data) > MaxBroadcastSize:
		c.finish([]uint64{id}, fmt.Errorf("broadcast of %d bytes (max %d): %w", len(data), MaxBroadcastSize, ErrTooLarge))
	case c.leaving:
		c.finish([]uint64{id}, fmt.Errorf("broadcast after leaving: %w", cluster.ErrClosed))
	default:
		c.queue = append(c.queue, pending{id: id, data: slices.Clone(data)})
		c.pump()
	}
	return id
}

// Cancel withdraws a broadcast that is still queued, not yet part of a
// proposed batch, and reports whether it did; a withdrawn broadcast has
// no Result. A broadcast already proposed cannot be withdrawn: it may
// still be applied, and its Result will say so.
func (c *Core) Cancel(id uint64) bool {
	for i, p := range c.queue {
		if p.id == id {
			c.queue = slices.Delete(c.queue, i, i+1)
			return true
		}
	}
	return false
}

// Leave asks to leave the cluster cleanly: once the entry in flight (if
// any) is applied, the Core proposes Leave for its incarnation, and the
// others see it in a View's Left. Queued broadcasts finish at once with
// ErrClosed. It returns an id whose Result comes when the Leave was
// applied, or with an error when it cannot be (ErrExpelled when this
// incarnation was declared failed first). A node that has not joined
// yet waits for its Hello, so that it leaves no member behind.
func (c *Core) Leave() uint64 {
	defer c.guard()
	id := c.newID()
	switch {
	case c.fatal != nil:
		c.finish([]uint64{id}, c.fatal)
	case c.left:
		c.finish([]uint64{id}, nil)
	default:
		c.leaveIDs = append(c.leaveIDs, id)
		c.leaving = true
		c.failQueue(fmt.Errorf("leaving the cluster: %w", cluster.ErrClosed))
		c.pump()
	}
	return id
}

func (c *Core) newID() uint64 {
	c.nextID++
	return c.nextID
}

// finish reports results for ids.
func (c *Core) finish(ids []uint64, err error) {
	for _, id := range ids {
		c.out.Done = append(c.out.Done, Result{ID: id, Err: err})
	}
}

func (c *Core) failQueue(err error) {
	for _, p := range c.queue {
		c.finish([]uint64{p.id}, err)
	}
	c.queue = nil
}

func (c *Core) finishLeave(err error) {
	c.finish(c.leaveIDs, err)
	c.leaveIDs = nil
	c.left = true
	c.leaving = true
	if c.inflight != nil {
		c.finish(c.inflight.ids, fmt.Errorf("left the cluster: %w", cluster.ErrClosed))
		c.inflight = nil
	}
	c.failQueue(fmt.Errorf("left the cluster: %w", cluster.ErrClosed))
}

// finishAll finishes every pending request with err.
func (c *Core) finishAll(err error) {
	if c.inflight != nil {
		c.finish(c.inflight.ids, err)
		c.inflight = nil
	}
	c.failQueue(err)
	c.finish(c.leaveIDs, err)
	c.leaveIDs = nil
}

// pump picks this node's next entry when none is in flight and proposes
// the one in flight when it is due.
func (c *Core) pump() {
	if c.fatal != nil || c.left {
		return
	}
	self := c.cfg.Self.ID
	if c.inflight == nil {
		switch {
		case !c.joined:
			c.inflight = c.newProposal(entry{Kind: kindHello, Node: self, Inc: c.inc}, nil)
		case len(c.queue) > 0:
			c.inflight = c.nextBatch()
		case c.leaving:
			c.inflight = c.newProposal(entry{Kind: kindLeave, Node: self, Inc: c.inc}, nil)
		}
	}
	p := c.inflight
	if p == nil || (p.sent && c.ticks-p.at < c.retryTicks()) {
		return
	}
	if c.rn.BasicStatus().Lead == 0 {
		p.sent = false
		return
	}
	p.at = c.ticks
	p.sent = c.rn.Propose(p.data) == nil
	if p.sent {
		c.log.Debug("proposed", "entry", p.e)
	}
}

// retryTicks is how long a proposal may stay unapplied before it is
// proposed again.
func (c *Core) retryTicks() uint64 { return 2 * uint64(c.cfg.ElectionTicks) }

func (c *Core) newProposal(e entry, ids []uint64) *proposal {
	return &proposal{e: e, data: e.encode(), ids: ids}
}

// nextBatch takes the queue's head, up to maxBatchBytes of payload (at
// least one broadcast), into a batch.
func (c *Core) nextBatch() *proposal {
	n, size := 0, 0
	for n < len(c.queue) && (n == 0 || size+len(c.queue[n].data) <= maxBatchBytes) {
		size += len(c.queue[n].data)
		n++
	}
	msgs := make([][]byte, n)
	ids := make([]uint64, n)
	for i, p := range c.queue[:n] {
		msgs[i], ids[i] = p.data, p.id
	}
	c.queue = slices.Clone(c.queue[n:])
	e := entry{Kind: kindBatch, Node: c.cfg.Self.ID, Inc: c.inc, Seq: c.nextSeq, Msgs: msgs}
	c.nextSeq++
	return c.newProposal(e, ids)
}
