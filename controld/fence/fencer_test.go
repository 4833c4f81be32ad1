package fence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/internal/clock"
	"github.com/google/go-cmp/cmp"
)

// world is a cluster of Fencers over one replicated State, ordered by a
// mutex: what a cluster layer gives them.
type world struct {
	t       *testing.T
	mu      sync.Mutex
	st      *State
	seq     uint64
	fencers map[int]*Fencer
	clk     *clock.Fake
	agents  *agents
	cfg     *Config
}

func newWorld(t *testing.T, cfgText string, nodes ...int) *world {
	w := &world{t: t, st: NewState(), fencers: map[int]*Fencer{}, clk: clock.NewFake(time.Unix(1000, 0)),
		agents: &agents{results: map[string][]error{}, hang: map[string]bool{}}}
	w.cfg = parse(t, cfgText)
	var members []cluster.Member
	for _, n := range nodes {
		members = append(members, m(n, 1))
		w.fencers[n] = NewFencer(FencerConfig{Self: n, Config: w.cfg, Runner: runnerOf{w.agents, n}, Send: w.send(n), Clock: w.clk})
	}
	w.view(members)
	t.Cleanup(func() {
		for _, f := range w.fencers {
			f.Close()
		}
	})
	return w
}

func (w *world) send(from int) func(context.Context, Msg) error {
	return func(ctx context.Context, msg Msg) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if w.fencers[from] == nil {
			return cluster.ErrClosed
		}
		w.seq++
		w.st.ApplyMsg(m(from, 1), w.seq, msg)
		w.updateAll()
		return nil
	}
}

func (w *world) updateAll() {
	for _, f := range w.fencers {
		f.Update(w.st)
	}
}

// view applies a view with members, failing the others that were in
// the last one.
func (w *world) view(members []cluster.Member) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var failed []cluster.Member
	for _, old := range w.st.Members {
		if !slices.ContainsFunc(members, func(n cluster.Member) bool { return n.ID == old.ID }) {
			failed = append(failed, old)
		}
	}
	w.seq++
	w.st.ApplyView(&cluster.View{Seq: w.seq, Members: members, Failed: failed})
	w.updateAll()
}

// kill stops a node's Fencer (its daemon died) and fails it.
func (w *world) kill(n int) {
	w.mu.Lock()
	f := w.fencers[n]
	delete(w.fencers, n)
	w.mu.Unlock()
	f.Close()
	var rest []cluster.Member
	for _, x := range w.st.Members {
		if x.ID != n {
			rest = append(rest, x)
		}
	}
	w.view(rest)
}

func (w *world) locked(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// until waits for cond, advancing the fake clock whenever a backoff
// waits on it.
func (w *world) until(what string, cond func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		done := false
		w.locked(func() { done = cond() })
		if done {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not reached; state %+v, calls %v", what, w.st.Records(), w.agents.calls())
		}
		if w.clk.Waiters() > 0 {
			w.clk.Advance(time.Minute)
		}
	}
}

// agents scripts fence agents by device: each run takes the next
// result (the last one repeats); a hanging device waits for its context.
type agents struct {
	mu      sync.Mutex
	results map[string][]error
	hang    map[string]bool
	log     []string
	started chan string
}

type runnerOf struct {
	a    *agents
	self int
}

func (r runnerOf) Run(ctx context.Context, req Request) Result {
	a := r.a
	a.mu.Lock()
	a.log = append(a.log, fmt.Sprintf("%d:%s:%d", r.self, req.Step.Device, req.Node))
	hang := a.hang[req.Step.Device]
	var err error
	if rs := a.results[req.Step.Device]; len(rs) > 0 {
		err = rs[0]
		if len(rs) > 1 {
			a.results[req.Step.Device] = rs[1:]
		}
	}
	started := a.started
	a.mu.Unlock()
	if started != nil {
		started <- req.Step.Device
	}
	if hang {
		<-ctx.Done()
		return Result{Err: ctx.Err(), ExitCode: -1}
	}
	return Result{Err: err}
}

func (a *agents) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.log)
}

const labConfig = "device lab fence_lab\nconnect lab node=1\nconnect lab node=2\nconnect lab node=3\n"

var errAgent = errors.New("agent exited with status 1")

// TestFailTwiceThenSucceed: attempts fail, actors take turns with a
// backoff, and recovery waits until one succeeds.
func TestFailTwiceThenSucceed(t *testing.T) {
	w := newWorld(t, labConfig, 1, 2, 3)
	w.agents.results["lab"] = []error{errAgent, errAgent, nil}
	w.kill(3)
	w.until("node 3 fenced", func() bool { return !w.st.Blocks(3) })
	if diff := cmp.Diff([]string{"1:lab:3", "2:lab:3", "1:lab:3"}, w.agents.calls()); diff != "" {
		t.Errorf("agent runs (-want +got):\n%s", diff)
	}
	if o := w.st.Done[3]; o.How != HowFenced || o.By != 1 {
		t.Errorf("outcome %+v", o)
	}
}

