package raftcluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
)

func TestColdStart(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	if ls := tn.leaders(); len(ls) != 1 {
		t.Fatalf("leaders: %v, want exactly one", ls)
	}
	for _, n := range tn.nodes {
		// First event: quorate. Nothing said before.
		var qs []bool
		for _, e := range n.events {
			if q, ok := e.(*cluster.Quorum); ok {
				qs = append(qs, q.Quorate)
			}
		}
		if diff := cmp.Diff([]bool{true}, qs); diff != "" {
			t.Errorf("node %d quorum events (-want +got):\n%s", n.id, diff)
		}
		st := n.core.Status()
		if !st.Quorate || st.Protocol != "raft" || st.Self.ID != n.id || len(st.Peers) != 2 {
			t.Errorf("node %d status: %+v", n.id, st)
		}
		// Every node joined in its own view, with itself in Joined.
		joins := 0
		for _, v := range n.views() {
			joins += len(v.Joined)
		}
		if joins != 3 {
			t.Errorf("node %d saw %d joins, want 3", n.id, joins)
		}
	}
	tn.sameState()
}

func TestBroadcastOrder(t *testing.T) {
	tn := newTestNet(t, 5, nil)
	tn.form()
	ids := map[int][]uint64{}
	for r := range 10 {
		for _, n := range tn.up() {
			ids[n.id] = append(ids[n.id], n.core.Broadcast(fmt.Appendf(nil, "%d-%d", n.id, r)))
		}
		if r%3 == 0 {
			tn.tick()
		} else {
			tn.deliver()
		}
	}
	tn.runUntil("all broadcasts done", 100, func() bool {
		for _, n := range tn.up() {
			if !n.allDone(ids[n.id]) {
				return false
			}
		}
		return true
	})
	tn.settle()
	tn.sameState()
	for _, n := range tn.up() {
		for _, id := range ids[n.id] {
			if err := n.done[id]; err != nil {
				t.Errorf("node %d broadcast %d: %v", n.id, id, err)
			}
		}
		// Each sender's messages in the order of its calls, each once.
		var got []string
		for _, e := range n.events {
			if m, ok := e.(*cluster.Message); ok && m.From.ID == 2 {
				got = append(got, string(m.Data))
			}
		}
		var want []string
		for r := range 10 {
			want = append(want, fmt.Sprintf("2-%d", r))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("node %d: node 2's messages (-want +got):\n%s", n.id, diff)
		}
	}
	// Events delivered equal what the state machine applied.
	n := tn.nodes[1]
	var applied []string
	for _, e := range n.events {
		if _, ok := e.(*cluster.Quorum); !ok {
			applied = append(applied, describe(e))
		}
	}
	if diff := cmp.Diff(n.sm.log, applied); diff != "" {
		t.Errorf("events differ from what the state machine applied:\n%s", diff)
	}
}

func TestSilentNodeFailed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leader bool
	}{{"follower", false}, {"leader", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, 3, nil)
			tn.form()
			tn.settle()
			silent := tn.leaders()[0]
			if !tc.leader {
				silent = silent%3 + 1
			}
			inc := tn.nodes[silent].core.Status().Self.Incarnation
			tn.nodes[silent].up = false
			cfg := tn.nodes[1].core.cfg
			limit := cfg.FailTicks + 2*cfg.ElectionTicks
			took := tn.runUntil("failure seen", limit, func() bool {
				for _, n := range tn.up() {
					if !n.sawFailed(silent, inc) {
						return false
					}
				}
				return true
			})
			t.Logf("node %d failed after %d ticks (limit %d)", silent, took, limit)
			// The observer's count may have started up to one tick
			// before the test's.
			if took < cfg.FailTicks {
				t.Errorf("declared failed after %d ticks, before the fail timeout %d", took, cfg.FailTicks)
			}
			for _, n := range tn.up() {
				if slices.ContainsFunc(n.core.Status().Members, func(m cluster.Member) bool { return m.ID == silent }) {
					t.Errorf("node %d still lists %d as member", n.id, silent)
				}
				if !n.quorate {
					t.Errorf("node %d not quorate", n.id)
				}
			}
			tn.sameState()
		})
	}
}

