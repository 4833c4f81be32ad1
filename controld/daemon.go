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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/godlm/godlm/configfs"
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

// LockspaceState is where a lockspace is in its life.
type LockspaceState int

// Lockspace states.
const (
	StateJoining LockspaceState = iota
	StateRunning
	StateLeaving
)

func (s LockspaceState) String() string {
	return [...]string{"joining", "running", "leaving"}[s]
}

// Lockspace is the daemon's view of one kernel lockspace.
type Lockspace struct {
	Name     string
	GlobalID uint32
	State    LockspaceState
	Members  []int
	Seq      uint32        // number of starts (membership changes) so far
	JoinedAt time.Time     // when the join completed
	JoinTime time.Duration // uevent to event_done of the join
	Adopted  bool          // found running at daemon start and taken over
	AddedSeq uint32        // change in which this node joined
}

// Daemon is dlm_controld: it configures the kernel DLM for the cluster
// and answers the kernel's lockspace join and leave requests.
type Daemon struct {
	cfg     *Config
	k       Kernel
	log     *slog.Logger
	ring    *Ring
	uevents Uevents
	// openControl opens the DLM control device, for joins and leaves
	// asked through the query socket.
	openControl func() (*libdlm.Control, error)

	nodeID      int
	clusterName string
	started     time.Time
	monitor     *os.File

	mu         sync.Mutex
	lockspaces map[string]*Lockspace
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
}

// New checks the configuration and returns a daemon ready to Run.
func New(cfg *Config, o Options) (*Daemon, error) {
	d := &Daemon{
		cfg: cfg, k: o.Kernel, log: o.Logger, ring: o.Ring, uevents: o.Uevents,
		openControl: o.OpenControl, lockspaces: map[string]*Lockspace{}, started: time.Now(),
	}
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

// NodeID is this node's id.
func (d *Daemon) NodeID() int { return d.nodeID }

// Setup configures the kernel: configfs, the cluster's attributes, the
// monitor device, then the nodes' addresses. It then adopts lockspaces a
// previous daemon left in the kernel. The order is the kernel's rule: the
// monitor is open before the local node's address is written, so no
// lockspace can be created while nobody answers its uevent.
func (d *Daemon) Setup() error {
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
	have, err := d.k.Comms()
	if err != nil {
		return err
	}
	for _, n := range d.cfg.Nodes {
		if len(n.Addrs) == 0 || contains(have, n.ID) {
			continue
		}
		c := configfs.Comm{NodeID: n.ID, Addrs: n.Addrs, Local: n.ID == d.nodeID, Mark: n.Mark}
		if err := d.k.AddComm(c); err != nil {
			return err
		}
		d.log.Debug("configured node", "nodeid", n.ID, "addrs", n.Addrs, "local", c.Local)
	}
	for _, ls := range existing {
		d.adopt(ls)
	}
	return nil
}

func contains(ids []int, id int) bool {
	for _, i := range ids {
		if i == id {
			return true
		}
	}
	return false
}

// adopt takes over a lockspace found in the kernel at start-up. The
// previous daemon's exit closed the monitor, which stopped it; one whose
// global id was never written was still waiting for its join. Either
// way it is started again with this node as its member, so whatever
// waits on it resumes.
func (d *Daemon) adopt(ls string) {
	if err := configfs.ValidLockspaceName(ls); err != nil {
		d.log.Error("cannot adopt lockspace", "lockspace", ls, "err", err)
		return
	}
	id, err := d.k.ID(ls)
	if err != nil {
		d.log.Error("cannot adopt lockspace: reading its id failed", "lockspace", ls, "err", err)
		return
	}
	if id == 0 {
		d.log.Info("lockspace was waiting for its join when the previous daemon stopped: joining it now", "lockspace", ls)
		d.join(ls, time.Now())
		return
	}
	if id != configfs.GlobalID(ls) {
		d.log.Warn("adopted lockspace has a global id other than the reference's", "lockspace", ls, "id", fmt.Sprintf("%#x", id))
	}
	l := &Lockspace{Name: ls, GlobalID: id, State: StateJoining, Adopted: true}
	if err := d.start(l); err != nil {
		d.log.Error("cannot adopt lockspace left by the previous daemon; it stays stopped", "lockspace", ls, "err", err)
		return
	}
	l.State, l.JoinedAt = StateRunning, time.Now()
	d.mu.Lock()
	d.lockspaces[ls] = l
	d.mu.Unlock()
	d.log.Info("adopted lockspace left running by the previous daemon and started it again", "lockspace", ls, "id", fmt.Sprintf("%#x", id))
}

// members is the membership of a lockspace on a one-node cluster.
func (d *Daemon) members(ls string) []configfs.Member {
	return []configfs.Member{{NodeID: d.nodeID, Weight: d.cfg.Weight(ls, d.nodeID)}}
}

// start writes the members and starts the kernel's recovery.
func (d *Daemon) start(l *Lockspace) error {
	ms := d.members(l.Name)
	if err := d.k.SetMembers(l.Name, ms, nil); err != nil {
		return err
	}
	if err := d.k.SetControl(l.Name, true); err != nil {
		return err
	}
	l.Members = nil
	for _, m := range ms {
		l.Members = append(l.Members, m.NodeID)
	}
	l.Seq++
	return nil
}

// join answers the kernel's online uevent for ls: global id, nodir,
// members, start, then event_done=0, which releases the process that
// created the lockspace. Any failure answers event_done=-1 instead, so
// that process gets an error rather than waiting forever.
func (d *Daemon) join(ls string, t0 time.Time) {
	d.mu.Lock()
	if old := d.lockspaces[ls]; old != nil && old.State == StateRunning {
		d.mu.Unlock()
		d.log.Warn("join requested for a lockspace already running; answering success", "lockspace", ls)
		d.eventDone(ls, 0)
		return
	}
	l := &Lockspace{Name: ls, GlobalID: configfs.GlobalID(ls), State: StateJoining}
	d.lockspaces[ls] = l
	d.mu.Unlock()

	err := d.k.SetID(ls, l.GlobalID)
	if err == nil && d.cfg.Lockspaces[ls] != nil && d.cfg.Lockspaces[ls].Nodir {
		err = d.k.SetNodir(ls)
	}
	if err == nil {
		err = d.start(l)
	}
	if err != nil {
		d.log.Error("join failed; the lockspace's creator gets an error", "lockspace", ls, "err", err)
		if rerr := d.k.RemoveSpace(ls); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			d.log.Warn("cleanup after failed join", "lockspace", ls, "err", rerr)
		}
		d.mu.Lock()
		delete(d.lockspaces, ls)
		d.mu.Unlock()
		d.eventDone(ls, -1)
		return
	}
	if !d.eventDone(ls, 0) {
		d.mu.Lock()
		delete(d.lockspaces, ls)
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	l.State, l.JoinedAt, l.JoinTime, l.AddedSeq = StateRunning, time.Now(), time.Since(t0), l.Seq
	d.mu.Unlock()
	d.log.Info("joined lockspace", "lockspace", ls, "id", fmt.Sprintf("%#x", l.GlobalID), "members", l.Members,
		"join_ms", fmt.Sprintf("%.3f", float64(l.JoinTime.Microseconds())/1000))
}

func (d *Daemon) eventDone(ls string, v int) bool {
	if err := d.k.EventDone(ls, v); err != nil {
		d.log.Error("cannot answer the kernel's lockspace event", "lockspace", ls, "result", v, "err", err)
		return false
	}
	return true
}

// leave answers the kernel's offline uevent: stop, remove the members,
// then event_done=0 so the release completes.
func (d *Daemon) leave(ls string) {
	d.mu.Lock()
	l := d.lockspaces[ls]
	if l != nil {
		l.State = StateLeaving
	}
	d.mu.Unlock()
	if l == nil {
		d.log.Warn("leave requested for a lockspace this daemon does not know; cleaning up anyway", "lockspace", ls)
	}
	if err := d.k.SetControl(ls, false); err != nil {
		d.log.Warn("stop on leave", "lockspace", ls, "err", err)
	}
	if err := d.k.RemoveSpace(ls); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("remove lockspace members on leave", "lockspace", ls, "err", err)
	}
	d.eventDone(ls, 0)
	d.mu.Lock()
	delete(d.lockspaces, ls)
	d.mu.Unlock()
	d.log.Info("left lockspace", "lockspace", ls)
}