// TestRecordsAttempts: the replicated record shows the attempts, the
// last error and the actor while fencing fails.
func TestRecordsAttempts(t *testing.T) {
	w := newWorld(t, labConfig, 1, 2, 3)
	w.agents.results["lab"] = []error{errAgent}
	w.kill(3)
	w.until("three failed attempts", func() bool { r := w.st.Pending[3]; return r != nil && r.Attempts >= 3 })
	w.locked(func() {
		r := w.st.Pending[3]
		if r.LastError == "" || r.LastActor == 0 || r.Rounds < 2 {
			t.Errorf("record %+v", r)
		}
	})
}

// TestActorKilledMidFence: the actor dies while its agent runs; the
// next member fences.
func TestActorKilledMidFence(t *testing.T) {
	w := newWorld(t, "device slow fence_slow\nconnect slow node=3\n\ndevice lab fence_lab\nconnect lab node=1\nconnect lab node=2\nconnect lab node=3\n", 1, 2, 3)
	w.agents.hang["slow"] = true
	w.agents.started = make(chan string, 8)
	w.kill(3)
	if d := <-w.agents.started; d != "slow" {
		t.Fatalf("first agent %s", d)
	}
	w.agents.mu.Lock()
	w.agents.hang["slow"] = false
	w.agents.results["slow"] = []error{errAgent}
	w.agents.mu.Unlock()
	w.kill(1) // its hung agent is killed with it
	w.until("node 3 fenced", func() bool { return !w.st.Blocks(3) })
	if o := w.st.Done[3]; o.By != 2 {
		t.Errorf("fenced by %d, want 2: %+v (runs %v)", o.By, o, w.agents.calls())
	}
	// Node 1 failed too, and node 2 fences it as well.
	w.until("node 1 fenced", func() bool { return !w.st.Blocks(1) })
}

// TestAckStopsAgent: an operator's ack ends a hung agent, and the node
// counts as fenced.
func TestAckStopsAgent(t *testing.T) {
	w := newWorld(t, labConfig, 1, 2, 3)
	w.agents.hang["lab"] = true
	w.agents.started = make(chan string, 8)
	w.kill(3)
	<-w.agents.started
	if err := w.send(2)(context.Background(), Msg{Kind: KindAck, Node: 3}); err != nil {
		t.Fatal(err)
	}
	w.until("no run left", func() bool { return len(w.fencers[1].Running()) == 0 })
	if o := w.st.Done[3]; o.How != HowAcked || o.By != 2 {
		t.Errorf("outcome %+v", o)
	}
}

// TestParallelAndPriority: parallel devices must all succeed; when one
// fails, the next method is tried.
func TestParallelAndPriority(t *testing.T) {
	cfg := "device psu:1 fence_apc\nconnect psu:1 node=3\ndevice psu:2 fence_apc\nconnect psu:2 node=3\n\ndevice ipmi fence_ipmilan\nconnect ipmi node=3\n"
	w := newWorld(t, cfg, 1, 2, 3)
	w.agents.results["psu:2"] = []error{errAgent}
	w.kill(3)
	w.until("node 3 fenced", func() bool { return !w.st.Blocks(3) })
	got := w.agents.calls()
	slices.Sort(got[:2]) // the parallel pair runs at once
	if diff := cmp.Diff([]string{"1:psu:1:3", "1:psu:2:3", "1:ipmi:3"}, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
}

// TestNoMethod: a node without a fence device is never counted fenced
// by itself; the error says so, and an ack ends it.
func TestNoMethod(t *testing.T) {
	w := newWorld(t, "device lab fence_lab\nconnect lab node=1\n", 1, 2, 3)
	w.kill(3)
	w.until("an error recorded", func() bool { r := w.st.Pending[3]; return r != nil && r.Rounds >= 2 })
	w.locked(func() {
		if r := w.st.Pending[3]; r.LastError != "no fence device for node 3 in dlm.conf" {
			t.Errorf("error %q", r.LastError)
		}
	})
	if len(w.agents.calls()) != 0 {
		t.Errorf("agents ran: %v", w.agents.calls())
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for _, a := range []int{0, 1, 2, 3, 6, 7, 100} {
		got = append(got, Backoff(a))
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
}

// TestDisabled: with fencing off the actor acks at once, running no
// agent.
func TestDisabled(t *testing.T) {
	w := newWorld(t, labConfig, 1, 2, 3)
	for _, f := range w.fencers {
		f.off = true
	}
	w.kill(3)
	w.until("node 3 counted fenced", func() bool { return !w.st.Blocks(3) })
	if o := w.st.Done[3]; o.How != HowAcked || o.By != 1 || len(w.agents.calls()) != 0 {
		t.Errorf("outcome %+v, agent runs %v", o, w.agents.calls())
	}
}
