package vm

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// refTool is Debian's dlm_tool, which talks to the reference dlm_controld.
const refTool = lab.RefDir + "/dlm_tool"

// refToken is the corosync token timeout TestReferenceStack configures,
// in ms: corosync's default, which stays stable with three emulated
// guests on two host cores.
const refToken = 3000

// waitRefStatus polls the reference `dlm_tool status` on n until ok
// accepts it, for at most limit, and returns the time that took.
func waitRefStatus(ctx context.Context, t *testing.T, n *lab.Node, limit time.Duration, what string, ok func(string) bool) time.Duration {
	t.Helper()
	return pollStatus(ctx, t, n, refTool, "tail -n 30 "+lab.CorosyncLog+" "+lab.RefDLMControldLog, limit, what, ok)
}

// TestReferenceStack runs the reference stack instead of ours on three
// nodes: corosync (knet, votequorum) and Debian's dlm_controld, started
// together, become quorate; Debian's dlm_tool joins a lockspace on all
// three at once; godlm's Go libdlm (dlmcounter) keeps an exact counter
// across the nodes over that daemon; GFS2 mounts on all three and shares
// files. It proves the lab can run the stack godlm is compared with.
func TestReferenceStack(t *testing.T) {
	needVMs(t)
	tBoot := time.Now()
	c := lab.Start(t, lab.Config{
		Nodes:              3,
		LoadClusterModules: true,
		Disks:              []lab.Disk{{Name: "gfs0", Format: lab.FormatGFS2}},
	})
	t.Logf("MEASURE boot of 3 nodes (host clock): %v", time.Since(tBoot).Round(10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Runs before lab.Start's cleanup kills the VMs: keep the reference
	// daemons' logs with the other artifacts.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			for src, name := range map[string]string{lab.CorosyncLog: "corosync.log", lab.RefDLMControldLog: "ref-dlm_controld.log"} {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				n.CopyOut(ctx, src, filepath.Join(c.Dir(), fmt.Sprintf("node%d.%s", n.ID, name)))
				cancel()
			}
		}
	})
	ids := []int{1, 2, 3}

	// Start: corosync and dlm_controld on every node at once, then
	// quorum with all three members in dlm_controld's view.
	t0 := time.Now()
	corosyncConf, dlmConf := c.CorosyncConf(refToken), c.RefDLMConf()
	allOK(t, "start reference stack", c.Each(func(n *lab.Node) error {
		return n.StartReference(ctx, corosyncConf, dlmConf)
	}))
	t.Logf("MEASURE reference daemons answering on all 3 (host clock, from starting them): %v", time.Since(t0).Round(10*time.Millisecond))
	for _, id := range ids {
		waitRefStatus(ctx, t, c.Node(id), 2*time.Minute, "quorate 3-node view", func(st string) bool {
			return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
		})
	}
	t.Logf("MEASURE cold start to quorate on all 3 (host clock, from starting the daemons): %v", time.Since(t0).Round(10*time.Millisecond))
	st, err := c.Node(1).RunOK(ctx, refTool+" status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node 1 %s status:\n%s", refTool, st)
	if out, err := c.Node(1).RunOK(ctx, lab.RefDir+"/corosync-quorumtool -s"); err != nil || !regexp.MustCompile(`(?m)^Quorate:\s+Yes$`).MatchString(out) {
		t.Errorf("corosync-quorumtool -s: %v\n%s", err, out)
	}

	// A lockspace joined by all three at once through Debian's dlm_tool.
	timedEach(ctx, t, c, "dlm_tool join", "reftest join, 3 nodes together", refTool+" join reftest")
	for _, id := range ids {
		n := c.Node(id)
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := configfsMembers(ctx, n, "reftest")
			if err == nil && out == "1 2 3 " {
				break
			}
			if time.Now().After(deadline) {
				ls, _ := n.RunOK(ctx, refTool+" ls")
				t.Fatalf("node %d: configfs members of reftest %q %v, want 1 2 3\n%s", id, out, err, ls)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// godlm's Go libdlm over the reference daemon: each node adds 300
	// under EX; every node must read the exact total.
	tc := time.Now()
	countOn(ctx, t, c, "reftest", "counter", 300, 1, 2, 3)
	t.Logf("MEASURE dlmcounter 3 x 300 increments (host clock): %v", time.Since(tc).Round(10*time.Millisecond))

	// GFS2 on all three, a file written on each read on the others.
	dev, mnt := c.GuestDisk("gfs0"), "/mnt/gfs2"
	timedEach(ctx, t, c, "mount", "gfs2 mount on 3 nodes together", "mkdir -p "+mnt+" && mount -t gfs2 "+dev+" "+mnt)
	filesShared(ctx, t, c, mnt, ids)
	timedEach(ctx, t, c, "umount", "gfs2 umount on 3 nodes together", "umount "+mnt)

	allOK(t, "dlm_tool leave", c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, refTool+" leave reftest")
		return err
	}))
	for _, id := range ids {
		noLeftovers(ctx, t, c.Node(id))
		noDState(ctx, t, c.Node(id))
	}
	t.Logf("MEASURE whole test after boot (host clock): %v", time.Since(t0).Round(10*time.Millisecond))
}
