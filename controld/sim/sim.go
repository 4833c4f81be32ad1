// Package sim runs N daemon cores together — the embedded cluster layer
// (raftcluster.Core) and the lockspace engine — over a fake network, a
// fake clock and a fake kernel, with faults drawn from a seed, and checks
// the lockspace invariants after every step:
//
//   - no node starts change k of a lockspace while a member of k still
//     runs it (the kernel's rule: stop has completed everywhere first);
//   - every node that starts change k starts it with the same members;
//   - a node starts nothing unless it is quorate and a current member;
//   - every node applies a prefix of one common order of events;
//   - a node whose failure is applied, if it still runs that
//     incarnation, has been not quorate (its lockspaces stopped) for at
//     least the cluster layer's margin (raftcluster.Core.Margin);
//   - no node starts a lockspace without a node that ran it at its last
//     start and has failed, until that node is fenced: its actor's
//     agent succeeded (the simulated agents succeed, fail, or hang until
//     their timeout, and a successful one powers the victim off), or it
//     came back with an empty kernel;
//   - once the faults have ended for a while, no join fails: each join
//     asked during the faults completes after them;
//   - after the faults end, everything converges: one quorate view, the
//     same state on every node once all applied the same prefix, every
//     lockspace's change complete and running on all its members, every
//     kernel request answered.
//
// Everything is driven from one goroutine in a fixed order, and the
// consensus library's election jitter is fed from the seed, so a seed
// replays the same run.
package sim

import (
	crand "crypto/rand"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/godlm/godlm/controld"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/cluster/raftcluster"
	"github.com/godlm/godlm/controld/fence"
	"github.com/godlm/godlm/controld/lockspace"
)

// Tick is the simulated time of one step.
const Tick = 100 * time.Millisecond

// Options shape a run.
type Options struct {
	Nodes       int // 3 or 5 when 0: drawn from the seed
	FaultTicks  int // ticks with faults (default 400)
	SettleTicks int // ticks after the faults to converge (default 600)
	// Trace, when set, receives one line per step worth reading.
	Trace io.Writer
	// NoFenceGate unlinks the lockspaces from the fence state, so that
	// recovery does not wait for fencing: the fencing invariant must
	// then fail, which shows that it can.
	NoFenceGate bool
}

// kernel is one node's fake kernel: its lockspaces.
type kernel struct {
	spaces map[string]*kspace
}

type kspace struct {
	running bool
	members []int
	// waiting is the uevent whose event_done the kernel waits for:
	// "online", "offline" or "".
	waiting string
}

// healedTicks is how long after the faults end the cluster may take to
// settle. A join answered with failure later than that had a healed
// cluster for that long and did not complete: a bug. (A join refused
// for a reason of its own is answered at once, during the faults.)
const healedTicks = 100

type node struct {
	id      int
	up      bool
	inc     uint64
	store   *raftcluster.MemoryPersister
	core    *raftcluster.Core
	rep     *controld.Replicated
	st      *lockspace.State // rep.Lockspaces
	eng     *lockspace.Engine
	k       kernel
	downFor int // ticks until a crashed node restarts

	// quorate is what the last Quorum event said; unquorateAt is the
	// tick it last turned false (or the node booted).
	quorate     bool
	unquorateAt int

	applied []uint64
	// The daemon's sender: messages broadcast one at a time, in order,
	// the next once the previous one is ordered.
	sendQ    []lockspace.Msg
	inflight uint64 // the Core's id of the message being ordered; 0: none
	// Fencing: the fence messages to send (before the lockspace ones),
	// whether the one in flight is one, the agents this node runs by
	// victim, and what it reported already in this life.
	fenceQ        []fence.Msg
	fenceInflight bool
	agents        map[int]*agentRun
	reported      map[int][2]uint64 // by victim: the failure and failed rounds of the round this node reported last
	cleanSent     bool
	startupSent   bool
}

// agentRun is a simulated fence agent: it ends at tick end, succeeding
// or failing. A hung agent is one that ends at its timeout, failing.
type agentRun struct {
	failSeq uint64
	end     int
	ok      bool
}

type msg struct {
	at int
	m  *raftpb.Message
}