func TestMinorityPartition(t *testing.T) {
	for _, tc := range []struct {
		name         string
		leaderInside bool // the leader is in the minority
	}{{"leader in majority", false}, {"leader in minority", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, 5, nil)
			tn.form()
			tn.settle()
			lead := tn.leaders()[0]
			var minority, majority []int
			for _, id := range tn.ids {
				if (id == lead) == tc.leaderInside && len(minority) < 2 {
					minority = append(minority, id)
				} else {
					majority = append(majority, id)
				}
			}
			if len(minority) < 2 {
				minority = append(minority, majority[len(majority)-1])
				majority = majority[:len(majority)-1]
			}
			oldInc := map[int]uint64{}
			applied := map[int]uint64{}
			for _, id := range minority {
				oldInc[id] = tn.nodes[id].core.Status().Self.Incarnation
				applied[id] = tn.nodes[id].core.Status().Applied
			}
			tn.partition(minority, majority)
			minorBC := tn.nodes[minority[0]].core.Broadcast([]byte("from the minority"))
			majorBC := tn.nodes[majority[0]].core.Broadcast([]byte("from the majority"))
			cfg := tn.nodes[1].core.cfg
			tn.runUntil("minority lost quorum, majority failed it", cfg.FailTicks+4*cfg.ElectionTicks, func() bool {
				for _, id := range minority {
					if tn.nodes[id].quorate {
						return false
					}
				}
				for _, id := range majority {
					n := tn.nodes[id]
					if !n.quorate || !n.sawFailed(minority[0], oldInc[minority[0]]) || !n.sawFailed(minority[1], oldInc[minority[1]]) {
						return false
					}
				}
				return tn.nodes[majority[0]].allDone([]uint64{majorBC})
			})
			tn.run(10)
			for _, id := range minority {
				n := tn.nodes[id]
				if got := n.core.Status().Applied; got != applied[id] {
					t.Errorf("minority node %d applied %d, had %d before the partition", id, got, applied[id])
				}
				if n.core.Status().Quorate {
					t.Errorf("minority node %d says quorate", id)
				}
			}
			if _, ok := tn.nodes[minority[0]].done[minorBC]; ok {
				t.Errorf("minority broadcast finished during the partition")
			}
			if err := tn.nodes[majority[0]].done[majorBC]; err != nil {
				t.Errorf("majority broadcast: %v", err)
			}

			tn.heal()
			tn.runUntil("minority rejoined", 20*cfg.ElectionTicks, func() bool { return tn.formed(tn.ids...) })
			tn.settle()
			if err := tn.nodes[minority[0]].done[minorBC]; !errors.Is(err, cluster.ErrExpelled) {
				t.Errorf("minority broadcast of the old incarnation: %v, want ErrExpelled", err)
			}
			for _, id := range minority {
				inc := tn.nodes[id].core.Status().Self.Incarnation
				if inc <= oldInc[id] {
					t.Errorf("node %d incarnation %d, want > %d", id, inc, oldInc[id])
				}
				joined := false
				for _, v := range tn.nodes[majority[0]].views() {
					if slices.Contains(v.Joined, cluster.Member{ID: id, Incarnation: inc}) {
						joined = true
					}
				}
				if !joined {
					t.Errorf("majority never saw %d/%d join", id, inc)
				}
			}
			// The rejoined node broadcasts again.
			bc := tn.nodes[minority[0]].core.Broadcast([]byte("again"))
			tn.runUntil("broadcast after rejoin", 50, func() bool { return tn.nodes[minority[0]].allDone([]uint64{bc}) })
			if err := tn.nodes[minority[0]].done[bc]; err != nil {
				t.Errorf("broadcast after rejoin: %v", err)
			}
			tn.settle()
			tn.sameState()
		})
	}
}

