package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/godlm/godlm/controld"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/cluster/raftcluster"
)

// Timeouts of the embedded cluster layer, in ticks of cluster_timeout/10:
// a heartbeat every tick, elections after 5 to 10 ticks, a member silent
// for 10 ticks declared failed.
const (
	ticksPerTimeout = 10
	electionTicks   = 5
	minTimeout      = 100 * time.Millisecond
)

// raftCluster returns the function that starts the embedded cluster
// layer from dlm.conf: the node lines are the voters, cluster_port the
// port, cluster_key_file the shared key, cluster_timeout the failure
// timeout and cluster_state_dir where the vote and log are kept.
func raftCluster(cfg *controld.Config, log *slog.Logger) (controld.ClusterFunc, error) {
	timeout := time.Duration(cfg.Int("cluster_timeout")) * time.Millisecond
	if timeout < minTimeout {
		return nil, fmt.Errorf("%w: cluster_timeout=%d: at least %d ms", controld.ErrConfig, timeout.Milliseconds(), minTimeout.Milliseconds())
	}
	port := cfg.Int("cluster_port")
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: cluster_port=%d is not a TCP port", controld.ErrConfig, port)
	}
	var key []byte
	if f := cfg.Str("cluster_key_file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: cluster_key_file: %v", controld.ErrConfig, err)
		}
		if key = bytes.TrimRight(b, "\n"); len(key) < 16 {
			return nil, fmt.Errorf("%w: cluster_key_file %s holds %d bytes; the key needs at least 16", controld.ErrConfig, f, len(key))
		}
	}
	return func(self int, sm cluster.StateMachine) (cluster.Cluster, error) {
		o := raftcluster.Options{
			Tick:        timeout / ticksPerTimeout,
			Peers:       map[int][]netip.AddrPort{},
			ClusterName: cfg.Str("cluster_name"),
			Key:         key,
			StateDir:    cfg.Str("cluster_state_dir"),
			Core: raftcluster.Config{
				Self:           cluster.Member{ID: self, Incarnation: uint64(time.Now().UnixNano())},
				HeartbeatTicks: 1,
				ElectionTicks:  electionTicks,
				FailTicks:      ticksPerTimeout,
				SM:             sm,
				NewIncarnation: func() uint64 { return uint64(time.Now().UnixNano()) },
				Logger:         log.With("component", "cluster"),
			},
		}
		for _, n := range cfg.Nodes {
			var as []netip.AddrPort
			for _, a := range n.Addrs {
				as = append(as, netip.AddrPortFrom(a, uint16(port)))
			}
			if n.ID == self {
				o.Listen = as[0]
				continue
			}
			o.Peers[n.ID] = as
		}
		if o.StateDir != "" {
			if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
				return nil, fmt.Errorf("cluster_state_dir: %w", err)
			}
		}
		return raftcluster.Start(o)
	}, nil
}
