package lab

import (
	"context"
	"fmt"
	"sync"

	"github.com/godlm/godlm/controld/cluster/raftcluster"
)

// DLMKeyPath is where StartDLMControld writes the cluster key in every
// guest; DLMConf names it as cluster_key_file.
const DLMKeyPath = "/etc/dlm/cluster.key"

// dlmKey is the key godlm's daemons of one lab cluster share, made the
// first time it is needed: a multi-node daemon does not start without
// one.
type dlmKey struct {
	once sync.Once
	data []byte // the key file's contents
	err  error
}

// DLMKey returns the contents of the cluster key file the lab writes
// to DLMKeyPath: new for every lab cluster, the same on all its nodes.
func (c *Cluster) DLMKey() ([]byte, error) {
	c.key.once.Do(func() { c.key.data, c.key.err = raftcluster.GenerateKey() })
	if c.key.err != nil {
		return nil, fmt.Errorf("lab: cluster key: %w", c.key.err)
	}
	return c.key.data, nil
}

// writeDLMKey writes the cluster's key to DLMKeyPath on n, mode 0600.
func (n *Node) writeDLMKey(ctx context.Context) error {
	key, err := n.c.DLMKey()
	if err != nil {
		return err
	}
	if _, err := n.RunOK(ctx, "mkdir -p /etc/dlm"); err != nil {
		return err
	}
	if err := n.WriteFile(ctx, DLMKeyPath, key, 0o600); err != nil {
		return err
	}
	// The guest's umask or an existing file may have left it wider.
	_, err = n.RunOK(ctx, "chmod 600 "+DLMKeyPath)
	return err
}
