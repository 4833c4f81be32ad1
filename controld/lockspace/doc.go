// Package lockspace is the daemon core's lockspace engine: how the
// members of every lockspace change, agreed through the cluster layer's
// ordered stream, so that the kernel's rule holds — stop has completed
// on all members before start is called on any.
//
// It has two halves:
//
//   - State is the replicated part. Every node applies the same ordered
//     events (cluster views and the Join, Leave, Stopped and Resync
//     messages of this package) to its own State, so all copies agree:
//     the members of every lockspace, the number of its current change,
//     which members have reported that they stopped for it, and which
//     change was last completed.
//
//   - Engine is the local part: a reducer that compares State with what
//     this node's kernel has been told, and returns the kernel actions
//     and broadcasts that close the gap (stop, report stopped, write the
//     members and start, answer event_done, add or remove comms). It does
//     no I/O and reads no clock of its own, so scenario tests and the
//     simulator drive it step by step.
//
// One change, as the engine runs it: a join, leave or failure makes a
// new change k with a new member list; every member stops its kernel
// lockspace (control=0, synchronous) and broadcasts Stopped{k}; when
// State shows every member of k stopped, the change is complete and each
// member writes the members of k (renewing nodes that left and came back,
// after the comms of failed nodes were removed) and starts (control=1);
// a joining node then answers event_done=0. A newer change before that
// point supersedes k: its members stop and report again.
package lockspace
