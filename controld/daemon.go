package controld

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/fence"
	"github.com/godlm/godlm/controld/lockspace"
	"github.com/godlm/godlm/libdlm"
)

// Kernel is what the daemon needs of the kernel DLM; *configfs.Kernel
// provides it, and tests use a fake.
type Kernel interface {
	Root() string
	EnsureConfigfs() error
	CreateCluster() error
	ClearCluster() error
	SetClusterName(name string) error
	SetClusterAttr(a configfs.ClusterAttr, v uint64) error
	AddComm(c configfs.Comm) error
	RemoveComm(nodeID int) error
	Comms() ([]int, error)
	SetMembers(ls string, members []configfs.Member, renew []int) error
	RemoveSpace(ls string) error
	Lockspaces() ([]string, error)
	SetControl(ls string, start bool) error
	EventDone(ls string, result int) error
	SetID(ls string, id uint32) error
	ID(ls string) (uint32, error)
	SetNodir(ls string) error
	OpenMonitor() (*os.File, error)
}

// Uevents is the source of the kernel's lockspace join and leave
// requests; *configfs.UeventListener provides it.
type Uevents interface {
	Next(ctx context.Context) (configfs.Event, error)
	Close() error
}

// LockspaceState is where a lockspace is in its life on this node.
type LockspaceState int

// Lockspace states.
const (
	StateJoining  LockspaceState = iota // the creator waits for the first start
	StateRunning                        // started with the members of the last change
	StateLeaving                        // the last user left; waiting for the leave to be ordered
	StateChanging                       // stopped for a membership change
	StateStopped                        // stopped because this node lost quorum
	StateDead                           // stopped for good: this node was expelled; reboot to reuse
)

func (s LockspaceState) String() string {
	return [...]string{"joining", "running", "leaving", "changing", "stopped", "dead"}[s]
}

// Lockspace is the daemon's view of one kernel lockspace.
type Lockspace struct {
	Name     string
	GlobalID uint32
	State    LockspaceState
	// Members are the members of the last completed change, which the
	// kernel runs with.
	Members []int
	// Seq is the number of the last completed change.
	Seq uint32
	// Change is the number of the current change; > Seq while one is
	// pending, and then Next are its members and Waiting those that
	// have not reported stopping yet.
	Change   uint64
	Next     []int
	Waiting  []int
	JoinedAt time.Time     // when the join completed
	JoinTime time.Duration // uevent to event_done of the join
	Adopted  bool          // found in the kernel at daemon start
	AddedSeq uint32        // change in which this node joined
	// WaitFencing are the failed nodes the pending change waits to see
	// fenced.
	WaitFencing []int
}

// ClusterFunc starts the cluster layer for this node, applying the
// ordered events to sm.
type ClusterFunc func(self int, sm cluster.StateMachine) (cluster.Cluster, error)

// Daemon is dlm_controld: it configures the kernel DLM for the cluster
// and answers the kernel's lockspace join and leave requests, agreeing
// on every lockspace's members with the other nodes through the cluster
// layer.
type Daemon struct {
	cfg     *Config
	k       Kernel
	log     *slog.Logger
	ring    *Ring
	uevents Uevents
	// openControl opens the DLM control device, for joins and leaves
	// asked through the query socket.
	openControl func() (*libdlm.Control, error)
	newCluster  ClusterFunc
	bind        func(*Daemon) error
	lock        *StateLock

	nodeID      int
	clusterName string
	started     time.Time
	monitor     *os.File
	cl          cluster.Cluster
	existing    []string // lockspaces found in the kernel at start

	// mu guards the replicated state (applied by the cluster layer's
	// goroutine), the engine that reads it, and the join records.
	mu    sync.Mutex
	rep   *Replicated
	eng   *lockspace.Engine
	joins map[string]*joinInfo

	// Fencing (fencing.go).
	fencing fencingState

	sendMu   sync.Mutex
	sendCond *sync.Cond
	sendQ    []lockspace.Msg
	sendDone bool
	senderWG sync.WaitGroup
	// sendCtx ends at Close, which abandons a broadcast in progress.
	sendCtx    context.Context
	sendCancel context.CancelFunc
}

