package vm

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// clusterTimeout is the failure timeout the 3-node test configures. It
// is above the LAN default (1 s) because three emulated guests share two
// host cores here, and a guest can stall for a second under load.
const clusterTimeout = 3 * time.Second

// allOK fails the test if err, from lab.Cluster.Each, is not nil.
func allOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// status is `dlm_tool status` on n.
func status(ctx context.Context, t *testing.T, n *lab.Node) string {
	t.Helper()
	out, err := n.RunOK(ctx, "dlm_tool status")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitStatus polls `dlm_tool status` on n until ok accepts it, and
// returns the time that took.
func waitStatus(ctx context.Context, t *testing.T, n *lab.Node, limit time.Duration, what string, ok func(string) bool) time.Duration {
	t.Helper()
	return pollStatus(ctx, t, n, "dlm_tool", "tail -50 "+daemonLog, limit, what, ok)
}

// pollStatus polls `tool status` on n until ok accepts its output, for
// at most limit, and returns the time that took; on timeout it fails
// the test with the last status and the output of the shell command
// logs.
func pollStatus(ctx context.Context, t *testing.T, n *lab.Node, tool, logs string, limit time.Duration, what string, ok func(string) bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	var last string
	for time.Since(t0) < limit {
		r, err := n.Run(ctx, tool+" status")
		if err != nil {
			t.Fatal(err)
		}
		last = r.Stdout
		if r.ExitCode == 0 && ok(last) {
			return time.Since(t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := n.RunOK(ctx, logs)
	t.Fatalf("node %d: no %s within %v; status:\n%s\nlogs:\n%s", n.ID, what, limit, last, log)
	return 0
}

var (
	clusterLine = regexp.MustCompile(`(?m)^cluster raft leader (\d+) term (\d+) members (\d+) of (\d+) incarnation (\d+)`)
	nodeLineRE  = regexp.MustCompile(`(?m)^node (\d+) ([MX]) `)
)

// members returns the node ids status marks M.
func members(st string) []int {
	var ids []int
	for _, m := range nodeLineRE.FindAllStringSubmatch(st, -1) {
		if m[2] == "M" {
			id, _ := strconv.Atoi(m[1])
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

func quorate(st string) bool { return strings.Contains(st, " quorate 1 ") }

// timed runs cmd on n and returns how long it took in the guest, in
// milliseconds (from /proc/uptime, so 10 ms resolution).
func timed(ctx context.Context, n *lab.Node, cmd string) (int, error) {
	d, err := n.GuestTime(ctx, cmd)
	return int(d.Milliseconds()), err
}

// timedEach runs cmd on every node of c at once (step names it if one
// fails) and logs how long it took on each, by the guest's clock, as
// the MEASURE line what.
func timedEach(ctx context.Context, t *testing.T, c *lab.Cluster, step, what, cmd string) {
	t.Helper()
	ms := make([]int, len(c.Nodes()))
	allOK(t, step, c.Each(func(n *lab.Node) error {
		var err error
		ms[n.ID-1], err = timed(ctx, n, cmd)
		return err
	}))
	var b strings.Builder
	for i, v := range ms {
		fmt.Fprintf(&b, " node%d %d", i+1, v)
	}
	t.Logf("MEASURE %s (guest clock, ms):%s", what, b.String())
}

// configfsMembers returns the node ids in lockspace ls's configfs
// member list on n, sorted, each followed by a space.
func configfsMembers(ctx context.Context, n *lab.Node, ls string) (string, error) {
	return n.RunOK(ctx, "cat /sys/kernel/config/dlm/cluster/spaces/"+ls+"/nodes/*/nodeid | sort | tr '\\n' ' '")
}

// filesShared writes a file under mnt on each node of ids and checks
// that every one of them reads each file back identically.
func filesShared(ctx context.Context, t *testing.T, c *lab.Cluster, mnt string, ids []int) {
	t.Helper()
	for _, w := range ids {
		data := fmt.Sprintf("written on node %d\n", w)
		if _, err := c.Node(w).RunOK(ctx, fmt.Sprintf("printf '%s' > %s/f%d && sync", data, mnt, w)); err != nil {
			t.Fatal(err)
		}
		for _, r := range ids {
			out, err := c.Node(r).RunOK(ctx, fmt.Sprintf("cat %s/f%d", mnt, w))
			if err != nil || out != data {
				t.Errorf("node %d reads f%d = %q %v, want %q", r, w, out, err, data)
			}
		}
	}
}

// countOn runs dlmcounter in lockspace ls on the nodes ids of c at once,
// each adding per to the value-block counter of resource res under EX
// once all have arrived (so that they contend), and checks that every
// one of them reads the exact total.
func countOn(ctx context.Context, t *testing.T, c *lab.Cluster, ls, res string, per int, ids ...int) {
	t.Helper()
	total := per * len(ids)
	outs := make(map[int]string)
	var mu sync.Mutex
	allOK(t, "dlmcounter", c.Each(func(n *lab.Node) error {
		r, err := n.Run(ctx, fmt.Sprintf("dlmcounter -lockspace %s -resource %s -n %d -total %d -start %d 2>&1", ls, res, per, total, len(ids)))
		if err != nil {
			return err
		}
		mu.Lock()
		outs[n.ID] = r.Stdout
		mu.Unlock()
		if r.ExitCode != 0 {
			return fmt.Errorf("exit %d:\n%s", r.ExitCode, r.Stdout)
		}
		return nil
	}, ids...))
	for _, id := range ids {
		out := outs[id]
		t.Logf("node %d: %s", id, strings.TrimSpace(out))
		if !strings.Contains(out, fmt.Sprintf("counter %d\n", total)) {
			t.Errorf("node %d: want counter %d (%d increments from each of %d nodes):\n%s", id, total, per, len(ids), out)
		}
	}
}

// count returns the number of lines of n's dmesg matching the egrep re.
func count(ctx context.Context, t *testing.T, n *lab.Node, re string) int {
	t.Helper()
	out, err := n.RunOK(ctx, "dmesg | grep -cE '"+re+"' || true")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.Atoi(strings.TrimSpace(out))
	return v
}

// TestClusterThreeNodes runs our daemon alone on three nodes of the real
// kernel: a quorate cluster from a cold start, a lockspace joined by all
// three at once with libdlm mutual exclusion across them, GFS2 and OCFS2
// mounted on all three, and a partition that the two others see as a
// failure within the timeout while the isolated node changes nothing.
func TestClusterThreeNodes(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{
		Nodes:              3,
		LoadClusterModules: true,
		Disks: []lab.Disk{
			{Name: "gfs0", Format: lab.FormatGFS2},
			{Name: "ocfs0", Format: lab.FormatOCFS2},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	ids := []int{1, 2, 3}
	// Without fencing: this test is about the cluster layer, and its
	// partition checks what the cut-off node does while it still runs.
	// TestFencing runs the same failures with fencing.
	conf := c.DLMConf(fmt.Sprintf("cluster_timeout=%d", clusterTimeout.Milliseconds()), "enable_fencing=0")

	t.Run("ColdStart", func(t *testing.T) {
		t0 := time.Now()
		allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }))
		var took []time.Duration
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), time.Minute, "quorate 3-node view", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
			})
			took = append(took, time.Since(t0))
		}
		t.Logf("MEASURE cold start to quorate on all 3 (host clock, from starting the daemons): %v", took[len(took)-1].Round(10*time.Millisecond))
		// Every node agrees on leader, term and members.
		var views []string
		for _, id := range ids {
			st := status(ctx, t, c.Node(id))
			m := clusterLine.FindStringSubmatch(st)
			if m == nil {
				t.Fatalf("node %d: no cluster line:\n%s", id, st)
			}
			views = append(views, fmt.Sprintf("leader %s term %s members %s of %s %v", m[1], m[2], m[3], m[4], members(st)))
		}
		if views[0] != views[1] || views[1] != views[2] || !strings.HasSuffix(views[0], "members 3 of 3 [1 2 3]") {
			t.Errorf("nodes disagree:\n%s", strings.Join(views, "\n"))
		}
	})

	t.Run("ConcurrentJoin", func(t *testing.T) {
		allOK(t, "dlm_tool join", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "dlm_tool join vmtest")
			return err
		}))
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), 30*time.Second, "vmtest running on [1 2 3]", func(st string) bool {
				return regexp.MustCompile(`(?m)^lockspace vmtest running change \d+ members 1,2,3$`).MatchString(st)
			})
			out, _ := c.Node(id).RunOK(ctx, "grep -o 'joined lockspace.* lockspace=vmtest .*' "+daemonLog+" | grep -o 'join_ms=[0-9.]*'")
			t.Logf("MEASURE node %d vmtest join (uevent to event_done, daemon log, 3 nodes joining together): %s", id, strings.TrimSpace(out))
			if out, err := configfsMembers(ctx, c.Node(id), "vmtest"); err != nil || out != "1 2 3 " {
				t.Errorf("node %d: configfs members %q %v", id, out, err)
			}
		}
	})

	t.Run("LVBCounterAcrossNodes", func(t *testing.T) {
		// dlmcounter (tests/cmd/dlmcounter, on libdlm) adds 1000 to a
		// value-block counter under EX from each node at once.
		countOn(ctx, t, c, "vmtest", "counter", 1000, 1, 2, 3)
		// And from two of the nodes, on another resource.
		countOn(ctx, t, c, "vmtest", "counter2", 1000, 1, 2)
	})

	t.Run("Leave", func(t *testing.T) {
		allOK(t, "dlm_tool leave", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "dlm_tool leave vmtest")
			return err
		}))
		for _, id := range ids {
			noLeftovers(ctx, t, c.Node(id))
		}
	})

	shared := func(t *testing.T, fs, mnt, mount string, recovery string) {
		dev := c.GuestDisk(map[string]string{"gfs2": "gfs0", "ocfs2": "ocfs0"}[fs])
		timedEach(ctx, t, c, "mount", fs+" mount on 3 nodes together", "mkdir -p "+mnt+" && "+mount+" "+dev+" "+mnt)
		// A file written on one node reads back identically on the others.
		filesShared(ctx, t, c, mnt, ids)
		// Unmounting node 3 leaves the others working, without recovery.
		before := []int{count(ctx, t, c.Node(1), recovery), count(ctx, t, c.Node(2), recovery)}
		if _, err := c.Node(3).RunOK(ctx, "umount "+mnt); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Node(1).RunOK(ctx, "echo after > "+mnt+"/after && sync"); err != nil {
			t.Fatal(err)
		}
		if out, err := c.Node(2).RunOK(ctx, "cat "+mnt+"/after"); err != nil || out != "after\n" {
			t.Errorf("after node 3 unmounted, node 2 reads %q %v", out, err)
		}
		after := []int{count(ctx, t, c.Node(1), recovery), count(ctx, t, c.Node(2), recovery)}
		if before[0] != after[0] || before[1] != after[1] {
			t.Errorf("a clean unmount triggered recovery: %q lines before %v, after %v", recovery, before, after)
		}
		// Remount works and sees the others' writes.
		if out, err := c.Node(3).RunOK(ctx, mount+" "+dev+" "+mnt+" && cat "+mnt+"/after"); err != nil || out != "after\n" {
			t.Errorf("remount on node 3: %q %v", out, err)
		}
		allOK(t, "umount", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "umount "+mnt)
			return err
		}))
		for _, id := range ids {
			noLeftovers(ctx, t, c.Node(id))
			noDState(ctx, t, c.Node(id))
		}
	}
	t.Run("GFS2", func(t *testing.T) {
		shared(t, "gfs2", "/mnt/gfs2", "mount -t gfs2", "Trying to acquire journal lock")
	})
	t.Run("OCFS2", func(t *testing.T) {
		allOK(t, "cluster_stack", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "echo pcmk > /sys/fs/ocfs2/cluster_stack")
			return err
		}))
		shared(t, "ocfs2", "/mnt/ocfs2", "/sbin/mount.ocfs2", "Recovering node|Initiating recovery")
	})

	t.Run("Partition", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		allOK(t, "dlm_tool join", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "dlm_tool join part")
			return err
		}))
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), 30*time.Second, "part running on [1 2 3]", func(st string) bool {
				return regexp.MustCompile(`(?m)^lockspace part running change \d+ members 1,2,3$`).MatchString(st)
			})
		}
		partLine := regexp.MustCompile(`(?m)^lockspace part \w+ change (\d+) members (\S+)`)
		before := partLine.FindStringSubmatch(status(ctx, t, c.Node(3)))
		old := clusterLine.FindStringSubmatch(status(ctx, t, c.Node(3)))[5]
		c.Partition([]int{1, 2}, []int{3})
		tPart := time.Now()
		// The majority sees node 3 fail within the timeout (plus the
		// polling and ordering time), and goes on without it.
		for _, id := range []int{1, 2} {
			waitStatus(ctx, t, c.Node(id), clusterTimeout+5*time.Second, "node 3 failed", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2]"
			})
			took := time.Since(tPart)
			t.Logf("MEASURE node %d sees node 3 failed %v after the partition (timeout %v; host clock, 100 ms polling)", id, took.Round(10*time.Millisecond), clusterTimeout)
			if took > clusterTimeout+2*time.Second {
				t.Errorf("node %d took %v to see node 3 fail; timeout is %v", id, took, clusterTimeout)
			}
			waitStatus(ctx, t, c.Node(id), 30*time.Second, "part restarted on [1 2]", func(st string) bool {
				return regexp.MustCompile(`(?m)^lockspace part running change \d+ members 1,2$`).MatchString(st)
			})
		}
		// The isolated node loses quorum, stops its lockspace and
		// changes nothing: same members, no new change.
		waitStatus(ctx, t, c.Node(3), 2*clusterTimeout, "quorum lost", func(st string) bool { return !quorate(st) })
		time.Sleep(clusterTimeout)
		st := status(ctx, t, c.Node(3))
		if !strings.Contains(st, fmt.Sprintf("lockspace part stopped change %s members 1,2,3\n", before[1])) || fmt.Sprint(members(st)) != "[1 2 3]" {
			t.Errorf("isolated node changed something:\n%s", st)
		}
		if ctl, err := configfsMembers(ctx, c.Node(3), "part"); err != nil || ctl != "1 2 3 " {
			t.Errorf("isolated node's configfs members %q %v", ctl, err)
		}

		// After the heal, node 3 comes back as a new incarnation; its
		// lockspace from before stays dead.
		c.Heal()
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), time.Minute, "node 3 back", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
			})
		}
		st = status(ctx, t, c.Node(3))
		if m := clusterLine.FindStringSubmatch(st); m == nil || m[5] == old {
			t.Errorf("node 3 did not come back as a new incarnation (was %s):\n%s", old, st)
		}
		if !strings.Contains(st, "lockspace part dead ") {
			t.Errorf("node 3 resumed a lockspace the others recovered without it:\n%s", st)
		}

		// What fencing will do (next): node 3 is reset. The others see
		// it fail again; rebooted, it rejoins as a member with nothing
		// of its past, and the others leave the lockspace cleanly.
		if err := c.Restart(ctx, 3); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int{1, 2} {
			waitStatus(ctx, t, c.Node(id), clusterTimeout+10*time.Second, "node 3 failed after its reset", func(st string) bool {
				return fmt.Sprint(members(st)) == "[1 2]"
			})
		}
		if err := c.Node(3).StartDLMControld(ctx, conf); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), time.Minute, "rebooted node 3 back", func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
			})
		}
		allOK(t, "dlm_tool leave", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "dlm_tool leave part")
			return err
		}, 1, 2))
		for _, id := range ids {
			noLeftovers(ctx, t, c.Node(id))
			noDState(ctx, t, c.Node(id))
		}
	})
}
