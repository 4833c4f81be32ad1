package fence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/godlm/godlm/controld/cluster"
)

// The replicated fence state. Every node applies the same failures (in
// cluster views) and the same fence messages, in the same order, so
// every node agrees on which nodes must be fenced, who fences each, how
// far it got, and when a node counts as fenced. Nothing about fencing
// lives in one node's memory alone: when an actor dies mid-fence, the
// next one takes over from the state.
//
// A node that failed stays Pending until one of:
//   - its actor reports the fence succeeded (Result{OK});
//   - an operator acknowledges it (dlm_tool fence_ack: Ack);
//   - it comes back as a new incarnation whose kernel holds no lockspace
//     (Clean): it rebooted, so nothing of its old life can reach the
//     disk. A node whose kernel still holds lockspaces (its daemon
//     was killed and restarted, or it was cut off and came back) is
//     still fenced.
//
// Lockspaces that contained a failed node may start without it only
// once it is no longer Pending (see Blocks).

// Reason says why a node must be fenced.
type Reason uint8

// Reasons.
const (
	// ReasonFailed: the cluster declared the node's incarnation failed.
	ReasonFailed Reason = iota + 1
	// ReasonStartup: the node had not joined when the cluster first
	// became quorate and post_join_delay passed; it may be running,
	// cut off, with a filesystem mounted from before.
	ReasonStartup
)

