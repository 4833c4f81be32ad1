package raftcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/internal/testenv"
	"go.etcd.io/raft/v3/raftpb"
)

// errDiskFull stands for ENOSPC in the tests.
var errDiskFull = errors.New("no space left on device")

// fullDisk is a Persister whose writes fail while full is set.
type fullDisk struct {
	MemoryPersister
	mu       sync.Mutex
	full     bool
	attempts int // writes tried while full
}

func (d *fullDisk) setFull(full bool) {
	d.mu.Lock()
	d.full = full
	d.mu.Unlock()
}

func (d *fullDisk) Save(st *PersistentState) error {
	d.mu.Lock()
	full := d.full
	if full {
		d.attempts++
	}
	d.mu.Unlock()
	if full {
		return fmt.Errorf("writing state: %w", errDiskFull)
	}
	return d.MemoryPersister.Save(st)
}

// lastSaved is the last log index in the saved state.
func (d *fullDisk) lastSaved(t testing.TB) uint64 {
	st, err := d.MemoryPersister.Load()
	if err != nil || st == nil {
		t.Fatalf("loading the saved state: %v", err)
	}
	last := st.Snapshot.GetMetadata().GetIndex()
	if n := len(st.Entries); n > 0 {
		last = st.Entries[n-1].GetIndex()
	}
	return last
}

// startWith (re)starts node id on store, like testNet.start.
func (tn *testNet) startWith(id int, store Persister) *tnode {
	tn.t.Helper()
	sm := &testSM{}
	c, err := NewCore(tn.config(id, store, sm))
	if err != nil {
		tn.t.Fatalf("NewCore(%d): %v", id, err)
	}
	n := &tnode{id: id, core: c, sm: sm, done: map[uint64]error{}, up: true}
	tn.nodes[id] = n
	return n
}

// TestDiskFull: a node whose state writes fail stops acknowledging and
// voting, reports itself not quorate, retries with backoff, and goes on
// by itself once the writes succeed again.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leader bool
	}{{"follower", false}, {"leader", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, 3, nil)
			tn.form()
			tn.settle()
			lead := tn.leaders()[0]
			id := lead%3 + 1
			if tc.leader {
				id = lead
			}
			other := id%3 + 1
			// Restart the node on a disk that can fill up.
			disk := &fullDisk{}
			saved, err := tn.nodes[id].store.Load()
			if err != nil {
				t.Fatal(err)
			}
			if err := disk.MemoryPersister.Save(saved); err != nil {
				t.Fatal(err)
			}
			tn.nodes[id].up = false
			n := tn.startWith(id, disk)
			tn.runUntil("formed", 200, func() bool { return tn.formed(tn.ids...) })
			tn.settle()

			// Every acknowledgement and vote the node sends covers only
			// what it has on disk; once a write failed, it sends nothing.
			watch, sentAfterFailure := false, 0
			tn.record = func(m *raftpb.Message) {
				if int(m.GetFrom()) != id {
					return
				}
				if watch {
					sentAfterFailure++
				}
				switch m.GetType() {
				case raftpb.MsgAppResp:
					if last := disk.lastSaved(t); !m.GetReject() && m.GetIndex() > last {
						t.Errorf("node %d acknowledged index %d with only %d on disk", id, m.GetIndex(), last)
					}
				case raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
					st, err := disk.MemoryPersister.Load()
					if err != nil {
						t.Fatal(err)
					}
					if m.GetType() == raftpb.MsgVoteResp && !m.GetReject() && (st.HardState.GetVote() != m.GetTo() || st.HardState.GetTerm() != m.GetTerm()) {
						t.Errorf("node %d granted its vote to %d in term %d with vote %d in term %d on disk", id, m.GetTo(), m.GetTerm(), st.HardState.GetVote(), st.HardState.GetTerm())
					}
				}
			}
			disk.setFull(true)
			bc := tn.nodes[other].core.Broadcast([]byte("while full"))
			tn.runUntil("node not quorate", 20, func() bool { return !n.quorate })
			tn.runUntil("the others go on", 100, func() bool {
				return tn.nodes[other].allDone([]uint64{bc}) && tn.nodes[other].quorate
			})
			if disk.attempts == 0 {
				t.Fatalf("node %d never tried to write", id)
			}
			watch = true
			tn.run(100)
			watch = false
			if n.quorate || n.core.Status().Quorate {
				t.Errorf("node %d quorate while its writes fail", id)
			}
			if sentAfterFailure > 0 {
				t.Errorf("node %d sent %d messages while its writes failed", id, sentAfterFailure)
			}
			// Backoff: a handful of attempts over 100+ ticks, not one
			// per tick, and more than one.
			if disk.attempts < 3 || disk.attempts > 12 {
				t.Errorf("%d write attempts while full, want 3 to 12", disk.attempts)
			}

			// Nothing piled up meanwhile: the node does not send a
			// backlog of every tick it was stuck for.
			perTick := map[int]int{}
			tn.record = func(m *raftpb.Message) {
				if int(m.GetFrom()) == id {
					perTick[tn.ticks]++
				}
			}
			disk.setFull(false)
			tn.runUntil("node back", 400, func() bool { return tn.formed(tn.ids...) })
			tn.settle()
			tn.sameState()
			for tick, k := range perTick {
				if k > 20 {
					t.Errorf("node %d sent %d messages in tick %d after it could write again", id, k, tick)
				}
			}
			if err := n.core.Process().Err; err != nil {
				t.Errorf("node %d failed: %v", id, err)
			}
			found := false
			for _, m := range n.messages() {
				found = found || m == "while full"
			}
			if !found && !restoredAfter(n) {
				t.Errorf("node %d never got the broadcast made while its disk was full", id)
			}
		})
	}
}

