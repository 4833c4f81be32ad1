package raftcluster

import (
	"fmt"
	"math"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3/raftpb"
)

// applyEntry applies one committed log entry: the replicated state and
// the StateMachine first, then this node's own bookkeeping. An entry
// that does not decode is skipped the same way on every node, so the
// states stay equal; it can only come from a proposer that bypassed the
// leader's checks.
func (c *Core) applyEntry(e *raftpb.Entry) {
	idx := e.GetIndex()
	if idx <= c.applied {
		return
	}
	c.applied = idx
	if e.GetType() != raftpb.EntryNormal {
		c.log.Warn("skipping a configuration change entry: the voter list is fixed", "index", idx)
		return
	}
	if len(e.GetData()) == 0 {
		return // a new leader's empty entry
	}
	ent, err := decodeEntry(e.GetData())
	if err != nil {
		c.log.Warn("skipping an undecodable log entry", "index", idx, "err", err)
		return
	}
	evs := c.state.apply(idx, ent)
	for _, ev := range evs {
		c.cfg.SM.Apply(ev)
	}
	c.out.Events = append(c.out.Events, evs...)
	if len(evs) > 0 {
		if v, ok := evs[0].(*cluster.View); ok {
			c.log.Info("membership changed", "seq", idx, "members", v.Members, "joined", v.Joined, "left", v.Left, "failed", v.Failed)
		}
	}
	c.reconcile()
}

// restore replaces the replicated state and the StateMachine's by a
// snapshot received from the leader.
func (c *Core) restore(snap *raftpb.Snapshot) error {
	state, smData, err := decodeSnapshot(snap.GetData())
	if err != nil {
		// Step checked it before the consensus accepted it.
		return fmt.Errorf("received snapshot: %w", err)
	}
	idx := snap.GetMetadata().GetIndex()
	if smData != nil {
		if err := c.cfg.SM.Restore(smData); err != nil {
			return fmt.Errorf("restoring the state machine from the snapshot at %d: %w", idx, err)
		}
	}
	c.state = state
	c.applied = idx
	c.nextSnap = idx + c.cfg.SnapshotEntries
	c.out.Events = append(c.out.Events, &cluster.Restored{Seq: idx, Members: state.members()})
	c.log.Info("state restored from a snapshot", "seq", idx, "members", state.members())
	c.reconcile()
	return nil
}

// reconcile brings this node's own bookkeeping in line with the
// replicated state after an entry or a snapshot was applied: finished
// batches, its Hello applied (joined), its Leave applied (left), or its
// incarnation failed (expelled).
func (c *Core) reconcile() {
	for m := range c.failing {
		if !c.state.isMember(m) {
			delete(c.failing, m)
		}
	}
	rec := c.state.nodes[c.cfg.Self.ID]
	if rec.Inc == c.inc && c.inflight != nil && c.inflight.e.Kind == kindBatch && c.inflight.e.Seq <= rec.Seq {
		c.finish(c.inflight.ids, nil)
		c.inflight = nil
	}
	switch {
	case rec.Inc < c.inc:
		// Our Hello is still on its way.
	case rec.Inc > c.inc:
		// The cluster accepted a later incarnation of this node: a
		// previous life of this node used a larger incarnation than
		// this start picked, or another daemon claims the node id.
		if c.joined {
			c.expel()
			return
		}
		c.log.Warn("the cluster knows a later incarnation of this node; picking a new one", "incarnation", c.inc, "seen", rec.Inc)
		if c.leaving {
			c.finishLeave(nil)
			return
		}
		c.inflight = nil
		c.inc = c.newIncarnation(rec.Inc)
	case rec.Status == statusMember && !c.joined && rec.Seq != 0:
		// Batches were applied for this incarnation before this node
		// sent any: a previous start used the same incarnation.
		c.log.Warn("this incarnation was used before; picking a new one", "incarnation", c.inc)
		c.inflight = nil
		c.inc = c.newIncarnation(rec.Inc)
	case rec.Status == statusMember:
		if !c.joined {
			c.joined = true
			if c.inflight != nil && c.inflight.e.Kind == kindHello {
				c.inflight = nil
			}
			c.log.Info("joined the cluster", "incarnation", c.inc)
		}
	case rec.Status == statusLeft:
		c.log.Info("left the cluster", "incarnation", c.inc)
		c.finishLeave(nil)
	default: // failed
		c.expel()
	}
}

