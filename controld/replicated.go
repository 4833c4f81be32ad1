package controld

import (
	"encoding/json"
	"fmt"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/fence"
	"github.com/godlm/godlm/controld/lockspace"
)

// Replicated is the daemon's replicated state: what the cluster layer
// applies on every node in the same order. It holds the lockspaces'
// changes and the fencing of failed nodes, which gates them: a change
// that removed a failed node completes only once that node is fenced,
// and no change completes before the cluster's startup check, nor while
// a node that check found absent is not fenced. It is not safe for
// concurrent use; the daemon guards it.
type Replicated struct {
	Lockspaces *lockspace.State
	Fence      *fence.State
}

// NewReplicated returns an empty state.
func NewReplicated() *Replicated {
	r := &Replicated{Lockspaces: lockspace.NewState(), Fence: fence.NewState()}
	r.link()
	return r
}

func (r *Replicated) link() {
	f := r.Fence
	r.Lockspaces.Unfenced = func(node int) bool { return f.Blocks(node) }
	r.Lockspaces.Held = func() bool { return !f.StartupChecked || f.StartupPending() }
}

// Apply applies one ordered event. A view goes to both parts, the fence
// state first, so that a failure is pending fencing before the
// lockspaces it leaves change; a message to the part it belongs to
// (fence messages start with fence.MsgTag).
func (r *Replicated) Apply(e cluster.Event) {
	switch e := e.(type) {
	case *cluster.View:
		r.Fence.ApplyView(e)
		r.Lockspaces.Apply(e)
	case *cluster.Message:
		if len(e.Data) == 0 || e.Data[0] != fence.MsgTag {
			r.Lockspaces.Apply(e)
			return
		}
		if m, err := fence.Decode(e.Data); err != nil {
			r.Fence.Rejected++
		} else {
			r.Fence.ApplyMsg(e.From, e.Seq, m)
		}
		r.Lockspaces.Recheck(e.Seq)
	}
}

// replicatedSnapshot is the snapshot's form. A snapshot of a daemon
// from before fencing is the lockspace state alone.
type replicatedSnapshot struct {
	Lockspaces json.RawMessage `json:"lockspaces"`
	Fence      *fence.State    `json:"fence"`
}

// Snapshot encodes the state.
func (r *Replicated) Snapshot() ([]byte, error) {
	ls, err := r.Lockspaces.Snapshot()
	if err != nil {
		return nil, err
	}
	return json.Marshal(replicatedSnapshot{Lockspaces: ls, Fence: r.Fence})
}

// Restore replaces the state by a snapshot, after checking it.
func (r *Replicated) Restore(data []byte) error {
	var snap replicatedSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("replicated state snapshot: %w", err)
	}
	lsData, fst := snap.Lockspaces, snap.Fence
	if lsData == nil { // the lockspace state alone, from before fencing
		lsData, fst = data, fence.NewState()
	}
	if fst == nil {
		fst = fence.NewState()
	}
	if err := fst.Check(); err != nil {
		return fmt.Errorf("replicated state snapshot: %w", err)
	}
	// In place: the engine holds these pointers.
	if err := r.Lockspaces.Restore(lsData); err != nil {
		return err
	}
	*r.Fence = *fst
	r.link()
	return nil
}
