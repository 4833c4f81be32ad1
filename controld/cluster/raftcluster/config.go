package raftcluster

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/godlm/godlm/controld/cluster"
)

// Config configures a Core.
type Config struct {
	// Self is this node and this start's incarnation (1 to
	// MaxIncarnation).
	Self cluster.Member
	// Voters are the configured node ids, Self.ID among them. Each is
	// one consensus voter, with the node id as its consensus id. The
	// list is fixed: every node must be configured with the same one.
	Voters []int
	// HeartbeatTicks is the leader's heartbeat interval (default 1).
	HeartbeatTicks int
	// ElectionTicks is the election timeout (default 5); the consensus
	// library randomizes it in [ElectionTicks, 2*ElectionTicks). It must
	// be larger than HeartbeatTicks.
	ElectionTicks int
	// FailTicks is how long a member may stay silent before the leader
	// declares it failed (default 10).
	FailTicks int
	// LeaseTicks is how long a node stays quorate without fresh proof
	// that a majority still follows its leader (default FailTicks/2).
	// It must be below FailTicks: the difference is the margin by which
	// a cut-off node stops before the majority declares it failed (see
	// detector.go). It must exceed 2*HeartbeatTicks+1, the longest a
	// healthy follower's acknowledgement takes to come back.
	LeaseTicks int
	// SnapshotEntries: after this many entries applied since the last
	// snapshot, the Core takes a snapshot and compacts the log, keeping
	// the last SnapshotEntries/2 entries in memory for followers a
	// little behind (default 100).
	SnapshotEntries uint64
	// Storage keeps the consensus state across restarts; nil keeps it
	// in memory only (a restart is then a node with empty storage).
	Storage Persister
	// SM is the replicated state machine (required), in its initial
	// state: the Core keeps a snapshot of it to go back to if this
	// node's history turns out to conflict with the cluster's.
	SM cluster.StateMachine
	// NewIncarnation is called when this node learns that the cluster
	// declared its incarnation failed; it must return a larger
	// incarnation. When nil, or when it returns one that is not larger
	// than every incarnation the cluster has seen of this node, the Core
	// uses that highest one plus one.
	NewIncarnation func() uint64
	// Logger receives the Core's log; nil discards it. The consensus
	// library's own messages go to it too, its chatter at Debug.
	Logger *slog.Logger
	// TickInterval is how long one Tick stands for. The Core never
	// reads a clock: it only uses this to report durations in Status.
	TickInterval time.Duration
}

// Defaults of Config.
const (
	DefaultHeartbeatTicks  = 1
	DefaultElectionTicks   = 5
	DefaultFailTicks       = 10
	DefaultSnapshotEntries = 100
)

// withDefaults returns cfg with defaults filled in, or an error wrapping
// ErrConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = DefaultElectionTicks
	}
	if cfg.FailTicks == 0 {
		cfg.FailTicks = DefaultFailTicks
	}
	if cfg.LeaseTicks == 0 {
		cfg.LeaseTicks = cfg.FailTicks / 2
	}
	if cfg.SnapshotEntries == 0 {
		cfg.SnapshotEntries = DefaultSnapshotEntries
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	cfg.Voters = slices.Sorted(slices.Values(cfg.Voters))
	switch {
	case cfg.SM == nil:
		return cfg, fmt.Errorf("no state machine: %w", ErrConfig)
	case cfg.Self.ID <= 0 || cfg.Self.ID > MaxNodeID:
		return cfg, fmt.Errorf("node id %d out of range [1, %d]: %w", cfg.Self.ID, MaxNodeID, ErrConfig)
	case cfg.Self.Incarnation == 0:
		return cfg, fmt.Errorf("incarnation 0: %w", ErrConfig)
	case cfg.Self.Incarnation > MaxIncarnation:
		return cfg, fmt.Errorf("incarnation %d beyond %d: %w", cfg.Self.Incarnation, uint64(MaxIncarnation), ErrConfig)
	case cfg.HeartbeatTicks < 0 || cfg.ElectionTicks <= cfg.HeartbeatTicks:
		return cfg, fmt.Errorf("election ticks (%d) must exceed heartbeat ticks (%d): %w", cfg.ElectionTicks, cfg.HeartbeatTicks, ErrConfig)
	case cfg.FailTicks < 0:
		return cfg, fmt.Errorf("fail ticks %d: %w", cfg.FailTicks, ErrConfig)
	case cfg.LeaseTicks >= cfg.FailTicks || cfg.LeaseTicks <= 2*cfg.HeartbeatTicks+1:
		return cfg, fmt.Errorf("lease ticks %d must be below fail ticks (%d) and above twice the heartbeat ticks plus one (%d): %w", cfg.LeaseTicks, cfg.FailTicks, 2*cfg.HeartbeatTicks+1, ErrConfig)
	case !slices.Contains(cfg.Voters, cfg.Self.ID):
		return cfg, fmt.Errorf("voters %v do not include this node %d: %w", cfg.Voters, cfg.Self.ID, ErrConfig)
	}
	for i, v := range cfg.Voters {
		if v <= 0 || v > MaxNodeID {
			return cfg, fmt.Errorf("voter id %d out of range [1, %d]: %w", v, MaxNodeID, ErrConfig)
		}
		if i > 0 && cfg.Voters[i-1] == v {
			return cfg, fmt.Errorf("voter %d listed twice: %w", v, ErrConfig)
		}
	}
	return cfg, nil
}
