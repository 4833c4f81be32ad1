package lockspace

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/godlm/godlm/controld/cluster"
)

// harness orders messages the way the cluster layer would, for engines
// that all stay quorate unless told otherwise: one total order, applied
// to every node's own State, then each engine reconciles.
//
// Like the cluster layer, it orders a node's messages under the
// incarnation the node's cluster layer runs as (layer), which is not
// always the engine's: once a node learns it was declared failed, its
// layer goes on as the next incarnation at once, and the cluster admits
// that one later. Messages queued under an expelled incarnation are
// dropped; messages of an incarnation not admitted yet wait.
type harness struct {
	t       *testing.T
	seq     uint64
	now     time.Time
	members []cluster.Member
	states  map[int]*State
	engines map[int]*Engine
	layer   map[int]uint64
	outbox  []pending
	log     map[int][]string
	// started records, per lockspace and change, the member list of
	// the first start; stopped the nodes whose kernel is stopped.
	started map[string]map[uint64][]int
	running map[string]map[int]bool
}

type pending struct {
	from cluster.Member
	msg  Msg
}

func newHarness(t *testing.T, nodes ...int) *harness {
	h := &harness{t: t, now: time.Unix(1000, 0), states: map[int]*State{}, engines: map[int]*Engine{}, layer: map[int]uint64{},
		log: map[int][]string{}, started: map[string]map[uint64][]int{}, running: map[string]map[int]bool{}}
	for _, n := range nodes {
		h.states[n] = NewState()
		h.engines[n] = NewEngine(Config{Self: n, Incarnation: 1, JoinTimeout: time.Minute}, h.states[n])
		h.layer[n] = 1
		h.members = append(h.members, cluster.Member{ID: n, Incarnation: 1})
	}
	h.broadcast(&cluster.View{Members: slices.Clone(h.members), Joined: slices.Clone(h.members)})
	for _, n := range nodes {
		h.do(n, h.engines[n].Event(&cluster.Quorum{Quorate: true}))
	}
	h.takeAll()
	return h
}

// broadcast applies an ordered event on every node that is a member.
func (h *harness) broadcast(ev cluster.Event) {
	h.seq++
	switch ev := ev.(type) {
	case *cluster.View:
		ev.Seq = h.seq
	case *cluster.Message:
		ev.Seq = h.seq
	}
	for _, n := range h.ids() {
		h.states[n].Apply(ev)
		h.do(n, h.engines[n].Event(ev))
	}
}

func (h *harness) ids() []int {
	var ids []int
	for n := range h.engines {
		ids = append(ids, n)
	}
	slices.Sort(ids)
	return ids
}

// do records node n's actions and checks the kernel rule at each start.
func (h *harness) do(n int, acts []Action) {
	for _, a := range acts {
		h.log[n] = append(h.log[n], fmt.Sprint(a))
		switch a := a.(type) {
		case Send:
			h.outbox = append(h.outbox, pending{cluster.Member{ID: n, Incarnation: h.layer[n]}, a.Msg})
		case Stop:
			h.run(a.Lockspace)[n] = false
		case Start:
			byChange := h.started[a.Lockspace]
			if byChange == nil {
				byChange = map[uint64][]int{}
				h.started[a.Lockspace] = byChange
			}
			if first, ok := byChange[a.Change]; ok {
				if !slices.Equal(first, a.Members) {
					h.t.Errorf("node %d starts %s change %d with %v; another node started it with %v", n, a.Lockspace, a.Change, a.Members, first)
				}
			} else {
				for _, m := range a.Members {
					if h.run(a.Lockspace)[m] {
						h.t.Errorf("node %d starts %s change %d while member %d still runs it", n, a.Lockspace, a.Change, m)
					}
				}
				byChange[a.Change] = slices.Clone(a.Members)
			}
			h.run(a.Lockspace)[n] = true
		}
	}
}

func (h *harness) run(ls string) map[int]bool {
	if h.running[ls] == nil {
		h.running[ls] = map[int]bool{}
	}
	return h.running[ls]
}

