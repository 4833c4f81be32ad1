package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

const daemonLog = lab.DLMControldLog

// startDaemon starts our dlm_controld on n with the cluster's dlm.conf
// plus extra lines, waiting until it answers queries.
func startDaemon(ctx context.Context, t *testing.T, c *lab.Cluster, n *lab.Node, extra ...string) {
	t.Helper()
	if err := n.StartDLMControld(ctx, c.DLMConf(extra...)); err != nil {
		t.Fatal(err)
	}
}

// stopDaemon ends the daemon with SIGTERM and waits for it to exit.
func stopDaemon(ctx context.Context, t *testing.T, n *lab.Node) {
	t.Helper()
	if _, err := n.RunOK(ctx, "killall dlm_controld; for i in $(seq 50); do pidof dlm_controld >/dev/null || exit 0; sleep 0.1; done; exit 1"); err != nil {
		t.Fatalf("daemon did not stop: %v", err)
	}
}

// noLeftovers checks that no lockspace, configfs space or device remains.
func noLeftovers(ctx context.Context, t *testing.T, n *lab.Node) {
	t.Helper()
	out, err := n.RunOK(ctx, "ls /sys/kernel/dlm; ls /sys/kernel/config/dlm/cluster/spaces 2>/dev/null; ls /dev | grep '^dlm_' | grep -v dlm_plock; ls /dev/misc | grep '^dlm_' | grep -v dlm_plock; true")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "" {
		t.Errorf("node %d: leftovers:\n%s", n.ID, out)
	}
}

