// Package raftcluster is the embedded implementation of the cluster
// layer (package cluster): a Raft log (go.etcd.io/raft/v3) replicated
// between the configured nodes over TCP, a failure detector that
// proposes "member failed", and quorum by majority.
//
// # Layers
//
// [Core] is deterministic and single-threaded: it wraps a raft.RawNode,
// takes ticks and messages, and returns messages to send, events and
// finished requests from [Core.Process]. Tests and the simulator drive
// it directly. [Node] runs a Core on one goroutine with a real ticker
// and a TCP transport, and implements cluster.Cluster.
//
// # The log
//
// Every configured node is one voter (its Raft id is its node id); the
// voter list is fixed, and every node with empty storage starts from the
// same initial snapshot (index 1, term 1, those voters, no members)
// rather than from configuration-change entries, so nodes that start
// independently agree and the log never holds a configuration change.
// The log carries four kinds of entries (see entry.go): Hello{node,
// inc}, the first proposal of every incarnation; Batch{node, inc, seq,
// messages}; Fail{node, inc}, proposed by the leader only; Leave{node,
// inc}. Applying them to the replicated cluster state (members and
// their incarnations, the highest incarnation and last batch number of
// every node) gives the ordered events; the rules are on
// clusterState.apply. Every accepted change gives one cluster.View; a
// batch gives one cluster.Message per payload, all with the entry's
// index as Seq. A snapshot holds that state and the StateMachine's
// snapshot together, and the log is compacted every
// Config.SnapshotEntries entries.
//
// # Failure, quorum, incarnations
//
// The leader declares failed a member it has not heard from for
// Config.FailTicks. A node is quorate only while it holds a lease: a
// leader while a majority acknowledged it within Config.LeaseTicks, a
// follower while its leader's heartbeats grant it one. A cut-off node
// thus stops at least FailTicks - LeaseTicks ticks before the majority
// declares it failed (detector.go). A node whose state cannot be written
// is not quorate and sends nothing until a retry writes it.
// A node that learns its incarnation was declared failed finishes its
// pending broadcasts with cluster.ErrExpelled and joins again as a new
// incarnation.
//
// A node that restarts with empty storage (memory-only state, or a lost
// disk) while the others remember it is outside what Raft assumes. It
// may have been one of the majority that stored a committed entry, so
// it votes for nobody until it caught up with a leader (amnesia.go),
// unless a majority is as new as itself (a cluster's first boot). And
// the leader believes the node still has the entries it acknowledged,
// never lowering that belief within a term: the node notices (a
// heartbeat commits beyond its log) and forces a new term, after which
// the leader probes it from scratch.
//
// # Transport
//
// Each node dials every peer to send and accepts connections to
// receive; frames are length-prefixed protobuf raft messages. The
// acceptor checks the source address against the configuration, and
// both sides prove the cluster key (HMAC-SHA256 challenge and response
// over both nonces, the cluster name and both node ids); every frame
// then carries an HMAC under a per-connection session key and a
// sequence number. A cluster with peers does not start without a key
// (see LoadKey and GenerateKey for the key file).
//
// # Identity
//
// A connection speaks for the node it authenticated as and for no
// other: a message on it whose sender is another node is dropped. A
// follower's proposal reaches the leader straight from its proposer
// (nodes that are not the leader drop proposals instead of forwarding
// them), and the leader accepts in a proposal only Hello, Batch and
// Leave entries of the proposing node, a Hello only for an incarnation
// up to MaxIncarnation. So no node can broadcast, join or leave as
// another. What the key cannot tell apart is its holders: the leader
// writes the log, so a node with the key that runs modified code and
// becomes leader could append entries in another's name. Core.Step
// refuses malformed or inconsistent messages, but a well-formed message
// that lies can still mislead it; the key is what keeps liars out.
//
// # Bad input
//
// Every decoder of outside bytes (log entries, snapshots, frames,
// handshake messages, the persisted state, consensus messages through
// Core.Step) returns an error wrapping ErrMalformed, ErrCorrupt,
// ErrBadMessage or ErrAuth and never panics; each has a fuzz target. A
// panic of the consensus library or of the StateMachine stops the Core
// with ErrFailed instead of crashing the daemon.
package raftcluster
