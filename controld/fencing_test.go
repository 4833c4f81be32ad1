package controld

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/cluster/clustertest"
	"github.com/godlm/godlm/controld/fence"
)

const twoNodes = "cluster_name=test\nnode id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.2\n"

// TestJoinRefusedWithoutFenceMethod: with fencing on and a node that
// no device can fence, a join is answered with failure, and the log
// says which node and how to fix it.
func TestJoinRefusedWithoutFenceMethod(t *testing.T) {
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), twoNodes+"device lab fence_lab\nconnect lab node=1\n")
	run(t, d)
	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	eventually(t, "the refusal", func() bool { return read(t, root, "sys/kernel/dlm/ls1/event_done") == "-1" })
	if dump := d.ring.String(); !strings.Contains(dump, "no fence method for node 2 in dlm.conf") || !strings.Contains(dump, "enable_fencing=0") {
		t.Errorf("the log does not explain the refusal:\n%s", dump)
	}
}

// agentScript writes a fence agent that records its stdin and exits
// with code.
func agentScript(t *testing.T, code int) (path, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "stdin")
	path = filepath.Join(dir, "fence_test")
	script := "#!/bin/sh\ncat >> " + record + "\necho --- >> " + record + "\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, record
}

// TestStartupFencing: the configured node 2 never joins; after
// post_join_delay node 1 fences it, and only then does a lockspace
// start.
func TestStartupFencing(t *testing.T) {
	agent, record := agentScript(t, 0)
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), twoNodes+"post_join_delay=1\nfence_all "+agent+" plug=x\n")
	run(t, d)
	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	eventually(t, "the join", func() bool { return read(t, root, "sys/kernel/dlm/ls1/event_done") == "0" })
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the agent did not run before the join completed: %v", err)
	}
	if got := string(b); !strings.HasPrefix(got, "plug=x\nnode=2\nfail_time=") {
		t.Errorf("agent stdin %q", got)
	}
	d.mu.Lock()
	o := d.rep.Fence.Done[2]
	d.mu.Unlock()
	if o.How != fence.HowFenced || o.By != 1 {
		t.Errorf("node 2's outcome %+v", o)
	}
}

// TestStartupFencingDisabled: with enable_startup_fencing=0 nobody is
// fenced at start, and a join completes at once.
func TestStartupFencingDisabled(t *testing.T) {
	agent, record := agentScript(t, 0)
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), twoNodes+"enable_startup_fencing=0\nfence_all "+agent+"\n")
	run(t, d)
	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	eventually(t, "the join", func() bool { return read(t, root, "sys/kernel/dlm/ls1/event_done") == "0" })
	if _, err := os.Stat(record); err == nil {
		t.Error("an agent ran with startup fencing off")
	}
}

// failedAttempt waits until the replicated state shows a failed agent
// run for node.
func failedAttempt(t *testing.T, d *Daemon, node int) {
	t.Helper()
	eventually(t, "a failed attempt", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		r := d.rep.Fence.Pending[node]
		return r != nil && r.Attempts > 0 && strings.Contains(r.LastError, "exit status 1")
	})
}

// TestFenceAck: an agent that always fails keeps a startup victim
// pending and the join waiting; an operator's ack ends it.
func TestFenceAck(t *testing.T) {
	agent, record := agentScript(t, 1)
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), twoNodes+"post_join_delay=0\nfence_all "+agent+"\n")
	run(t, d)
	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	failedAttempt(t, d, 2)
	if _, err := os.Stat(record); err != nil {
		t.Fatal("the agent did not run")
	}
	if got := read(t, root, "sys/kernel/dlm/ls1/event_done"); got != "<open "+filepath.Join(root, "sys/kernel/dlm/ls1/event_done")+": no such file or directory>" {
		t.Fatalf("the join was answered (%s) while node 2 was not fenced", got)
	}
	cred := &unix.Ucred{Uid: 0, Pid: 1}
	for _, bad := range []string{"x", "0", "-2"} {
		if rv, _ := d.fenceAck(bad, cred); rv != -int32(syscall.EINVAL) {
			t.Errorf("fence_ack %q: %d", bad, rv)
		}
	}
	if rv, msg := d.fenceAck("1", cred); rv != -int32(syscall.ENOENT) || !strings.Contains(msg, "not waiting") {
		t.Errorf("fence_ack of a node that needs none: %d %q", rv, msg)
	}
	if rv, msg := d.fenceAck("2", cred); rv != 0 {
		t.Fatalf("fence_ack 2: %d %q", rv, msg)
	}
	eventually(t, "the join", func() bool { return read(t, root, "sys/kernel/dlm/ls1/event_done") == "0" })
	st := string(d.status())
	if !strings.Contains(st, "fence_how=acked") {
		t.Errorf("status after the ack: %q", st)
	}
}

// TestStatusShowsPendingFence: a pending fence shows in DUMP_STATUS
// with its reason, actor, attempts and last error.
func TestStatusShowsPendingFence(t *testing.T) {
	agent, _ := agentScript(t, 1)
	root := kernelRoot(t, nil)
	d, _ := newTestDaemon(t, configfs.New(root), twoNodes+"post_join_delay=0\nfence_all "+agent+"\n")
	run(t, d)
	failedAttempt(t, d, 2)
	st := string(d.status())
	for _, want := range []string{"left_reason=startup need_fencing=1", "fence_actor_last=1", "fence_attempts=", `fence_error="agent\x20`} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q: %q", want, st)
		}
	}
}

// TestOneNodeCarriesOn: on a one-node cluster, the node's earlier
// incarnation (a daemon killed and restarted) is failed, and no other
// node can fence it; the daemon records that it carries on itself, so
// the lockspaces it adopts can start.
func TestOneNodeCarriesOn(t *testing.T) {
	// "run" was running under the killed daemon, as the earlier
	// incarnation's only member.
	root := kernelRoot(t, map[string]string{"run": "12345"})
	cfg := NewConfig()
	if err := cfg.Parse(strings.NewReader(soloNode), "dlm.conf"); err != nil {
		t.Fatal(err)
	}
	cfg.Set("cluster_state_dir", t.TempDir(), "test")
	d, err := New(cfg, Options{Kernel: configfs.New(root), Uevents: &fakeUevents{ch: make(chan configfs.Event, 8)},
		LocalAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil },
		Cluster: func(self int, sm cluster.StateMachine) (cluster.Cluster, error) {
			// What the cluster layer replays after a restart: the
			// earlier incarnation, then its failure.
			sm.Apply(&cluster.View{Seq: 100, Members: []cluster.Member{{ID: 1, Incarnation: 1}}})
			sm.Apply(&cluster.View{Seq: 101, Failed: []cluster.Member{{ID: 1, Incarnation: 1}}})
			return clustertest.NewLoopback(cluster.Member{ID: self, Incarnation: 2}, sm), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, d)
	eventually(t, "the earlier incarnation counted as fenced", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return !d.rep.Fence.Blocks(1)
	})
	d.mu.Lock()
	o := d.rep.Fence.Done[1]
	d.mu.Unlock()
	if o.How != fence.HowAcked || o.By != 1 || o.FailSeq != 101 {
		t.Errorf("outcome %+v", o)
	}
	eventually(t, "the adopted lockspace to start", func() bool { return read(t, root, "sys/kernel/dlm/run/control") == "1" })
}
