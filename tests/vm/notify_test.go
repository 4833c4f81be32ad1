//go:build vmnotify

package vm

// The NOTIFY kernel series (kernel/patches) on three nodes: GFS2 and
// OCFS2 on the patched modules. Behind the vmnotify build tag until it
// has a record of passing: `make test-notify`.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

func TestNotifyThreeNodes(t *testing.T) {
	needVMs(t)
	// Build the modules first, with room: Boot's own timeout is for
	// booting.
	bctx, bcancel := context.WithTimeout(context.Background(), 20*time.Minute)
	if _, err := lab.PatchedModules(bctx, t.Logf); err != nil {
		bcancel()
		t.Fatal(err)
	}
	bcancel()

	c := lab.Start(t, lab.Config{
		Nodes:              3,
		LoadClusterModules: true,
		PatchedModules:     true,
		Disks: []lab.Disk{
			{Name: "gfs0", Format: lab.FormatGFS2},
			{Name: "ocfs0", Format: lab.FormatOCFS2},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	ids := []int{1, 2, 3}
	conf := c.DLMConf(fmt.Sprintf("cluster_timeout=%d", clusterTimeout.Milliseconds()), "enable_fencing=0")
	allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }))
	for _, id := range ids {
		waitStatus(ctx, t, c.Node(id), time.Minute, "quorate 3-node view", func(st string) bool {
			return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
		})
	}
	allOK(t, "debugfs", c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug")
		return err
	}))

	t.Run("Userspace", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "notifylocks")
		build := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/notifylocks")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build notifylocks: %v\n%s", err, out)
		}
		allOK(t, "copy", c.Each(func(n *lab.Node) error { return n.CopyIn(ctx, bin, "/usr/bin/notifylocks") }))
		// Every node opted in: locks with Notify, converted and unlocked
		// at once, while their NOTIFY may be unconfirmed.
		var mu sync.Mutex
		sent := 0
		allOK(t, "notifylocks", c.Each(func(n *lab.Node) error {
			out, err := n.RunOK(ctx, fmt.Sprintf("notifylocks -lockspace nfy -prefix n%d -n 40 2>&1", n.ID))
			t.Logf("node %d: %s", n.ID, strings.TrimSpace(out))
			if err == nil {
				f := strings.Fields(out)
				for i := range f {
					if f[i] == "sent" && i+1 < len(f) {
						v, _ := strconv.Atoi(f[i+1])
						mu.Lock()
						sent += v
						mu.Unlock()
					}
				}
			}
			return err
		}))
		if sent == 0 {
			t.Errorf("no node sent a NOTIFY")
		}
		// Without the opt-in the flag has no effect: no NOTIFY is sent.
		allOK(t, "notifylocks -optin=false", c.Each(func(n *lab.Node) error {
			out, err := n.RunOK(ctx, fmt.Sprintf("notifylocks -lockspace plain -optin=false -prefix m%d -n 20 2>&1", n.ID))
			t.Logf("node %d: %s", n.ID, strings.TrimSpace(out))
			return err
		}))
		for _, n := range c.Nodes() {
			noKernelErrors(ctx, t, n)
		}
	})
	t.Run("GFS2", func(t *testing.T) {
		notifyFS(ctx, t, c, true, "gfs2", "/mnt/gfs2", "mount -t gfs2 "+c.GuestDisk("gfs0"), "gfs0")
		fsck(t, "fsck.gfs2", "-n", c.DiskPath("gfs0"))
	})
	t.Run("OCFS2", func(t *testing.T) {
		allOK(t, "cluster_stack", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "echo pcmk > /sys/fs/ocfs2/cluster_stack")
			return err
		}))
		notifyFS(ctx, t, c, true, "ocfs2", "/mnt/ocfs2", "/sbin/mount.ocfs2 "+c.GuestDisk("ocfs0"), "")
		fsck(t, "fsck.ocfs2", "-n", c.DiskPath("ocfs0"))
	})
	t.Run("KillDuringCreateStorm", func(t *testing.T) {
		killDuringStorm(ctx, t, c)
		fsck(t, "fsck.gfs2", "-n", c.DiskPath("gfs0"))
	})
}