// joinInfo is what the daemon remembers of a lockspace's join.
type joinInfo struct {
	start    time.Time
	joinedAt time.Time
	took     time.Duration
	adopted  bool
	addedSeq uint32
}

// Options are what New needs besides the configuration.
type Options struct {
	Kernel  Kernel
	Uevents Uevents
	Logger  *slog.Logger
	Ring    *Ring
	// LocalAddrs returns this machine's addresses, to find which node of
	// the configuration it is; nil uses the network interfaces.
	LocalAddrs func() ([]netip.Addr, error)
	// OpenControl opens /dev/misc/dlm-control; nil uses the kernel root.
	OpenControl func() (*libdlm.Control, error)
	// Cluster starts the cluster layer; required.
	Cluster ClusterFunc
	// Bind, if set, binds what a second daemon on this machine would
	// collide on (the query sockets, the cluster port). Setup calls it
	// after taking the state directory's lock and before it touches the
	// kernel, so a second daemon fails before changing anything.
	Bind func(*Daemon) error
}

// New checks the configuration and returns a daemon ready to Setup.
func New(cfg *Config, o Options) (*Daemon, error) {
	d := &Daemon{
		cfg: cfg, k: o.Kernel, log: o.Logger, ring: o.Ring, uevents: o.Uevents,
		openControl: o.OpenControl, newCluster: o.Cluster, bind: o.Bind, started: time.Now(),
		rep: NewReplicated(), joins: map[string]*joinInfo{},
	}
	d.sendCond = sync.NewCond(&d.sendMu)
	d.sendCtx, d.sendCancel = context.WithCancel(context.Background())
	if d.ring == nil {
		d.ring = NewRing(1 << 20)
	}
	if d.log == nil {
		d.log = NewLogger(io.Discard, slog.LevelInfo, d.ring)
	}
	if d.openControl == nil {
		d.openControl = func() (*libdlm.Control, error) { return libdlm.OpenControl(o.Kernel.Root()) }
	}
	d.clusterName = cfg.Str("cluster_name")
	if d.clusterName == "" {
		return nil, fmt.Errorf("%w: no cluster_name in dlm.conf: it must equal the cluster part of the filesystems' lock tables", ErrConfig)
	}
	if len(d.clusterName) > 63 || strings.ContainsAny(d.clusterName, "\n\x00/") {
		return nil, fmt.Errorf("%w: cluster_name %q: at most 63 bytes, no '/' or newline", ErrConfig, d.clusterName)
	}
	if len(cfg.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no node lines in dlm.conf (node id=<n> addr=<ip>)", ErrConfig)
	}
	id, err := d.findSelf(o.LocalAddrs)
	if err != nil {
		return nil, err
	}
	d.nodeID = id
	d.checkFencing()
	return d, nil
}

