package controld

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/fence"
)

// fencingState is the daemon's local part in fencing. What must be
// fenced, by whom, and when a node counts as fenced is replicated state
// (Replicated.Fence); this is what one node does about it.
type fencingState struct {
	enabled bool
	// problem, when set, is why no lockspace may be joined: a node has
	// no fence method.
	problem string
	fencer  *fence.Fencer
	// kernelClean: the kernel held no lockspace when this daemon
	// started, so nothing of this node's earlier incarnations can reach
	// the disk; firstInc is the incarnation it was first admitted as,
	// the only one that may say so (a later one was expelled, with
	// whatever lockspaces it ran).
	kernelClean bool
	firstInc    uint64
	// selfReported: this daemon reported that its node's earlier
	// incarnation needs no fencing (see carryOn).
	selfReported bool
	// The startup check: when the cluster first became quorate here.
	firstQuorate time.Time
	startupSent  bool
}

// checkFencing decides, from the configuration, whether lockspaces may
// be joined, and warns when fencing is off.
func (d *Daemon) checkFencing() {
	f := &d.fencing
	f.enabled = d.cfg.Bool("enable_fencing")
	if len(d.cfg.Nodes) < 2 {
		return
	}
	if !f.enabled {
		d.log.Warn("fencing is disabled (enable_fencing=0): a failed node's locks are recovered without fencing it; " +
			"with a shared disk, its unsynced writes can overwrite what the others wrote since")
		return
	}
	if missing := d.cfg.Fencing.Missing(d.cfg.NodeIDs()); len(missing) > 0 {
		f.problem = fmt.Sprintf("no fence method for node %s in %s: add a device line and a connect line for it (or one fence_all line), "+
			"or set enable_fencing=0 if no disk is shared", idList(missing), d.cfg.Fencing.File)
		d.log.Error("lockspaces will not be joined: " + f.problem)
	}
}

// startFencing starts this node's fencer; d.cl is set. kernelClean
// tells whether the kernel held no lockspace at start.
func (d *Daemon) startFencing(kernelClean bool) {
	f := &d.fencing
	f.kernelClean = kernelClean
	f.fencer = fence.NewFencer(fence.FencerConfig{
		Self:     d.nodeID,
		Config:   d.cfg.Fencing,
		Runner:   fence.ExecRunner{Timeout: time.Duration(d.cfg.Int("fence_agent_timeout")) * time.Second},
		Send:     func(ctx context.Context, m fence.Msg) error { return d.cl.Broadcast(ctx, m.Encode()) },
		Log:      d.log.With("component", "fence"),
		Disabled: !f.enabled,
	})
}

// afterEvent does this node's part in fencing after an ordered event
// (or a local one) was applied: it lets the fencer start or stop agent
// runs, says when this node's earlier incarnation needs no fencing, and
// makes the startup check. d.mu is held.
func (d *Daemon) afterEvent() {
	f := &d.fencing
	if f.fencer == nil {
		return
	}
	f.fencer.Update(d.rep.Fence)
	inc := d.eng.Incarnation()
	if f.firstInc == 0 && d.isMember(inc) {
		f.firstInc = inc
	}
	if r := d.rep.Fence.Pending[d.nodeID]; r != nil && !f.selfReported && d.isMember(inc) {
		d.carryOn(r, inc)
	}
	if f.firstQuorate.IsZero() && d.eng.Quorate() {
		f.firstQuorate = time.Now()
	}
	d.startupCheck(time.Now())
}

// carryOn tells the cluster, when it can, that r, the pending fencing of
// an earlier incarnation of this node (or of this node at startup),
// needs no agent; inc is this node's current incarnation, a member.
// d.mu is held.
func (d *Daemon) carryOn(r *fence.Record, inc uint64) {
	f := &d.fencing
	if r.Reason == fence.ReasonFailed && r.Incarnation >= inc {
		return
	}
	var m fence.Msg
	switch {
	case len(d.cfg.Nodes) == 1:
		// No other member could fence it, and nobody else can have
		// recovered its locks: the lockspaces it left in its kernel are
		// adopted, and the node carries on from them itself.
		m = fence.Msg{Kind: fence.KindAck, Node: d.nodeID}
		d.log.Info("one-node cluster: carrying on from this node's earlier incarnation, which no other node can fence", "failed_incarnation", r.Incarnation)
	case f.kernelClean && inc == f.firstInc:
		m = fence.Msg{Kind: fence.KindClean}
		d.log.Info("this node restarted with no lockspace in its kernel: telling the cluster it needs no fencing", "failed_incarnation", r.Incarnation)
	default:
		return
	}
	f.selfReported = true
	d.sendFence(m, func() { f.selfReported = false })
}

// fenceTick is called every second with d.mu held.
func (d *Daemon) fenceTick(now time.Time) {
	if d.fencing.fencer != nil {
		d.startupCheck(now)
	}
}

func (d *Daemon) isMember(inc uint64) bool {
	return slices.Contains(d.rep.Fence.Members, cluster.Member{ID: d.nodeID, Incarnation: inc})
}