// killDuringStorm mounts GFS2 on the three nodes, kills node 3 while all
// three create files (node 3 is the creator of its names and the
// directory node of some of the others'), and checks that the two others
// finish their creates, read each other's files, keep one master per
// resource, and unmount cleanly.
func killDuringStorm(ctx context.Context, t *testing.T, c *lab.Cluster) {
	const mnt, files = "/mnt/gfs2", 60
	timedEach(ctx, t, c, "mount", "gfs2 mount on 3 nodes together", "mkdir -p "+mnt+" && mount -t gfs2 "+c.GuestDisk("gfs0")+" "+mnt)
	create := func(n *lab.Node) error {
		_, err := n.RunOK(ctx, fmt.Sprintf("mkdir -p %s/k; for k in $(seq 1 %d); do echo k%d-$k > %s/k/%d-$k || exit 1; done",
			mnt, files, n.ID, mnt, n.ID))
		return err
	}
	survivors := make(chan error, 1)
	victim := make(chan error, 1)
	go func() { survivors <- c.Each(create, 1, 2) }()
	go func() { victim <- create(c.Node(3)) }()
	time.Sleep(4 * time.Second)
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	<-victim
	for _, id := range []int{1, 2} {
		waitStatus(ctx, t, c.Node(id), clusterTimeout+30*time.Second, "node 3 failed", func(st string) bool {
			return fmt.Sprint(members(st)) == "[1 2]"
		})
	}
	if err := <-survivors; err != nil {
		t.Fatalf("creates on the survivors: %v", err)
	}
	for _, id := range []int{1, 2} {
		out, err := c.Node(id).RunOK(ctx, fmt.Sprintf("for i in 1 2; do for k in $(seq 1 %d); do "+
			"[ \"$(cat %s/k/$i-$k)\" = \"k$i-$k\" ] || echo BAD $i-$k; done; done; ls -l %s/k >/dev/null", files, mnt, mnt))
		if err != nil || out != "" {
			t.Errorf("node %d reads the survivors' files: %q %v", id, out, err)
		}
	}
	oneMaster(ctx, t, c, "gfs0", 1, 2)
	allOK(t, "umount", c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "umount "+mnt)
		return err
	}, 1, 2))
	for _, id := range []int{1, 2} {
		noKernelErrors(ctx, t, c.Node(id))
		noDState(ctx, t, c.Node(id))
	}
}

// TestNotifyWorkloadStock runs the GFS2 workload of TestNotifyThreeNodes
// on the stock modules: what it finds there is not NOTIFY's doing.
func TestNotifyWorkloadStock(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{
		Nodes:              3,
		LoadClusterModules: true,
		Disks:              []lab.Disk{{Name: "gfs0", Format: lab.FormatGFS2}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	conf := c.DLMConf(fmt.Sprintf("cluster_timeout=%d", clusterTimeout.Milliseconds()), "enable_fencing=0")
	allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }))
	for _, id := range []int{1, 2, 3} {
		waitStatus(ctx, t, c.Node(id), time.Minute, "quorate 3-node view", func(st string) bool {
			return quorate(st) && fmt.Sprint(members(st)) == "[1 2 3]"
		})
	}
	allOK(t, "debugfs", c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug")
		return err
	}))
	notifyFS(ctx, t, c, false, "gfs2", "/mnt/gfs2", "mount -t gfs2 "+c.GuestDisk("gfs0"), "gfs0")
	fsck(t, "fsck.gfs2", "-n", c.DiskPath("gfs0"))
}

