package vm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// TestLab boots three VMs and checks what every later test relies on: the
// cluster network, the shared disks, the kernel modules, and the fault
// controls (partition, heal, delay, kill, restart).
func TestLab(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{
		Nodes: 3,
		Disks: []lab.Disk{
			{Name: "shared", SizeMB: 64},
			{Name: "gfs0", Format: lab.FormatGFS2},
			{Name: "ocfs0", Format: lab.FormatOCFS2},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	t.Run("AllReachEachOther", func(t *testing.T) {
		for _, a := range c.Nodes() {
			for _, b := range c.Nodes() {
				if a != b {
					mustPing(ctx, t, a, b)
				}
			}
		}
	})

	t.Run("DisksShared", func(t *testing.T) {
		for _, n := range c.Nodes() {
			for _, name := range []string{"shared", "gfs0", "ocfs0"} {
				dev := c.GuestDisk(name)
				got, err := n.RunOK(ctx, "cat /sys/block/"+strings.TrimPrefix(dev, "/dev/")+"/serial")
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(got) != name {
					t.Errorf("node %d: %s has serial %q, want %q", n.ID, dev, strings.TrimSpace(got), name)
				}
			}
			// The host formatted the images: the guests see the superblocks.
			// GFS2: magic 0x01161970 at 64 KiB. OCFS2: "OCFSV2" in the
			// superblock, within the first 64 KiB for any block size.
			magic, err := n.RunOK(ctx, "dd if="+c.GuestDisk("gfs0")+" bs=4096 skip=16 count=1 iflag=direct 2>/dev/null | hexdump -n 4 -e '4/1 \"%02x\"'")
			if err != nil || magic != "01161970" {
				t.Errorf("node %d: GFS2 magic = %q, %v; want 01161970", n.ID, magic, err)
			}
			sig, err := n.RunOK(ctx, "dd if="+c.GuestDisk("ocfs0")+" bs=4096 count=16 iflag=direct 2>/dev/null | grep -c OCFSV2")
			if err != nil || strings.TrimSpace(sig) == "0" {
				t.Errorf("node %d: no OCFS2 superblock signature: %q, %v", n.ID, sig, err)
			}
		}
	})

	t.Run("ODirectBlockVisibleEverywhere", func(t *testing.T) {
		dev := c.GuestDisk("shared")
		// A random 4 KiB block, written with O_DIRECT at block 100 by node 1.
		want, err := c.Node(1).RunOK(ctx, fmt.Sprintf(
			"dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null && "+
				"dd if=/tmp/blk of=%s bs=4096 seek=100 count=1 oflag=direct conv=notrunc 2>/dev/null && "+
				"sha256sum < /tmp/blk", dev))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes()[1:] {
			got, err := n.RunOK(ctx, fmt.Sprintf("dd if=%s bs=4096 skip=100 count=1 iflag=direct 2>/dev/null | sha256sum", dev))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("node %d read %q, node 1 wrote %q", n.ID, got, want)
			}
		}
	})

	t.Run("ClusterModulesLoad", func(t *testing.T) {
		for _, n := range c.Nodes() {
			if _, err := n.RunOK(ctx, "/sbin/godlm-modules"); err != nil {
				t.Fatalf("node %d: %v", n.ID, err)
			}
			lsmod, err := n.RunOK(ctx, "lsmod")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"configfs", "dlm", "gfs2", "ocfs2", "ocfs2_stack_user"} {
				if !hasModule(lsmod, m) {
					t.Errorf("node %d: module %s not loaded:\n%s", n.ID, m, lsmod)
				}
			}
			// configfs is mounted with the DLM's subsystem, which takes a
			// cluster as the daemon will make it; the DLM's devices exist
			// under both names userspace may use.
			if _, err := n.RunOK(ctx, "test -d /sys/kernel/config/dlm && "+
				"mkdir /sys/kernel/config/dlm/cluster && test -f /sys/kernel/config/dlm/cluster/tcp_port && "+
				"rmdir /sys/kernel/config/dlm/cluster && "+
				"for d in dlm-control dlm-monitor dlm_plock; do test -c /dev/$d && test -c /dev/misc/$d || { echo missing $d; exit 1; }; done"); err != nil {
				t.Errorf("node %d: %v", n.ID, err)
			}
			// Loading again is harmless.
			if _, err := n.RunOK(ctx, "/sbin/godlm-modules"); err != nil {
				t.Errorf("node %d: second load: %v", n.ID, err)
			}
		}
	})

	t.Run("PartitionAndHeal", func(t *testing.T) {
		c.Partition([]int{1, 2}, []int{3})
		mustPing(ctx, t, c.Node(1), c.Node(2))
		mustNotPing(ctx, t, c.Node(1), c.Node(3))
		mustNotPing(ctx, t, c.Node(3), c.Node(2))
		// The agent does not use the cluster network: node 3 still answers.
		if _, err := c.Node(3).RunOK(ctx, "true"); err != nil {
			t.Fatalf("agent of the isolated node: %v", err)
		}
		c.Heal()
		mustPing(ctx, t, c.Node(1), c.Node(3))
		mustPing(ctx, t, c.Node(3), c.Node(2))
	})

	t.Run("LinkDelay", func(t *testing.T) {
		const delay = 300 * time.Millisecond
		c.Hub().SetLink(1, 2, lab.Link{Delay: delay})
		defer c.Heal()
		out, err := c.Node(1).RunOK(ctx, "ping -c 3 -W 5 "+c.Node(2).Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		for _, rtt := range pingRTTs(t, out) {
			if rtt < delay {
				t.Errorf("RTT %v with a %v delay on the link", rtt, delay)
			}
		}
		// The other links are untouched: fast enough to tell apart.
		out, err = c.Node(1).RunOK(ctx, "ping -c 3 -W 5 "+c.Node(3).Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if rtts := pingRTTs(t, out); slices.Min(rtts) >= delay {
			t.Errorf("undelayed link has RTTs %v", rtts)
		}
	})

	t.Run("KillAndRestart", func(t *testing.T) {
		pid := c.Node(3).PID()
		if err := c.Kill(3); err != nil {
			t.Fatal(err)
		}
		if c.Node(3).Running() {
			t.Fatal("node 3 still running after Kill")
		}
		if processAlive(pid) {
			t.Fatalf("qemu pid %d of node 3 still exists", pid)
		}
		mustNotPing(ctx, t, c.Node(1), c.Node(3))
		mustNotPing(ctx, t, c.Node(2), c.Node(3))
		if _, err := c.Node(3).Run(ctx, "true"); err == nil {
			t.Error("Run on a killed node succeeded")
		}

		if err := c.Restart(ctx, 3); err != nil {
			t.Fatal(err)
		}
		mustPing(ctx, t, c.Node(1), c.Node(3))
		mustPing(ctx, t, c.Node(3), c.Node(2))
		// What the disk held survives the power cycle.
		want, err := c.Node(1).RunOK(ctx, "dd if="+c.GuestDisk("shared")+" bs=4096 skip=100 count=1 iflag=direct 2>/dev/null | sha256sum")
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Node(3).RunOK(ctx, "dd if="+c.GuestDisk("shared")+" bs=4096 skip=100 count=1 iflag=direct 2>/dev/null | sha256sum")
		if err != nil || got != want {
			t.Errorf("after restart node 3 reads %q (%v), node 1 %q", got, err, want)
		}
	})

	t.Run("PowerSwitch", func(t *testing.T) {
		// The fence agent, run as dlm_controld runs one: options on stdin.
		agent := func(n int, stdin string) lab.Result {
			t.Helper()
			r, err := c.Node(n).Run(ctx, "printf '"+stdin+"' | fence_godlm")
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := agent(1, `action=metadata\n`); r.ExitCode != 0 || !strings.Contains(r.Stdout, `<resource-agent name="fence_godlm"`) {
			t.Errorf("metadata: %+v", r)
		}
		if r := agent(1, `action=monitor\n`); r.ExitCode != 0 {
			t.Errorf("monitor: %+v", r)
		}
		if r := agent(1, `action=list\n`); r.ExitCode != 0 || !strings.Contains(r.Stdout, "node3,node3") {
			t.Errorf("list: %+v", r)
		}
		if r := agent(1, `action=status\nplug=node3\n`); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Status: ON") {
			t.Errorf("status of a running node: %+v", r)
		}
		// Partitioned from node 3, node 1 still powers it off: the port
		// is not on the cluster network.
		c.Partition([]int{1, 2}, []int{3})
		defer c.Heal()
		c.Power().FailNext(1)
		if r := agent(1, `node=3\nfail_time=1\naction=off\n`); r.ExitCode != 1 || !strings.Contains(r.Stderr, "injected failure") || !c.Node(3).Running() {
			t.Errorf("injected failure: %+v, node 3 running %v", r, c.Node(3).Running())
		}
		if r := agent(1, `node=3\nfail_time=1\naction=off\n`); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Powered OFF") {
			t.Errorf("off: %+v", r)
		}
		if c.Node(3).Running() {
			t.Error("node 3 still runs after off")
		}
		if r := agent(2, `action=status\nplug=node3\n`); r.ExitCode != 2 || !strings.Contains(r.Stdout, "Status: OFF") {
			t.Errorf("status of an off node: %+v", r)
		}
		if r := agent(2, `action=off\nplug=node3\n`); r.ExitCode != 0 || !strings.Contains(r.Stdout, "Already OFF") {
			t.Errorf("off again: %+v", r)
		}
		// A hung switch: the agent gives up at its power_timeout.
		c.Power().Hang(true)
		if r := agent(2, `action=on\nplug=node3\npower_timeout=2\n`); r.ExitCode != 1 || !strings.Contains(r.Stderr, "no answer") {
			t.Errorf("hung switch: %+v", r)
		}
		c.Power().Hang(false)
		// Reboot answers after the off, and the node boots again.
		if r := agent(2, `action=reboot\nplug=node3\n`); r.ExitCode != 0 {
			t.Errorf("reboot: %+v", r)
		}
		c.Heal()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, err := c.Node(3).RunOK(ctx, "true"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node 3 did not come back after the reboot")
			}
			time.Sleep(time.Second)
		}
		mustPing(ctx, t, c.Node(1), c.Node(3))
		var offs []int
		for _, e := range c.Power().Events() {
			if e.Request.Action == "off" && e.Reply.Status == "ok" {
				offs = append(offs, e.From)
			}
		}
		if !slices.Equal(offs, []int{1, 2}) {
			t.Errorf("successful offs came from %v, want [1 2]", offs)
		}
	})

	t.Run("FilesInAndOut", func(t *testing.T) {
		data := []byte("godlm\x00binary\xff\n")
		if err := c.Node(2).WriteFile(ctx, "/tmp/x/y", data, 0o600); err != nil {
			t.Fatal(err)
		}
		mode, err := c.Node(2).RunOK(ctx, "stat -c %a /tmp/x/y")
		if err != nil || strings.TrimSpace(mode) != "600" {
			t.Errorf("mode %q, %v", mode, err)
		}
		got, err := c.Node(2).ReadFile(ctx, "/tmp/x/y")
		if err != nil || string(got) != string(data) {
			t.Errorf("read back %q, %v", got, err)
		}
		if _, err := c.Node(2).ReadFile(ctx, "/does/not/exist"); err == nil {
			t.Error("reading a missing file succeeded")
		}
		r, err := c.Node(2).Run(ctx, "echo out; echo err >&2; exit 7")
		if err != nil || r.ExitCode != 7 || r.Stdout != "out\n" || r.Stderr != "err\n" {
			t.Errorf("Run = %+v, %v", r, err)
		}
	})
}

func hasModule(lsmod, name string) bool {
	for _, l := range strings.Split(lsmod, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

func mustPing(ctx context.Context, t *testing.T, from, to *lab.Node) {
	t.Helper()
	// The first packet may wait for ARP; allow a few.
	if _, err := from.RunOK(ctx, "ping -c 1 -W 2 "+to.Addr.String()+" || ping -c 3 -W 3 "+to.Addr.String()); err != nil {
		t.Errorf("node %d cannot reach node %d: %v", from.ID, to.ID, err)
	}
}

func mustNotPing(ctx context.Context, t *testing.T, from, to *lab.Node) {
	t.Helper()
	r, err := from.Run(ctx, "ping -c 2 -W 2 "+to.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode == 0 {
		t.Errorf("node %d still reaches node %d:\n%s", from.ID, to.ID, r.Stdout)
	}
}

// pingRTTs parses busybox ping's "time=12.345 ms" fields.
func pingRTTs(t *testing.T, out string) []time.Duration {
	t.Helper()
	var rtts []time.Duration
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "time="); ok {
			ms, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("bad ping output %q", f)
			}
			rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
		}
	}
	if len(rtts) == 0 {
		t.Fatalf("no replies in ping output:\n%s", out)
	}
	return rtts
}