// Sim is one simulated cluster.
type Sim struct {
	seed  uint64
	rng   *rand.Rand
	opts  Options
	tick  int
	nodes []*node
	net   []msg
	cut   map[[2]int]bool
	loss  float64
	// order maps a position in the order to a digest of its event.
	order   map[uint64]uint64
	started map[string]map[uint64][]int

	// failedSeen holds the failures some node applied already.
	failedSeen map[cluster.Member]bool
	// lastStart holds each lockspace's members (with the incarnation
	// each ran as) at its last start, and leaving the nodes that asked to
	// leave it since; failSeq is where each failed incarnation's failure
	// was ordered.
	lastStart map[string][]cluster.Member
	leaving   map[string]map[int]bool
	failSeq   map[cluster.Member]uint64

	nextInc uint64
	trace   strings.Builder
	err     error
	// Stats of the run, for reports.
	Stats Stats
}

// Stats counts what happened in a run.
type Stats struct {
	Starts, Joins, Leaves, Crashes, Partitions, Failed int
	// Fenced counts the nodes fenced by an agent, FenceFailures the
	// agent runs that failed (hung ones included).
	Fenced, FenceFailures int
	// Superseded counts stale "stopped" reports the sender skipped.
	Superseded int
}

// randMu serializes runs: the consensus library reads its election
// jitter from the process-wide crypto/rand.Reader, which a run replaces
// with a reader drawn from its seed.
var randMu sync.Mutex

type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

// Run simulates one seed and returns the first invariant violation,
// with the trace of the run, or nil.
func Run(seed uint64, o Options) (*Sim, error) {
	randMu.Lock()
	defer randMu.Unlock()
	saved := crand.Reader
	crand.Reader = seededReader{rand.New(rand.NewPCG(seed, 0x6a09e667))}
	defer func() { crand.Reader = saved }()

	s := &Sim{seed: seed, rng: rand.New(rand.NewPCG(seed, 0xbb67ae85)), opts: o, cut: map[[2]int]bool{},
		order: map[uint64]uint64{}, started: map[string]map[uint64][]int{}, failedSeen: map[cluster.Member]bool{}, nextInc: 1,
		lastStart: map[string][]cluster.Member{}, leaving: map[string]map[int]bool{}, failSeq: map[cluster.Member]uint64{}}
	if s.opts.Nodes == 0 {
		s.opts.Nodes = []int{3, 5}[s.rng.IntN(2)]
	}
	if s.opts.FaultTicks == 0 {
		s.opts.FaultTicks = 400
	}
	if s.opts.SettleTicks == 0 {
		s.opts.SettleTicks = 600
	}
	for id := 1; id <= s.opts.Nodes; id++ {
		n := &node{id: id, store: &raftcluster.MemoryPersister{}}
		s.nodes = append(s.nodes, n)
		if err := s.boot(n); err != nil {
			return s, err
		}
	}
	for s.tick = 0; s.tick < s.opts.FaultTicks+s.opts.SettleTicks; s.tick++ {
		if s.tick < s.opts.FaultTicks {
			s.fault()
		} else if s.tick == s.opts.FaultTicks {
			s.healAll()
		}
		s.step()
		if s.err != nil {
			return s, s.fail(s.err)
		}
	}
	if err := s.finish(); err != nil {
		return s, s.fail(err)
	}
	return s, nil
}

// drainTicks bounds how long finish waits for the last entries.
const drainTicks = 100

// finish lets the last ordered entries reach every node, then checks the
// end state. When the settle time ends, an entry may have been applied
// by some nodes and not yet by the others (a follower learns that an
// entry is committed from the leader's next message), and comparing the
// states then reports a delay as a difference. So finish steps on,
// without faults, until every node has applied the same prefix of the
// order and has nothing left to broadcast.
func (s *Sim) finish() error {
	for i := 0; !s.quiet(); i++ {
		if i == drainTicks {
			return fmt.Errorf("the cluster did not settle within %d ticks after the faults: %s", s.opts.SettleTicks+drainTicks, s.positions())
		}
		s.step()
		if s.err != nil {
			return s.err
		}
		s.tick++
	}
	return s.converged()
}

// quiet reports whether every node applied the same prefix of the order
// and has no broadcast pending. A node that is down settles nothing:
// converged reports it.
func (s *Sim) quiet() bool {
	for _, n := range s.nodes {
		if !n.up {
			return true
		}
	}
	for _, n := range s.nodes {
		if n.st.Seq != s.nodes[0].st.Seq || len(n.sendQ) > 0 || len(n.fenceQ) > 0 || n.inflight != 0 {
			return false
		}
	}
	return true
}