func TestRestartEmptyStorage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leader   bool // crash the leader, not a follower
		before   int  // broadcasts before the crash
		after    int  // broadcasts while the node is down
		snapshot bool // the node must catch up through a snapshot
	}{
		{"follower after compaction", false, 20, 40, true},
		{"leader after compaction", true, 20, 40, true},
		// The leader believes the restarted follower still has its
		// log: the follower must force a new term to be probed again.
		{"quick follower restart", false, 5, 0, false},
		{"quick leader restart", true, 5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, 3, func(c *Config) { c.SnapshotEntries = 10 })
			tn.form()
			broadcast := func(k int) {
				var ids []uint64
				for i := range k {
					ids = append(ids, tn.nodes[1].core.Broadcast(fmt.Appendf(nil, "m%d", i)))
					tn.deliver()
				}
				tn.runUntil("broadcasts done", 50, func() bool { return tn.nodes[1].allDone(ids) })
			}
			broadcast(tc.before)
			tn.settle()
			crash := tn.leaders()[0]
			if !tc.leader {
				crash = crash%3 + 1
			}
			sender := crash%3 + 1
			oldInc := tn.nodes[crash].core.Status().Self.Incarnation
			tn.nodes[crash].up = false
			var ids []uint64
			for i := range tc.after {
				ids = append(ids, tn.nodes[sender].core.Broadcast(fmt.Appendf(nil, "down%d", i)))
				tn.deliver()
			}
			tn.runUntil("broadcasts done", 100, func() bool { return tn.nodes[sender].allDone(ids) })
			n := tn.start(crash, &MemoryPersister{})
			inc := n.core.Status().Self.Incarnation
			took := tn.runUntil("node rejoined", 100, func() bool { return tn.formed(tn.ids...) })
			t.Logf("node %d rejoined after %d ticks", crash, took)
			tn.settle()
			tn.sameState()
			restored := slices.ContainsFunc(n.events, func(e cluster.Event) bool { _, ok := e.(*cluster.Restored); return ok })
			if restored != tc.snapshot || (n.sm.restores > 0) != tc.snapshot {
				t.Errorf("Restored event %v, Restore calls %d; want a snapshot: %v", restored, n.sm.restores, tc.snapshot)
			}
			if !tn.nodes[sender].sawFailed(crash, oldInc) {
				t.Errorf("old incarnation %d/%d never failed", crash, oldInc)
			}
			want := cluster.Member{ID: crash, Incarnation: inc}
			if !slices.Contains(tn.nodes[sender].core.Status().Members, want) {
				t.Errorf("members %v lack %v", tn.nodes[sender].core.Status().Members, want)
			}
		})
	}
}

func TestRestartPersisted(t *testing.T) {
	tn := newTestNet(t, 3, func(c *Config) { c.SnapshotEntries = 10 })
	tn.form()
	for i := range 15 {
		tn.nodes[2].core.Broadcast(fmt.Appendf(nil, "m%d", i))
		tn.deliver()
	}
	tn.settle()
	old := tn.nodes[2]
	oldInc := old.core.Status().Self.Incarnation
	saved, err := old.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	old.up = false
	n := tn.start(2, old.store)
	bs := n.core.rn.BasicStatus()
	if bs.GetTerm() != saved.HardState.GetTerm() || bs.GetVote() != saved.HardState.GetVote() {
		t.Errorf("restarted with term %d vote %d, saved term %d vote %d", bs.GetTerm(), bs.GetVote(), saved.HardState.GetTerm(), saved.HardState.GetVote())
	}
	if n.sm.restores != 1 {
		t.Errorf("Restore called %d times at restart, want 1", n.sm.restores)
	}
	inc := n.core.Status().Self.Incarnation
	tn.runUntil("node 2 rejoined", 100, func() bool { return tn.formed(tn.ids...) })
	tn.settle()
	tn.sameState()
	// Restarted within the fail timeout: one view replaces the old
	// incarnation by the new one.
	var found bool
	for _, v := range tn.nodes[1].views() {
		if slices.Contains(v.Joined, cluster.Member{ID: 2, Incarnation: inc}) {
			found = true
			if diff := cmp.Diff([]cluster.Member{{ID: 2, Incarnation: oldInc}}, v.Failed); diff != "" {
				t.Errorf("view joining the new incarnation: Failed (-want +got):\n%s", diff)
			}
		}
	}
	if !found {
		t.Errorf("node 1 never saw 2/%d join", inc)
	}
	if _, ok := n.events[0].(*cluster.Restored); !ok {
		t.Errorf("first event after restart: %s, want Restored", describe(n.events[0]))
	}
}

func TestDuplicateDelivery(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.dup = true
	tn.form()
	ids := map[*tnode][]uint64{}
	for i := range 10 {
		for _, n := range tn.up() {
			ids[n] = append(ids[n], n.core.Broadcast(fmt.Appendf(nil, "%d-%d", n.id, i)))
		}
		tn.deliver()
	}
	tn.run(30)
	tn.settle()
	tn.sameState()
	for n, ids := range ids {
		for _, id := range ids {
			if err, ok := n.done[id]; !ok || err != nil {
				t.Errorf("node %d broadcast %d: done %v, %v", n.id, id, ok, err)
			}
		}
	}
	seen := map[string]int{}
	for _, e := range tn.nodes[1].events {
		if m, ok := e.(*cluster.Message); ok {
			seen[string(m.Data)]++
		}
	}
	if len(seen) != 30 {
		t.Errorf("%d distinct messages applied, want 30", len(seen))
	}
	for d, k := range seen {
		if k != 1 {
			t.Errorf("message %q applied %d times", d, k)
		}
	}
}