func (d *Daemon) findSelf(localAddrs func() ([]netip.Addr, error)) (int, error) {
	if id := int(d.cfg.Int("our_nodeid")); id != 0 {
		for _, n := range d.cfg.Nodes {
			if n.ID == id {
				if len(n.Addrs) == 0 {
					return 0, fmt.Errorf("%w: node %d has no addr", ErrConfig, id)
				}
				return id, nil
			}
		}
		return 0, fmt.Errorf("%w: our_nodeid=%d has no node line", ErrConfig, id)
	}
	if localAddrs == nil {
		localAddrs = interfaceAddrs
	}
	local, err := localAddrs()
	if err != nil {
		return 0, fmt.Errorf("list local addresses: %w", err)
	}
	for _, n := range d.cfg.Nodes {
		for _, a := range n.Addrs {
			for _, l := range local {
				if a == l {
					return n.ID, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("%w: no node line has an address of this machine (%v); set our_nodeid", ErrConfig, local)
}

func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// Setup first makes sure this is the only daemon: it locks
// cluster_state_dir (see [LockStateDir]; no lock when the option is
// empty) and calls [Options.Bind], so a second daemon stops before it
// changes anything in the kernel. It then configures the kernel:
// configfs, the cluster's attributes, the monitor device, then this
// node's address; starts the cluster layer; and deals with lockspaces a
// previous daemon left in the kernel. The order is the kernel's rule: the
// monitor is open before the local node's address is written, so no
// lockspace can be created while nobody answers its uevent.
func (d *Daemon) Setup() error {
	if dir := d.cfg.Str("cluster_state_dir"); dir != "" {
		l, err := LockStateDir(dir)
		if err != nil {
			return err
		}
		d.lock = l
	}
	if d.bind != nil {
		if err := d.bind(d); err != nil {
			return err
		}
	}
	if err := d.k.EnsureConfigfs(); err != nil {
		return err
	}
	existing, err := d.k.Lockspaces()
	if err != nil {
		return err
	}
	if len(existing) == 0 {
		if err := d.k.ClearCluster(); err != nil {
			return fmt.Errorf("clear stale configfs: %w", err)
		}
	}
	if err := d.k.CreateCluster(); err != nil {
		return err
	}
	if len(existing) == 0 {
		// The transport can only be set before the first lockspace.
		if d.cfg.IsSet("port") {
			if err := d.k.SetClusterAttr(configfs.AttrTCPPort, uint64(d.cfg.Int("port"))); err != nil {
				return err
			}
		}
		switch d.cfg.Str("protocol") {
		case "sctp", "1":
			if err := d.k.SetClusterAttr(configfs.AttrProtocol, 1); err != nil {
				return err
			}
		case "tcp", "0":
			if err := d.k.SetClusterAttr(configfs.AttrProtocol, 0); err != nil {
				return err
			}
		}
	} else {
		d.log.Info("lockspaces exist in the kernel: keeping transport settings and configfs", "lockspaces", strings.Join(existing, " "))
	}
	if d.cfg.IsSet("log_debug") {
		if err := d.k.SetClusterAttr(configfs.AttrLogDebug, uint64(d.cfg.Int("log_debug"))); err != nil {
			return err
		}
	}
	if err := d.k.SetClusterAttr(configfs.AttrMark, uint64(d.cfg.Int("mark"))); err != nil {
		return err
	}
	if err := d.k.SetClusterAttr(configfs.AttrRecoverCallbacks, 1); err != nil {
		return err
	}
	if err := d.k.SetClusterName(d.clusterName); err != nil {
		return err
	}
	if d.monitor, err = d.k.OpenMonitor(); err != nil {
		return fmt.Errorf("open dlm-monitor: %w", err)
	}
	// Only this node's comm now: the others are written when the
	// cluster shows them as members, and removed when they leave or
	// fail, so the kernel tells a failure from a clean leave.
	have, err := d.k.Comms()
	if err != nil {
		return err
	}
	if !slices.Contains(have, d.nodeID) {
		n := d.node(d.nodeID)
		if err := d.k.AddComm(configfs.Comm{NodeID: n.ID, Addrs: n.Addrs, Local: true, Mark: n.Mark}); err != nil {
			return err
		}
	}
	d.existing = existing
	return d.startCluster()
}

// startCluster starts the cluster layer and the lockspace engine, and
// deals with the lockspaces a previous daemon left in the kernel: a
// one-node cluster adopts them; in a larger one the others may have
// recovered them without this node, so they stay stopped.
func (d *Daemon) startCluster() error {
	if d.newCluster == nil {
		return errors.New("controld: no cluster layer configured")
	}
	cl, err := d.newCluster(d.nodeID, lockedState{d})
	if err != nil {
		return fmt.Errorf("start the cluster layer: %w", err)
	}
	self := cl.Status().Self
	d.mu.Lock()
	d.cl = cl
	d.eng = lockspace.NewEngine(lockspace.Config{Self: d.nodeID, Incarnation: self.Incarnation,
		JoinTimeout: time.Duration(d.cfg.Int("join_timeout")) * time.Second}, d.rep.Lockspaces)
	d.startFencing(len(d.existing) == 0)
	var acts []lockspace.Action
	for _, ls := range d.existing {
		acts = append(acts, d.adopt(ls)...)
	}
	d.mu.Unlock()
	d.execute(acts)
	d.senderWG.Add(1)
	go d.sender()
	return nil
}

// lockedState applies the cluster's events to the daemon's replicated
// state under the daemon's lock.
type lockedState struct{ d *Daemon }

func (l lockedState) Apply(e cluster.Event) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	l.d.rep.Apply(e)
}

func (l lockedState) Snapshot() ([]byte, error) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.rep.Snapshot()
}

func (l lockedState) Restore(data []byte) error {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.rep.Restore(data)
}

// node returns the configuration of node id.
func (d *Daemon) node(id int) Node {
	for _, n := range d.cfg.Nodes {
		if n.ID == id {
			return n
		}
	}
	return Node{ID: id}
}

// adopt decides what to do with a lockspace found in the kernel at
// start-up. d.mu is held.
func (d *Daemon) adopt(ls string) []lockspace.Action {
	if err := configfs.ValidLockspaceName(ls); err != nil {
		d.log.Error("cannot adopt lockspace", "lockspace", ls, "err", err)
		return nil
	}
	id, err := d.k.ID(ls)
	if err != nil {
		d.log.Error("cannot adopt lockspace: reading its id failed", "lockspace", ls, "err", err)
		return nil
	}
	if len(d.cfg.Nodes) > 1 {
		if id == 0 {
			// Its creator waits: answer it rather than leave it hanging.
			return []lockspace.Action{lockspace.EventDone{Lockspace: ls, Result: -1,
				Reason: "the previous daemon stopped before answering this join"}, lockspace.RemoveSpace{Lockspace: ls}}
		}
		return d.eng.Abandon(ls)
	}
	if id == 0 {
		d.log.Info("lockspace was waiting for its join when the previous daemon stopped: joining it now", "lockspace", ls)
	} else {
		if id != configfs.GlobalID(ls) {
			d.log.Warn("adopted lockspace has a global id other than the reference's", "lockspace", ls, "id", fmt.Sprintf("%#x", id))
		}
		d.log.Info("adopting lockspace left running by the previous daemon", "lockspace", ls, "id", fmt.Sprintf("%#x", id))
	}
	d.joins[ls] = &joinInfo{start: time.Now(), adopted: id != 0}
	return d.eng.Adopt(ls, id == 0, time.Now())
}

// NodeID is this node's id.
func (d *Daemon) NodeID() int { return d.nodeID }

// Cluster is the cluster layer the daemon runs on, once Setup started it.
func (d *Daemon) Cluster() cluster.Cluster { return d.cl }

// execute does the engine's actions in order. Kernel errors are logged:
// the kernel's state is what it is, and the cluster will see this node
// as failed if it cannot keep up.
func (d *Daemon) execute(acts []lockspace.Action) {
	failedStart := map[string]bool{}
	for _, a := range acts {
		switch a := a.(type) {
		case lockspace.Note:
			if a.Warn {
				d.log.Warn(a.Text, "lockspace", a.Lockspace)
			} else {
				d.log.Info(a.Text, "lockspace", a.Lockspace)
			}
		case lockspace.Send:
			d.enqueue(a.Msg)
		case lockspace.AddComm:
			n := d.node(a.Node)
			if len(n.Addrs) == 0 {
				d.log.Error("a cluster member has no address in dlm.conf; the kernel cannot reach it", "nodeid", a.Node)
				continue
			}
			have, _ := d.k.Comms()
			if slices.Contains(have, a.Node) {
				continue
			}
			if err := d.k.AddComm(configfs.Comm{NodeID: n.ID, Addrs: n.Addrs, Mark: n.Mark}); err != nil {
				d.log.Error("cannot write the comm of a new member", "nodeid", a.Node, "err", err)
			} else {
				d.log.Info("node joined the cluster: comm written", "nodeid", a.Node)
			}
		case lockspace.RemoveComm:
			if err := d.k.RemoveComm(a.Node); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Error("cannot remove the comm of a node that left", "nodeid", a.Node, "err", err)
			} else {
				d.log.Info("node left the cluster: comm removed", "nodeid", a.Node)
			}
		case lockspace.Stop:
			if err := d.k.SetControl(a.Lockspace, false); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Warn("stop lockspace", "lockspace", a.Lockspace, "err", err)
			}
			d.log.Debug("stopped lockspace", "lockspace", a.Lockspace, "change", a.Change)
		case lockspace.Start:
			if err := d.start(a); err != nil {
				d.log.Error("cannot start lockspace", "lockspace", a.Lockspace, "change", a.Change, "err", err)
				failedStart[a.Lockspace] = true
				continue
			}
			d.log.Info("started lockspace", "lockspace", a.Lockspace, "change", a.Change, "members", a.Members, "renew", a.Renew)
		case lockspace.RemoveSpace:
			if err := d.k.RemoveSpace(a.Lockspace); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Warn("remove lockspace members", "lockspace", a.Lockspace, "err", err)
			}
		case lockspace.EventDone:
			d.eventDone(a, failedStart[a.Lockspace])
		}
	}
}

