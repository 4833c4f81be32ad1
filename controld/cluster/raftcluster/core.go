package raftcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/godlm/godlm/controld/cluster"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Core is the deterministic heart of the embedded cluster layer: one
// consensus node (a raft.RawNode) plus the rules that turn its log into
// the cluster's ordered events. It starts no goroutine, reads no clock
// and draws no random number of its own (the consensus library's
// election jitter reads crypto/rand.Reader, which a simulator may
// replace). Time passes only through Tick, messages arrive only through
// Step, and everything it wants done comes out of Process, so a test or
// a simulator drives it step by step. It is not safe for concurrent use.
//
// Bad input from the network is rejected by Step with an error. A state
// that cannot be persisted (a full disk) does not stop the Core: it
// reports itself not quorate, sends nothing, and retries the write (see
// save). If the Core itself cannot go on (the consensus library or the
// StateMachine panicked) it fails: every pending request finishes with
// an error wrapping ErrFailed, Output.Err says so, and the Core does
// nothing more.
type Core struct {
	cfg     Config
	log     *slog.Logger
	self    uint64 // consensus id of this node
	voters  map[uint64]bool
	conf    *raftpb.ConfState
	rn      *raft.RawNode
	storage *raft.MemoryStorage

	state   *clusterState // the replicated cluster state
	applied uint64        // last log index applied
	// savedTerm and savedVote are the hard state's term and vote as
	// last persisted.
	savedTerm, savedVote uint64
	nextSnap             uint64 // do not try a snapshot before this index

	// This node's own membership and requests.
	inc      uint64    // current incarnation
	joined   bool      // inc's Hello has been applied
	nextSeq  uint64    // sequence number of the next batch
	queue    []pending // broadcasts not yet in a batch
	inflight *proposal // the one entry of ours proposed and not yet applied
	leaveIDs []uint64  // requests of Leave, finished when the Leave applies
	leaving  bool
	left     bool // this node left (or was expelled while leaving)
	nextID   uint64

	// Time, liveness and leadership.
	ticks uint64
	// Catching up before quorum is reported: a read index confirmed by
	// a majority, asked for when contact returns.
	readCtx    []byte
	readAt     uint64       // tick of the last ReadIndex request
	readIndex  uint64       // confirmed commit index to reach; 0 when none yet
	silence    map[int]int  // failure detector: ticks of silence of each peer
	heardAgo   map[int]int  // ticks since the last message from each peer
	heard      map[int]bool // whether a peer was ever heard from
	lead       uint64       // leader as of the last Ready
	lastLeader uint64       // the last known non-zero leader
	failing    map[cluster.Member]uint64
	lostLog    bool   // a heartbeat showed this node lost its log
	forced     bool   // an election was forced (lost log) ...
	forcedAt   uint64 // ... at this tick
	quorate    bool

	// Leases (detector.go). On a leader or candidate: the tick and term
	// of each peer's last acknowledgement. On a follower: the lease its
	// leader granted, valid for ticks before leaseUntil in leaseTerm.
	ackTick              map[int]uint64
	ackTerm              map[int]uint64
	leaseUntil           uint64
	leaseLead, leaseTerm uint64

	// Amnesia (amnesia.go): this node started without state and has not
	// caught up; blank records which peers showed a log with nothing
	// beyond the initial snapshot.
	amnesiac bool
	blank    map[int]bool
	emptySM  []byte // the StateMachine's snapshot before anything applied

	// Writing the state (see save). dirty: the persisted state is behind
	// the in-memory storage. held: a Ready whose messages wait for the
	// write. saveErr: the last write failed; retry at retryAt, then
	// after twice the backoff.
	dirty   bool
	held    *raft.Ready
	saveErr error
	retryAt uint64
	backoff uint64

	out   Output
	fatal error
}

// pending is one queued broadcast.
type pending struct {
	id   uint64
	data []byte
}