// TestInitialWriteFails: a node whose very first write fails starts
// anyway, not quorate, and joins once the write succeeds.
func TestInitialWriteFails(t *testing.T) {
	disk := &fullDisk{full: true}
	c, err := NewCore(Config{Self: cluster.Member{ID: 1, Incarnation: 1}, Voters: []int{1}, SM: &testSM{}, Storage: disk})
	if err != nil {
		t.Fatalf("NewCore with a full disk: %v", err)
	}
	var evs []string
	step := func() {
		c.Tick()
		out := c.Process()
		if out.Err != nil {
			t.Fatalf("core failed: %v", out.Err)
		}
		for _, e := range out.Events {
			evs = append(evs, describe(e))
		}
	}
	for range 20 {
		step()
	}
	if len(evs) != 0 || c.Status().Quorate {
		t.Errorf("events %q, quorate %v while nothing could be written", evs, c.Status().Quorate)
	}
	disk.setFull(false)
	for range maxSaveBackoff + 1 {
		step()
	}
	want := []string{"view 3 members=[1/1] joined=[1/1] left=[] failed=[]", "quorum true"}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Errorf("events after the disk has room: %q, want %q", evs, want)
	}
	if st, err := disk.Load(); err != nil || st == nil {
		t.Errorf("nothing saved: %v", err)
	}
}

// TestNodeFullTmpfs fills the real file system of a node's state
// directory (a small tmpfs) while it runs: the node stops being quorate
// and its broadcasts wait, nothing closes, and once space is freed it
// writes its state and goes on.
func TestNodeFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	ln := listeners(t, 1)[1]
	n, err := Start(Options{
		Core:     Config{Self: cluster.Member{ID: 1, Incarnation: uint64(time.Now().UnixNano())}, SM: &testSM{}},
		Tick:     10 * time.Millisecond,
		Listen:   addrOf(ln),
		Listener: ln,
		StateDir: filepath.Join(dir, "state"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer n.Close(ctx)
	go func() {
		for range n.Events() {
		}
	}()
	if err := n.Broadcast(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}

	// Fill the file system.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	f.Close()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	err = n.Broadcast(short, bytes.Repeat([]byte("x"), 8192))
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("broadcast with a full disk: %v, want it to wait", err)
	}
	if st := n.Status(); st.Quorate {
		t.Errorf("quorate with a full disk: %+v", st)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := n.Broadcast(ctx, []byte("after")); err != nil {
		t.Fatalf("broadcast once the disk has room: %v", err)
	}
	eventually(t, "quorate once the disk has room", func() bool { return n.Status().Quorate })
}