// step orders the oldest pending message that can be ordered; it
// reports false when none is left.
func (h *harness) step() bool {
	for i, p := range h.outbox {
		if p.from.Incarnation < h.layer[p.from.ID] {
			// The cluster layer dropped it when the cluster
			// expelled the incarnation that queued it.
			h.outbox = slices.Delete(h.outbox, i, i+1)
			return true
		}
		if h.states[h.ids()[0]].Members[p.from.ID] != p.from.Incarnation {
			continue // waits until the cluster admits the sender
		}
		h.outbox = slices.Delete(h.outbox, i, i+1)
		h.broadcast(&cluster.Message{From: p.from, Data: p.msg.Encode()})
		return true
	}
	return false
}

// stepFrom orders the oldest pending message of node n first.
func (h *harness) stepFrom(n int) {
	for i, p := range h.outbox {
		if p.from.ID == n {
			h.outbox = append(append([]pending{p}, h.outbox[:i]...), h.outbox[i+1:]...)
			h.step()
			return
		}
	}
	h.t.Fatalf("node %d has nothing to send", n)
}

// flush orders messages until none is left.
func (h *harness) flush() {
	for i := 0; h.step(); i++ {
		if i > 10000 {
			h.t.Fatal("messages never stop")
		}
	}
}

func (h *harness) online(n int, ls string) { h.do(n, h.engines[n].Online(ls, h.now)) }
func (h *harness) offline(n int, ls string) {
	h.do(n, h.engines[n].Offline(ls))
}

// fail orders a view in which node n failed. Node n hears it, and its
// cluster layer goes on as the next incarnation.
func (h *harness) fail(n int) {
	var failed cluster.Member
	h.members = slices.DeleteFunc(h.members, func(m cluster.Member) bool {
		if m.ID == n {
			failed = m
			return true
		}
		return false
	})
	h.broadcast(&cluster.View{Members: slices.Clone(h.members), Failed: []cluster.Member{failed}})
	h.layer[n] = failed.Incarnation + 1
}

// rejoin orders a view in which node n came back as a new incarnation,
// with a fresh engine (a restarted daemon).
func (h *harness) rejoin(n int) {
	h.layer[n]++
	m := cluster.Member{ID: n, Incarnation: h.layer[n]}
	h.states[n] = h.states[h.ids()[0]].Clone()
	h.engines[n] = NewEngine(Config{Self: n, Incarnation: m.Incarnation, JoinTimeout: time.Minute}, h.states[n])
	h.do(n, h.engines[n].Event(&cluster.Quorum{Quorate: true}))
	h.members = append(h.members, m)
	slices.SortFunc(h.members, func(a, b cluster.Member) int { return a.ID - b.ID })
	h.broadcast(&cluster.View{Members: slices.Clone(h.members), Joined: []cluster.Member{m}})
}

// readmit orders a view in which the cluster admits the incarnation
// node n's cluster layer went on as after it was declared failed: the
// same daemon, the same engine.
func (h *harness) readmit(n int) {
	m := cluster.Member{ID: n, Incarnation: h.layer[n]}
	h.members = append(h.members, m)
	slices.SortFunc(h.members, func(a, b cluster.Member) int { return a.ID - b.ID })
	h.broadcast(&cluster.View{Members: slices.Clone(h.members), Joined: []cluster.Member{m}})
}

func (h *harness) take(n int) []string {
	l := h.log[n]
	h.log[n] = nil
	return l
}

func (h *harness) takeAll() {
	for n := range h.log {
		h.log[n] = nil
	}
}

// last returns the last action of node n that starts with prefix.
func (h *harness) last(n int, prefix string) string {
	for i := len(h.log[n]) - 1; i >= 0; i-- {
		if len(h.log[n][i]) >= len(prefix) && h.log[n][i][:len(prefix)] == prefix {
			return h.log[n][i]
		}
	}
	return ""
}