func TestReproposalAfterLeaderChange(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	lead := tn.leaders()[0]
	follower := lead%3 + 1
	// The follower's proposal reaches the leader, which appends it but
	// cannot commit it: it is cut off right after.
	id := tn.nodes[follower].core.Broadcast([]byte("once"))
	others := []int{}
	for _, x := range tn.ids {
		if x != lead {
			others = append(others, x)
		}
	}
	out := tn.nodes[follower].core.Process()
	for _, m := range out.Messages {
		if err := tn.nodes[lead].core.Step(wire(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	tn.nodes[lead].core.Process() // appended, MsgApp lost
	tn.partition([]int{lead}, others)
	tn.runUntil("new leader", 50, func() bool { ls := tn.leaders(); return len(ls) == 2 || (len(ls) == 1 && ls[0] != lead) })
	tn.heal()
	tn.runUntil("broadcast done", 100, func() bool { return tn.nodes[follower].allDone([]uint64{id}) })
	tn.run(20)
	tn.settle()
	tn.sameState()
	count := 0
	for _, e := range tn.nodes[follower].events {
		if m, ok := e.(*cluster.Message); ok && string(m.Data) == "once" {
			count++
		}
	}
	if count != 1 || tn.nodes[follower].done[id] != nil {
		t.Errorf("applied %d times, result %v; want once, nil", count, tn.nodes[follower].done[id])
	}
}

func TestLeave(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	n := tn.nodes[3]
	me := n.core.Status().Self
	bc := n.core.Broadcast([]byte("before leaving"))
	id := n.core.Leave()
	late := n.core.Broadcast([]byte("after leaving"))
	tn.runUntil("left", 50, func() bool { return n.allDone([]uint64{id, bc}) })
	if err := n.done[id]; err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := n.done[late]; !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("broadcast after Leave: %v, want ErrClosed", err)
	}
	n.up = false
	cfg := n.core.cfg
	tn.run(3 * (cfg.FailTicks + cfg.ElectionTicks))
	for _, o := range tn.up() {
		var left bool
		for _, v := range o.views() {
			if slices.Contains(v.Left, me) {
				left = true
				if slices.Contains(v.Members, me) {
					t.Errorf("view %d lists %v as member and left", v.Seq, me)
				}
			}
		}
		if !left {
			t.Errorf("node %d never saw %v leave", o.id, me)
		}
		if o.sawFailed(3, 0) {
			t.Errorf("node %d saw %v fail after it left", o.id, me)
		}
		if !o.quorate {
			t.Errorf("node %d lost quorum", o.id)
		}
	}
	// "before leaving" was applied before the Leave.
	var got []string
	for _, e := range tn.nodes[1].events {
		switch e := e.(type) {
		case *cluster.Message:
			got = append(got, string(e.Data))
		case *cluster.View:
			if len(e.Left) > 0 {
				got = append(got, "left")
			}
		}
	}
	if diff := cmp.Diff([]string{"before leaving", "left"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestSingleVoter(t *testing.T) {
	sm := &testSM{}
	c, err := NewCore(Config{Self: cluster.Member{ID: 7, Incarnation: 1}, Voters: []int{7}, SM: sm})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Broadcast([]byte("hello"))
	out := c.Process()
	if out.Err != nil || len(out.Messages) != 0 {
		t.Fatalf("output: %+v", out)
	}
	var got []string
	for _, e := range out.Events {
		got = append(got, describe(e))
	}
	want := []string{
		"view 3 members=[7/1] joined=[7/1] left=[] failed=[]",
		"msg 4 from 7/1: hello",
		"quorum true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Result{{ID: id}}, out.Done, cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) })); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
	if st := c.Status(); !st.Quorate || st.Leader != 7 || st.Applied != 4 {
		t.Errorf("status %+v", st)
	}
}

func TestStaleIncarnationAtRestart(t *testing.T) {
	// A node restarting with persisted state and an incarnation that is
	// not larger than its last one picks a new one by itself.
	store := &MemoryPersister{}
	start := func(inc uint64) *Core {
		c, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: inc}, Voters: []int{1}, SM: &testSM{}, Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := start(5)
	c.Process()
	c = start(5)
	c.Process()
	if got := c.Status().Self.Incarnation; got != 6 {
		t.Errorf("incarnation %d, want 6", got)
	}
	if ms := c.Status().Members; !slices.Equal(ms, []cluster.Member{{ID: 1, Incarnation: 6}}) {
		t.Errorf("members %v", ms)
	}
}

func TestConfigErrors(t *testing.T) {
	good := Config{Self: cluster.Member{ID: 1, Incarnation: 1}, Voters: []int{1, 2, 3}, SM: &testSM{}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no state machine", func(c *Config) { c.SM = nil }},
		{"node 0", func(c *Config) { c.Self.ID = 0 }},
		{"incarnation 0", func(c *Config) { c.Self.Incarnation = 0 }},
		{"self not a voter", func(c *Config) { c.Voters = []int{2, 3} }},
		{"voter twice", func(c *Config) { c.Voters = []int{1, 2, 2} }},
		{"negative voter", func(c *Config) { c.Voters = []int{1, -2} }},
		{"election not above heartbeat", func(c *Config) { c.HeartbeatTicks, c.ElectionTicks = 3, 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if _, err := NewCore(cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("NewCore: %v, want ErrConfig", err)
			}
		})
	}
	if _, err := NewCore(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestPersistedVotersMustMatch(t *testing.T) {
	store := &MemoryPersister{}
	if _, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 1}, Voters: []int{1, 2, 3}, SM: &testSM{}, Storage: store}); err != nil {
		t.Fatal(err)
	}
	_, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 2}, Voters: []int{1, 2}, SM: &testSM{}, Storage: store})
	if !errors.Is(err, ErrConfig) {
		t.Errorf("restart with other voters: %v, want ErrConfig", err)
	}
	// The way out is the old node list, not this node's state removed:
	// a node that forgets its state can lose committed entries.
	if msg := err.Error(); !strings.Contains(msg, "configure the node list this node's state was written with") || strings.Contains(msg, "fresh state") {
		t.Errorf("error %q should point to the node list, not to removing the state", msg)
	}
}

func TestBroadcastTooLarge(t *testing.T) {
	c, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 1}, Voters: []int{1}, SM: &testSM{}})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Broadcast(make([]byte, MaxBroadcastSize+1))
	out := c.Process()
	if len(out.Done) != 1 || out.Done[0].ID != id || !errors.Is(out.Done[0].Err, ErrTooLarge) {
		t.Errorf("done %+v, want ErrTooLarge for %d", out.Done, id)
	}
}