func (d *Daemon) handle(ev configfs.Event, t0 time.Time) {
	switch ev.Kind {
	case configfs.EventOnline:
		d.log.Debug("uevent online", "lockspace", ev.Lockspace, "seqnum", ev.Seqnum)
		d.join(ev.Lockspace, t0)
	case configfs.EventOffline:
		d.log.Debug("uevent offline", "lockspace", ev.Lockspace, "seqnum", ev.Seqnum)
		d.leave(ev.Lockspace)
	}
}

// Run serves uevents until ctx ends. Setup must have succeeded.
func (d *Daemon) Run(ctx context.Context) error {
	for {
		ev, err := d.uevents.Next(ctx)
		t0 := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, configfs.ErrMalformed) {
			d.log.Warn("ignored a malformed uevent", "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("uevents: %w", err)
		}
		d.handle(ev, t0)
	}
}

// Active returns the names of the lockspaces the daemon runs.
func (d *Daemon) Active() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for n := range d.lockspaces {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Snapshot returns copies of the daemon's lockspaces, by name.
func (d *Daemon) Snapshot() []Lockspace {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Lockspace, 0, len(d.lockspaces))
	for _, l := range d.lockspaces {
		c := *l
		c.Members = append([]int(nil), l.Members...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close releases the monitor device. Closing it makes the kernel stop
// every lockspace, which is what must happen when the daemon is gone.
func (d *Daemon) Close() error {
	if d.uevents != nil {
		d.uevents.Close()
	}
	if d.monitor != nil {
		return d.monitor.Close()
	}
	return nil
}
