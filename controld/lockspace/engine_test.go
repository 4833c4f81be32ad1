package lockspace

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
)

func TestJoinOneNode(t *testing.T) {
	h := newHarness(t, 1)
	h.online(1, "a")
	h.flush()
	want := []string{
		"send join a",
		"send stopped a 1",
		"start a 1 members [1] first",
		"event_done a 0",
	}
	if d := cmp.Diff(want, h.take(1)); d != "" {
		t.Errorf("actions (-want +got):\n%s", d)
	}
}

func TestJoinSecondNode(t *testing.T) {
	h := newHarness(t, 1, 2)
	h.online(1, "a")
	h.flush()
	h.takeAll()
	h.online(2, "a")
	h.flush()
	if d := cmp.Diff([]string{
		"stop a 2",
		"send stopped a 2",
		"start a 2 members [1 2]",
	}, h.take(1)); d != "" {
		t.Errorf("node 1 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{
		"send join a",
		"send stopped a 2",
		"start a 2 members [1 2] first",
		"event_done a 0",
	}, h.take(2)); d != "" {
		t.Errorf("node 2 (-want +got):\n%s", d)
	}
}

func TestConcurrentJoins(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	for _, n := range []int{3, 1, 2} {
		h.online(n, "gfs")
	}
	h.flush()
	for _, n := range []int{1, 2, 3} {
		if got := h.last(n, "start"); !strings.HasPrefix(got, "start gfs ") || !strings.Contains(got, "members [1 2 3]") {
			t.Errorf("node %d: last start %q, want members [1 2 3]", n, got)
		}
		if got := h.last(n, "event_done"); got != "event_done gfs 0" {
			t.Errorf("node %d: %q, want event_done gfs 0", n, got)
		}
		if l, _ := h.engines[n].Local("gfs"); l.Phase != PhaseMember || !l.Running {
			t.Errorf("node %d: %+v, want a running member", n, l)
		}
	}
	sp := h.states[1].Spaces["gfs"]
	if !sp.Complete() {
		t.Errorf("change %d not complete: waiting for %v", sp.Change, sp.Waiting())
	}
}

// running3 returns a harness with lockspace ls running on nodes 1-3.
func running3(t *testing.T, ls string) *harness {
	h := newHarness(t, 1, 2, 3)
	for _, n := range []int{1, 2, 3} {
		h.online(n, ls)
		h.flush()
	}
	h.takeAll()
	return h
}

func TestLeave(t *testing.T) {
	h := running3(t, "a")
	h.offline(2, "a")
	h.flush()
	if d := cmp.Diff([]string{"send leave a", "stop a 0", "remove a", "event_done a 0"}, h.take(2)); d != "" {
		t.Errorf("node 2 (-want +got):\n%s", d)
	}
	for _, n := range []int{1, 3} {
		if d := cmp.Diff([]string{"stop a 4", "send stopped a 4", "start a 4 members [1 3]"}, h.take(n)); d != "" {
			t.Errorf("node %d (-want +got):\n%s", n, d)
		}
	}
	if _, ok := h.engines[2].Local("a"); ok {
		t.Error("node 2 still has the lockspace")
	}
}

func TestLastLeaveRemovesLockspace(t *testing.T) {
	h := newHarness(t, 1)
	h.online(1, "a")
	h.flush()
	h.offline(1, "a")
	h.flush()
	if _, ok := h.states[1].Spaces["a"]; ok {
		t.Error("state still has the lockspace")
	}
}

func TestFailure(t *testing.T) {
	h := running3(t, "a")
	h.fail(3)
	h.flush()
	for _, n := range []int{1, 2} {
		if d := cmp.Diff([]string{"remove comm 3", "stop a 4", "send stopped a 4", "start a 4 members [1 2]"}, h.take(n)); d != "" {
			t.Errorf("node %d (-want +got):\n%s", n, d)
		}
	}
	// Node 3 is alive and hears it was declared failed.
	got := h.take(3)
	if len(got) < 2 || got[0] != "stop a 0" || !strings.Contains(got[1], "declared this node failed") {
		t.Errorf("node 3: %q, want stop and a note", got)
	}
	if l, _ := h.engines[3].Local("a"); l.Phase != PhaseDead {
		t.Errorf("node 3: phase %v, want dead", l.Phase)
	}
	// Its dead lockspace refuses a new join of the same name until the
	// offline uevent lets it go.
	if a := h.engines[3].Online("a", h.now); len(a) != 1 || a[0].(EventDone).Result != -1 {
		t.Errorf("join of a dead lockspace: %v", a)
	}
	if got := fmtActs(h.engines[3].Offline("a")); got != "[stop a 0 remove a event_done a 0]" {
		t.Errorf("offline of a dead lockspace: %s", got)
	}
}