// expel handles this incarnation's failure: its pending broadcasts
// finish with ErrExpelled (except batches the state shows applied), and
// unless it is leaving the node goes on as a new incarnation.
func (c *Core) expel() {
	rec := c.state.nodes[c.cfg.Self.ID]
	c.log.Warn("this incarnation was declared failed", "incarnation", c.inc)
	if p := c.inflight; p != nil && p.e.Kind == kindBatch {
		var err error = cluster.ErrExpelled
		if rec.Inc == c.inc && p.e.Seq <= rec.Seq {
			err = nil
		}
		c.finish(p.ids, err)
	}
	c.inflight = nil
	c.failQueue(cluster.ErrExpelled)
	if c.leaving {
		c.finishLeave(cluster.ErrExpelled)
		return
	}
	c.joined = false
	c.nextSeq = 1
	c.inc = c.newIncarnation(rec.Inc)
	c.log.Info("rejoining as a new incarnation", "incarnation", c.inc)
}

// newIncarnation picks this node's next incarnation, larger than the
// current one and than floor, and at most MaxIncarnation. Incarnations
// of this node come from the replicated state, which holds none beyond
// MaxIncarnation, or from this node's own choices; only a node that
// chose MaxIncarnation itself can run out.
func (c *Core) newIncarnation(floor uint64) uint64 {
	floor = max(floor, c.inc, c.state.nodes[c.cfg.Self.ID].Inc)
	if floor >= MaxIncarnation {
		c.fail(fmt.Errorf("incarnations of node %d exhausted: this node used %d, the largest is %d", c.cfg.Self.ID, floor, uint64(MaxIncarnation)))
		return floor
	}
	if c.cfg.NewIncarnation != nil {
		if v := c.cfg.NewIncarnation(); v > floor && v <= MaxIncarnation {
			return v
		} else {
			c.log.Warn("NewIncarnation returned an incarnation that is not larger or beyond the largest; using the next one", "got", v, "floor", floor)
		}
	}
	return floor + 1
}

// persist saves the in-memory storage through the Persister: the hard
// state, the snapshot and the entries after the snapshot.
func (c *Core) persist() error {
	if c.cfg.Storage == nil {
		return nil
	}
	hs, _, err := c.storage.InitialState()
	if err != nil {
		return err
	}
	snap, err := c.storage.Snapshot()
	if err != nil {
		return err
	}
	last, err := c.storage.LastIndex()
	if err != nil {
		return err
	}
	st := &PersistentState{HardState: hs, Snapshot: snap, Amnesiac: c.amnesiac}
	if lo := snap.GetMetadata().GetIndex() + 1; lo <= last {
		if st.Entries, err = c.storage.Entries(lo, last+1, math.MaxUint64); err != nil {
			return fmt.Errorf("reading the log to persist it: %w", err)
		}
	}
	if err := c.cfg.Storage.Save(st); err != nil {
		return fmt.Errorf("persisting the consensus state: %w", err)
	}
	c.savedTerm, c.savedVote = hs.GetTerm(), hs.GetVote()
	return nil
}

// maybeSnapshot takes a snapshot of the replicated state and the
// StateMachine once SnapshotEntries entries were applied since the last
// one, and compacts the log, keeping a tail of SnapshotEntries/2
// entries in memory so a follower a little behind gets entries rather
// than a snapshot.
func (c *Core) maybeSnapshot() error {
	if c.applied < c.nextSnap {
		return nil
	}
	c.nextSnap = c.applied + c.cfg.SnapshotEntries
	sm, err := c.cfg.SM.Snapshot()
	if err != nil {
		c.log.Warn("state machine snapshot failed; will try again later", "err", err)
		return nil
	}
	if len(sm) > MaxSnapshotSize {
		c.log.Error("state machine snapshot too large; the log is not compacted", "size", len(sm), "max", MaxSnapshotSize)
		return nil
	}
	if _, err := c.storage.CreateSnapshot(c.applied, c.conf, encodeSnapshot(c.state, sm)); err != nil {
		return fmt.Errorf("creating a snapshot at %d: %w", c.applied, err)
	}
	first, err := c.storage.FirstIndex()
	if err != nil {
		return err
	}
	if keep := c.cfg.SnapshotEntries / 2; c.applied > keep && c.applied-keep >= first {
		if err := c.storage.Compact(c.applied - keep); err != nil {
			return fmt.Errorf("compacting the log to %d: %w", c.applied-keep, err)
		}
	}
	c.log.Debug("snapshot taken", "index", c.applied)
	c.dirty = true
	c.save()
	return nil
}