// startupCheck makes the cluster's startup check once, from its lowest
// member: configured nodes that are not members when every one has
// joined, or post_join_delay after the cluster became quorate, must be
// fenced before any lockspace starts (they may be running, cut off,
// with a filesystem mounted from before). No lockspace change
// completes until the check is applied. d.mu is held.
func (d *Daemon) startupCheck(now time.Time) {
	f := &d.fencing
	st := d.rep.Fence
	if f.startupSent || st.StartupChecked || f.firstQuorate.IsZero() || len(st.Members) == 0 || st.Members[0].ID != d.nodeID {
		return
	}
	var nodes []int
	if f.enabled && d.cfg.Bool("enable_startup_fencing") {
		all := true
		for _, id := range d.cfg.NodeIDs() {
			if !slices.ContainsFunc(st.Members, func(m cluster.Member) bool { return m.ID == id }) {
				all = false
			}
		}
		if !all && now.Sub(f.firstQuorate) < time.Duration(d.cfg.Int("post_join_delay"))*time.Second {
			return
		}
		nodes = d.cfg.NodeIDs()
	}
	f.startupSent = true
	d.sendFence(fence.Msg{Kind: fence.KindStartup, Nodes: nodes}, func() { f.startupSent = false })
}

// sendFence broadcasts m in the background; failed runs with d.mu held
// when it could not be ordered, so that it is tried again later.
func (d *Daemon) sendFence(m fence.Msg, failed func()) {
	go func() {
		ctx, cancel := context.WithTimeout(d.sendCtx, 30*time.Second)
		defer cancel()
		if err := d.cl.Broadcast(ctx, m.Encode()); err != nil {
			d.log.Debug("fence message not ordered; will try again", "kind", m.Kind.String(), "err", err)
			d.mu.Lock()
			failed()
			d.mu.Unlock()
		}
	}()
}

// logFenceMsg logs an ordered fence message, as every node sees it.
func (d *Daemon) logFenceMsg(ev *cluster.Message) {
	m, err := fence.Decode(ev.Data)
	if err != nil {
		d.log.Warn("ignored a fence message", "from", ev.From, "err", err)
		return
	}
	switch m.Kind {
	case fence.KindProgress:
		if m.Err != "" {
			d.log.Warn("fence attempt failed", "node", m.Node, "actor", ev.From.ID, "device", m.Device, "err", m.Err)
		} else {
			d.log.Info("fence attempt succeeded", "node", m.Node, "actor", ev.From.ID, "device", m.Device)
		}
	case fence.KindResult:
		if m.OK {
			d.log.Info("node fenced", "node", m.Node, "actor", ev.From.ID)
		} else {
			d.log.Warn("fencing round failed; the next actor tries", "node", m.Node, "actor", ev.From.ID, "err", m.Err)
		}
	case fence.KindAck:
		d.log.Warn("node counted as fenced without fencing (acknowledged)", "node", m.Node, "by", ev.From.ID)
	case fence.KindClean:
		d.log.Info("node restarted with a clean kernel: it needs no fencing", "node", ev.From.ID)
	case fence.KindStartup:
		d.log.Info("startup check", "by", ev.From.ID, "configured", m.Nodes)
	}
}

// fenceAck records an operator's acknowledgement that node (a decimal
// id) is fenced: its lockspaces then recover without it. It answers
// once the ack is ordered, with 0 or -errno and a message.
func (d *Daemon) fenceAck(node string, cred *unix.Ucred) (int32, string) {
	id, err := strconv.Atoi(node)
	if err != nil || id <= 0 {
		return -int32(syscall.EINVAL), fmt.Sprintf("fence_ack: %q is not a node id", node)
	}
	d.mu.Lock()
	r := d.rep.Fence.Pending[id]
	cl := d.cl
	d.mu.Unlock()
	if r == nil || cl == nil {
		return -int32(syscall.ENOENT), fmt.Sprintf("node %d is not waiting to be fenced", id)
	}
	d.log.Warn("fence_ack: an operator says this node is fenced; its locks will be recovered without fencing it", "node", id, "uid", cred.Uid, "pid", cred.Pid)
	// Within dlm_tool's wait for an answer (3 s).
	ctx, cancel := context.WithTimeout(d.sendCtx, 2*time.Second)
	defer cancel()
	if err := cl.Broadcast(ctx, fence.Msg{Kind: fence.KindAck, Node: id}.Encode()); err != nil {
		if errors.Is(err, cluster.ErrNoQuorum) {
			return -int32(syscall.EAGAIN), "the cluster has no quorum: the ack cannot be recorded"
		}
		return -int32(syscall.EIO), "the ack was not confirmed (check dlm_tool status): " + err.Error()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.rep.Fence.Done[id]; ok && o.How == fence.HowAcked && o.FailSeq == r.FailSeq {
		return 0, fmt.Sprintf("node %d acknowledged as fenced", id)
	}
	if d.rep.Fence.Pending[id] == nil {
		return 0, fmt.Sprintf("node %d was fenced meanwhile", id)
	}
	return -int32(syscall.EAGAIN), fmt.Sprintf("node %d failed again meanwhile: acknowledge it again", id)
}
