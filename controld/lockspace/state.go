package lockspace

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/internal/lsname"
)

// Space is the replicated state of one lockspace.
type Space struct {
	Name string `json:"name"`
	// Change numbers the lockspace's membership changes; a new join,
	// leave, failure or resync makes a new one. The numbers come from
	// one counter for all lockspaces, so a change number never repeats,
	// even when a lockspace is removed and made again.
	Change uint64 `json:"change"`
	// Members are the members of change Change, sorted.
	Members []int `json:"members"`
	// Stopped are the members that reported stopping for Change.
	Stopped []int `json:"stopped,omitempty"`
	// Started is the last completed change: every member had stopped
	// for it. Started == Change means no change is pending.
	Started uint64 `json:"started"`
	// StartedMembers are the members of change Started.
	StartedMembers []int `json:"started_members,omitempty"`
	// Renew are the members of change Started that left and came back
	// since the change before it: their configfs node entries must be
	// made again so the kernel sees them as new.
	Renew []int `json:"renew,omitempty"`
	// Removed are the nodes removed since the last completed change.
	Removed []int `json:"removed,omitempty"`
	// Failed are the nodes that failed since the last completed change
	// (as opposed to leaving cleanly).
	Failed []int `json:"failed,omitempty"`
}

// Complete reports whether no change is pending: every member stopped
// for the current change and the lockspace runs with its members.
func (s *Space) Complete() bool { return s.Started == s.Change }

// Waiting lists the members of the current change that have not
// reported stopping, sorted.
func (s *Space) Waiting() []int {
	var out []int
	for _, m := range s.Members {
		if !slices.Contains(s.Stopped, m) {
			out = append(out, m)
		}
	}
	return out
}

func (s *Space) clone() *Space {
	c := *s
	c.Members = slices.Clone(s.Members)
	c.Stopped = slices.Clone(s.Stopped)
	c.StartedMembers = slices.Clone(s.StartedMembers)
	c.Renew = slices.Clone(s.Renew)
	c.Removed = slices.Clone(s.Removed)
	c.Failed = slices.Clone(s.Failed)
	return &c
}