func (r Reason) String() string {
	switch r {
	case ReasonFailed:
		return "failed"
	case ReasonStartup:
		return "startup"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Record is one node that must be fenced.
type Record struct {
	Node int `json:"node"`
	// Incarnation is the failed incarnation (0 for startup fencing).
	Incarnation uint64 `json:"incarnation"`
	Reason      Reason `json:"reason"`
	// FailSeq is the position of the failure in the order. A result
	// made for an earlier failure of the node does not count for it.
	FailSeq uint64 `json:"fail_seq"`
	// Tried are the actors that gave up in this round, in order.
	Tried []int `json:"tried,omitempty"`
	// Attempts counts the agent runs reported, by every actor.
	Attempts int `json:"attempts"`
	// LastError is the last failed attempt's error.
	LastError string `json:"last_error,omitempty"`
	// LastActor made the last attempt.
	LastActor int `json:"last_actor,omitempty"`
	// Rounds counts the rounds that ended in failure, by every actor.
	Rounds int `json:"rounds,omitempty"`
}

// How says how a node came to count as fenced.
type How uint8

// Outcomes.
const (
	HowFenced How = iota + 1 // a fence agent succeeded
	HowAcked                 // an operator acknowledged it (fence_ack)
	HowClean                 // it came back rebooted (no lockspace in its kernel)
)

func (h How) String() string {
	switch h {
	case HowFenced:
		return "fenced"
	case HowAcked:
		return "acked"
	case HowClean:
		return "clean"
	}
	return fmt.Sprintf("how(%d)", uint8(h))
}

// Outcome is the last completed fencing of a node.
type Outcome struct {
	Node    int    `json:"node"`
	FailSeq uint64 `json:"fail_seq"`
	Seq     uint64 `json:"seq"` // where it was applied
	How     How    `json:"how"`
	By      int    `json:"by"` // the actor, the acknowledging node, or the node itself
}

// State is the replicated fence state.
type State struct {
	// Members is the current view.
	Members []cluster.Member `json:"members"`
	// Pending are the nodes that must be fenced, by id.
	Pending map[int]*Record `json:"pending"`
	// Done is the last outcome of each node fenced so far.
	Done map[int]Outcome `json:"done"`
	// StartupChecked: the startup check ran (or was not needed).
	StartupChecked bool `json:"startup_checked"`
	// Rejected counts messages that did not apply (stale, or not from
	// the node they had to come from).
	Rejected uint64 `json:"rejected,omitempty"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Pending: map[int]*Record{}, Done: map[int]Outcome{}}
}

// Blocks reports whether node must still be fenced: no lockspace may
// start without it while it does.
func (s *State) Blocks(node int) bool { return s.Pending[node] != nil }

// StartupPending reports whether a node found absent by the startup
// check still needs fencing: it may hold any lockspace's locks, so none
// may start until it is fenced.
func (s *State) StartupPending() bool {
	for _, r := range s.Pending {
		if r.Reason == ReasonStartup {
			return true
		}
	}
	return false
}

// Actor returns who fences node now: the lowest-id member that is not
// the node itself and has not given up in this round; 0 when no member
// can (node is not pending, or every member gave up: the round then
// starts again, see ApplyMsg).
func (s *State) Actor(node int) int {
	r := s.Pending[node]
	if r == nil {
		return 0
	}
	for _, m := range s.Members { // sorted by id
		if m.ID != node && !slices.Contains(r.Tried, m.ID) {
			return m.ID
		}
	}
	return 0
}

func (s *State) member(id int) (cluster.Member, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return cluster.Member{}, false
}

// ApplyView applies a membership view: each failed member becomes
// Pending (a failure of a node already pending moves its FailSeq on: a
// result must come after the latest failure).
func (s *State) ApplyView(v *cluster.View) {
	s.Members = slices.Clone(v.Members)
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	for _, f := range v.Failed {
		r := s.Pending[f.ID]
		if r == nil {
			r = &Record{Node: f.ID}
			s.Pending[f.ID] = r
		}
		r.Incarnation, r.Reason, r.FailSeq = f.Incarnation, ReasonFailed, v.Seq
		r.Tried = nil
	}
	// An actor that left or failed gives up by leaving: the next member
	// takes over. A node whose every possible actor gave up starts a
	// new round with the members there are now.
	for _, r := range s.Pending {
		if s.Actor(r.Node) == 0 {
			r.Tried = nil
		}
	}
}

// Kind is the type of a fence message.
type Kind uint8

// Message kinds.
const (
	// KindProgress: the actor ran an agent for Node; Err is why it
	// failed ("" if it succeeded and more devices follow).
	KindProgress Kind = iota + 1
	// KindResult: the actor's round for Node ended: OK, or every method
	// failed (Err says the last error) and the next actor takes over.
	KindResult
	// KindAck: an operator acknowledged that Node is fenced.
	KindAck
	// KindClean: the sender is a new incarnation whose kernel holds no
	// lockspace.
	KindClean
	// KindStartup: post_join_delay passed since the cluster first
	// became quorate: every configured node in Nodes that is not a
	// member must be fenced.
	KindStartup
)

func (k Kind) String() string {
	switch k {
	case KindProgress:
		return "progress"
	case KindResult:
		return "result"
	case KindAck:
		return "ack"
	case KindClean:
		return "clean"
	case KindStartup:
		return "startup"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Msg is a fence message.
type Msg struct {
	Kind    Kind
	Node    int
	FailSeq uint64 // Progress, Result: the failure the actor fences
	OK      bool   // Result
	Device  string // Progress
	Err     string // Progress, Result
	Nodes   []int  // Startup: the configured nodes
}

// ErrStale is returned by ApplyMsg for a message that no longer
// applies (a result for an earlier failure, an ack for a node that is
// not pending); ErrNotAllowed for one whose sender may not send it.
var (
	ErrStale      = errors.New("stale fence message")
	ErrNotAllowed = errors.New("fence message from a node that may not send it")
)

// ApplyMsg applies a fence message from a member, ordered at seq.
func (s *State) ApplyMsg(from cluster.Member, seq uint64, m Msg) error {
	err := s.applyMsg(from, seq, m)
	if err != nil {
		s.Rejected++
	}
	return err
}

func (s *State) applyMsg(from cluster.Member, seq uint64, m Msg) error {
	if cur, ok := s.member(from.ID); !ok || cur.Incarnation != from.Incarnation {
		return fmt.Errorf("%w: %v is not a current member", ErrNotAllowed, from)
	}
	switch m.Kind {
	case KindProgress, KindResult:
		r := s.Pending[m.Node]
		if r == nil || r.FailSeq != m.FailSeq {
			return fmt.Errorf("%w: %v for node %d, failure %d", ErrStale, m.Kind, m.Node, m.FailSeq)
		}
		if from.ID == m.Node {
			return fmt.Errorf("%w: node %d cannot fence itself", ErrNotAllowed, m.Node)
		}
		if m.Kind == KindProgress {
			r.Attempts++
			r.LastActor = from.ID
			if m.Err != "" {
				r.LastError = m.Err
			}
			return nil
		}
		if m.OK {
			s.finish(r, seq, HowFenced, from.ID)
			return nil
		}
		if m.Err != "" {
			r.LastError = m.Err
		}
		r.Rounds++
		if !slices.Contains(r.Tried, from.ID) {
			r.Tried = append(r.Tried, from.ID)
		}
		if s.Actor(r.Node) == 0 {
			r.Tried = nil // every member tried: a new round
		}
		return nil
	case KindAck:
		r := s.Pending[m.Node]
		if r == nil {
			return fmt.Errorf("%w: node %d needs no fencing", ErrStale, m.Node)
		}
		s.finish(r, seq, HowAcked, from.ID)
		return nil
	case KindClean:
		r := s.Pending[from.ID]
		if r == nil {
			return nil // nothing to clear: a clean start needs no fencing
		}
		if r.Reason == ReasonFailed && from.Incarnation <= r.Incarnation {
			return fmt.Errorf("%w: clean report of %v for its own failed incarnation %d", ErrNotAllowed, from, r.Incarnation)
		}
		s.finish(r, seq, HowClean, from.ID)
		return nil
	case KindStartup:
		if s.StartupChecked {
			return fmt.Errorf("%w: the startup check already ran", ErrStale)
		}
		s.StartupChecked = true
		for _, n := range m.Nodes {
			if _, ok := s.member(n); ok || s.Pending[n] != nil {
				continue
			}
			s.Pending[n] = &Record{Node: n, Reason: ReasonStartup, FailSeq: seq}
		}
		return nil
	}
	return fmt.Errorf("%w: unknown kind %d", ErrBadMessage, m.Kind)
}

func (s *State) finish(r *Record, seq uint64, how How, by int) {
	delete(s.Pending, r.Node)
	s.Done[r.Node] = Outcome{Node: r.Node, FailSeq: r.FailSeq, Seq: seq, How: how, By: by}
}

// Records returns copies of the pending records, by node id.
func (s *State) Records() []Record {
	out := make([]Record, 0, len(s.Pending))
	for _, r := range s.Pending {
		c := *r
		c.Tried = slices.Clone(r.Tried)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// MsgTag is the first byte of every encoded fence message. Lockspace
// messages start with their version (1 or 2), so the two kinds share
// one ordered stream and are told apart by it.
const MsgTag = 0xfe

// ErrBadMessage marks a message that cannot be decoded.
var ErrBadMessage = errors.New("bad fence message")

// Limits on decoded fields.
const (
	maxText  = 1024
	maxNodes = 1024
)

// Encode returns the wire form: MsgTag, kind, then uvarint node,
// fail_seq, ok, and the device, error and node list, each
// length-prefixed.
func (m Msg) Encode() []byte {
	b := []byte{MsgTag, byte(m.Kind)}
	b = binary.AppendUvarint(b, uint64(m.Node))
	b = binary.AppendUvarint(b, m.FailSeq)
	ok := byte(0)
	if m.OK {
		ok = 1
	}
	b = append(b, ok)
	b = appendText(b, m.Device)
	b = appendText(b, m.Err)
	b = binary.AppendUvarint(b, uint64(len(m.Nodes)))
	for _, n := range m.Nodes {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func appendText(b []byte, s string) []byte {
	if len(s) > maxText {
		s = s[:maxText]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses a fence message.
func Decode(b []byte) (Msg, error) {
	var m Msg
	d := decoder{b: b}
	if d.byte() != MsgTag {
		return m, fmt.Errorf("%w: not a fence message", ErrBadMessage)
	}
	m.Kind = Kind(d.byte())
	m.Node = int(d.uvarint(1 << 31))
	m.FailSeq = d.uvarint(1<<63 - 1)
	switch d.byte() {
	case 0:
	case 1:
		m.OK = true
	default:
		d.fail("ok flag")
	}
	m.Device = d.text()
	m.Err = d.text()
	n := d.uvarint(maxNodes)
	for i := uint64(0); i < n && d.err == nil; i++ {
		m.Nodes = append(m.Nodes, int(d.uvarint(1<<31)))
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err == nil && (m.Kind < KindProgress || m.Kind > KindStartup) {
		d.fail("kind")
	}
	if d.err != nil {
		return Msg{}, d.err
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrBadMessage, what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("length")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > max {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) text() string {
	n := d.uvarint(maxText)
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail("text")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(s) {
		d.fail("text encoding")
		return ""
	}
	return s
}

// Check validates a state decoded from a snapshot, and makes its maps.
func (s *State) Check() error {
	if s.Pending == nil {
		s.Pending = map[int]*Record{}
	}
	if s.Done == nil {
		s.Done = map[int]Outcome{}
	}
	if !slices.IsSortedFunc(s.Members, func(a, b cluster.Member) int { return a.ID - b.ID }) {
		return fmt.Errorf("fence state: members %v are not sorted", s.Members)
	}
	for _, m := range s.Members {
		if m.ID <= 0 {
			return fmt.Errorf("fence state: member id %d is not positive", m.ID)
		}
	}
	for id, r := range s.Pending {
		if r == nil || r.Node != id || id <= 0 {
			return fmt.Errorf("fence state: pending entry %d does not match its node", id)
		}
		if r.Reason != ReasonFailed && r.Reason != ReasonStartup {
			return fmt.Errorf("fence state: node %d: unknown reason %d", id, r.Reason)
		}
	}
	for id, o := range s.Done {
		if o.Node != id || id <= 0 {
			return fmt.Errorf("fence state: outcome %d does not match its node", id)
		}
	}
	return nil
}
