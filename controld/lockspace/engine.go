package lockspace

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/godlm/godlm/controld/cluster"
)

// Phase is where a lockspace is in its life on this node.
type Phase int

// Phases of a local lockspace.
const (
	// PhaseJoining: the kernel waits for event_done; this node asked to
	// join and waits for its first completed change.
	PhaseJoining Phase = iota
	// PhaseMember: the lockspace ran at least once with this node.
	PhaseMember
	// PhaseLeaving: the kernel waits for event_done of the offline
	// uevent; this node asked to leave.
	PhaseLeaving
	// PhaseDead: this node may never run the lockspace again (it was
	// declared failed, or found the lockspace left by a previous daemon
	// in a cluster that went on without it). It stays stopped until the
	// node restarts; the only thing left is to let it go.
	PhaseDead
)

func (p Phase) String() string {
	switch p {
	case PhaseJoining:
		return "joining"
	case PhaseMember:
		return "member"
	case PhaseLeaving:
		return "leaving"
	case PhaseDead:
		return "dead"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Local is what this node has done with one lockspace.
type Local struct {
	Name  string
	Phase Phase
	// Running: the kernel lockspace was started and not stopped since.
	Running bool
	// StoppedFor is the last change this node reported stopping for.
	StoppedFor uint64
	// StartedFor is the last change this node started the kernel for.
	StartedFor uint64
	// JoinAt is when the join (or adoption) began.
	JoinAt time.Time
	// needDone: answer event_done=0 at the first start.
	needDone bool
	// needID: write the global id at the first start.
	needID bool
	// joinSent: the Join message was sent.
	joinSent bool
	// quorumStopped: stopped on quorum loss, restarts through a resync.
	quorumStopped bool
}

// Config is the engine's fixed setup.
type Config struct {
	Self        int
	Incarnation uint64
	// JoinTimeout bounds how long a join may wait (for quorum, or for
	// members to stop) before the kernel is answered with failure.
	JoinTimeout time.Duration
}

// Engine is this node's lockspace reducer. It is not safe for
// concurrent use; it reads the State it was given, which the cluster
// layer updates, so both must be guarded by the same lock.
type Engine struct {
	cfg     Config
	st      *State
	quorate bool
	comms   map[int]bool // comms of other nodes this node wrote
	locals  map[string]*Local
	// admitted: the ordered state showed this incarnation as a cluster
	// member. Messages are made only while it is: one made before (by
	// an incarnation the cluster has not admitted yet, or has expelled)
	// would be ordered under another incarnation and ignored.
	admitted bool
}

// NewEngine returns an engine for node cfg.Self reading st.
func NewEngine(cfg Config, st *State) *Engine {
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = time.Minute
	}
	return &Engine{cfg: cfg, st: st, comms: map[int]bool{}, locals: map[string]*Local{}}
}

// Quorate reports whether the engine last heard that the node has quorum.
func (e *Engine) Quorate() bool { return e.quorate }

// Incarnation is this node's current incarnation as the engine knows it.
func (e *Engine) Incarnation() uint64 { return e.cfg.Incarnation }

// Locals returns copies of this node's lockspaces, by name.
func (e *Engine) Locals() []Local {
	out := make([]Local, 0, len(e.locals))
	for _, l := range e.locals {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Local returns this node's record of one lockspace.
func (e *Engine) Local(name string) (Local, bool) {
	l, ok := e.locals[name]
	if !ok {
		return Local{}, false
	}
	return *l, true
}

// Online handles the kernel's online uevent: a process created the
// lockspace and waits for event_done.
func (e *Engine) Online(ls string, now time.Time) []Action {
	var acts []Action
	if l := e.locals[ls]; l != nil {
		switch l.Phase {
		case PhaseDead:
			return []Action{EventDone{Lockspace: ls, Result: -1,
				Reason: "a lockspace of this name was left by an earlier incarnation of this node; it can be used again after a reboot"}}
		case PhaseMember:
			if l.Running {
				return []Action{Note{Lockspace: ls, Warn: true, Text: "join requested for a lockspace already running; answering success"},
					EventDone{Lockspace: ls}}
			}
		}
		acts = append(acts, Note{Lockspace: ls, Warn: true, Text: fmt.Sprintf("join requested while the lockspace is %s here; joining again", l.Phase)})
	}
	e.locals[ls] = &Local{Name: ls, Phase: PhaseJoining, JoinAt: now, needDone: true, needID: true}
	return append(acts, e.reconcile()...)
}

// Offline handles the kernel's offline uevent: the last user released
// the lockspace, and the kernel waits for event_done.
func (e *Engine) Offline(ls string) []Action {
	l := e.locals[ls]
	if l == nil || l.Phase == PhaseDead {
		delete(e.locals, ls)
		return []Action{Stop{Lockspace: ls}, RemoveSpace{Lockspace: ls}, EventDone{Lockspace: ls}}
	}
	// The lockspace keeps running until the leave is ordered: the
	// others may still need this node for a recovery until then.
	l.Phase = PhaseLeaving
	acts := []Action{e.send(Msg{Kind: KindLeave, Lockspace: ls})}
	return append(acts, e.reconcile()...)
}

// Adopt takes a lockspace found in the kernel at start-up, left by a
// previous daemon. Only a one-node cluster can adopt: nobody else can
// have gone on without this node. pendingJoin says the previous daemon
// never answered its join (its global id is still 0).
func (e *Engine) Adopt(ls string, pendingJoin bool, now time.Time) []Action {
	e.locals[ls] = &Local{Name: ls, Phase: PhaseJoining, JoinAt: now, needDone: pendingJoin, needID: pendingJoin}
	return e.reconcile()
}

// Abandon records a lockspace found in the kernel at start-up that this
// node may not run again: the cluster may have recovered it without this
// node. It stays stopped until the node restarts.
func (e *Engine) Abandon(ls string) []Action {
	e.locals[ls] = &Local{Name: ls, Phase: PhaseDead}
	return []Action{Stop{Lockspace: ls}, Note{Lockspace: ls, Warn: true,
		Text: "lockspace left by a previous daemon in a multi-node cluster: it stays stopped; reboot this node to use it again"}}
}

// Event handles a cluster event that the State has already applied.
func (e *Engine) Event(ev cluster.Event) []Action {
	var acts []Action
	// Views and snapshots need nothing of their own: reconcile follows
	// the state they changed.
	if q, ok := ev.(*cluster.Quorum); ok {
		e.quorate = q.Quorate
		if !q.Quorate {
			for _, name := range e.names() {
				if l := e.locals[name]; l.Running {
					l.Running, l.quorumStopped = false, true
					acts = append(acts, Stop{Lockspace: name},
						Note{Lockspace: name, Warn: true, Text: "cluster quorum lost: lockspace stopped until quorum returns"})
				}
			}
		}
	}
	return append(acts, e.reconcile()...)
}

// follow tracks this node's incarnation through the members of the
// ordered state; reconcile calls it first, so whatever the engine is
// handling, it acts as the incarnation the state shows. An admitted
// incarnation that is no longer a member was declared failed (a
// snapshot may have skipped the view saying so): its lockspaces are
// expelled. A later incarnation of this node in the state is the one
// the cluster layer rejoined as, after an expulsion or at start-up:
// messages are made with it from then on.
func (e *Engine) follow() []Action {
	var acts []Action
	inc, ok := e.st.Members[e.cfg.Self]
	if e.admitted && inc != e.cfg.Incarnation {
		e.admitted = false
		acts = e.expel("the cluster declared this node failed")
	}
	if ok && inc > e.cfg.Incarnation {
		e.cfg.Incarnation = inc
	}
	if ok && inc == e.cfg.Incarnation {
		e.admitted = true
	}
	return acts
}

// send broadcasts m as made by this node's current incarnation, which
// the replicated state checks when m is ordered.
func (e *Engine) send(m Msg) Send {
	m.Incarnation = e.cfg.Incarnation
	return Send{Msg: m}
}

// expel makes every lockspace of this node dead: the others recover
// them without it, so it may never start them again. A join that never
// started is kept instead: the kernel lockspace holds no locks yet, so
// the join is asked again by the incarnation the node rejoins as, and
// the process that made the lockspace gets its answer from that join
// (or from the join timeout) rather than a failure now.
func (e *Engine) expel(why string) []Action {
	var acts []Action
	for _, name := range e.names() {
		l := e.locals[name]
		switch l.Phase {
		case PhaseDead:
			continue
		case PhaseLeaving:
			// The kernel only waits for the answer; the cluster has
			// removed this node anyway.
			delete(e.locals, name)
			acts = append(acts, Stop{Lockspace: name}, RemoveSpace{Lockspace: name}, EventDone{Lockspace: name})
			continue
		case PhaseJoining:
			if l.needDone {
				// Never started (a start clears needDone): ask again
				// once the cluster admits the next incarnation.
				l.joinSent = false
				acts = append(acts, Note{Lockspace: name, Warn: true,
					Text: why + " before this join completed: it will be asked again when the node rejoins the cluster"})
				continue
			}
		}
		l.Phase, l.Running = PhaseDead, false
		acts = append(acts, Stop{Lockspace: name},
			Note{Lockspace: name, Warn: true, Text: why + ": lockspace stopped for good; reboot this node to use it again"})
	}
	return acts
}

// Tick fails joins that waited longer than the join timeout.
func (e *Engine) Tick(now time.Time) []Action {
	var acts []Action
	for _, name := range e.names() {
		l := e.locals[name]
		if l.Phase != PhaseJoining || !l.needDone || now.Sub(l.JoinAt) < e.cfg.JoinTimeout {
			continue
		}
		acts = append(acts, EventDone{Lockspace: name, Result: -1, Reason: e.stuck(name)})
		acts = append(acts, e.JoinFailed(name)...)
	}
	return acts
}

// JoinFailed gives up a join whose creator was answered with failure
// (the join timed out, or the kernel refused the start): the lockspace
// is forgotten here, and left in the cluster if the join was sent.
func (e *Engine) JoinFailed(ls string) []Action {
	l := e.locals[ls]
	if l == nil {
		return nil
	}
	delete(e.locals, ls)
	acts := []Action{Stop{Lockspace: ls}, RemoveSpace{Lockspace: ls}}
	if l.joinSent {
		acts = append(acts, e.send(Msg{Kind: KindLeave, Lockspace: ls}))
	}
	return acts
}

// stuck explains why a join did not complete.
func (e *Engine) stuck(name string) string {
	why := fmt.Sprintf("join did not complete within %v: ", e.cfg.JoinTimeout)
	sp := e.st.Spaces[name]
	switch {
	case !e.quorate:
		return why + "the cluster has no quorum"
	case !e.admitted:
		return why + "this node is not a cluster member (it was declared failed, or has not joined yet), so it could not ask to join"
	case sp == nil || !slices.Contains(sp.Members, e.cfg.Self):
		return why + "the join request was not ordered"
	default:
		return why + fmt.Sprintf("change %d waits for nodes %v to stop", sp.Change, sp.Waiting())
	}
}

func (e *Engine) names() []string {
	names := make([]string, 0, len(e.locals))
	for n := range e.locals {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Reconcile returns the actions that bring this node in line with the
// State; the daemon calls it after anything changed.
func (e *Engine) Reconcile() []Action { return e.reconcile() }

func (e *Engine) reconcile() []Action {
	acts := e.follow()
	// Comms first: a failed node's comm must be gone before any start
	// without it, and a new member's comm must exist before any start
	// with it.
	var ids []int
	for id := range e.comms {
		ids = append(ids, id)
	}
	for id := range e.st.Members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if id == e.cfg.Self {
			continue
		}
		_, member := e.st.Members[id]
		if member && !e.comms[id] {
			e.comms[id] = true
			acts = append(acts, AddComm{Node: id})
		} else if !member && e.comms[id] {
			delete(e.comms, id)
			acts = append(acts, RemoveComm{Node: id})
		}
	}
	for _, name := range e.names() {
		acts = append(acts, e.reconcileOne(e.locals[name])...)
	}
	return acts
}

func (e *Engine) reconcileOne(l *Local) []Action {
	self := e.cfg.Self
	sp := e.st.Spaces[l.Name]
	// Membership counts only for this incarnation: until its arrival
	// is ordered, the node id may still stand for an earlier one.
	in := sp != nil && slices.Contains(sp.Members, self) && e.st.Members[self] == e.cfg.Incarnation
	var acts []Action
	switch l.Phase {
	case PhaseDead:
		return nil
	case PhaseLeaving:
		if in {
			return nil
		}
		delete(e.locals, l.Name)
		if l.Running {
			acts = append(acts, Stop{Lockspace: l.Name})
		}
		return append(acts, RemoveSpace{Lockspace: l.Name}, EventDone{Lockspace: l.Name})
	case PhaseJoining:
		if !in {
			if !l.joinSent && e.admitted {
				l.joinSent = true
				acts = append(acts, e.send(Msg{Kind: KindJoin, Lockspace: l.Name}))
			}
			return acts
		}
	case PhaseMember:
		if !in {
			l.Phase, l.Running = PhaseDead, false
			return []Action{Stop{Lockspace: l.Name}, Note{Lockspace: l.Name, Warn: true,
				Text: "the cluster removed this node from the lockspace without its leave: stopped for good; reboot this node to use it again"}}
		}
	}
	if !sp.Complete() {
		if l.StoppedFor < sp.Change {
			if l.Running {
				acts = append(acts, Stop{Lockspace: l.Name, Change: sp.Change})
				l.Running = false
			}
			l.StoppedFor = sp.Change
			l.quorumStopped = false
			acts = append(acts, e.send(Msg{Kind: KindStopped, Lockspace: l.Name, Change: sp.Change}))
		}
		return acts
	}
	if !e.quorate {
		return acts
	}
	if l.StartedFor < sp.Started {
		acts = append(acts, Start{Lockspace: l.Name, Change: sp.Started, Members: slices.Clone(sp.StartedMembers),
			Renew: slices.Clone(sp.Renew), First: l.needID})
		l.StartedFor, l.Running, l.needID, l.quorumStopped = sp.Started, true, false, false
		if l.StoppedFor < sp.Started {
			l.StoppedFor = sp.Started
		}
		if l.needDone {
			acts = append(acts, EventDone{Lockspace: l.Name})
			l.needDone = false
		}
		l.Phase = PhaseMember
		return acts
	}
	if l.quorumStopped {
		// Stopped alone on quorum loss while nothing changed: ask for a
		// change with the same members, so all stop and start together.
		l.quorumStopped = false
		acts = append(acts, e.send(Msg{Kind: KindResync, Lockspace: l.Name}))
	}
	return acts
}
