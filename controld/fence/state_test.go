package fence

import (
	"errors"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
)

func m(id int, inc uint64) cluster.Member { return cluster.Member{ID: id, Incarnation: inc} }

func view(seq uint64, members []cluster.Member, failed ...cluster.Member) *cluster.View {
	return &cluster.View{Seq: seq, Members: members, Failed: failed}
}

func TestFailureActorsAndResult(t *testing.T) {
	s := NewState()
	s.ApplyView(view(1, []cluster.Member{m(1, 10), m(2, 20), m(3, 30)}))
	if s.Blocks(3) || s.Actor(3) != 0 {
		t.Fatal("nothing failed yet")
	}
	s.ApplyView(view(2, []cluster.Member{m(1, 10), m(2, 20)}, m(3, 30)))
	if !s.Blocks(3) || s.Actor(3) != 1 {
		t.Fatalf("after node 3 failed: blocks %v actor %d", s.Blocks(3), s.Actor(3))
	}
	// Actor 1 reports an attempt, then gives up: node 2 takes over.
	if err := s.ApplyMsg(m(1, 10), 3, Msg{Kind: KindProgress, Node: 3, FailSeq: 2, Device: "ipmi", Err: "timeout"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyMsg(m(1, 10), 4, Msg{Kind: KindResult, Node: 3, FailSeq: 2, Err: "all methods failed"}); err != nil {
		t.Fatal(err)
	}
	want := []Record{{Node: 3, Incarnation: 30, Reason: ReasonFailed, FailSeq: 2, Tried: []int{1}, Attempts: 1, LastError: "all methods failed", LastActor: 1, Rounds: 1}}
	if diff := cmp.Diff(want, s.Records()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if s.Actor(3) != 2 {
		t.Errorf("actor after 1 gave up: %d, want 2", s.Actor(3))
	}
	// Node 2 gives up too: a new round starts with node 1.
	s.ApplyMsg(m(2, 20), 5, Msg{Kind: KindResult, Node: 3, FailSeq: 2, Err: "x"})
	if s.Actor(3) != 1 || len(s.Pending[3].Tried) != 0 {
		t.Errorf("after every actor gave up: actor %d tried %v, want a new round from 1", s.Actor(3), s.Pending[3].Tried)
	}
	// A result for an earlier failure does not count.
	if err := s.ApplyMsg(m(1, 10), 6, Msg{Kind: KindResult, Node: 3, FailSeq: 1, OK: true}); !errors.Is(err, ErrStale) || !s.Blocks(3) {
		t.Errorf("stale result: %v, blocks %v", err, s.Blocks(3))
	}
	if err := s.ApplyMsg(m(1, 10), 7, Msg{Kind: KindResult, Node: 3, FailSeq: 2, OK: true}); err != nil || s.Blocks(3) {
		t.Fatalf("result: %v, blocks %v", err, s.Blocks(3))
	}
	if diff := cmp.Diff(Outcome{Node: 3, FailSeq: 2, Seq: 7, How: HowFenced, By: 1}, s.Done[3]); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
}

// TestActorDies: the actor fails mid-fence; the next member takes over,
// and a lone survivor is enough.
func TestActorDies(t *testing.T) {
	s := NewState()
	s.ApplyView(view(1, []cluster.Member{m(1, 10), m(2, 20), m(3, 30)}))
	s.ApplyView(view(2, []cluster.Member{m(1, 10), m(2, 20)}, m(3, 30)))
	s.ApplyMsg(m(1, 10), 3, Msg{Kind: KindProgress, Node: 3, FailSeq: 2, Device: "d"})
	s.ApplyView(view(4, []cluster.Member{m(2, 20)}, m(1, 10)))
	if s.Actor(3) != 2 || s.Actor(1) != 2 {
		t.Errorf("actors after 1 died: %d for 3, %d for 1; want 2 for both", s.Actor(3), s.Actor(1))
	}
	// A node failing again moves its failure on: results must follow it.
	s.ApplyView(view(5, []cluster.Member{m(2, 20), m(3, 31)}))
	s.ApplyView(view(6, []cluster.Member{m(2, 20)}, m(3, 31)))
	if err := s.ApplyMsg(m(2, 20), 7, Msg{Kind: KindResult, Node: 3, FailSeq: 2, OK: true}); !errors.Is(err, ErrStale) {
		t.Errorf("result for the first failure after a second: %v", err)
	}
	if r := s.Pending[3]; r.FailSeq != 6 || r.Incarnation != 31 || r.Attempts != 1 {
		t.Errorf("record after the second failure: %+v", r)
	}
}

func TestAckCleanAndSenders(t *testing.T) {
	s := NewState()
	s.ApplyView(view(1, []cluster.Member{m(1, 10), m(2, 20), m(3, 30)}))
	s.ApplyView(view(2, []cluster.Member{m(1, 10), m(2, 20)}, m(3, 30)))
	// Not a member, or an old incarnation: refused.
	if err := s.ApplyMsg(m(3, 30), 3, Msg{Kind: KindAck, Node: 3}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("ack from the failed incarnation: %v", err)
	}
	if err := s.ApplyMsg(m(1, 9), 3, Msg{Kind: KindAck, Node: 3}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("ack from an old incarnation of a member: %v", err)
	}
	// The failed node back as a new incarnation: it cannot fence itself,
	// but a clean report (no lockspace in its kernel) clears it.
	s.ApplyView(view(4, []cluster.Member{m(1, 10), m(2, 20), m(3, 31)}))
	if s.Actor(3) != 1 {
		t.Errorf("actor with the victim back: %d", s.Actor(3))
	}
	if err := s.ApplyMsg(m(3, 31), 5, Msg{Kind: KindResult, Node: 3, FailSeq: 2, OK: true}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("victim fencing itself: %v", err)
	}
	if err := s.ApplyMsg(m(3, 31), 6, Msg{Kind: KindClean}); err != nil || s.Blocks(3) || s.Done[3].How != HowClean {
		t.Errorf("clean rejoin: %v, blocks %v, done %+v", err, s.Blocks(3), s.Done[3])
	}
	// Ack.
	s.ApplyView(view(7, []cluster.Member{m(1, 10), m(3, 31)}, m(2, 20)))
	if err := s.ApplyMsg(m(3, 31), 8, Msg{Kind: KindAck, Node: 2}); err != nil || s.Blocks(2) || s.Done[2] != (Outcome{Node: 2, FailSeq: 7, Seq: 8, How: HowAcked, By: 3}) {
		t.Errorf("ack: %v %+v", err, s.Done[2])
	}
	if err := s.ApplyMsg(m(3, 31), 9, Msg{Kind: KindAck, Node: 2}); !errors.Is(err, ErrStale) {
		t.Errorf("second ack: %v", err)
	}
	if s.Rejected != 4 {
		t.Errorf("rejected %d, want 4", s.Rejected)
	}
}

func TestStartup(t *testing.T) {
	s := NewState()
	s.ApplyView(view(1, []cluster.Member{m(1, 10), m(2, 20)}))
	if err := s.ApplyMsg(m(1, 10), 2, Msg{Kind: KindStartup, Nodes: []int{1, 2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	want := []Record{{Node: 3, Reason: ReasonStartup, FailSeq: 2}, {Node: 4, Reason: ReasonStartup, FailSeq: 2}}
	if diff := cmp.Diff(want, s.Records()); diff != "" {
		t.Errorf("startup records (-want +got):\n%s", diff)
	}
	if err := s.ApplyMsg(m(2, 20), 3, Msg{Kind: KindStartup, Nodes: []int{1, 2, 3, 4, 5}}); !errors.Is(err, ErrStale) || s.Blocks(5) {
		t.Errorf("a second startup check: %v", err)
	}
	// Node 4 joins late, with a clean kernel: it needs no fencing.
	s.ApplyView(view(4, []cluster.Member{m(1, 10), m(2, 20), m(4, 1)}))
	if err := s.ApplyMsg(m(4, 1), 5, Msg{Kind: KindClean}); err != nil || s.Blocks(4) || !s.Blocks(3) {
		t.Errorf("late clean join: %v; blocks 4 %v, 3 %v", err, s.Blocks(4), s.Blocks(3))
	}
}

func TestMsgRoundTrip(t *testing.T) {
	for _, msg := range []Msg{
		{Kind: KindProgress, Node: 3, FailSeq: 1 << 40, Device: "ipmi:1", Err: "Failed: timed out"},
		{Kind: KindResult, Node: 127, FailSeq: 9, OK: true},
		{Kind: KindAck, Node: 2},
		{Kind: KindClean},
		{Kind: KindStartup, Nodes: []int{1, 2, 3}},
	} {
		got, err := Decode(msg.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", msg, err)
		}
		if diff := cmp.Diff(msg, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	long := Msg{Kind: KindProgress, Err: string(make([]byte, 5000))}
	if got, err := Decode(long.Encode()); err != nil || len(got.Err) != maxText {
		t.Errorf("long error: %v, %d bytes", err, len(got.Err))
	}
	for _, b := range [][]byte{nil, {1, 2}, {MsgTag}, {MsgTag, 9, 0, 0, 0, 0, 0, 0}, append(Msg{Kind: KindAck}.Encode(), 0)} {
		if _, err := Decode(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("Decode(%v): %v", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Msg{Kind: KindProgress, Node: 3, FailSeq: 7, Device: "d", Err: "e"}.Encode())
	f.Add(Msg{Kind: KindStartup, Nodes: []int{1, 2}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(m.Encode())
		if err != nil || !cmp.Equal(m, again) {
			t.Fatalf("re-encoding %+v: %v %+v", m, err, again)
		}
		s := NewState()
		s.ApplyView(view(1, []cluster.Member{m1, m2}, m3))
		s.ApplyMsg(m1, 2, m) // must not panic
	})
}

var m1, m2, m3 = m(1, 1), m(2, 1), m(3, 1)