// start writes (for a first start) the global id and nodir, then the
// members with their weights, then control=1.
func (d *Daemon) start(a lockspace.Start) error {
	if a.First {
		if err := d.k.SetID(a.Lockspace, configfs.GlobalID(a.Lockspace)); err != nil {
			return err
		}
		if c := d.cfg.Lockspaces[a.Lockspace]; c != nil && c.Nodir {
			if err := d.k.SetNodir(a.Lockspace); err != nil {
				return err
			}
		}
	}
	ms := make([]configfs.Member, 0, len(a.Members))
	for _, id := range a.Members {
		ms = append(ms, configfs.Member{NodeID: id, Weight: d.cfg.Weight(a.Lockspace, id)})
	}
	if err := d.k.SetMembers(a.Lockspace, ms, a.Renew); err != nil {
		return err
	}
	return d.k.SetControl(a.Lockspace, true)
}

// eventDone answers the kernel. A join whose start failed is answered
// with failure instead, and left, so the cluster goes on without it.
func (d *Daemon) eventDone(a lockspace.EventDone, startFailed bool) {
	if startFailed && a.Result == 0 {
		a.Result, a.Reason = -1, "the kernel refused the start"
	}
	if err := d.k.EventDone(a.Lockspace, a.Result); err != nil {
		d.log.Error("cannot answer the kernel's lockspace event", "lockspace", a.Lockspace, "result", a.Result, "err", err)
	}
	d.mu.Lock()
	j := d.joins[a.Lockspace]
	l, isLocal := d.eng.Local(a.Lockspace)
	joined := a.Result == 0 && isLocal && l.Phase == lockspace.PhaseMember && j != nil
	var more []lockspace.Action
	if joined {
		j.joinedAt, j.took, j.addedSeq = time.Now(), time.Since(j.start), uint32(l.StartedFor)
	} else {
		delete(d.joins, a.Lockspace)
		if startFailed {
			more = d.eng.JoinFailed(a.Lockspace)
		}
	}
	d.mu.Unlock()
	switch {
	case a.Result != 0:
		d.log.Error("join failed; the lockspace's creator gets an error", "lockspace", a.Lockspace, "reason", a.Reason)
	case joined:
		d.log.Info("joined lockspace", "lockspace", a.Lockspace, "id", fmt.Sprintf("%#x", configfs.GlobalID(a.Lockspace)),
			"change", l.StartedFor, "join_ms", fmt.Sprintf("%.3f", float64(j.took.Microseconds())/1000))
	default:
		d.log.Info("left lockspace", "lockspace", a.Lockspace)
	}
	d.execute(more)
}