// noDState fails if a process on n stays in uninterruptible sleep: it
// polls for 10 s, since a kernel thread sleeps so for a moment while a
// recovery it is part of completes (dlm_recoverd waiting for a peer's
// message), which is no hang.
func noDState(ctx context.Context, t *testing.T, n *lab.Node) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var err error
		out, err = n.RunOK(ctx, `for f in /proc/[0-9]*/stat; do read -r l < $f 2>/dev/null || continue; s=${l##*) }; case "$s" in D*) echo "$l";; esac; done; true`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "" {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("node %d: processes in D state for 10 s:\n%s", n.ID, out)
}

// TestDaemonOneNode drives our dlm_controld on one node of the real
// kernel: lockspaces through dlm_tool, GFS2 and OCFS2 mounts, errors,
// and a restart after kill -9 with a filesystem mounted.
func TestDaemonOneNode(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{
		Nodes:              1,
		LoadClusterModules: true,
		Disks: []lab.Disk{
			{Name: "gfs0", Format: lab.FormatGFS2},
			{Name: "ocfs0", Format: lab.FormatOCFS2},
			{Name: "alien", Format: lab.FormatGFS2, ClusterName: "othercluster"},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	n := c.Node(1)
	ref := lab.RefDir + "/dlm_tool"

	t.Run("NoDaemon", func(t *testing.T) {
		// Without a daemon, our tool says so, and the kernel refuses new
		// lockspaces (a GFS2 mount here) rather than leaving the mounter
		// waiting.
		for _, cmd := range []string{"dlm_tool ls", "dlm_tool join foo"} {
			r, err := n.Run(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, "not running") {
				t.Errorf("%s without daemon: %+v", cmd, r)
			}
		}
		r, err := n.Run(ctx, "mkdir -p /mnt/gfs2 && mount -t gfs2 "+c.GuestDisk("gfs0")+" /mnt/gfs2")
		if err != nil || r.ExitCode == 0 {
			t.Errorf("GFS2 mount without daemon: %+v %v", r, err)
		}
		noLeftovers(ctx, t, n)
	})

	startDaemon(ctx, t, c, n)

	t.Run("NoHugePages", func(t *testing.T) {
		// The guest kernel backs anonymous memory with transparent huge
		// pages by default; the daemon opts out. (What the Go runtime
		// touched before the daemon's code ran may still be huge.)
		out, err := n.RunOK(ctx, "cat /sys/kernel/mm/transparent_hugepage/enabled; p=$(pidof dlm_controld); grep THP_enabled /proc/$p/status")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "[always]") {
			t.Fatalf("the guest's THP is not in always mode, so this test shows nothing:\n%s", out)
		}
		if !regexp.MustCompile(`THP_enabled:\s+0\b`).MatchString(out) {
			t.Errorf("dlm_controld did not opt out of transparent huge pages:\n%s", out)
		}
	})

	t.Run("JoinLeave", func(t *testing.T) {
		out, err := n.RunOK(ctx, "dlm_tool join foo")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `Joining lockspace "foo"`) || !strings.Contains(out, "done") {
			t.Errorf("join output %q", out)
		}
		if _, err := n.RunOK(ctx, "test -d /sys/kernel/dlm/foo && test -c /dev/misc/dlm_foo"); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%d", globalID("foo"))
		if id, _ := n.RunOK(ctx, "cat /sys/kernel/dlm/foo/id"); strings.TrimSpace(id) != want {
			t.Errorf("kernel id %q, want %s", id, want)
		}
		for _, tool := range []string{"dlm_tool", ref} {
			ls, err := n.RunOK(ctx, tool+" ls")
			if err != nil {
				t.Fatalf("%s ls: %v", tool, err)
			}
			if !regexp.MustCompile(`(?m)^name +foo$`).MatchString(ls) || !regexp.MustCompile(`(?m)^members +1 *$`).MatchString(ls) ||
				!strings.Contains(ls, fmt.Sprintf("id            0x%08x", globalID("foo"))) {
				t.Errorf("%s ls:\n%s", tool, ls)
			}
		}
		js, err := n.RunOK(ctx, "dlm_tool ls --json")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(js, `"foo"`) || !json.Valid([]byte(js)) {
			t.Errorf("ls --json: %s", js)
		}
		out, err = n.RunOK(ctx, "dlm_tool leave foo")
		if err != nil || !strings.Contains(out, `Leaving lockspace "foo"`) {
			t.Fatalf("leave: %q %v", out, err)
		}
		noLeftovers(ctx, t, n)
		if ls, _ := n.RunOK(ctx, "dlm_tool ls"); strings.Contains(ls, "foo") {
			t.Errorf("ls after leave:\n%s", ls)
		}
	})

	t.Run("Queries", func(t *testing.T) {
		// Our dlm_tool and the reference's read the same status.
		for _, tool := range []string{"dlm_tool", ref} {
			st, err := n.RunOK(ctx, tool+" status")
			if err != nil {
				t.Fatalf("%s status: %v", tool, err)
			}
			if !strings.HasPrefix(st, "cluster nodeid 1 quorate 1 ring seq") || !regexp.MustCompile(`(?m)^node 1 M add`).MatchString(st) {
				t.Errorf("%s status:\n%s", tool, st)
			}
		}
		for _, cmd := range []string{"dlm_tool status --json", "dlm_tool dump --json", "dlm_tool dump_config --json", "dlm_tool version --json"} {
			out, err := n.RunOK(ctx, cmd)
			if err != nil || !json.Valid([]byte(out)) {
				t.Errorf("%s: %v\n%s", cmd, err, out)
			}
		}
		dump, err := n.RunOK(ctx, ref+" dump")
		if err != nil || !strings.Contains(dump, `msg="joined lockspace" lockspace=foo `) {
			t.Errorf("reference dlm_tool dump: %v\n%s", err, dump)
		}
	})

	t.Run("BadConfigStopsStartup", func(t *testing.T) {
		if err := n.WriteFile(ctx, "/tmp/bad.conf", []byte(c.DLMConf()+"log_debug=yes\nfrobnicate=1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := n.Run(ctx, "dlm_controld --config /tmp/bad.conf")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(c.DLMConf(), "\n")
		for _, want := range []string{fmt.Sprintf("/tmp/bad.conf:%d:", lines+1), fmt.Sprintf("/tmp/bad.conf:%d:", lines+2), "frobnicate"} {
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, want) {
				t.Errorf("bad config: want %q in %+v", want, r)
			}
		}
	})

	t.Run("JoinLeave50Times", func(t *testing.T) {
		out, err := n.RunOK(ctx, `i=0; while [ $i -lt 50 ]; do dlm_tool join foo >/dev/null && dlm_tool leave foo >/dev/null || { echo "failed at $i"; exit 1; }; i=$((i+1)); done`)
		if err != nil {
			t.Fatalf("%v %s", err, out)
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("JoinTime", func(t *testing.T) {
		log, err := n.RunOK(ctx, "grep 'joined lockspace' "+daemonLog)
		if err != nil {
			t.Fatal(err)
		}
		var ms []string
		for _, m := range regexp.MustCompile(`join_ms=([0-9.]+)`).FindAllStringSubmatch(log, -1) {
			ms = append(ms, m[1])
		}
		if len(ms) < 51 {
			t.Fatalf("%d joins logged, want 51:\n%s", len(ms), log)
		}
		t.Logf("daemon join time (uevent to event_done), ms: first %s, then %s", ms[0], strings.Join(ms[1:6], " "))
	})

	t.Run("BadNames", func(t *testing.T) {
		long := strings.Repeat("x", 65)
		r, err := n.Run(ctx, "dlm_tool join "+long)
		if err != nil {
			t.Fatal(err)
		}
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "64") {
			t.Errorf("join of a 65-byte name: %+v", r)
		}
		for _, cmd := range []string{"dlm_tool leave nosuch", "dlm_tool ls nosuch"} {
			r, err := n.Run(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, "nosuch") ||
				!(strings.Contains(r.Stderr, "no such lockspace") || strings.Contains(r.Stderr, "not found")) {
				t.Errorf("%s: %+v", cmd, r)
			}
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("PermissionDenied", func(t *testing.T) {
		for _, cmd := range []string{"join foo", "leave foo"} {
			r, err := n.Run(ctx, "su -s /bin/sh -c 'id -u; dlm_tool "+cmd+"' nobody")
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitCode == 0 || !strings.HasPrefix(r.Stdout, "65534\n") || !strings.Contains(strings.ToLower(r.Stderr), "permission denied") {
				t.Errorf("unprivileged %s: %+v", cmd, r)
			}
		}
		// Queries stay open to everyone.
		if _, err := n.RunOK(ctx, "su -s /bin/sh -c 'dlm_tool ls' nobody"); err != nil {
			t.Errorf("unprivileged ls: %v", err)
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("GFS2", func(t *testing.T) {
		dev := c.GuestDisk("gfs0")
		if _, err := n.RunOK(ctx, "mkdir -p /mnt/gfs2 && mount -t gfs2 "+dev+" /mnt/gfs2 && echo hello > /mnt/gfs2/f && sync && cat /mnt/gfs2/f"); err != nil {
			t.Fatal(err)
		}
		if ls, _ := n.RunOK(ctx, "dlm_tool ls"); !strings.Contains(ls, "gfs0") {
			t.Errorf("gfs0 lockspace not listed:\n%s", ls)
		}
		if _, err := n.RunOK(ctx, "umount /mnt/gfs2 && mount -t gfs2 "+dev+" /mnt/gfs2 && grep -qx hello /mnt/gfs2/f && umount /mnt/gfs2"); err != nil {
			t.Fatal(err)
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("OCFS2", func(t *testing.T) {
		dev := c.GuestDisk("ocfs0")
		if _, err := n.RunOK(ctx, "echo pcmk > /sys/fs/ocfs2/cluster_stack && mkdir -p /mnt/ocfs2 && /sbin/mount.ocfs2 "+dev+" /mnt/ocfs2 && echo hello > /mnt/ocfs2/f && sync"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.RunOK(ctx, "umount /mnt/ocfs2 && /sbin/mount.ocfs2 "+dev+" /mnt/ocfs2 && grep -qx hello /mnt/ocfs2/f && umount /mnt/ocfs2"); err != nil {
			t.Fatal(err)
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("ClusterNameMismatch", func(t *testing.T) {
		r, err := n.Run(ctx, "mkdir -p /mnt/alien && mount -t gfs2 "+c.GuestDisk("alien")+" /mnt/alien")
		if err != nil {
			t.Fatal(err)
		}
		if r.ExitCode == 0 {
			n.Run(ctx, "umount /mnt/alien")
			t.Fatal("mounted a GFS2 of another cluster")
		}
		dmesg, _ := n.RunOK(ctx, "dmesg | tail -20")
		if !strings.Contains(dmesg, "does not match") {
			t.Errorf("no clear kernel message for the mismatch:\n%s", dmesg)
		}
		noLeftovers(ctx, t, n)
	})

	t.Run("KillWithMountThenRestart", func(t *testing.T) {
		dev := c.GuestDisk("gfs0")
		if _, err := n.RunOK(ctx, "mount -t gfs2 "+dev+" /mnt/gfs2 && dlm_tool join tls1"); err != nil {
			t.Fatal(err)
		}
		if _, err := n.RunOK(ctx, "killall -9 dlm_controld; sleep 1; ! pidof dlm_controld"); err != nil {
			t.Fatal(err)
		}
		// While no daemon runs the lockspaces are stopped; a new one
		// cannot be created (the kernel refuses at once).
		r, err := n.Run(ctx, "mount -t gfs2 "+c.GuestDisk("alien")+" /mnt/alien")
		if err != nil || r.ExitCode == 0 {
			t.Errorf("mount without daemon: %+v %v", r, err)
		}
		startDaemon(ctx, t, c, n)
		log, _ := n.RunOK(ctx, "cat "+daemonLog)
		for _, ls := range []string{"gfs0", "tls1"} {
			if !regexp.MustCompile(`adopting lockspace.*lockspace=` + ls).MatchString(log) {
				t.Errorf("log does not say %s was adopted:\n%s", ls, log)
			}
		}
		// The mount works again, and nothing hangs.
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		defer wcancel()
		if _, err := n.RunOK(wctx, "echo again > /mnt/gfs2/g && sync && cat /mnt/gfs2/f /mnt/gfs2/g"); err != nil {
			t.Fatal(err)
		}
		noDState(ctx, t, n)
		if _, err := n.RunOK(ctx, "umount /mnt/gfs2 && dlm_tool leave tls1"); err != nil {
			t.Fatal(err)
		}
		noLeftovers(ctx, t, n)
		noDState(ctx, t, n)
	})

	t.Run("CleanStop", func(t *testing.T) {
		stopDaemon(ctx, t, n)
		if out, _ := n.RunOK(ctx, "ls /sys/kernel/config/dlm"); strings.TrimSpace(out) != "cluster" {
			t.Logf("configfs after stop: %q", out)
		}
	})
}

// globalID is the reference's lockspace id, computed here independently
// of the daemon's code: CRC-32 (IEEE) of "dlm:ls:<name>\0".
func globalID(name string) uint32 {
	crc := ^uint32(0)
	for _, b := range []byte("dlm:ls:" + name + "\x00") {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xedb88320
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}