// positions describes where each node is in the order, for reports.
func (s *Sim) positions() string {
	var b strings.Builder
	for _, n := range s.nodes {
		if !n.up {
			fmt.Fprintf(&b, "node %d down; ", n.id)
			continue
		}
		fmt.Fprintf(&b, "node %d applied up to %d with %d to send; ", n.id, n.st.Seq, len(n.sendQ))
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func (s *Sim) fail(err error) error {
	return fmt.Errorf("seed %d, tick %d: %w\ntrace:\n%s", s.seed, s.tick, err, s.trace.String())
}

func (s *Sim) logf(format string, args ...any) {
	line := fmt.Sprintf("%5d ", s.tick) + fmt.Sprintf(format, args...) + "\n"
	s.trace.WriteString(line)
	if s.opts.Trace != nil {
		io.WriteString(s.opts.Trace, line)
	}
}

func (s *Sim) now() time.Time { return time.Unix(1_000_000, 0).Add(time.Duration(s.tick) * Tick) }

func (s *Sim) voters() []int {
	var v []int
	for id := 1; id <= s.opts.Nodes; id++ {
		v = append(v, id)
	}
	return v
}

// boot starts a node's daemon: a new incarnation, a fresh engine, the
// consensus state it persisted.
func (s *Sim) boot(n *node) error {
	s.nextInc++
	n.inc = s.nextInc
	n.rep = controld.NewReplicated()
	n.st = n.rep.Lockspaces
	if s.opts.NoFenceGate {
		n.st.Unfenced, n.st.Held = nil, nil
	}
	n.fenceQ, n.fenceInflight, n.agents, n.reported, n.cleanSent, n.startupSent = nil, false, map[int]*agentRun{}, map[int][2]uint64{}, false, false
	core, err := raftcluster.NewCore(raftcluster.Config{
		Self: cluster.Member{ID: n.id, Incarnation: n.inc}, Voters: s.voters(),
		Storage: n.store, SM: n.rep, TickInterval: Tick,
		NewIncarnation: func() uint64 { s.nextInc++; return s.nextInc },
	})
	if err != nil {
		return fmt.Errorf("node %d: start core: %w", n.id, err)
	}
	n.core = core
	n.eng = lockspace.NewEngine(lockspace.Config{Self: n.id, Incarnation: n.inc, JoinTimeout: 60 * time.Second}, n.st)
	n.up = true
	n.applied = nil
	n.sendQ, n.inflight = nil, 0
	n.quorate, n.unquorateAt = false, s.tick
	if n.k.spaces == nil {
		n.k.spaces = map[string]*kspace{}
	}
	s.logf("node %d boots as incarnation %d", n.id, n.inc)
	return nil
}

// crash powers a node off: its kernel state and daemon are gone; what
// it persisted stays.
func (s *Sim) crash(n *node) {
	n.up, n.core, n.eng, n.st, n.rep = false, nil, nil, nil, nil
	n.sendQ, n.inflight = nil, 0
	n.fenceQ, n.fenceInflight, n.agents = nil, false, nil
	n.k.spaces = map[string]*kspace{}
	n.downFor = 20 + s.rng.IntN(80)
	s.Stats.Crashes++
	s.logf("node %d crashes", n.id)
}

var names = []string{"a", "b", "c"}

// fault draws this tick's faults and user actions.
func (s *Sim) fault() {
	r := s.rng.Float64()
	switch {
	case r < 0.004:
		// Partition into two random groups.
		s.cut = map[[2]int]bool{}
		side := map[int]bool{}
		for _, n := range s.nodes {
			side[n.id] = s.rng.IntN(2) == 0
		}
		for _, a := range s.nodes {
			for _, b := range s.nodes {
				if side[a.id] != side[b.id] {
					s.cut[[2]int{a.id, b.id}] = true
				}
			}
		}
		s.Stats.Partitions++
		s.logf("partition %v", side)
	case r < 0.010:
		s.cut = map[[2]int]bool{}
		s.logf("heal")
	case r < 0.013:
		if n := s.nodes[s.rng.IntN(len(s.nodes))]; n.up && s.upCount() > len(s.nodes)/2+1 {
			s.crash(n)
		}
	case r < 0.016:
		s.loss = []float64{0, 0, 0.05, 0.2}[s.rng.IntN(4)]
		s.logf("message loss %.2f", s.loss)
	case r < 0.06:
		// A user creates or releases a lockspace.
		n := s.nodes[s.rng.IntN(len(s.nodes))]
		if !n.up {
			break
		}
		ls := names[s.rng.IntN(len(names))]
		if k := n.k.spaces[ls]; k == nil {
			n.k.spaces[ls] = &kspace{waiting: "online"}
			s.Stats.Joins++
			s.logf("node %d: online %s", n.id, ls)
			s.exec(n, n.eng.Online(ls, s.now()))
		} else if k.waiting == "" {
			k.waiting = "offline"
			if s.leaving[ls] == nil {
				s.leaving[ls] = map[int]bool{}
			}
			s.leaving[ls][n.id] = true
			s.Stats.Leaves++
			s.logf("node %d: offline %s", n.id, ls)
			s.exec(n, n.eng.Offline(ls))
		}
	}
}

func (s *Sim) upCount() int {
	c := 0
	for _, n := range s.nodes {
		if n.up {
			c++
		}
	}
	return c
}

func (s *Sim) healAll() {
	s.cut, s.loss = map[[2]int]bool{}, 0
	s.logf("faults end: heal, no loss")
}

// step advances the clock one tick: restarts, ticks, message delivery,
// processing, engine timers.
func (s *Sim) step() {
	for _, n := range s.nodes {
		if !n.up {
			if n.downFor--; n.downFor <= 0 {
				if err := s.boot(n); err != nil {
					s.err = err
					return
				}
			}
		}
	}
	for _, n := range s.nodes {
		if n.up {
			n.core.Tick()
		}
	}
	// Deliver what is due, in send order.
	var later []msg
	due := s.net
	s.net = nil
	for _, m := range due {
		if m.at > s.tick {
			later = append(later, m)
			continue
		}
		to := s.nodes[m.m.GetTo()-1]
		if !to.up {
			continue
		}
		if err := to.core.Step(m.m); err != nil {
			s.logf("node %d: step: %v", to.id, err)
		}
	}
	s.net = append(later, s.net...)
	// Process until quiet: outputs can feed more work.
	for round := 0; round < 20; round++ {
		busy := false
		for _, n := range s.nodes {
			if n.up && s.process(n) {
				busy = true
			}
			if s.err != nil {
				return
			}
		}
		if !busy {
			break
		}
	}
	for _, n := range s.nodes {
		if n.up {
			s.exec(n, n.eng.Tick(s.now()))
		}
	}
	for _, n := range s.nodes {
		if n.up && s.err == nil {
			s.fence(n)
		}
	}
}

// fence does node n's part in fencing, as the daemon's fencer does: as
// the actor of a pending node it runs an agent (which succeeds after a
// while, fails, or hangs until its timeout), powers the victim off when
// it succeeds, and reports the result; it reports a clean restart, and
// the startup check from the lowest member.
func (s *Sim) fence(n *node) {
	st := n.rep.Fence
	self, admitted := n.st.Members[n.id]
	admitted = admitted && self == n.eng.Incarnation()
	for victim, r := range n.agents {
		rec := st.Pending[victim]
		if rec == nil || rec.FailSeq != r.failSeq || st.Actor(victim) != n.id {
			s.logf("node %d stops its fence agent for node %d: %v", n.id, victim, rec)
			delete(n.agents, victim) // fenced another way, or taken over: killed
			continue
		}
		if s.tick < r.end {
			continue
		}
		delete(n.agents, victim)
		n.reported[victim] = [2]uint64{rec.FailSeq, uint64(rec.Rounds)}
		m := fence.Msg{Kind: fence.KindResult, Node: victim, FailSeq: r.failSeq, OK: r.ok}
		if r.ok {
			if v := s.nodes[victim-1]; v.up {
				s.logf("node %d powers node %d off", n.id, victim)
				s.crash(v)
			}
			s.Stats.Fenced++
		} else {
			m.Err = "agent failed"
			s.Stats.FenceFailures++
		}
		n.fenceQ = append(n.fenceQ, m)
	}
	if !n.quorate || !admitted {
		s.send(n)
		return
	}
	for _, rec := range st.Records() {
		if st.Actor(rec.Node) != n.id || n.agents[rec.Node] != nil {
			continue
		}
		if last, ok := n.reported[rec.Node]; ok && last[0] == rec.FailSeq && uint64(rec.Rounds) <= last[1] {
			continue // its last result is not applied yet
		}
		r := &agentRun{failSeq: rec.FailSeq}
		switch x := s.rng.Float64(); {
		case x < 0.75:
			r.end, r.ok = s.tick+2+s.rng.IntN(20), true
		case x < 0.9:
			r.end = s.tick + 2 + s.rng.IntN(10)
		default: // hangs until the agent timeout kills it
			r.end = s.tick + 40 + s.rng.IntN(30)
		}
		n.agents[rec.Node] = r
		s.logf("node %d runs a fence agent for node %d (failure %d)", n.id, rec.Node, rec.FailSeq)
	}
	if rec := st.Pending[n.id]; rec != nil && !n.cleanSent && (rec.Reason == fence.ReasonStartup || rec.Incarnation < self) {
		// A simulated node's kernel is empty after a boot, and a node
		// expelled while up is a new incarnation of the same life: only
		// the first incarnation after a boot may say it is clean.
		if n.inc == self {
			n.cleanSent = true
			n.fenceQ = append(n.fenceQ, fence.Msg{Kind: fence.KindClean})
		}
	}
	if !st.StartupChecked && !n.startupSent && len(st.Members) > 0 && st.Members[0].ID == n.id {
		if len(st.Members) == len(s.nodes) || s.tick > 50 {
			n.startupSent = true
			n.fenceQ = append(n.fenceQ, fence.Msg{Kind: fence.KindStartup, Nodes: s.voters()})
		}
	}
	s.send(n)
}

// process runs one node's Core and feeds its events to the engine.
func (s *Sim) process(n *node) bool {
	out := n.core.Process()
	if out.Err != nil {
		s.err = fmt.Errorf("node %d: core failed: %w", n.id, out.Err)
		return false
	}
	for _, m := range out.Messages {
		if s.cut[[2]int{n.id, int(m.GetTo())}] || s.rng.Float64() < s.loss {
			continue
		}
		s.net = append(s.net, msg{at: s.tick + s.rng.IntN(2), m: m})
	}
	for _, d := range out.Done {
		if d.ID == n.inflight { // ordered, or dropped with an expelled incarnation
			if n.fenceInflight {
				n.fenceQ, n.fenceInflight = n.fenceQ[1:], false
			} else {
				n.sendQ = n.sendQ[1:]
			}
			n.inflight = 0
		}
	}
	s.send(n)
	for _, ev := range out.Events {
		s.checkOrder(n, ev)
		switch ev := ev.(type) {
		case *cluster.View:
			s.logf("node %d: view %d members %v joined %v left %v failed %v", n.id, ev.Seq, ev.Members, ev.Joined, ev.Left, ev.Failed)
			s.Stats.Failed += len(ev.Failed)
			for _, f := range ev.Failed {
				s.failSeq[f] = ev.Seq
			}
			s.checkMargin(ev.Failed)
		case *cluster.Quorum:
			s.logf("node %d: quorate %v", n.id, ev.Quorate)
			if n.quorate && !ev.Quorate {
				n.unquorateAt = s.tick
			}
			n.quorate = ev.Quorate
		case *cluster.Restored:
			s.logf("node %d: restored at %d", n.id, ev.Seq)
		}
		s.exec(n, n.eng.Event(ev))
		if !n.up || s.err != nil {
			break
		}
	}
	return len(out.Messages) > 0 || len(out.Events) > 0 || len(out.Done) > 0
}

// checkMargin checks, when a failure is first applied, that the failed
// node, if it still runs that incarnation, stopped being quorate at
// least the cluster layer's margin earlier: the majority may recover
// its locks now, and it must not be granting any.
func (s *Sim) checkMargin(failed []cluster.Member) {
	for _, f := range failed {
		if s.failedSeen[f] {
			continue
		}
		s.failedSeen[f] = true
		n := s.nodes[f.ID-1]
		if !n.up || n.core.Status().Self.Incarnation != f.Incarnation {
			continue
		}
		if margin := n.core.Margin(); n.quorate || s.tick-n.unquorateAt < margin {
			s.err = fmt.Errorf("node %d failed while quorate %v, not quorate since tick %d: less than the margin of %d ticks", f.ID, n.quorate, n.unquorateAt, margin)
			return
		}
	}
}

// checkOrder checks that ordered events agree across nodes.
func (s *Sim) checkOrder(n *node, ev cluster.Event) {
	var seq uint64
	h := fnv.New64a()
	switch ev := ev.(type) {
	case *cluster.View:
		seq = ev.Seq
		fmt.Fprintf(h, "view %v %v %v %v", ev.Members, ev.Joined, ev.Left, ev.Failed)
	case *cluster.Message:
		seq = ev.Seq
		fmt.Fprintf(h, "msg %v %x", ev.From, ev.Data)
	default:
		return
	}
	// Several messages of one batch share a position: fold them in.
	key := seq<<8 | uint64(countSame(n.applied, seq))
	n.applied = append(n.applied, seq)
	d := h.Sum64()
	if prev, ok := s.order[key]; ok && prev != d {
		s.err = fmt.Errorf("node %d applied a different event at position %d than another node", n.id, seq)
		return
	}
	s.order[key] = d
}

func countSame(applied []uint64, seq uint64) int {
	c := 0
	for i := len(applied) - 1; i >= 0 && applied[i] == seq; i-- {
		c++
	}
	return c
}

// send hands the next queued message to the Core when none is being
// ordered, as the daemon's sender does, skipping a stale "stopped".
func (s *Sim) send(n *node) {
	if n.inflight == 0 && len(n.fenceQ) > 0 {
		n.inflight, n.fenceInflight = n.core.Broadcast(n.fenceQ[0].Encode()), true
		return
	}
	for n.inflight == 0 && len(n.sendQ) > 0 {
		if lockspace.Superseded(n.sendQ) {
			s.logf("node %d: %s superseded", n.id, n.sendQ[0])
			s.Stats.Superseded++
			n.sendQ = n.sendQ[1:]
			continue
		}
		n.inflight = n.core.Broadcast(n.sendQ[0].Encode())
	}
}

// exec performs a node's engine actions on its fake kernel and the
// cluster, checking the kernel's rules.
func (s *Sim) exec(n *node, acts []lockspace.Action) {
	for _, a := range acts {
		if s.err != nil || !n.up {
			return
		}
		switch a := a.(type) {
		case lockspace.Send:
			n.sendQ = append(n.sendQ, a.Msg)
			s.send(n)
		case lockspace.Stop:
			if k := n.k.spaces[a.Lockspace]; k != nil {
				k.running = false
			}
		case lockspace.Start:
			s.start(n, a)
		case lockspace.EventDone:
			k := n.k.spaces[a.Lockspace]
			if k == nil || k.waiting == "" {
				s.err = fmt.Errorf("node %d: event_done %s %d with no uevent waiting", n.id, a.Lockspace, a.Result)
				return
			}
			s.logf("node %d: event_done %s %d (%s) %s", n.id, a.Lockspace, a.Result, k.waiting, a.Reason)
			if k.waiting == "online" && a.Result != 0 && s.tick >= s.opts.FaultTicks+healedTicks {
				s.err = fmt.Errorf("node %d: join of %s failed %v after the faults ended: %s", n.id, a.Lockspace, time.Duration(s.tick-s.opts.FaultTicks)*Tick, a.Reason)
				return
			}
			if k.waiting == "offline" || a.Result != 0 {
				delete(n.k.spaces, a.Lockspace)
			} else {
				k.waiting = ""
			}
		case lockspace.RemoveSpace, lockspace.AddComm, lockspace.RemoveComm, lockspace.Note:
		}
	}
}

func (s *Sim) start(n *node, a lockspace.Start) {
	k := n.k.spaces[a.Lockspace]
	if k == nil {
		s.err = fmt.Errorf("node %d starts %s, which its kernel does not have", n.id, a.Lockspace)
		return
	}
	if !n.eng.Quorate() || n.st.Members[n.id] != n.eng.Incarnation() {
		s.err = fmt.Errorf("node %d starts %s change %d without quorum or membership", n.id, a.Lockspace, a.Change)
		return
	}
	if !slices.Contains(a.Members, n.id) {
		s.err = fmt.Errorf("node %d starts %s change %d without being a member %v", n.id, a.Lockspace, a.Change, a.Members)
		return
	}
	// A node that ran the lockspace at its last start and is not in
	// this one left or failed; if it did not ask to leave, it must be
	// fenced first.
	for _, m := range s.lastStart[a.Lockspace] {
		if slices.Contains(a.Members, m.ID) || s.leaving[a.Lockspace][m.ID] {
			continue
		}
		seq, failed := s.failSeq[m]
		if o, fenced := n.rep.Fence.Done[m.ID]; failed && (!fenced || o.Seq <= seq) {
			s.err = fmt.Errorf("node %d starts %s change %d with %v before failed node %v (failure %d) was fenced", n.id, a.Lockspace, a.Change, a.Members, m, seq)
			return
		}
	}
	byChange := s.started[a.Lockspace]
	if byChange == nil {
		byChange = map[uint64][]int{}
		s.started[a.Lockspace] = byChange
	}
	if first, ok := byChange[a.Change]; ok {
		if !slices.Equal(first, a.Members) {
			s.err = fmt.Errorf("node %d starts %s change %d with %v; another node started it with %v", n.id, a.Lockspace, a.Change, a.Members, first)
			return
		}
	} else {
		for _, m := range a.Members {
			if o := s.nodes[m-1]; o.up && o.k.spaces[a.Lockspace] != nil && o.k.spaces[a.Lockspace].running {
				s.err = fmt.Errorf("node %d starts %s change %d while member %d still runs it", n.id, a.Lockspace, a.Change, m)
				return
			}
		}
		// Nobody outside the new members may still run it: a node
		// the others went on without has stopped it, having lost
		// quorum before it could be declared failed. (A node that
		// asked to leave may still run it until it hears its leave
		// was ordered: its last user has released it.)
		for _, o := range s.nodes {
			if !o.up || slices.Contains(a.Members, o.id) {
				continue
			}
			if l, _ := o.eng.Local(a.Lockspace); l.Phase == lockspace.PhaseLeaving {
				continue
			}
			if ko := o.k.spaces[a.Lockspace]; ko != nil && ko.running {
				s.err = fmt.Errorf("node %d starts %s change %d with %v while node %d still runs it with %v", n.id, a.Lockspace, a.Change, a.Members, o.id, ko.members)
				return
			}
		}
		byChange[a.Change] = slices.Clone(a.Members)
		var ms []cluster.Member
		for _, m := range a.Members {
			ms = append(ms, cluster.Member{ID: m, Incarnation: n.st.Members[m]})
		}
		s.lastStart[a.Lockspace] = ms
		for m := range s.leaving[a.Lockspace] {
			if !slices.Contains(a.Members, m) {
				delete(s.leaving[a.Lockspace], m)
			}
		}
	}
	k.running, k.members = true, slices.Clone(a.Members)
	s.Stats.Starts++
	s.logf("node %d: start %s change %d members %v renew %v", n.id, a.Lockspace, a.Change, a.Members, a.Renew)
}

// converged checks the end state after the faults stopped.
func (s *Sim) converged() error {
	var ref []byte
	for _, n := range s.nodes {
		if !n.up {
			return fmt.Errorf("node %d is still down", n.id)
		}
		st := n.core.Status()
		if !st.Quorate || len(st.Members) != len(s.nodes) {
			return fmt.Errorf("node %d: quorate %v members %v, want all %d", n.id, st.Quorate, st.Members, len(s.nodes))
		}
		snap, err := n.st.Snapshot()
		if err != nil {
			return err
		}
		if ref == nil {
			ref = snap
		} else if string(snap) != string(ref) {
			return fmt.Errorf("node %d's state differs:\n%s\nvs\n%s", n.id, snap, ref)
		}
	}
	for _, n := range s.nodes {
		for name, k := range n.k.spaces {
			if l, _ := n.eng.Local(name); l.Phase == lockspace.PhaseDead {
				// Left by an expelled incarnation: it stays stopped
				// until the node reboots.
				if k.running {
					return fmt.Errorf("node %d runs %s, which it was expelled from", n.id, name)
				}
				continue
			}
			if k.waiting != "" {
				return fmt.Errorf("node %d: kernel still waits for event_done of %s %s", n.id, k.waiting, name)
			}
			sp := n.st.Spaces[name]
			if sp == nil || !sp.Complete() || !slices.Contains(sp.Members, n.id) {
				return fmt.Errorf("node %d has lockspace %s, which the cluster has not completed with it: %+v", n.id, name, sp)
			}
			if !k.running || !slices.Equal(k.members, sp.Members) {
				return fmt.Errorf("node %d: %s running %v with %v, want running with %v", n.id, name, k.running, k.members, sp.Members)
			}
		}
		for name, sp := range n.st.Spaces {
			for _, m := range sp.Members {
				if s.nodes[m-1].k.spaces[name] == nil {
					return fmt.Errorf("lockspace %s lists member %d, whose kernel does not have it", name, m)
				}
			}
		}
	}
	return nil
}
