package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/godlm/godlm/internal/clock"
)

// Fencer is this node's part in fencing: for each pending node whose
// actor is this node, it runs the node's fence methods in order, reports
// each attempt and the round's result through the cluster, and stops a
// run that is no longer needed (the node was fenced another way, or
// another actor took over).
//
// The replicated State decides everything; a Fencer only acts on it,
// so when its node dies mid-fence, the next actor starts from the
// state.
type Fencer struct {
	self   int
	cfg    *Config
	runner Runner
	send   func(context.Context, Msg) error
	clock  clock.Clock
	log    *slog.Logger
	off    bool

	mu       sync.Mutex
	runs     map[int]*run // by victim
	failTime map[failure]time.Time
	wg       sync.WaitGroup
	closed   bool
}

type failure struct {
	node int
	seq  uint64
}

type run struct {
	failSeq uint64
	rounds  int // the record's failed rounds when the run started
	cancel  context.CancelFunc
	done    bool // the run ended (under Fencer.mu)
}

// FencerConfig sets up a Fencer.
type FencerConfig struct {
	Self   int
	Config *Config
	Runner Runner
	// Send broadcasts a fence message through the cluster, returning
	// once it is ordered.
	Send  func(context.Context, Msg) error
	Clock clock.Clock
	Log   *slog.Logger
	// Disabled (enable_fencing=0): as the actor, count the node as
	// fenced at once (an ack) instead of running agents. Unsafe with a
	// shared disk; for clusters without one.
	Disabled bool
}

// NewFencer returns a Fencer; Update drives it.
func NewFencer(c FencerConfig) *Fencer {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Fencer{self: c.Self, cfg: c.Config, runner: c.Runner, send: c.Send, clock: c.Clock, log: c.Log, off: c.Disabled,
		runs: map[int]*run{}, failTime: map[failure]time.Time{}}
}

// Backoff is how long an actor waits before a round when earlier
// attempts failed: it doubles from 1 s with each attempt, to 30 s.
func Backoff(attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	return min(time.Second<<min(attempts-1, 5), 30*time.Second)
}

// Update starts and stops runs for st, the state after an applied
// event. It must be called after every event, with the state's lock
// held; it does not block.
func (f *Fencer) Update(st *State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	now := f.clock.Now()
	for node, r := range f.runs {
		rec := st.Pending[node]
		// A run that ended is replaced once its round's result is in
		// the state, never before: a second run then would fence the
		// node twice.
		if rec == nil || rec.FailSeq != r.failSeq || st.Actor(node) != f.self || r.done && rec.Rounds > r.rounds {
			r.cancel()
			delete(f.runs, node)
		}
	}
	for k := range f.failTime {
		if rec := st.Pending[k.node]; rec == nil || rec.FailSeq != k.seq {
			delete(f.failTime, k)
		}
	}
	for _, rec := range st.Records() {
		k := failure{rec.Node, rec.FailSeq}
		if _, ok := f.failTime[k]; !ok {
			f.failTime[k] = now
		}
		if st.Actor(rec.Node) != f.self || f.runs[rec.Node] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &run{failSeq: rec.FailSeq, rounds: rec.Rounds, cancel: cancel}
		f.runs[rec.Node] = r
		failed := f.failTime[k]
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.fence(ctx, r, rec, failed)
			f.mu.Lock()
			r.done = true
			f.mu.Unlock()
		}()
	}
}

// Since returns when this node first saw node's current failure (or
// startup fencing), for status: the replicated state keeps no clock.
func (f *Fencer) Since(node int, failSeq uint64) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.failTime[failure{node, failSeq}]
	return t, ok
}

// Running lists the nodes this node is fencing now.
func (f *Fencer) Running() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for n := range f.runs {
		out = append(out, n)
	}
	return out
}

// Close stops every run, killing running agents, and waits for them.
func (f *Fencer) Close() {
	f.mu.Lock()
	f.closed = true
	for n, r := range f.runs {
		r.cancel()
		delete(f.runs, n)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// fence runs one round for rec: each method in turn until one
// succeeds.
func (f *Fencer) fence(ctx context.Context, r *run, rec Record, failTime time.Time) {
	log := f.log.With("node", rec.Node, "reason", rec.Reason.String(), "fail_seq", rec.FailSeq)
	if f.off {
		log.Warn("fencing is disabled (enable_fencing=0): counting the node as fenced without fencing it")
		f.final(ctx, r, log, Msg{Kind: KindAck, Node: rec.Node})
		return
	}
	if d := Backoff(rec.Attempts); d > 0 {
		log.Info("fencing again after failed attempts", "attempts", rec.Attempts, "wait", d)
		select {
		case <-f.clock.After(d):
		case <-ctx.Done():
			return
		}
	}
	methods := f.cfg.Methods(rec.Node)
	if len(methods) == 0 {
		f.final(ctx, r, log, Msg{Kind: KindResult, Node: rec.Node, FailSeq: rec.FailSeq,
			Err: fmt.Sprintf("no fence device for node %d in %s", rec.Node, f.cfg.File)})
		return
	}
	var last error
	for _, m := range methods {
		results := make([]Result, len(m))
		var wg sync.WaitGroup
		for i, step := range m {
			wg.Add(1)
			go func() {
				defer wg.Done()
				log.Info("running fence agent", "device", step.Device, "agent", step.Agent)
				results[i] = f.runner.Run(ctx, Request{Step: step, Node: rec.Node, FailTime: failTime})
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			log.Info("fencing stopped: no longer needed from this node")
			return
		}
		ok := true
		for i, res := range results {
			p := Msg{Kind: KindProgress, Node: rec.Node, FailSeq: rec.FailSeq, Device: m[i].Device}
			if res.Err != nil {
				ok, last = false, res.Err
				p.Err = res.Err.Error()
				log.Warn("fence agent failed", "device", m[i].Device, "err", res.Err, "took", res.Took)
			} else {
				log.Info("fence agent succeeded", "device", m[i].Device, "took", res.Took)
			}
			if !f.report(ctx, r, log, p) {
				return
			}
		}
		if ok {
			f.final(ctx, r, log, Msg{Kind: KindResult, Node: rec.Node, FailSeq: rec.FailSeq, OK: true})
			return
		}
	}
	f.final(ctx, r, log, Msg{Kind: KindResult, Node: rec.Node, FailSeq: rec.FailSeq, Err: last.Error()})
}

// final reports the round's result. The run counts as ended from here:
// when the result is applied, Update may start the next round.
func (f *Fencer) final(ctx context.Context, r *run, log *slog.Logger, m Msg) {
	f.mu.Lock()
	r.done = true
	f.mu.Unlock()
	f.report(ctx, r, log, m)
}

// report broadcasts m; it reports false if the run should end (its
// context ended, or the message could not be ordered: the run starts
// again from the state once this node can act).
func (f *Fencer) report(ctx context.Context, r *run, log *slog.Logger, m Msg) bool {
	if err := f.send(ctx, m); err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Warn("cannot report fencing", "kind", m.Kind.String(), "err", err)
		}
		// Drop the run so that a later Update can start it again.
		f.mu.Lock()
		if f.runs[m.Node] == r {
			delete(f.runs, m.Node)
		}
		f.mu.Unlock()
		r.cancel()
		return false
	}
	return true
}
