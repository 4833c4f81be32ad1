// Package controld is the core of dlm_controld. It joins the kernel
// adapter (package configfs), the cluster layer (package cluster and its
// embedded Raft backend, raftcluster) and the lockspace engine (package
// lockspace): cluster events and kernel uevents go into the engine, and
// the engine's actions come out as configfs and sysfs writes and as
// broadcasts. It also serves the reference's query protocol to dlm_tool
// (query.go), reads dlm.conf and the command line (config.go) and keeps
// the log that `dlm_tool dump` reads (log.go).
//
// The replicated decisions live in the engine; a Daemon only carries
// them out on this node and reports what the kernel did.
package controld
