package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
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

// raftLayer starts the embedded cluster layer from dlm.conf: the node
// lines are the voters, cluster_port the port, cluster_key_file the
// shared key, cluster_timeout the failure timeout and cluster_state_dir
// where the vote and log are kept.
type raftLayer struct {
	start controld.ClusterFunc
	// ln is the cluster port, bound by listen before the daemon touches
	// the kernel, so a second daemon stops there at the latest.
	ln net.Listener
}

// listen binds this node's cluster port.
func (r *raftLayer) listen(cfg *controld.Config, self int) error {
	for _, n := range cfg.Nodes {
		if n.ID != self || len(n.Addrs) == 0 {
			continue
		}
		addr := netip.AddrPortFrom(n.Addrs[0], uint16(cfg.Int("cluster_port")))
		ln, err := net.Listen("tcp", addr.String())
		if err != nil {
			return fmt.Errorf("cluster port: %w (is another dlm_controld running?)", err)
		}
		r.ln = ln
		return nil
	}
	return fmt.Errorf("%w: node %d has no addr", controld.ErrConfig, self)
}

// close releases the cluster port if the cluster layer never took it.
func (r *raftLayer) close() {
	if r.ln != nil {
		r.ln.Close()
	}
}

// clusterKey loads the cluster key: from cluster_key_file when set,
// else from defaultFile when it exists. A cluster of more than one node
// needs one: without it any local process could bind a peer's address
// and speak for that peer. A one-node cluster has no peers and needs
// none.
func clusterKey(cfg *controld.Config, defaultFile string) ([]byte, error) {
	f := cfg.Str("cluster_key_file")
	if f != "" {
		key, err := raftcluster.LoadKey(f)
		if err != nil {
			return nil, fmt.Errorf("%w: cluster_key_file: %w", controld.ErrConfig, err)
		}
		return key, nil
	}
	key, err := raftcluster.LoadKey(defaultFile)
	switch {
	case err == nil:
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %w", controld.ErrConfig, err)
	case len(cfg.Nodes) > 1:
		return nil, fmt.Errorf("%w: a cluster of %d nodes needs a shared key to authenticate its members, and %s does not exist: "+
			"create one with `dlm_tool keygen` and copy it to every node, or point cluster_key_file at one", controld.ErrConfig, len(cfg.Nodes), defaultFile)
	}
	return nil, nil
}

func raftCluster(cfg *controld.Config, log *slog.Logger) (*raftLayer, error) {
	timeout := time.Duration(cfg.Int("cluster_timeout")) * time.Millisecond
	if timeout < minTimeout {
		return nil, fmt.Errorf("%w: cluster_timeout=%d: at least %d ms", controld.ErrConfig, timeout.Milliseconds(), minTimeout.Milliseconds())
	}
	port := cfg.Int("cluster_port")
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: cluster_port=%d is not a TCP port", controld.ErrConfig, port)
	}
	key, err := clusterKey(cfg, raftcluster.DefaultKeyFile)
	if err != nil {
		return nil, err
	}
	r := &raftLayer{}
	r.start = func(self int, sm cluster.StateMachine) (cluster.Cluster, error) {
		o := raftcluster.Options{
			Listener:    r.ln,
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
		c, err := raftcluster.Start(o)
		if err == nil {
			r.ln = nil // the cluster layer owns it now
		}
		return c, err
	}
	return r, nil
}