// proposal is this node's entry in flight.
type proposal struct {
	e    entry
	data []byte
	ids  []uint64 // the broadcasts of a batch
	sent bool     // accepted by the consensus library since the last leader change
	at   uint64   // tick of the last proposal
}

// Result is the outcome of a Broadcast or a Leave: Err is nil when it
// was applied on this node.
type Result struct {
	ID  uint64
	Err error
}

// Output is what one Process call produced. Messages must be sent to
// the peer named in each message's To field (dropping some is fine: the
// consensus retransmits). Events were applied to the StateMachine, in
// order (Quorum events are local and not applied). Done lists finished
// Broadcasts and Leaves. Err is set once the Core has failed.
type Output struct {
	Messages []*raftpb.Message
	Events   []cluster.Event
	Done     []Result
	Err      error
}

// maxReadyRounds bounds the Ready loop of one Process call.
const maxReadyRounds = 64

// NewCore returns a Core. With empty storage the node bootstraps a fresh
// cluster: every node starts from the same initial snapshot (index 1,
// term 1, the configured voters, no members), so the logs of nodes that
// bootstrap independently agree. With persisted storage it resumes: the
// snapshot is restored into the StateMachine (the first Process reports
// a Restored event) and the log after it is applied again. A
// single-voter cluster elects itself at once.
func NewCore(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.Self.ID),
		self:     uint64(cfg.Self.ID),
		voters:   map[uint64]bool{},
		storage:  raft.NewMemoryStorage(),
		inc:      cfg.Self.Incarnation,
		nextSeq:  1,
		silence:  map[int]int{},
		heardAgo: map[int]int{},
		heard:    map[int]bool{},
		failing:  map[cluster.Member]uint64{},
		ackTick:  map[int]uint64{},
		ackTerm:  map[int]uint64{},
		blank:    map[int]bool{},
	}
	for _, v := range cfg.Voters {
		c.voters[uint64(v)] = true
		if v != cfg.Self.ID {
			c.silence[v] = 0
		}
	}
	c.conf = raftpb.EnsureConfState(&raftpb.ConfState{Voters: c.voterList()})

	var st *PersistentState
	if cfg.Storage != nil {
		if st, err = cfg.Storage.Load(); err != nil {
			return nil, err
		}
	}
	fresh := st == nil
	if fresh {
		st = c.bootstrapState()
		// A node without state starts counting terms from its
		// incarnation, not from 1 (see amnesia.go).
		st.HardState.Term = new(max(1, cfg.Self.Incarnation))
	} else if got := st.Snapshot.GetMetadata().GetConfState().GetVoters(); !slices.Equal(slices.Sorted(slices.Values(got)), c.voterList()) {
		// Never suggest removing this node's state: a node that forgets
		// what it acknowledged can lose committed entries (amnesia.go).
		return nil, fmt.Errorf("persisted voters %v differ from the configured %v: configure the node list this node's state was written with; the node list of a cluster cannot change while any node keeps its state: %w", got, cfg.Voters, ErrConfig)
	}
	state, smData, err := decodeSnapshot(st.Snapshot.GetData())
	if err != nil {
		return nil, fmt.Errorf("persisted snapshot: %w", err)
	}
	if err := c.load(st); err != nil {
		return nil, err
	}
	c.state = state
	if floor := c.pastIncarnation(st); c.inc <= floor {
		c.log.Warn("configured incarnation is not larger than one this node used before; picking a new one", "incarnation", c.inc, "used", floor)
		c.inc = c.newIncarnation(floor)
	}
	c.applied = st.Snapshot.GetMetadata().GetIndex()
	c.nextSnap = c.applied + cfg.SnapshotEntries
	c.savedTerm, c.savedVote = st.HardState.GetTerm(), st.HardState.GetVote()
	// A node that finds no state may have lost it: it withholds its
	// vote until it caught up (see amnesia.go). Alone, it has nothing
	// to protect.
	c.amnesiac = (fresh || st.Amnesiac) && len(c.voters) > 1
	if fresh && cfg.Storage != nil {
		st.Amnesiac = c.amnesiac
		if err := cfg.Storage.Save(st); err != nil {
			// Not fatal: the Core retries, not quorate meanwhile.
			c.dirty = true
			c.saveFailed(fmt.Errorf("saving the initial state: %w", err))
		}
	}
	if c.amnesiac {
		c.log.Warn("starting without persisted cluster state: this node does not vote until it caught up with the cluster (or finds a majority as new as itself)")
	}
	// The StateMachine's initial state, to go back to if this node's
	// history turns out to conflict with the cluster's (amnesia.go).
	if c.emptySM, err = cfg.SM.Snapshot(); err != nil {
		return nil, fmt.Errorf("state machine snapshot of its initial state: %w", err)
	}
	if smData != nil {
		if err := cfg.SM.Restore(smData); err != nil {
			return nil, fmt.Errorf("restoring the persisted snapshot: %w", err)
		}
		c.out.Events = append(c.out.Events, &cluster.Restored{Seq: c.applied, Members: state.members()})
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	c.log.Debug("core started", "incarnation", c.inc, "fresh", fresh, "applied", c.applied)
	return c, nil
}

