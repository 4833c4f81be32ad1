package controld

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/cluster/clustertest"
)

// fakeUevents delivers scripted events.
type fakeUevents struct{ ch chan configfs.Event }

func (f *fakeUevents) Next(ctx context.Context) (configfs.Event, error) {
	select {
	case ev := <-f.ch:
		return ev, nil
	case <-ctx.Done():
		return configfs.Event{}, ctx.Err()
	}
}
func (f *fakeUevents) Close() error { return nil }

// failingKernel makes SetMembers fail, to test a join that cannot complete.
type failingKernel struct{ *configfs.Kernel }

func (failingKernel) SetMembers(string, []configfs.Member, []int) error {
	return errors.New("injected failure")
}

// kernelRoot makes a temp dir shaped like the kernel's files, with the
// given lockspaces present in sysfs (as the kernel creates them before
// its uevent) and their ids.
func kernelRoot(t *testing.T, lockspaces map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"sys/kernel/config/dlm", "sys/kernel/dlm", "dev/misc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "dev/misc/dlm-monitor"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for ls, id := range lockspaces {
		addLockspace(t, root, ls, id)
	}
	return root
}

func addLockspace(t *testing.T, root, ls, id string) {
	t.Helper()
	dir := filepath.Join(root, "sys/kernel/dlm", ls)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func newTestDaemon(t *testing.T, k Kernel, conf string) (*Daemon, *fakeUevents) {
	t.Helper()
	cfg := NewConfig()
	if err := cfg.Parse(strings.NewReader(conf), "dlm.conf"); err != nil {
		t.Fatal(err)
	}
	if !cfg.IsSet("cluster_state_dir") {
		if err := cfg.Set("cluster_state_dir", t.TempDir(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	ue := &fakeUevents{ch: make(chan configfs.Event, 8)}
	d, err := New(cfg, Options{Kernel: k, Uevents: ue,
		LocalAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil },
		Cluster: func(self int, sm cluster.StateMachine) (cluster.Cluster, error) {
			return clustertest.NewLoopback(cluster.Member{ID: self, Incarnation: 1}, sm), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return d, ue
}

// run sets the daemon up and runs it until the test ends.
func run(t *testing.T, d *Daemon) {
	t.Helper()
	if err := d.Setup(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
	})
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A cluster of two configured nodes, of which the loopback cluster
// only ever shows this one.
const oneNode = "cluster_name=test\nenable_fencing=0\nnode id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.2\n"

// soloNode is a one-node cluster, which may adopt lockspaces.
const soloNode = "cluster_name=test\nnode id=1 addr=10.0.0.1\n"

func TestSetupAndJoinLeave(t *testing.T) {
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), oneNode+"lockspace ls1 nodir=1\n")
	if d.NodeID() != 1 {
		t.Fatalf("node id %d, want 1 (found by local address)", d.NodeID())
	}
	run(t, d)
	got := map[string]string{}
	for _, p := range []string{"cluster_name", "recover_callbacks", "mark", "comms/1/nodeid", "comms/1/local", "comms/2/nodeid"} {
		got[p] = read(t, root, "sys/kernel/config/dlm/cluster/"+p)
	}
	// Node 2 is configured but not a member: no comm for it.
	want := map[string]string{
		"cluster_name": "test", "recover_callbacks": "1", "mark": "0",
		"comms/1/nodeid": "1", "comms/1/local": "1",
		"comms/2/nodeid": "<open " + filepath.Join(root, "sys/kernel/config/dlm/cluster/comms/2/nodeid") + ": no such file or directory>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configfs after setup (-want +got):\n%s", diff)
	}

	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	ls := "sys/kernel/dlm/ls1/"
	eventually(t, "event_done", func() bool { return read(t, root, ls+"event_done") == "0" })
	got = map[string]string{
		"id": read(t, root, ls+"id"), "nodir": read(t, root, ls+"nodir"), "control": read(t, root, ls+"control"),
		"event_done": read(t, root, ls+"event_done"),
		"member":     read(t, root, "sys/kernel/config/dlm/cluster/spaces/ls1/nodes/1/nodeid"),
	}
	want = map[string]string{"id": "844888375", "nodir": "1", "control": "1", "event_done": "0", "member": "1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("join (-want +got):\n%s", diff)
	}
	if s := d.Snapshot(); len(s) != 1 || s[0].State != StateRunning || !cmp.Equal(s[0].Members, []int{1}) {
		t.Errorf("state after join: %+v", s)
	}

	os.Remove(filepath.Join(root, ls+"event_done"))
	ue.ch <- configfs.Event{Kind: configfs.EventOffline, Lockspace: "ls1"}
	eventually(t, "event_done of the leave", func() bool { return read(t, root, ls+"event_done") == "0" })
	if c := read(t, root, ls+"control"); c != "0" {
		t.Errorf("control after leave %q", c)
	}
	if _, err := os.Stat(filepath.Join(root, "sys/kernel/config/dlm/cluster/spaces/ls1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("space left in configfs: %v", err)
	}
	if len(d.Active()) != 0 {
		t.Errorf("still active: %v", d.Active())
	}
}

func TestJoinFailureAnswersNegative(t *testing.T) {
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, failingKernel{configfs.New(root)}, oneNode)
	run(t, d)
	addLockspace(t, root, "bad", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "bad"}
	eventually(t, "event_done", func() bool { return read(t, root, "sys/kernel/dlm/bad/event_done") == "-1" })
	eventually(t, "the leave", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.rep.Lockspaces.Spaces["bad"] == nil
	})
	if len(d.Active()) != 0 {
		t.Errorf("failed lockspace kept: %v", d.Active())
	}
	if !strings.Contains(d.ring.String(), "join failed") {
		t.Errorf("no logged reason:\n%s", d.ring.String())
	}
}

func TestAdoptAtStartup(t *testing.T) {
	// "run" was running under a previous daemon (id written); "pend"
	// was waiting for its join (id 0).
	root := kernelRoot(t, map[string]string{"run": "12345", "pend": "0"})
	if err := os.MkdirAll(filepath.Join(root, "sys/kernel/config/dlm/cluster/spaces/run/nodes/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, _ := newTestDaemon(t, configfs.New(root), soloNode)
	run(t, d)
	if diff := cmp.Diff([]string{"pend", "run"}, d.Active()); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
	eventually(t, "the adopted lockspaces to start", func() bool {
		return read(t, root, "sys/kernel/dlm/run/control") == "1" && read(t, root, "sys/kernel/dlm/pend/event_done") == "0"
	})
	if e := read(t, root, "sys/kernel/dlm/run/event_done"); !strings.HasPrefix(e, "<") {
		t.Errorf("event_done written for a running lockspace: %q (it would release a later leave early)", e)
	}
	if e := read(t, root, "sys/kernel/dlm/pend/event_done"); e != "0" {
		t.Errorf("pending join not completed: event_done %q", e)
	}
	// The existing configfs state was kept, not cleared.
	if _, err := os.Stat(filepath.Join(root, "sys/kernel/config/dlm/cluster/spaces/run")); err != nil {
		t.Error(err)
	}
	for _, w := range []string{"adopting lockspace", "lockspace=run", "waiting for its join"} {
		if !strings.Contains(d.ring.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, d.ring.String())
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	local := func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.0.9")}, nil }
	for _, conf := range []string{
		"node id=1 addr=10.0.0.1\n",                               // no cluster name
		"cluster_name=c\n",                                        // no nodes
		"cluster_name=c\nnode id=1 addr=10.0.0.1\n",               // not a local address
		"cluster_name=c\nour_nodeid=3\nnode id=1 addr=10.0.0.1\n", // unknown id
	} {
		cfg := NewConfig()
		if err := cfg.Parse(strings.NewReader(conf), "f"); err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg, Options{Kernel: configfs.New(t.TempDir()), LocalAddrs: local}); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v", conf, err)
		}
	}
}

// In a cluster of several nodes, lockspaces a previous daemon left are
// not adopted: the others may have gone on without this node.
func TestNoAdoptionInLargerCluster(t *testing.T) {
	root := kernelRoot(t, map[string]string{"run": "12345", "pend": "0"})
	d, _ := newTestDaemon(t, configfs.New(root), oneNode)
	run(t, d)
	if c := read(t, root, "sys/kernel/dlm/run/control"); c != "0" {
		t.Errorf("left-over lockspace: control %q, want stopped", c)
	}
	if e := read(t, root, "sys/kernel/dlm/pend/event_done"); e != "-1" {
		t.Errorf("left-over pending join: event_done %q, want -1", e)
	}
	if len(d.Active()) != 0 {
		t.Errorf("active: %v", d.Active())
	}
	if s := d.Snapshot(); len(s) != 1 || s[0].State != StateDead {
		t.Errorf("snapshot: %+v, want run dead", s)
	}
}