func TestReproposalAfterTimeout(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	lead := tn.leaders()[0]
	f := tn.nodes[lead%3+1]
	// The proposal is lost on its way to the leader; nothing else
	// changes, so only the retry timer sends it again.
	tn.cut[[2]int{f.id, lead}] = true
	id := f.core.Broadcast([]byte("retried"))
	tn.deliver()
	tn.heal()
	retry := int(f.core.retryTicks())
	took := tn.runUntil("broadcast done", retry+2, func() bool { return f.allDone([]uint64{id}) })
	if took < retry-1 {
		t.Errorf("done after %d ticks, before the retry timeout %d: was it lost?", took, retry)
	}
	tn.settle()
	tn.sameState()
	count := 0
	for _, e := range f.events {
		if m, ok := e.(*cluster.Message); ok && string(m.Data) == "retried" {
			count++
		}
	}
	if count != 1 || f.done[id] != nil {
		t.Errorf("applied %d times, result %v; want once, nil", count, f.done[id])
	}
}

// TestCommitIndexAloneNotPersisted checks that a new commit index alone
// does not rewrite the persisted state, while what safety needs is on
// disk: the committed entry itself, the term and the vote.
func TestCommitIndexAloneNotPersisted(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.form()
	tn.settle()
	id := tn.nodes[2].core.Broadcast([]byte("last"))
	tn.runUntil("broadcast done", 100, func() bool { return tn.nodes[2].allDone([]uint64{id}) })
	tn.settle()
	for _, n := range tn.up() {
		st, err := n.store.Load()
		if err != nil {
			t.Fatal(err)
		}
		bs := n.core.rn.BasicStatus()
		last := st.Snapshot.GetMetadata().GetIndex()
		if len(st.Entries) > 0 {
			last = st.Entries[len(st.Entries)-1].GetIndex()
		}
		if last < bs.GetCommit() {
			t.Errorf("node %d: log on disk ends at %d, before the commit index %d", n.id, last, bs.GetCommit())
		}
		if st.HardState.GetTerm() != bs.GetTerm() || st.HardState.GetVote() != bs.GetVote() {
			t.Errorf("node %d: term %d vote %d on disk, %d %d in memory", n.id, st.HardState.GetTerm(), st.HardState.GetVote(), bs.GetTerm(), bs.GetVote())
		}
		if st.HardState.GetCommit() >= bs.GetCommit() {
			t.Errorf("node %d: commit index %d on disk: the commit alone was written", n.id, st.HardState.GetCommit())
		}
	}
}
