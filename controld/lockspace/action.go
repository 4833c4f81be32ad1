package lockspace

import "fmt"

// Action is one thing the engine asks of the node: a kernel operation
// or a broadcast. Actions are returned in the order they must be done.
type Action interface{ isAction() }

// Stop writes control=0 for the lockspace; it returns once the kernel
// has stopped it.
type Stop struct {
	Lockspace string
	Change    uint64 // the change the lockspace is stopped for; 0 for a local stop (quorum loss, expulsion, leave)
}

// Start writes the members (renewing those in Renew) and control=1. With
// First, the global id (and nodir, when configured) are written before.
type Start struct {
	Lockspace string
	Change    uint64
	Members   []int
	Renew     []int
	First     bool
}

// EventDone answers the kernel's online or offline uevent.
type EventDone struct {
	Lockspace string
	Result    int    // 0 success, -1 failure
	Reason    string // why a join failed
}

// RemoveSpace removes the lockspace's configfs directory.
type RemoveSpace struct{ Lockspace string }

// AddComm writes the comm of a node that joined the cluster.
type AddComm struct{ Node int }

// RemoveComm removes the comm of a node that left or failed, so the
// kernel reports it as failed to the filesystems.
type RemoveComm struct{ Node int }

// Send broadcasts a message through the cluster layer, after every Send
// returned before it.
type Send struct{ Msg Msg }

func (Stop) isAction()        {}
func (Start) isAction()       {}
func (EventDone) isAction()   {}
func (RemoveSpace) isAction() {}
func (AddComm) isAction()     {}
func (RemoveComm) isAction()  {}
func (Send) isAction()        {}

func (a Stop) String() string { return fmt.Sprintf("stop %s %d", a.Lockspace, a.Change) }
func (a Start) String() string {
	s := fmt.Sprintf("start %s %d members %v", a.Lockspace, a.Change, a.Members)
	if len(a.Renew) > 0 {
		s += fmt.Sprintf(" renew %v", a.Renew)
	}
	if a.First {
		s += " first"
	}
	return s
}
func (a EventDone) String() string {
	return fmt.Sprintf("event_done %s %d", a.Lockspace, a.Result)
}
func (a RemoveSpace) String() string { return "remove " + a.Lockspace }
func (a AddComm) String() string     { return fmt.Sprintf("add comm %d", a.Node) }
func (a RemoveComm) String() string  { return fmt.Sprintf("remove comm %d", a.Node) }
func (a Send) String() string        { return "send " + a.Msg.String() }

// Note is something worth logging that is not a kernel operation: a
// join that failed, a lockspace abandoned after this node was expelled.
type Note struct {
	Lockspace string
	Warn      bool
	Text      string
}

func (Note) isAction() {}

func (a Note) String() string { return "note " + a.Lockspace + ": " + a.Text }