// notifyFS mounts a shared file system on every node and checks, with
// NOTIFY in effect, concurrent creates, reads, stats and unlinks, reads
// right after a create on another node, and two nodes reusing the same
// names; then unmounts it. ls is the lockspace name ("" to find it: the
// only lockspace there is). Without patched, the cluster runs the stock
// modules, as a control: the same workload, no NOTIFY checks.
func notifyFS(ctx context.Context, t *testing.T, c *lab.Cluster, patched bool, fs, mnt, mount, ls string) {
	ids := []int{1, 2, 3}
	timedEach(ctx, t, c, "mount", fs+" mount on 3 nodes together", "mkdir -p "+mnt+" && "+mount+" "+mnt)
	if ls == "" {
		out, err := c.Node(1).RunOK(ctx, "ls /sys/kernel/dlm")
		names := strings.Fields(out)
		if err != nil || len(names) != 1 {
			t.Fatalf("lockspaces on node 1: %q %v", out, err)
		}
		ls = names[0]
	}
	// Every node opted in, so NOTIFY is on everywhere.
	for _, id := range ids {
		if !patched {
			break
		}
		out, err := c.Node(id).RunOK(ctx, "cat /sys/kernel/dlm/"+ls+"/notify /sys/kernel/dlm/"+ls+"/notify_active")
		if err != nil || out != "1\n1\n" {
			t.Fatalf("node %d: notify, notify_active = %q %v, want 1 and 1", id, out, err)
		}
	}

	t.Run("ConcurrentCreateReadUnlink", func(t *testing.T) {
		const files = 30
		allOK(t, "create", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, fmt.Sprintf("mkdir -p %s/c; for k in $(seq 1 %d); do echo node%d-file$k > %s/c/%d-$k || exit 1; done",
				mnt, files, n.ID, mnt, n.ID))
			return err
		}))
		check := fmt.Sprintf("for i in 1 2 3; do for k in $(seq 1 %d); do f=%s/c/$i-$k; "+
			"[ \"$(cat $f)\" = \"node$i-file$k\" ] || echo BAD $f; [ \"$(stat -c %%s $f)\" = \"$(( ${#i} + ${#k} + 10 ))\" ] || echo BADSIZE $f; done; done",
			files, mnt)
		allOK(t, "read and stat", c.Each(func(n *lab.Node) error {
			out, err := n.RunOK(ctx, check)
			if err == nil && out != "" {
				err = fmt.Errorf("node %d: %s", n.ID, out)
			}
			return err
		}))
		allOK(t, "unlink", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, fmt.Sprintf("for k in $(seq 1 %d); do rm %s/c/%d-$k || exit 1; done", files, mnt, n.ID))
			return err
		}))
		for _, id := range ids {
			if out, err := c.Node(id).RunOK(ctx, "ls -A "+mnt+"/c"); err != nil || out != "" {
				t.Errorf("node %d: %s/c after the unlinks: %q %v", id, mnt, out, err)
			}
		}
	})

	t.Run("CreateThenStatElsewhere", func(t *testing.T) {
		for i := 0; i < 9; i++ {
			w, r := c.Node(ids[i%3]), c.Node(ids[(i+1)%3])
			f := fmt.Sprintf("%s/x%d", mnt, i)
			if _, err := w.RunOK(ctx, fmt.Sprintf("echo v%d > %s", i, f)); err != nil {
				t.Fatal(err)
			}
			out, err := r.RunOK(ctx, "stat -c %s "+f+" && cat "+f)
			if want := fmt.Sprintf("%d\nv%d\n", len(fmt.Sprint(i))+2, i); err != nil || out != want {
				t.Errorf("node %d created %s, node %d reads %q %v, want %q", w.ID, f, r.ID, out, err, want)
			}
		}
	})

	t.Run("SameNamesTwoNodes", func(t *testing.T) {
		if _, err := c.Node(1).RunOK(ctx, "mkdir -p "+mnt+"/same"); err != nil {
			t.Fatal(err)
		}
		allOK(t, "create and unlink", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, fmt.Sprintf("for r in $(seq 1 15); do for k in 1 2 3 4 5; do "+
				"echo %d > %s/same/n$k 2>/dev/null; rm -f %s/same/n$k 2>/dev/null; done; done; true", n.ID, mnt, mnt))
			return err
		}, 1, 2))
		// Both nodes agree on what is left.
		a, err1 := c.Node(1).RunOK(ctx, "ls "+mnt+"/same")
		b, err2 := c.Node(2).RunOK(ctx, "ls "+mnt+"/same")
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("the nodes see %q (%v) and %q (%v)", a, err1, b, err2)
		}
		oneMaster(ctx, t, c, ls)
	})

	t.Run("MountDuringCreateStorm", func(t *testing.T) {
		if _, err := c.Node(3).RunOK(ctx, "umount "+mnt); err != nil {
			t.Fatal(err)
		}
		const files = 40
		storm := make(chan error, 1)
		go func() {
			storm <- c.Each(func(n *lab.Node) error {
				_, err := n.RunOK(ctx, fmt.Sprintf("mkdir -p %s/s; for k in $(seq 1 %d); do echo s%d-$k > %s/s/%d-$k || exit 1; done",
					mnt, files, n.ID, mnt, n.ID))
				return err
			}, 1, 2)
		}()
		// Node 3 joins the lockspace, and recovery runs, while the
		// others create (NOTIFYs in flight).
		if _, err := c.Node(3).RunOK(ctx, mount+" "+mnt); err != nil {
			t.Fatal(err)
		}
		if err := <-storm; err != nil {
			t.Fatal(err)
		}
		out, err := c.Node(3).RunOK(ctx, fmt.Sprintf("for i in 1 2; do for k in $(seq 1 %d); do "+
			"[ \"$(cat %s/s/$i-$k)\" = \"s$i-$k\" ] || echo BAD $i-$k; done; done; rm -r %s/s", files, mnt, mnt))
		if err != nil || out != "" {
			t.Errorf("node 3 reads the files created while it mounted: %q %v", out, err)
		}
		oneMaster(ctx, t, c, ls)
	})

	stats := map[int]map[string]int{}
	for _, id := range ids {
		if !patched {
			break
		}
		out, err := c.Node(id).RunOK(ctx, "cat /sys/kernel/dlm/"+ls+"/notify_stats")
		if err != nil {
			t.Fatal(err)
		}
		stats[id] = parseStats(out)
		t.Logf("node %d notify_stats: %v", id, stats[id])
	}
	sent, confirmed := 0, 0
	for _, id := range ids {
		sent += stats[id]["sent"]
		confirmed += stats[id]["confirmed"]
		if stats[id]["errors"] != 0 || stats[id]["fallbacks"] != 0 {
			t.Errorf("node %d: notify errors or fallbacks: %v", id, stats[id])
		}
	}
	if patched && (sent == 0 || confirmed == 0) {
		t.Errorf("no NOTIFY was sent (%d) or confirmed (%d): the patched path was not used", sent, confirmed)
	}

	allOK(t, "umount", c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "umount "+mnt)
		return err
	}))
	for _, id := range ids {
		noKernelErrors(ctx, t, c.Node(id))
		noDState(ctx, t, c.Node(id))
	}
}