func fmtActs(acts []Action) string {
	var s []string
	for _, a := range acts {
		s = append(s, a.(interface{ String() string }).String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestFailedNodeRejoinsAsNewIncarnation(t *testing.T) {
	h := running3(t, "a")
	h.fail(3)
	h.flush()
	h.rejoin(3)
	h.flush()
	for _, n := range []int{1, 2} {
		if got := h.last(n, "add comm"); got != "add comm 3" {
			t.Errorf("node %d: %q, want add comm 3", n, got)
		}
	}
	h.takeAll()
	h.online(3, "a")
	h.flush()
	for _, n := range []int{1, 2, 3} {
		// Changes: 3 joins, the failure, the new join.
		if got := strings.TrimSuffix(h.last(n, "start"), " first"); got != "start a 5 members [1 2 3]" {
			t.Errorf("node %d: %q, want start of change 5 with [1 2 3]", n, got)
		}
	}
}

// A node that leaves and joins again before the others started without
// it is renewed: the kernel must see it as a new member.
func TestLeaveAndRejoinBeforeStartRenews(t *testing.T) {
	h := running3(t, "a")
	h.offline(2, "a")
	h.step() // leave ordered: change 4 [1 3]; node 2 is done
	h.online(2, "a")
	h.stepFrom(2) // its join is ordered before the others' stopped of change 4
	h.flush()
	want := "start a 5 members [1 2 3] renew [2]"
	for _, n := range []int{1, 3} {
		if got := h.last(n, "start"); got != want {
			t.Errorf("node %d: %q, want %q", n, got, want)
		}
		if strings.Contains(strings.Join(h.log[n], ";"), "start a 4") {
			t.Errorf("node %d started superseded change 4: %v", n, h.log[n])
		}
	}
	if got := h.last(2, "start"); got != want+" first" {
		t.Errorf("node 2: %q, want %q", got, want+" first")
	}
}

// A member fails in the middle of a change (after some members stopped):
// the change is superseded and converges without it. The failed node's
// join had not started, so it is kept and completes once the cluster
// admits the node's next incarnation.
func TestFailureDuringChange(t *testing.T) {
	h := running3(t, "a")
	h.online(1, "b")
	h.flush()
	h.online(2, "b")
	h.step() // join of 2 ordered: change 2 of b pending
	h.step() // node 1's stopped ordered; node 2's is pending
	h.fail(2)
	h.flush()
	// Change numbers are shared by all lockspaces: a 1-3, b 4-5, then
	// the failure makes a 6 and b 7.
	if got := h.last(1, "start b"); got != "start b 7 members [1]" {
		t.Errorf("node 1: %q, want b restarted alone", got)
	}
	if got := h.last(2, "event_done b"); got != "" {
		t.Errorf("node 2: %q, want its join of b kept for its next incarnation", got)
	}
	if got := h.last(3, "start a"); got != "start a 6 members [1 3]" {
		t.Errorf("node 3: %q, want a restarted without 2", got)
	}
	h.readmit(2)
	h.flush()
	if got := h.last(2, "event_done b"); got != "event_done b 0" {
		t.Errorf("node 2 after its readmission: %q, want its join of b completed", got)
	}
	if got := h.last(1, "start b"); got != "start b 8 members [1 2]" {
		t.Errorf("node 1: %q, want b started with 2 again", got)
	}
}

// TestJoinAskedWhileExpelled: a node learns it was declared failed (the
// others went on without it while it was cut off), and a process makes
// a lockspace before the cluster admits the node's next incarnation.
// The engine must not ask to join as the expelled incarnation: its
// cluster layer already runs as the next one, so the request would be
// ordered under that one and ignored, and the process would wait for
// the join timeout. It asks once the next incarnation is admitted, and
// the join completes.
func TestJoinAskedWhileExpelled(t *testing.T) {
	h := running3(t, "a")
	h.fail(3)
	h.flush()
	h.takeAll()
	h.online(3, "b")
	h.flush()
	if d := cmp.Diff([]string(nil), h.take(3)); d != "" {
		t.Errorf("node 3 before its readmission (-want +got):\n%s", d)
	}
	h.readmit(3)
	h.flush()
	if d := cmp.Diff([]string{
		"send join b",
		"send stopped b 5",
		"start b 5 members [3] first",
		"event_done b 0",
	}, h.take(3)); d != "" {
		t.Errorf("node 3 after its readmission (-want +got):\n%s", d)
	}
	if sp := h.states[1].Spaces["b"]; sp == nil || !sp.Complete() || !slices.Equal(sp.Members, []int{3}) {
		t.Errorf("lockspace b: %+v, want complete with node 3", sp)
	}
	// Nothing is left to time out.
	if acts := h.engines[3].Tick(h.now.Add(2 * time.Minute)); len(acts) != 0 {
		t.Errorf("node 3 after the join timeout: %s", fmtActs(acts))
	}
}

// TestJoinPendingWhenExpelled: a join asked while the node is cut off,
// before it hears it was declared failed, is dropped with the expelled
// incarnation by the cluster layer. The kernel lockspace never started,
// so the engine keeps the join (its creator still waits) and asks again
// as the next incarnation: a mount made during a short partition
// completes after the heal.
func TestJoinPendingWhenExpelled(t *testing.T) {
	h := running3(t, "a")
	h.online(3, "b") // queued; the partition keeps it from being ordered
	h.fail(3)
	h.flush()
	for _, a := range h.take(3) {
		if strings.HasPrefix(a, "event_done b") {
			t.Errorf("node 3 answered the join of b when expelled: %q", a)
		}
	}
	if l, ok := h.engines[3].Local("b"); !ok || l.Phase != PhaseJoining {
		t.Fatalf("node 3's join of b: %+v, want kept joining", l)
	}
	h.readmit(3)
	h.flush()
	if got := h.last(3, "event_done b"); got != "event_done b 0" {
		t.Errorf("node 3: %q, want its join of b completed", got)
	}
	if sp := h.states[1].Spaces["b"]; sp == nil || !sp.Complete() || !slices.Equal(sp.Members, []int{3}) {
		t.Errorf("lockspace b: %+v, want complete with node 3", sp)
	}
}

func TestQuorumLossStopsAndResyncRestarts(t *testing.T) {
	h := running3(t, "a")
	h.do(3, h.engines[3].Event(&cluster.Quorum{Quorate: false}))
	got := h.take(3)
	if len(got) != 2 || got[0] != "stop a 0" {
		t.Fatalf("node 3 on quorum loss: %q", got)
	}
	h.flush()
	if len(h.log[3]) != 0 {
		t.Fatalf("node 3 acted without quorum: %q", h.log[3])
	}
	h.do(3, h.engines[3].Event(&cluster.Quorum{Quorate: true}))
	if d := cmp.Diff([]string{"send resync a"}, h.take(3)); d != "" {
		t.Fatalf("node 3 on quorum return (-want +got):\n%s", d)
	}
	h.flush()
	for _, n := range []int{1, 2, 3} {
		if got := h.last(n, "start"); got != "start a 4 members [1 2 3]" {
			t.Errorf("node %d: %q, want change 4 with the same members", n, got)
		}
	}
}

func TestNoStartWithoutQuorum(t *testing.T) {
	h := newHarness(t, 1, 2, 3)
	h.online(1, "a")
	h.step()
	h.do(1, h.engines[1].Event(&cluster.Quorum{Quorate: false}))
	h.flush()
	if got := h.last(1, "start"); got != "" {
		t.Errorf("node 1 started without quorum: %q", got)
	}
	h.do(1, h.engines[1].Event(&cluster.Quorum{Quorate: true}))
	if got := h.last(1, "start"); got != "start a 1 members [1] first" {
		t.Errorf("node 1 after quorum: %q", got)
	}
}

func TestJoinTimeout(t *testing.T) {
	h := newHarness(t, 1, 2)
	h.online(1, "a")
	h.do(1, h.engines[1].Event(&cluster.Quorum{Quorate: false}))
	h.takeAll()
	acts := h.engines[1].Tick(h.now.Add(59 * time.Second))
	if len(acts) != 0 {
		t.Fatalf("before the timeout: %v", acts)
	}
	acts = h.engines[1].Tick(h.now.Add(61 * time.Second))
	var done EventDone
	for _, a := range acts {
		if d, ok := a.(EventDone); ok {
			done = d
		}
	}
	if done.Result != -1 || !strings.Contains(done.Reason, "no quorum") {
		t.Errorf("timeout answer %+v, want -1 naming the missing quorum", done)
	}
	if got := fmtActs(acts); !strings.Contains(got, "send leave a") {
		t.Errorf("timeout actions %s: want a leave for the join already sent", got)
	}
}

func TestAdoptOneNode(t *testing.T) {
	h := newHarness(t, 1)
	h.do(1, h.engines[1].Adopt("running", false, h.now))
	h.do(1, h.engines[1].Adopt("pending", true, h.now))
	h.flush()
	log := strings.Join(h.take(1), ";")
	for _, want := range []string{"start running 1 members [1]", "start pending 2 members [1] first", "event_done pending 0"} {
		if !strings.Contains(log, want) {
			t.Errorf("actions %s: missing %q", log, want)
		}
	}
	if strings.Contains(log, "event_done running") || strings.Contains(log, "start running 1 members [1] first") || !strings.Contains(log, "start running 1 members [1]") {
		t.Errorf("actions %s: an adopted running lockspace gets no id and no event_done", log)
	}
}

func TestRestoredNodeSkipsOldIncarnation(t *testing.T) {
	h := running3(t, "a")
	// Node 3's daemon restarts: a new engine whose state is a snapshot
	// in which its old incarnation is still a member of a.
	snap, err := h.states[1].Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	if err := st.Restore(snap); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(Config{Self: 3, Incarnation: 2}, st)
	e.Event(&cluster.Quorum{Quorate: true})
	acts := e.Online("a", h.now)
	acts = append(acts, e.Event(&cluster.Restored{Seq: st.Seq})...)
	if got := fmtActs(acts); got != "[]" {
		t.Errorf("new incarnation acted on its old membership, or before it was admitted: %s", got)
	}
	// Its arrival is ordered, with the failure of the incarnation it
	// replaces: it asks to join as itself.
	view := &cluster.View{Seq: st.Seq + 1, Members: []cluster.Member{{ID: 1, Incarnation: 1}, {ID: 2, Incarnation: 1}, {ID: 3, Incarnation: 2}},
		Joined: []cluster.Member{{ID: 3, Incarnation: 2}}, Failed: []cluster.Member{{ID: 3, Incarnation: 1}}}
	st.Apply(view)
	if got := fmtActs(e.Event(view)); got != "[send join a]" {
		t.Errorf("once admitted: %s, want the join", got)
	}
}

func TestDecode(t *testing.T) {
	good := Msg{Kind: KindStopped, Lockspace: "gfs0", Change: 7, Incarnation: 42}
	m, err := Decode(good.Encode())
	if err != nil || m != good {
		t.Fatalf("round trip: %v %v", m, err)
	}
	// A version 1 message, as logs written before version 2 hold it.
	v1 := []byte{1, byte(KindStopped), 7, 0, 0, 0, 0, 0, 0, 0, 4, 'g', 'f', 's', '0'}
	if m, err := Decode(v1); err != nil || m != (Msg{Kind: KindStopped, Lockspace: "gfs0", Change: 7}) {
		t.Errorf("version 1: %v %v", m, err)
	}
	for name, b := range map[string][]byte{
		"empty":       {},
		"short":       {2, 1},
		"version 0":   append([]byte{0}, good.Encode()[1:]...),
		"version 3":   append([]byte{3}, good.Encode()[1:]...),
		"v1 length":   append([]byte{1}, good.Encode()[1:]...),
		"kind":        append([]byte{2, 9}, good.Encode()[2:]...),
		"length":      append(good.Encode(), 'x'),
		"empty name":  Msg{Kind: KindJoin, Incarnation: 1}.Encode(),
		"slash":       Msg{Kind: KindJoin, Lockspace: "a/b", Incarnation: 1}.Encode(),
		"join change": Msg{Kind: KindJoin, Lockspace: "a", Change: 3, Incarnation: 1}.Encode(),
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestStaleIncarnationIgnored: a message made by an earlier incarnation
// of its sender, ordered after the cluster replaced that incarnation
// (it was still queued in the sender's daemon), changes nothing.
func TestStaleIncarnationIgnored(t *testing.T) {
	st := NewState()
	st.Apply(&cluster.View{Members: []cluster.Member{{ID: 1, Incarnation: 5}, {ID: 2, Incarnation: 1}}})
	st.Apply(&cluster.Message{From: cluster.Member{ID: 1, Incarnation: 5}, Data: Msg{Kind: KindJoin, Lockspace: "a", Incarnation: 4}.Encode()})
	if sp := st.Spaces["a"]; sp != nil || st.Rejected != 1 {
		t.Fatalf("a join of incarnation 4 ordered under 5: space %+v, rejected %d", sp, st.Rejected)
	}
	st.Apply(&cluster.Message{From: cluster.Member{ID: 1, Incarnation: 5}, Data: Msg{Kind: KindJoin, Lockspace: "a", Incarnation: 5}.Encode()})
	if sp := st.Spaces["a"]; sp == nil || !slices.Equal(sp.Members, []int{1}) {
		t.Fatalf("a join of the current incarnation: space %+v", sp)
	}
}

func FuzzDecodeMsg(f *testing.F) {
	f.Add(Msg{Kind: KindJoin, Lockspace: "a", Incarnation: 1}.Encode())
	f.Add(Msg{Kind: KindStopped, Lockspace: "gfs0", Change: 1 << 40, Incarnation: 1 << 50}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		m2, err := Decode(m.Encode())
		if err != nil || m2 != m {
			t.Fatalf("re-decode of %v: %v %v", m, m2, err)
		}
	})
}

func FuzzRestore(f *testing.F) {
	h := newHarnessF()
	snap, _ := h.Snapshot()
	f.Add(snap)
	f.Add([]byte(`{"spaces":{"a":{"name":"a","change":1,"members":[2,1]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st := NewState()
		if err := st.Restore(b); err != nil {
			return
		}
		// A restored state must take further events without panicking.
		st.Apply(&cluster.View{Members: []cluster.Member{{ID: 1, Incarnation: 1}}, Failed: []cluster.Member{{ID: 2, Incarnation: 1}}})
		st.Apply(&cluster.Message{From: cluster.Member{ID: 1, Incarnation: 1}, Data: Msg{Kind: KindJoin, Lockspace: "a", Incarnation: 1}.Encode()})
		e := NewEngine(Config{Self: 1, Incarnation: 1}, st)
		e.Event(&cluster.Quorum{Quorate: true})
		e.Online("a", time.Unix(0, 0))
	})
}

// newHarnessF builds a state with a lockspace, for fuzz seeds.
func newHarnessF() *State {
	st := NewState()
	st.Apply(&cluster.View{Members: []cluster.Member{{ID: 1, Incarnation: 1}, {ID: 2, Incarnation: 1}}})
	for _, n := range []int{1, 2} {
		st.Apply(&cluster.Message{From: cluster.Member{ID: n, Incarnation: 1}, Data: Msg{Kind: KindJoin, Lockspace: "a", Incarnation: 1}.Encode()})
	}
	return st
}

// TestJoinTimeoutWhileExpelled: a join asked while the node is expelled,
// and never readmitted, fails at the join timeout saying why, and sends
// nothing: the cluster never heard of it.
func TestJoinTimeoutWhileExpelled(t *testing.T) {
	h := running3(t, "a")
	h.fail(3)
	h.flush()
	h.online(3, "b")
	h.flush()
	h.takeAll()
	acts := h.engines[3].Tick(h.now.Add(61 * time.Second))
	if got := fmtActs(acts); got != "[event_done b -1 stop b 0 remove b]" {
		t.Errorf("timeout actions %s: want the creator failed, nothing sent", got)
	}
	if done, ok := acts[0].(EventDone); !ok || !strings.Contains(done.Reason, "not a cluster member") {
		t.Errorf("timeout answer %+v, want a reason naming the missing membership", acts[0])
	}
}