func (c *Core) voterList() []uint64 {
	vs := make([]uint64, 0, len(c.cfg.Voters))
	for _, v := range c.cfg.Voters {
		vs = append(vs, uint64(v))
	}
	return vs
}

// bootstrapState is the state of a fresh cluster: a snapshot at index 1,
// term 1, with the voters and empty data.
func (c *Core) bootstrapState() *PersistentState {
	return &PersistentState{
		HardState: &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(0)), Commit: new(uint64(1))},
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)), ConfState: c.conf,
		}},
	}
}

// pastIncarnation returns the highest incarnation of this node found in
// a persisted state: in the snapshot, or in a Hello in the log that the
// apply rules would accept (not beyond MaxIncarnation).
func (c *Core) pastIncarnation(st *PersistentState) uint64 {
	floor := c.state.nodes[c.cfg.Self.ID].Inc
	for _, e := range st.Entries {
		if ent, err := decodeEntry(e.GetData()); err == nil && ent.Kind == kindHello && ent.Node == c.cfg.Self.ID && ent.Inc <= MaxIncarnation {
			floor = max(floor, ent.Inc)
		}
	}
	return floor
}

// load puts st into the in-memory storage the consensus reads.
func (c *Core) load(st *PersistentState) error {
	if err := checkState(st); err != nil {
		return fmt.Errorf("persisted state: %w", err)
	}
	if err := c.storage.ApplySnapshot(st.Snapshot); err != nil {
		return fmt.Errorf("loading the persisted snapshot: %w", err)
	}
	if err := c.storage.Append(st.Entries); err != nil {
		return fmt.Errorf("loading the persisted log: %w", err)
	}
	if err := c.storage.SetHardState(st.HardState); err != nil {
		return fmt.Errorf("loading the persisted hard state: %w", err)
	}
	return nil
}

// start creates the consensus node. The library panics on a state it
// cannot use; that becomes an error.
func (c *Core) start() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting consensus: %v: %w", r, ErrFailed)
		}
	}()
	c.rn, err = raft.NewRawNode(&raft.Config{
		ID:                        c.self,
		ElectionTick:              c.cfg.ElectionTicks,
		HeartbeatTick:             c.cfg.HeartbeatTicks,
		Storage:                   c.storage,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 1 << 28,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{c.log},
	})
	if err != nil {
		return fmt.Errorf("starting consensus: %w", err)
	}
	if len(c.voters) == 1 {
		if err := c.rn.Campaign(); err != nil {
			return fmt.Errorf("campaigning alone: %w", err)
		}
	}
	c.pump()
	return nil
}