// parseStats reads notify_stats: one "name count" per line.
func parseStats(s string) map[string]int {
	m := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if v, err := strconv.Atoi(f[1]); err == nil {
				m[f[0]] = v
			}
		}
	}
	return m
}

// oneMaster checks in the debugfs dumps of the active resources of the
// nodes ids (default all) that no resource has its master on two nodes.
func oneMaster(ctx context.Context, t *testing.T, c *lab.Cluster, ls string, ids ...int) {
	t.Helper()
	masters := map[string][]int{}
	nodes := c.Nodes()
	if len(ids) > 0 {
		nodes = nil
		for _, id := range ids {
			nodes = append(nodes, c.Node(id))
		}
	}
	for _, n := range nodes {
		out, err := n.RunOK(ctx, "cat /sys/kernel/debug/dlm/"+ls+"_all")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n") {
			// rsb <ptr> <nodeid> <first> <flags> <root> <recover> <count> <len> str|hex <name>
			f := strings.SplitN(l, " ", 10)
			if len(f) < 10 || f[0] != "rsb" || f[2] != "0" {
				continue
			}
			masters[f[9]] = append(masters[f[9]], n.ID)
		}
	}
	for name, on := range masters {
		if len(on) > 1 {
			t.Errorf("resource %q is mastered on nodes %v", name, on)
		}
	}
}

// kernelError matches kernel log lines of a DLM fault. A NOTIFY conflict
// ("notify <name>: dir N result -17") is not one: the locks move to the
// recorded master, which oneMaster checks.
var kernelError = regexp.MustCompile(`rsb_insert match|BUG|WARNING|Oops|notify .*result -([0-9]|1[0-68-9]|[2-9][0-9]|[0-9]{3,}) master|no reply from dir|notify_move`)

// knownWarning is a warning of Debian's stock 6.1 DLM: with
// FORTIFY_SOURCE, queueing a message that carries a resource name during
// recovery (LOOKUP, REQUEST, and NOTIFY alike) trips the field-spanning
// memcpy check in dlm_add_requestqueue. It is harmless and not ours.
var knownWarning = regexp.MustCompile(`WARNING: .* at .*fs/dlm/requestqueue\.c:47 dlm_add_requestqueue`)

// noKernelErrors fails on kernel log lines that show a DLM fault.
func noKernelErrors(ctx context.Context, t *testing.T, n *lab.Node) {
	t.Helper()
	out, err := n.RunOK(ctx, "dmesg")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if kernelError.MatchString(l) && !knownWarning.MatchString(l) {
			t.Errorf("node %d kernel log: %s", n.ID, l)
		}
	}
}

// fsck checks a shared disk from the host, read-only.
func fsck(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}