// enqueue hands a message to the sender, which broadcasts in order.
func (d *Daemon) enqueue(m lockspace.Msg) {
	d.sendMu.Lock()
	d.sendQ = append(d.sendQ, m)
	d.sendCond.Broadcast()
	d.sendMu.Unlock()
}

// sender broadcasts queued messages one after the other, so they are
// ordered as the engine produced them. A message that cannot be ordered
// yet (no quorum) waits; one of an incarnation the cluster expelled is
// dropped, as the engine has given up on what it was about.
func (d *Daemon) sender() {
	defer d.senderWG.Done()
	ctx := d.sendCtx
	for {
		d.sendMu.Lock()
		for len(d.sendQ) == 0 && !d.sendDone {
			d.sendCond.Wait()
		}
		if d.sendDone {
			d.sendMu.Unlock()
			return
		}
		m := d.sendQ[0]
		if lockspace.Superseded(d.sendQ) {
			d.sendQ = d.sendQ[1:]
			d.sendMu.Unlock()
			d.log.Debug("message superseded before it was sent", "msg", m.String())
			continue
		}
		d.sendMu.Unlock()
		err := d.cl.Broadcast(ctx, m.Encode())
		switch {
		case err == nil, errors.Is(err, cluster.ErrExpelled):
			if err != nil {
				d.log.Warn("message dropped: this node's incarnation was expelled", "msg", m.String())
			}
			d.sendMu.Lock()
			d.sendQ = d.sendQ[1:]
			d.sendMu.Unlock()
		case errors.Is(err, cluster.ErrClosed), ctx.Err() != nil:
			return
		default:
			d.log.Debug("broadcast failed; retrying", "msg", m.String(), "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}
}

// handle feeds one uevent to the engine.
func (d *Daemon) handle(ev configfs.Event, t0 time.Time) {
	d.mu.Lock()
	var acts []lockspace.Action
	switch ev.Kind {
	case configfs.EventOnline:
		d.log.Debug("uevent online", "lockspace", ev.Lockspace, "seqnum", ev.Seqnum)
		if why := d.fencing.problem; why != "" {
			d.log.Error("join refused: "+why, "lockspace", ev.Lockspace)
			acts = []lockspace.Action{lockspace.EventDone{Lockspace: ev.Lockspace, Result: -1, Reason: why}}
			break
		}
		d.joins[ev.Lockspace] = &joinInfo{start: t0}
		acts = d.eng.Online(ev.Lockspace, t0)
	case configfs.EventOffline:
		d.log.Debug("uevent offline", "lockspace", ev.Lockspace, "seqnum", ev.Seqnum)
		if l, ok := d.eng.Local(ev.Lockspace); !ok {
			d.log.Warn("leave requested for a lockspace this daemon does not know; cleaning up anyway", "lockspace", ev.Lockspace)
		} else if l.Phase == lockspace.PhaseDead {
			d.log.Info("letting go of a dead lockspace", "lockspace", ev.Lockspace)
		}
		acts = d.eng.Offline(ev.Lockspace)
	}
	d.mu.Unlock()
	d.execute(acts)
}

// clusterEvent feeds one cluster event (already applied to the state)
// to the engine.
func (d *Daemon) clusterEvent(ev cluster.Event) {
	switch ev := ev.(type) {
	case *cluster.View:
		d.log.Info("cluster view", "seq", ev.Seq, "members", ev.Members, "joined", ev.Joined, "left", ev.Left, "failed", ev.Failed)
	case *cluster.Quorum:
		if ev.Quorate {
			d.log.Info("cluster is quorate")
		} else {
			d.log.Warn("cluster quorum lost")
		}
	case *cluster.Restored:
		d.log.Info("cluster state restored from a snapshot", "seq", ev.Seq, "members", ev.Members)
	case *cluster.Message:
		if len(ev.Data) > 0 && ev.Data[0] == fence.MsgTag {
			d.logFenceMsg(ev)
		} else if m, err := lockspace.Decode(ev.Data); err != nil {
			d.log.Warn("ignored a cluster message", "from", ev.From, "err", err)
		} else {
			d.log.Debug("cluster message", "seq", ev.Seq, "from", ev.From, "msg", m.String())
		}
	}
	d.mu.Lock()
	acts := d.eng.Event(ev)
	d.afterEvent()
	d.mu.Unlock()
	d.execute(acts)
}

// Run serves uevents and cluster events until ctx ends. Setup must have
// succeeded.
func (d *Daemon) Run(ctx context.Context) error {
	type uev struct {
		ev  configfs.Event
		err error
		at  time.Time
	}
	uevs := make(chan uev)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			ev, err := d.uevents.Next(ctx)
			select {
			case uevs <- uev{ev, err, time.Now()}:
			case <-ctx.Done():
				return
			}
			if err != nil && !errors.Is(err, configfs.ErrMalformed) {
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	events := d.cl.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-uevs:
			if errors.Is(u.err, configfs.ErrMalformed) {
				d.log.Warn("ignored a malformed uevent", "err", u.err)
				continue
			}
			if u.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("uevents: %w", u.err)
			}
			d.handle(u.ev, u.at)
		case ev, ok := <-events:
			if !ok {
				return errors.New("the cluster layer stopped")
			}
			d.clusterEvent(ev)
		case now := <-tick.C:
			d.mu.Lock()
			acts := d.eng.Tick(now)
			d.fenceTick(now)
			d.mu.Unlock()
			d.execute(acts)
		}
	}
}

// Active returns the names of the lockspaces the daemon runs or waits
// on: all but the dead ones.
func (d *Daemon) Active() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eng == nil {
		return nil
	}
	var names []string
	for _, l := range d.eng.Locals() {
		if l.Phase != lockspace.PhaseDead {
			names = append(names, l.Name)
		}
	}
	return names
}