// guard turns a panic (of the consensus library, or of the
// StateMachine) into the Core's failure. Every exported method that
// calls into either defers it.
func (c *Core) guard() {
	if r := recover(); r != nil {
		c.log.Error("core failed", "panic", r, "stack", string(debug.Stack()))
		c.fail(fmt.Errorf("%w: panic: %v", ErrFailed, r))
	}
}

// fail stops the Core for good: every pending request finishes with err.
func (c *Core) fail(err error) {
	if c.fatal != nil {
		return
	}
	if !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	c.fatal = err
	c.out.Err = err
	c.finishAll(err)
}

// Tick advances the Core's clock by one tick.
func (c *Core) Tick() {
	defer c.guard()
	if c.fatal != nil {
		return
	}
	c.ticks++
	for id := range c.silence {
		c.silence[id]++
		c.heardAgo[id]++
	}
	if c.saveErr != nil {
		// Stuck on a write: the consensus stands still (no timers, no
		// messages taken, see Step) so that nothing piles up for it to
		// send once the write succeeds.
		c.retrySave()
		return
	}
	c.rn.Tick()
	c.detectFailures()
	c.pump()
}

// Step hands the Core a message from the network. A message this node
// does not accept is dropped with an error wrapping ErrBadMessage; the
// consensus library's own refusals (a proposal with no leader to take
// it, say) come back as its errors. Neither harms the Core.
func (c *Core) Step(m *raftpb.Message) (err error) {
	defer c.guard()
	if c.fatal != nil {
		return c.fatal
	}
	if c.saveErr != nil {
		return fmt.Errorf("%s from %d dropped: this node cannot write its state: %w", m.GetType(), m.GetFrom(), c.saveErr)
	}
	if m.GetType() == raftpb.MsgApp && c.voters[m.GetFrom()] && m.GetTo() == c.self && c.divergesFrom(m) {
		if err := c.startOver(m); err != nil {
			c.fail(err)
			return c.fatal
		}
	}
	m, err = c.checkMessage(m)
	if err != nil {
		return err
	}
	from := int(m.GetFrom())
	if m.GetType() != raftpb.MsgProp { // proposals may be forwarded by a third node
		c.silence[from] = 0
		c.heardAgo[from] = 0
		c.heard[from] = true
	}
	switch m.GetType() {
	case raftpb.MsgPreVote, raftpb.MsgVote:
		if !c.noteVoteRequest(m) {
			return nil
		}
	}
	c.noteAck(m)
	err = c.rn.Step(m)
	c.noteLease(m)
	if c.lostLog {
		c.forceElection()
	}
	if err != nil {
		return fmt.Errorf("step %s from %d: %w", m.GetType(), from, err)
	}
	return nil
}

// Process does everything the last Tick, Step, Broadcast or Leave calls
// made necessary: it persists the consensus state, applies what was
// committed (and snapshots received) to the StateMachine, proposes this
// node's next entry, and returns the messages to send, the events and
// the finished requests. Messages may be sent only after Process
// returned, since it persists first.
func (c *Core) Process() Output {
	func() {
		defer c.guard()
		if c.fatal != nil {
			return
		}
		if c.dirty && c.held == nil && c.saveErr == nil {
			c.save()
		}
		// Reporting quorum may ask for a read index, whose answer is in
		// the next Ready: go round again while there is one. While the
		// state cannot be written, no Ready is taken: its messages
		// might acknowledge what is not on disk.
		for pass := 0; pass < 3; pass++ {
			for i := 0; i < maxReadyRounds && c.fatal == nil && c.saveErr == nil && c.rn.HasReady(); i++ {
				if err := c.handleReady(); err != nil {
					c.fail(err)
				}
			}
			c.updateLeader()
			c.checkCaughtUp()
			c.updateQuorum()
			if c.fatal != nil || c.saveErr != nil || !c.rn.HasReady() {
				break
			}
		}
	}()
	out := c.out
	c.out = Output{}
	if c.fatal != nil {
		out.Err = c.fatal
	}
	return out
}

