package vm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// TestFencing is the split-brain scenario of a shared-disk cluster: node
// 3 holds a GFS2 file with unsynced writes when the network cuts it off;
// node 1 overwrites the file and syncs; then node 3 syncs. Without
// fencing, node 3's stale pages overwrite node 1's durable write. With
// fencing (the lab's power switch, through fence_godlm), node 1's write
// waits until node 3 is powered off, and nothing of node 3's reaches the
// disk. Both run, so the test is known to be able to fail.
func TestFencing(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{
		Nodes:              3,
		LoadClusterModules: true,
		Disks: []lab.Disk{
			{Name: "gfsnofence", Format: lab.FormatGFS2},
			{Name: "gfsfence", Format: lab.FormatGFS2},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	const size = 256 << 10
	fill := func(ch string) string { return fmt.Sprintf("yes %s | tr -d '\\n' | head -c %d", ch, size) }
	// bytes counts the bytes ch in the file, read from the disk.
	bytes := func(t *testing.T, n *lab.Node, ch string) int {
		t.Helper()
		out, err := n.RunOK(ctx, "echo 3 > /proc/sys/vm/drop_caches; tr -cd "+ch+" < /mnt/s/f | wc -c")
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("count of %s: %q", ch, out)
		}
		return v
	}

	// splitBrain runs the scenario on disk with conf and returns how many
	// of node 3's unsynced bytes ended up on the disk, and how long node
	// 1's write took after the cut.
	splitBrain := func(t *testing.T, disk, conf string, node3Syncs bool) (stale int, took time.Duration) {
		allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }))
		for _, id := range []int{1, 2, 3} {
			waitStatus(ctx, t, c.Node(id), time.Minute, "quorate 3-node view", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
			})
		}
		allOK(t, "mount", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "mkdir -p /mnt/s && mount -t gfs2 "+c.GuestDisk(disk)+" /mnt/s")
			return err
		}))
		n1, n3 := c.Node(1), c.Node(3)
		if _, err := n3.RunOK(ctx, fill("A")+" > /mnt/s/f && sync && "+fill("C")+" | dd of=/mnt/s/f conv=notrunc 2>/dev/null"); err != nil {
			t.Fatal(err)
		}
		c.Partition([]int{1, 2}, []int{3})
		t0 := time.Now()
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer wcancel()
		if _, err := n1.RunOK(wctx, fill("B")+" | dd of=/mnt/s/f conv=notrunc 2>/dev/null && sync"); err != nil {
			t.Fatalf("node 1's write: %v", err)
		}
		took = time.Since(t0)
		if got := bytes(t, n1, "B"); got != size {
			t.Fatalf("node 1 reads back %d bytes B of %d", got, size)
		}
		if node3Syncs {
			sctx, scancel := context.WithTimeout(ctx, time.Minute)
			defer scancel()
			if r, err := n3.Run(sctx, "sync"); err != nil || r.ExitCode != 0 {
				t.Logf("node 3's sync: %+v %v", r, err)
			}
		}
		return bytes(t, n1, "C"), took
	}

	// reset takes the cluster back to three fresh nodes with no daemon.
	reset := func(t *testing.T) {
		c.Heal()
		if err := c.Restart(ctx, 3); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int{1, 2} {
			if _, err := c.Node(id).RunOK(ctx, "umount /mnt/s"); err != nil {
				t.Fatal(err)
			}
			noDState(ctx, t, c.Node(id))
		}
		allOK(t, "stop", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "killall dlm_controld; for i in $(seq 100); do pidof dlm_controld >/dev/null || exit 0; sleep 0.1; done; exit 1")
			return err
		}, 1, 2))
	}

	timeout := fmt.Sprintf("cluster_timeout=%d", clusterTimeout.Milliseconds())

	t.Run("WithoutFencingTheWriteIsLost", func(t *testing.T) {
		stale, took := splitBrain(t, "gfsnofence", c.DLMConf(timeout, "enable_fencing=0"), true)
		t.Logf("MEASURE without fencing: node 1's write done %v after the cut; %d of node 3's %d unsynced bytes on the disk after its sync",
			took.Round(10*time.Millisecond), stale, size)
		if stale == 0 {
			t.Errorf("without fencing, none of node 3's unsynced bytes reached the disk: the scenario does not show what fencing prevents")
		}
		if log, _ := c.Node(1).RunOK(ctx, "grep -c 'fencing is disabled' "+daemonLog); strings.TrimSpace(log) == "0" {
			t.Error("the daemon did not warn that fencing is disabled")
		}
		reset(t)
	})

	t.Run("WithFencingNothingIsLost", func(t *testing.T) {
		stale, took := splitBrain(t, "gfsfence", c.DLMConf(timeout), false)
		t.Logf("MEASURE with fencing: node 1's write done %v after the cut (timeout %v)", took.Round(10*time.Millisecond), clusterTimeout)
		if stale != 0 {
			t.Errorf("with fencing, %d of node 3's unsynced bytes reached the disk", stale)
		}
		if c.Node(3).Running() {
			t.Error("node 3 still runs: it was not fenced")
		}
		var off *lab.PowerEvent
		for _, e := range c.Power().Events() {
			if e.Request.Action == "off" && e.Request.Plug == "node3" && e.Reply.Status == "ok" {
				off = &e
				break
			}
		}
		if off == nil || off.From == 3 {
			t.Fatalf("no node powered node 3 off: %+v", c.Power().Events())
		}
		for _, id := range []int{1, 2} {
			st := status(ctx, t, c.Node(id))
			if strings.Contains(st, "fence 3 ") || !strings.Contains(st, "lockspace gfsfence running") {
				t.Errorf("node %d after fencing:\n%s", id, st)
			}
			noDState(ctx, t, c.Node(id))
		}
		log, _ := c.Node(off.From).RunOK(ctx, "grep -E 'fence' "+daemonLog)
		if !strings.Contains(log, "running fence agent") || !strings.Contains(log, `msg="node fenced" node=3`) {
			t.Errorf("node %d's log does not tell the fencing:\n%s", off.From, log)
		}
		reset(t)
	})

	// A daemon killed while its node runs a mounted filesystem is a
	// failure of that node: its kernel still holds the locks, so it is
	// fenced before the others recover, and what it goes on writing
	// never lands over their writes.
	t.Run("DaemonKilledNodeFenced", func(t *testing.T) {
		conf := c.DLMConf(timeout)
		allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }))
		for _, id := range []int{1, 2, 3} {
			waitStatus(ctx, t, c.Node(id), time.Minute, "quorate 3-node view", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
			})
		}
		allOK(t, "mount", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "mkdir -p /mnt/s && mount -t gfs2 "+c.GuestDisk("gfsfence")+" /mnt/s")
			return err
		}))
		n1, n3 := c.Node(1), c.Node(3)
		// Node 3 appends to the log without pause; its daemon dies.
		if _, err := n3.RunOK(ctx, "rm -f /mnt/s/log; (while true; do echo three >> /mnt/s/log; done) >/dev/null 2>&1 & sleep 1; killall -9 dlm_controld"); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer wcancel()
		if _, err := n1.RunOK(wctx, "echo one-after >> /mnt/s/log && sync"); err != nil {
			t.Fatalf("node 1's append after node 3's daemon died: %v", err)
		}
		t.Logf("MEASURE node 3's daemon killed: node 1's append done %v later", time.Since(t0).Round(10*time.Millisecond))
		if n3.Running() {
			t.Fatal("node 3 still runs: a node whose daemon died was not fenced")
		}
		out, err := n1.RunOK(ctx, "echo 3 > /proc/sys/vm/drop_caches; sed -n '/one-after/,$p' /mnt/s/log | grep -c three; true")
		if err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("node 3's writes landed after node 1's append: %q %v", out, err)
		}
		if _, err := c.Node(2).RunOK(ctx, "echo two-after >> /mnt/s/log && sync && grep -q one-after /mnt/s/log"); err != nil {
			t.Errorf("node 2 after the recovery: %v", err)
		}
		reset(t)
	})
}