// State is the replicated state of all lockspaces, and the cluster's
// members as the ordered stream last showed them. It implements
// cluster.StateMachine; it is not safe for concurrent use, so the
// daemon guards it with a lock shared with the engine.
type State struct {
	// Seq is the position of the last event applied.
	Seq uint64 `json:"seq"`
	// Members maps each cluster member's id to its incarnation.
	Members map[int]uint64 `json:"members"`
	// Spaces are the lockspaces with at least one member, by name.
	Spaces map[string]*Space `json:"spaces"`
	// Rejected counts messages that were not understood.
	Rejected uint64 `json:"rejected,omitempty"`
	// LastChange is the number of the last change of any lockspace.
	LastChange uint64 `json:"last_change"`

	// Unfenced, when set, reports whether a node that failed must still
	// be fenced: a change that removed a failed node completes only once
	// it is not (see Recheck). It must read replicated state only, so
	// every node decides alike.
	Unfenced func(node int) bool `json:"-"`
	// Held, when set and true, keeps every change from completing (the
	// cluster's startup fencing has not been decided yet). Replicated
	// state only, as Unfenced.
	Held func() bool `json:"-"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Members: map[int]uint64{}, Spaces: map[string]*Space{}}
}

// Apply applies one ordered event. Views remove the nodes that left or
// failed from every lockspace; messages change one lockspace.
func (st *State) Apply(e cluster.Event) {
	switch e := e.(type) {
	case *cluster.View:
		st.Seq = e.Seq
		st.Members = map[int]uint64{}
		for _, m := range e.Members {
			st.Members[m.ID] = m.Incarnation
		}
		for _, m := range e.Left {
			st.removeEverywhere(m.ID, false)
		}
		for _, m := range e.Failed {
			st.removeEverywhere(m.ID, true)
		}
	case *cluster.Message:
		st.Seq = e.Seq
		m, err := Decode(e.Data)
		if err != nil || m.Incarnation != 0 && m.Incarnation != e.From.Incarnation {
			// Undecodable, or made by an earlier incarnation of its
			// sender and ordered after the cluster replaced it.
			st.Rejected++
			return
		}
		st.applyMsg(e.From.ID, m)
	}
}

func (st *State) removeEverywhere(node int, failed bool) {
	for _, name := range st.names() {
		if sp := st.Spaces[name]; slices.Contains(sp.Members, node) {
			st.remove(sp, node, failed)
		}
	}
}

func (st *State) names() []string {
	names := make([]string, 0, len(st.Spaces))
	for n := range st.Spaces {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (st *State) applyMsg(from int, m Msg) {
	sp := st.Spaces[m.Lockspace]
	switch m.Kind {
	case KindJoin:
		if sp == nil {
			st.LastChange++
			st.Spaces[m.Lockspace] = &Space{Name: m.Lockspace, Change: st.LastChange, Members: []int{from}}
			return
		}
		if slices.Contains(sp.Members, from) {
			return
		}
		sp.Members = insert(sp.Members, from)
		st.newChange(sp)
	case KindLeave:
		if sp != nil && slices.Contains(sp.Members, from) {
			st.remove(sp, from, false)
		}
	case KindStopped:
		if sp == nil || sp.Complete() || m.Change != sp.Change || !slices.Contains(sp.Members, from) {
			return
		}
		sp.Stopped = insert(sp.Stopped, from)
		st.complete(sp)
	case KindResync:
		if sp != nil && slices.Contains(sp.Members, from) {
			st.newChange(sp)
		}
	}
}

// complete ends sp's change once every member stopped for it and no
// node that failed since the last start still needs fencing.
func (st *State) complete(sp *Space) {
	if len(sp.Members) == 0 {
		if len(st.WaitingFence(sp)) == 0 {
			delete(st.Spaces, sp.Name) // its failed members are fenced
		}
		return
	}
	if sp.Complete() || len(sp.Waiting()) > 0 || len(st.WaitingFence(sp)) > 0 || st.Held != nil && st.Held() {
		return
	}
	sp.Started = sp.Change
	sp.StartedMembers = slices.Clone(sp.Members)
	sp.Renew = nil
	for _, r := range sp.Removed {
		if slices.Contains(sp.Members, r) {
			sp.Renew = append(sp.Renew, r)
		}
	}
	sp.Removed, sp.Failed, sp.Stopped = nil, nil, nil
}

// WaitingFence lists the nodes that failed since sp's last start and
// must still be fenced before it starts again.
func (st *State) WaitingFence(sp *Space) []int {
	if st.Unfenced == nil {
		return nil
	}
	var out []int
	for _, n := range sp.Failed {
		if st.Unfenced(n) {
			out = append(out, n)
		}
	}
	return out
}

// Recheck completes the changes that waited only for fencing, after
// the fence state changed; seq is the position of that change.
func (st *State) Recheck(seq uint64) {
	st.Seq = seq
	for _, name := range st.names() {
		st.complete(st.Spaces[name])
	}
}

func (st *State) remove(sp *Space, node int, failed bool) {
	sp.Members = slices.DeleteFunc(sp.Members, func(m int) bool { return m == node })
	if failed {
		sp.Failed = insert(sp.Failed, node)
	}
	// A lockspace left without members goes, unless a member that
	// failed since its last start still needs fencing: then it stays,
	// empty, until that node is fenced, and a node that joins it
	// meanwhile waits, as the failed node may still run it, holding its
	// locks.
	if len(sp.Members) == 0 && len(st.WaitingFence(sp)) == 0 {
		delete(st.Spaces, sp.Name)
		return
	}
	sp.Removed = insert(sp.Removed, node)
	st.newChange(sp)
}

func (st *State) newChange(sp *Space) {
	st.LastChange++
	sp.Change = st.LastChange
	sp.Stopped = nil
}

// insert adds v to the sorted set s.
func insert(s []int, v int) []int {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

// Snapshot encodes the state, for the cluster layer's compaction.
func (st *State) Snapshot() ([]byte, error) { return json.Marshal(st) }

// Restore replaces the state by a snapshot, after checking it.
func (st *State) Restore(data []byte) error {
	var n State
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("lockspace state snapshot: %w", err)
	}
	if err := n.check(); err != nil {
		return fmt.Errorf("lockspace state snapshot: %w", err)
	}
	n.Unfenced, n.Held = st.Unfenced, st.Held // the links to the fence state are not in snapshots
	*st = n
	return nil
}

func (st *State) check() error {
	if st.Members == nil {
		st.Members = map[int]uint64{}
	}
	if st.Spaces == nil {
		st.Spaces = map[string]*Space{}
	}
	for id := range st.Members {
		if id <= 0 {
			return fmt.Errorf("member id %d is not positive", id)
		}
	}
	for name, sp := range st.Spaces {
		if sp == nil || sp.Name != name {
			return fmt.Errorf("lockspace %q: entry does not match its name", name)
		}
		if err := lsname.Check(name); err != nil {
			return err
		}
		if len(sp.Members) == 0 && len(sp.Failed) == 0 || sp.Started > sp.Change || sp.Change > st.LastChange {
			return fmt.Errorf("lockspace %q: no members, or changes out of order (started %d, current %d, last %d)", name, sp.Started, sp.Change, st.LastChange)
		}
		for _, l := range [][]int{sp.Members, sp.Stopped, sp.StartedMembers, sp.Renew, sp.Removed, sp.Failed} {
			if !slices.IsSorted(l) || len(slices.Compact(slices.Clone(l))) != len(l) {
				return fmt.Errorf("lockspace %q: node list %v is not a sorted set", name, l)
			}
			for _, id := range l {
				if id <= 0 {
					return fmt.Errorf("lockspace %q: node id %d is not positive", name, id)
				}
			}
		}
	}
	return nil
}

// Clone returns a deep copy.
func (st *State) Clone() *State {
	c := &State{Seq: st.Seq, Rejected: st.Rejected, LastChange: st.LastChange, Members: map[int]uint64{}, Spaces: map[string]*Space{}, Unfenced: st.Unfenced, Held: st.Held}
	for k, v := range st.Members {
		c.Members[k] = v
	}
	for k, v := range st.Spaces {
		c.Spaces[k] = v.clone()
	}
	return c
}