// handleReady handles one raft.Ready: persist, collect messages, apply,
// advance. When the state cannot be written, the Ready is held (not
// advanced, its messages not sent) until a retry writes it.
func (c *Core) handleReady() error {
	rd := c.rn.Ready()
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("storing a received snapshot: %w", err)
		}
		c.dirty = true
	}
	if len(rd.Entries) > 0 {
		if err := c.storage.Append(rd.Entries); err != nil {
			return fmt.Errorf("appending to the log: %w", err)
		}
		c.dirty = true
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := c.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("storing the hard state: %w", err)
		}
		// Only the term and the vote must be on disk before the next
		// message goes out. A new commit index alone is not written:
		// the next write takes it along, and a node restarted with an
		// older one learns the rest from the leader. Writing the whole
		// state for it cost every commit, on every node, a write on the
		// path of the messages that announce it.
		if rd.HardState.GetTerm() != c.savedTerm || rd.HardState.GetVote() != c.savedVote {
			c.dirty = true
		}
	}
	if c.dirty && !c.save() {
		c.held = &rd
		return nil
	}
	return c.finishReady(rd)
}

// finishReady does what follows the write of a Ready: send, restore,
// apply, advance.
func (c *Core) finishReady(rd raft.Ready) error {
	var snapsTo []uint64
	for _, m := range rd.Messages {
		if m.GetType() == raftpb.MsgSnap {
			snapsTo = append(snapsTo, m.GetTo())
		}
	}
	c.grantLeases(rd.Messages)
	c.markVoteRequests(rd.Messages)
	c.out.Messages = append(c.out.Messages, rd.Messages...)
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := c.restore(rd.Snapshot); err != nil {
			return err
		}
	}
	for _, rs := range rd.ReadStates {
		if c.readCtx != nil && string(rs.RequestCtx) == string(c.readCtx) {
			c.readIndex, c.readCtx = max(rs.Index, 1), nil
		}
	}
	for _, e := range rd.CommittedEntries {
		c.applyEntry(e)
	}
	c.rn.Advance(rd)
	// A snapshot is reported sent as soon as it is handed out. If it
	// is lost, the leader's next probe is refused and it sends a new
	// one; reporting nothing would leave the follower stuck.
	for _, to := range snapsTo {
		c.rn.ReportSnapshot(to, raft.SnapshotFinish)
	}
	c.updateLeader()
	if err := c.maybeSnapshot(); err != nil {
		return err
	}
	c.pump()
	return nil
}

// Status reports this node's view. Peers carry LastHeard (in ticks
// times Config.TickInterval, or -1 when never heard), not Addr or
// Connected, which belong to the transport. A follower hears only from
// the leader (and from candidates), so only the leader's LastHeard
// covers every peer.
func (c *Core) Status() cluster.Status {
	st := cluster.Status{
		Self:     cluster.Member{ID: c.cfg.Self.ID, Incarnation: c.inc},
		Applied:  c.applied,
		Voters:   slices.Clone(c.cfg.Voters),
		Members:  c.state.members(),
		Timeout:  c.cfg.TickInterval * time.Duration(c.cfg.FailTicks),
		Protocol: "raft",
	}
	if c.rn != nil && c.fatal == nil {
		bs := c.rn.BasicStatus()
		st.Leader = int(bs.Lead)
		st.Term = bs.GetTerm()
		st.Quorate = c.isQuorate()
	}
	for _, v := range c.cfg.Voters {
		if v == c.cfg.Self.ID {
			continue
		}
		p := cluster.Peer{ID: v, LastHeard: -1}
		if c.heard[v] {
			p.LastHeard = c.cfg.TickInterval * time.Duration(c.heardAgo[v])
		}
		st.Peers = append(st.Peers, p)
	}
	return st
}