// Snapshot returns this node's lockspaces, by name.
func (d *Daemon) Snapshot() []Lockspace {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eng == nil {
		return nil
	}
	var out []Lockspace
	for _, l := range d.eng.Locals() {
		out = append(out, d.describe(l))
	}
	return out
}

// describe is a lockspace as the query socket shows it. d.mu is held.
func (d *Daemon) describe(l lockspace.Local) Lockspace {
	out := Lockspace{Name: l.Name, GlobalID: configfs.GlobalID(l.Name), Seq: uint32(l.StartedFor)}
	if sp := d.rep.Lockspaces.Spaces[l.Name]; sp != nil {
		out.Members = slices.Clone(sp.StartedMembers)
		out.Change = sp.Change
		if !sp.Complete() {
			out.Next, out.Waiting = slices.Clone(sp.Members), sp.Waiting()
			out.WaitFencing = d.rep.Lockspaces.WaitingFence(sp)
		}
	}
	if j := d.joins[l.Name]; j != nil {
		out.JoinedAt, out.JoinTime, out.Adopted, out.AddedSeq = j.joinedAt, j.took, j.adopted, j.addedSeq
	}
	switch {
	case l.Phase == lockspace.PhaseDead:
		out.State = StateDead
	case l.Phase == lockspace.PhaseJoining:
		out.State = StateJoining
	case l.Phase == lockspace.PhaseLeaving:
		out.State = StateLeaving
	case l.Running:
		out.State = StateRunning
	case out.Next != nil:
		out.State = StateChanging
	default:
		out.State = StateStopped
	}
	return out
}

// Close leaves the cluster (cleanly, if it can within a few seconds),
// then releases the monitor device. Closing it makes the kernel stop
// every lockspace, which is what must happen when the daemon is gone.
func (d *Daemon) Close() error {
	if d.uevents != nil {
		d.uevents.Close()
	}
	d.sendMu.Lock()
	d.sendDone = true
	d.sendCond.Broadcast()
	d.sendMu.Unlock()
	d.sendCancel()
	if d.fencing.fencer != nil {
		d.fencing.fencer.Close() // kills the agents this node runs
	}
	if d.cl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := d.cl.Close(ctx); err != nil {
			d.log.Warn("leaving the cluster", "err", err)
		}
		cancel()
	}
	d.senderWG.Wait()
	var err error
	if d.monitor != nil {
		err = d.monitor.Close()
	}
	// Last: until the monitor is closed, this daemon still runs the
	// kernel's lockspaces.
	d.lock.Release()
	return err
}
