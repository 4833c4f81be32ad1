package vm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// configfsState lists the DLM's configfs tree: each directory with its
// inode, so one removed and made again shows; each attribute; the comms'
// node ids and local flags; and the cluster's name and port.
const configfsState = `cd /sys/kernel/config/dlm && find . -type d | sort | while read -r p; do ls -id "$p"; done; ` +
	`find . -type f | sort; for c in cluster/comms/*; do echo "$c nodeid=$(cat $c/nodeid) local=$(cat $c/local)"; done; ` +
	`echo "cluster_name=$(cat cluster/cluster_name) tcp_port=$(cat cluster/tcp_port)"`

// TestSecondDaemon: a second dlm_controld started on a node whose daemon
// runs exits with an error naming the first one, and changes nothing in
// the kernel; the first one goes on serving its lockspace.
func TestSecondDaemon(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{Nodes: 1, LoadClusterModules: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := c.Node(1)
	startDaemon(ctx, t, c, n)
	pid, err := n.RunOK(ctx, "pidof dlm_controld")
	if err != nil {
		t.Fatal(err)
	}
	pid = strings.TrimSpace(pid)

	// Without a lockspace, a daemon starting up clears configfs; with
	// one, it keeps it.
	for _, phase := range []string{"Idle", "WithLockspace"} {
		t.Run(phase, func(t *testing.T) {
			if phase == "WithLockspace" {
				if _, err := n.RunOK(ctx, "dlm_tool join foo"); err != nil {
					t.Fatal(err)
				}
			}
			secondDaemon(ctx, t, n, pid)
		})
	}
	if _, err := n.RunOK(ctx, "dlm_tool leave foo"); err != nil {
		t.Fatal(err)
	}
	stopDaemon(ctx, t, n)
	noLeftovers(ctx, t, n)
}

// secondDaemon starts a second daemon on n, where pid runs, and checks
// that it fails and changes nothing.
func secondDaemon(ctx context.Context, t *testing.T, n *lab.Node, pid string) {
	before, err := n.RunOK(ctx, configfsState)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(before, "cluster/comms/1 nodeid=1 local=1") {
		t.Fatalf("configfs of the running daemon:\n%s", before)
	}
	for _, tc := range []struct {
		name, args, want string
	}{
		// The same state directory: the lock, with the first one's pid.
		{"SameStateDir", "", "another dlm_controld is running: pid " + pid + " holds the lock on /var/lib/dlm_controld/dlm_controld.lock"},
		// Another state directory: the query socket the first one holds.
		{"OtherStateDir", "--cluster_state_dir /tmp/other-state", "is another dlm_controld running?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// timeout exits 124 if the second daemon runs on.
			r, err := n.Run(ctx, "timeout 30 dlm_controld -D "+tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode == 0 || r.ExitCode == 124 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("second daemon: exit %d, want non-zero naming %q; stderr:\n%s", r.ExitCode, tc.want, r.Stderr)
			}
			after, err := n.RunOK(ctx, configfsState)
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("configfs changed under the running daemon:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if out, err := n.RunOK(ctx, "pidof dlm_controld"); err != nil || strings.TrimSpace(out) != pid {
				t.Errorf("daemons running: %q %v, want only pid %s", out, err, pid)
			}
			if _, err := n.RunOK(ctx, "dlm_tool status"); err != nil {
				t.Errorf("first daemon after the second's attempt: %v", err)
			}
		})
	}
}
