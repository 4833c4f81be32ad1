package controld

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/cluster"
	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/fence"
	"github.com/godlm/godlm/libdlm"
)

// QueryServer answers libdlmcontrol clients — our dlm_tool, the
// reference dlm_tool, Pacemaker's controld agent — on the reference's
// two abstract sockets: one request per connection on the query socket,
// a stream of requests on the command socket. Every caller is identified
// with SO_PEERCRED: queries are open to all local users, anything that
// changes state needs root.
//
// Local users cannot make it grow without bound: each uid may hold
// [MaxQueryConnsPerUser] connections at once, all unprivileged users
// together [MaxQueryConns] (root has its own [MaxQueryConnsPerUser], so
// they cannot lock it out); a connection is closed after
// [QueryIdleTimeout] without a complete request; and a request's
// payload is read as it arrives, at most [MaxRequestPayload] bytes.
type QueryServer struct {
	d     *Daemon
	bound [2]acceptor // the query and command sockets, bound and not yet served
	lns   []acceptor  // those served
	wg    sync.WaitGroup
	// done is closed by Close, to end the accept loops' backoff.
	done      chan struct{}
	closeOnce sync.Once

	// Limits, set from the package's constants; tests lower them.
	perUser int
	global  int
	idle    time.Duration
	// peerCred identifies a connection's process; tests replace it.
	peerCred func(*net.UnixConn) (*unix.Ucred, error)
	// refuseSlots bounds the goroutines that answer refused
	// connections.
	refuseSlots chan struct{}

	mu      sync.Mutex
	byUID   map[uint32]int
	unpriv  int // connections of all non-root uids
	limited rateLimiter
	failing rateLimiter
}

// Limits of the query sockets.
const (
	// MaxQueryConnsPerUser is how many connections one uid may hold
	// open at once; more are refused with EUSERS.
	MaxQueryConnsPerUser = 16
	// MaxQueryConns is how many connections all non-root users together
	// may hold open at once.
	MaxQueryConns = 128
	// QueryIdleTimeout is how long a connection may take to send a
	// complete request.
	QueryIdleTimeout = 30 * time.Second
	// MaxRequestPayload bounds the payload of a request. None of the
	// commands served carries more than a RUN_START's 1024 bytes.
	MaxRequestPayload = 4096
)

// acceptor is the part of *net.UnixListener the server uses.
type acceptor interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

// ListenQuery starts serving d on dlmc.QuerySocket and dlmc.CommandSocket.
func ListenQuery(d *Daemon) (*QueryServer, error) {
	return ListenQueryOn(d, dlmc.QuerySocket, dlmc.CommandSocket)
}

// ListenQueryOn is ListenQuery on other socket names (for tests).
func ListenQueryOn(d *Daemon, query, command string) (*QueryServer, error) {
	s, err := BindQueryOn(d, query, command)
	if err != nil {
		return nil, err
	}
	s.Serve()
	return s, nil
}

// BindQuery binds dlmc.QuerySocket and dlmc.CommandSocket without
// answering yet: the daemon binds them first, so that a second daemon
// fails before it touches the kernel, and serves once Setup is done, so
// that no client sees a half set-up daemon (clients wait meanwhile).
func BindQuery(d *Daemon) (*QueryServer, error) {
	return BindQueryOn(d, dlmc.QuerySocket, dlmc.CommandSocket)
}

// BindQueryOn is BindQuery on other socket names (for tests).
func BindQueryOn(d *Daemon, query, command string) (*QueryServer, error) {
	s := newQueryServer(d)
	for i, name := range []string{query, command} {
		ln, err := dlmc.ListenAbstract(name)
		if err != nil {
			for _, l := range s.bound[:i] {
				l.Close()
			}
			return nil, fmt.Errorf("%w (is another dlm_controld running?)", err)
		}
		s.bound[i] = ln
	}
	return s, nil
}

// Serve starts answering on the bound sockets.
func (s *QueryServer) Serve() {
	s.serve(s.bound[0], false)
	s.serve(s.bound[1], true)
	s.bound = [2]acceptor{}
}

func newQueryServer(d *Daemon) *QueryServer {
	return &QueryServer{
		d: d, done: make(chan struct{}),
		perUser: MaxQueryConnsPerUser, global: MaxQueryConns, idle: QueryIdleTimeout,
		peerCred: dlmc.PeerCred, refuseSlots: make(chan struct{}, 32),
		byUID:   map[uint32]int{},
		limited: rateLimiter{every: 10 * time.Second}, failing: rateLimiter{every: 10 * time.Second},
	}
}

// serve starts the accept loop of ln.
func (s *QueryServer) serve(ln acceptor, stream bool) {
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	go s.accept(ln, stream)
}

// Close stops serving.
func (s *QueryServer) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, ln := range s.bound { // bound but never served
		if ln != nil {
			ln.Close()
		}
	}
	s.wg.Wait()
	return nil
}

// Accept's backoff after an error: doubled from the first to the last.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// accept serves ln's connections until Close. An error other than the
// listener's closing (out of file descriptors, a connection aborted
// before it was accepted) is waited out with a growing pause and
// logged, at most every few seconds, with how many happened since.
func (s *QueryServer) accept(ln acceptor, stream bool) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			if n, ok := s.failing.allow(time.Now()); ok {
				s.d.log.Error("query socket: accept failed; retrying", "err", err, "retry_in", backoff, "errors_since_last_report", n)
			}
			select {
			case <-time.After(backoff):
			case <-s.done:
				return
			}
			continue
		}
		backoff = 0
		s.admit(c, stream)
	}
}

// admit takes a connection in if its user is within the limits, or
// refuses it.
func (s *QueryServer) admit(c *net.UnixConn, stream bool) {
	cred, err := s.peerCred(c)
	if err != nil {
		s.d.log.Warn("query connection without credentials refused", "err", err)
		c.Close()
		return
	}
	if why := s.take(cred.Uid); why != "" {
		if n, ok := s.limited.allow(time.Now()); ok {
			s.d.log.Warn("query connection refused: "+why, "uid", cred.Uid, "pid", cred.Pid, "refused_since_last_report", n)
		}
		select {
		case s.refuseSlots <- struct{}{}:
			go s.refuse(c, why)
		default:
			c.Close()
		}
		return
	}
	go func() {
		defer s.release(cred.Uid)
		s.conn(c, cred, stream)
	}()
}

// take counts a connection of uid, or says why it may not have one.
func (s *QueryServer) take(uid uint32) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUID[uid] >= s.perUser {
		return fmt.Sprintf("uid %d already has %d connections open (limit %d)", uid, s.byUID[uid], s.perUser)
	}
	if uid != 0 && s.unpriv >= s.global {
		return fmt.Sprintf("unprivileged users already have %d connections open (limit %d)", s.unpriv, s.global)
	}
	s.byUID[uid]++
	if uid != 0 {
		s.unpriv++
	}
	return ""
}

func (s *QueryServer) release(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUID[uid]--; s.byUID[uid] <= 0 {
		delete(s.byUID, uid)
	}
	if uid != 0 {
		s.unpriv--
	}
}

// refuseTimeout bounds how long a refused connection may take to send
// its request's header.
const refuseTimeout = time.Second

// refuse answers a refused connection's request with EUSERS and the
// reason, so its client can say why, then closes it.
func (s *QueryServer) refuse(c *net.UnixConn, why string) {
	defer func() { <-s.refuseSlots }()
	defer c.Close()
	c.SetDeadline(time.Now().Add(refuseTimeout))
	var buf [dlmc.HeaderSize]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return
	}
	h, err := dlmc.ParseHeader(buf[:])
	if err != nil {
		return
	}
	reply(c, h, -int32(syscall.EUSERS), []byte("too many connections: "+why))
}

func (s *QueryServer) conn(c *net.UnixConn, cred *unix.Ucred, stream bool) {
	defer c.Close()
	for {
		c.SetReadDeadline(time.Now().Add(s.idle))
		h, payload, err := dlmc.ReadRequest(c, MaxRequestPayload)
		if err != nil {
			switch {
			case errors.Is(err, dlmc.ErrTooLarge) && h.Command != 0:
				s.d.log.Warn("request too large on the query socket", "pid", cred.Pid, "uid", cred.Uid, "err", err)
				reply(replyWriter{c, replyTimeout}, h, -int32(syscall.EMSGSIZE),
					[]byte(fmt.Sprintf("request payload of %d bytes, limit %d", h.PayloadLen(), MaxRequestPayload)))
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.d.log.Debug("idle query connection closed", "pid", cred.Pid, "uid", cred.Uid)
			case !errors.Is(err, io.EOF):
				s.d.log.Warn("bad request on the query socket", "pid", cred.Pid, "uid", cred.Uid, "err", err)
			}
			return
		}
		c.SetReadDeadline(time.Time{})
		if err := s.dispatch(replyWriter{c, replyTimeout}, cred, h, payload); err != nil {
			s.d.log.Debug("query reply failed", "command", h.Command, "err", err)
			return
		}
		if !stream || h.Command == dlmc.DumpStatus {
			return
		}
	}
}

// rateLimiter lets one report through per period and counts the ones it
// held back.
type rateLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	held  int
}

// allow tells whether to report now, and how many reports were held
// back since the last one.
func (r *rateLimiter) allow(now time.Time) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.held++
		return 0, false
	}
	n := r.held
	r.last, r.held = now, 0
	return n, true
}

// replyTimeout bounds each write of a reply to a client that does not
// read it.
const replyTimeout = 30 * time.Second

// replyWriter writes a reply to a query connection, each write with its
// own deadline, counted from the write: a request may wait a long time
// for the kernel first (a leave while the lockspace recovers waited
// 190 s in the lab), and its client, still waiting, must get the
// answer rather than a closed connection.
type replyWriter struct {
	c       *net.UnixConn
	timeout time.Duration
}

func (w replyWriter) Write(b []byte) (int, error) {
	if err := w.c.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	return w.c.Write(b)
}

// mutating tells which commands change state and so need root.
func mutating(cmd dlmc.Command) bool {
	switch cmd {
	case dlmc.Join, dlmc.Leave, dlmc.FenceAck, dlmc.FSRegister, dlmc.FSUnregister, dlmc.FSNotified,
		dlmc.RunStart, dlmc.ReloadConfig, dlmc.SetConfig, dlmc.DeadlockCheck:
		return true
	}
	return false
}

func reply(w io.Writer, req dlmc.Header, data int32, payload []byte) error {
	return dlmc.WriteMessage(w, dlmc.Header{Command: req.Command, Option: req.Option, Data: data, Name: req.Name}, payload)
}

func (s *QueryServer) dispatch(w io.Writer, cred *unix.Ucred, h dlmc.Header, payload []byte) error {
	d := s.d
	if mutating(h.Command) && cred.Uid != 0 {
		d.log.Warn("refused a request from a non-root user", "command", h.Command, "lockspace", h.Name, "uid", cred.Uid, "pid", cred.Pid)
		return reply(w, h, -int32(syscall.EPERM), []byte("permission denied: "+strings.ToLower(h.Command.String())+" needs root"))
	}
	switch h.Command {
	case dlmc.DumpDebug:
		return reply(w, h, 0, []byte(d.ring.String()))
	case dlmc.DumpConfig:
		var b strings.Builder
		d.cfg.Dump(&b)
		return reply(w, h, 0, []byte(b.String()))
	case dlmc.DumpLogPlock:
		return dlmc.WriteMessage(w, dlmc.Header{Command: dlmc.DumpDebug}, nil)
	case dlmc.DumpPlocks:
		if d.find(h.Name) == nil {
			return reply(w, h, -int32(syscall.ENOENT), nil)
		}
		return reply(w, h, 0, nil)
	case dlmc.Lockspaces:
		all := d.Snapshot()
		n := int(h.Data)
		data := int32(len(all))
		if n > 0 && len(all) > n {
			all, data = all[:n], -int32(syscall.E2BIG)
		}
		var b []byte
		for _, l := range all {
			b = dlmc.AppendLockspace(b, d.dlmcLockspace(l))
		}
		return reply(w, h, data, b)
	case dlmc.LockspaceInfo:
		l := d.find(h.Name)
		if l == nil {
			return reply(w, h, -int32(syscall.ENOENT), nil)
		}
		return reply(w, h, 0, dlmc.AppendLockspace(nil, d.dlmcLockspace(*l)))
	case dlmc.LockspaceNodes:
		l := d.find(h.Name)
		if l == nil {
			return reply(w, h, -int32(syscall.ENOENT), nil)
		}
		var b []byte
		count := int32(0)
		ids := l.Members
		if h.Option == dlmc.NodesNext {
			ids = l.Next
		}
		for _, id := range ids {
			if h.Data > 0 && count == h.Data {
				return reply(w, h, -int32(syscall.E2BIG), b)
			}
			b = dlmc.AppendNode(b, dlmcNode(*l, id))
			count++
		}
		return reply(w, h, count, b)
	case dlmc.NodeInfo:
		l := d.find(h.Name)
		if l == nil || !slices.Contains(l.Members, int(h.Data)) {
			return reply(w, h, -int32(syscall.ENOENT), nil)
		}
		return reply(w, h, 0, dlmc.AppendNode(nil, dlmcNode(*l, int(h.Data))))
	case dlmc.DumpStatus:
		// A stream of state records, no header, ended by closing.
		_, err := w.Write(d.status())
		return err
	case dlmc.Join:
		rv, msg := d.joinFromClient(h.Name, libdlm.LockspaceFlags(h.Option), uint32(h.Data), cred)
		return reply(w, h, rv, []byte(msg))
	case dlmc.Leave:
		rv, msg := d.leaveFromClient(h.Name, h.Option == 1, cred)
		return reply(w, h, rv, []byte(msg))
	case dlmc.FenceAck:
		rv, msg := d.fenceAck(h.Name, cred)
		if h.Option&dlmc.FenceAckReply == 0 {
			return nil // the reference's clients expect no reply
		}
		return reply(w, h, rv, []byte(msg))
	case dlmc.FSUnregister:
		return nil
	}
	return reply(w, h, -int32(syscall.EOPNOTSUPP), []byte(h.Command.String()+" is not supported"))
}

func (d *Daemon) find(name string) *Lockspace {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eng == nil {
		return nil
	}
	if l, ok := d.eng.Local(name); ok {
		c := d.describe(l)
		return &c
	}
	return nil
}

func (d *Daemon) dlmcLockspace(l Lockspace) dlmc.Lockspace {
	out := dlmc.Lockspace{GlobalID: l.GlobalID, Name: l.Name}
	done := dlmc.Change{
		MemberCount: int32(len(l.Members)), JoinedCount: 1,
		Seq: l.Seq, CombinedSeq: l.Seq,
	}
	switch l.State {
	case StateJoining:
		out.Flags |= dlmc.LFJoining
	case StateLeaving:
		out.Flags |= dlmc.LFLeaving
	}
	if l.Seq > 0 {
		out.Prev = done
	}
	if l.Next != nil {
		out.Next = dlmc.Change{MemberCount: int32(len(l.Next)), Seq: uint32(l.Change), CombinedSeq: uint32(l.Change),
			WaitMessages: 1, WaitCondition: int32(len(l.Waiting))}
	}
	return out
}

func dlmcNode(l Lockspace, id int) dlmc.Node {
	return dlmc.Node{NodeID: int32(id), Flags: dlmc.NFMember | dlmc.NFStart, AddedSeq: l.AddedSeq}
}

// status is the DUMP_STATUS stream: the daemon, each configured node,
// then (godlm's addition) each lockspace's change state.
func (d *Daemon) status() []byte {
	now := int(time.Since(d.started).Seconds())
	var cs cluster.Status
	// The query sockets listen before Setup starts the cluster layer.
	d.mu.Lock()
	cl := d.cl
	d.mu.Unlock()
	if cl != nil {
		cs = cl.Status()
	}
	q := 0
	if cs.Quorate {
		q = 1
	}
	b := dlmc.AppendState(nil, dlmc.State{
		Type: dlmc.StateDaemon, NodeID: int32(d.nodeID),
		Str: fmt.Sprintf("member_count=%d joined_count=%d remove_count=0 daemon_ringid=%d cluster_ringid=%d quorate=%d "+
			"fence_pid=0 fence_in_progress_unknown=0 zombie_count=0 monotime=%d stateful_merge_wait=0 "+
			"cluster_protocol=%s leader=%d term=%d incarnation=%d expected_votes=%d timeout_ms=%d ",
			len(cs.Members), len(cs.Members), cs.Applied, cs.Applied, q, now,
			cs.Protocol, cs.Leader, cs.Term, cs.Self.Incarnation, len(cs.Voters), cs.Timeout.Milliseconds()),
	})
	peers := map[int]cluster.Peer{}
	for _, p := range cs.Peers {
		peers[p.ID] = p
	}
	fences := d.fenceStatus()
	for _, n := range d.cfg.Nodes {
		member, inc := 0, uint64(0)
		for _, m := range cs.Members {
			if m.ID == n.ID {
				member, inc = 1, m.Incarnation
			}
		}
		extra := fmt.Sprintf("incarnation=%d ", inc)
		if p, ok := peers[n.ID]; ok {
			c := 0
			if p.Connected {
				c = 1
			}
			extra += fmt.Sprintf("connected=%d last_heard_ms=%d ", c, p.LastHeard.Milliseconds())
		}
		fs := fences[n.ID]
		b = dlmc.AppendState(b, dlmc.State{
			Type: dlmc.StateDaemonNode, NodeID: int32(n.ID),
			Str: fmt.Sprintf("member=%d killed=0 left_reason=%s need_fencing=%d delay_fencing=0 fence_pid=0 fence_pid_wait=0 "+
				"fence_result_wait=0 fence_actor_last=%d fence_actor_done=%d add_time=0 rem_time=0 fail_walltime=%d "+
				"fail_monotime=0 fence_walltime=%d fence_monotime=0 %s%s",
				member, fs.reason, fs.need, fs.actor, fs.doneBy, fs.since, fs.fencedAt, extra, fs.extra),
		})
	}
	for _, l := range d.Snapshot() {
		b = dlmc.AppendState(b, dlmc.State{
			Type: dlmc.StateLockspace,
			Str: fmt.Sprintf("name=%s state=%s change=%d started=%d members=%s next=%s waiting=%s wait_fencing=%s ",
				l.Name, l.State, l.Change, l.Seq, idList(l.Members), idList(l.Next), idList(l.Waiting), idList(l.WaitFencing)),
		})
	}
	return b
}

// nodeFence is one node's fencing, as DUMP_STATUS reports it.
type nodeFence struct {
	reason   string // the reference's left_reason field: 0, or why it must be fenced
	need     int
	actor    int
	doneBy   int
	since    int64 // unix seconds since fencing is pending, as fail_walltime
	fencedAt int64
	extra    string
}

// fenceStatus reports every node's fencing: pending ones with their
// actor, attempts and last error; done ones with who fenced them.
func (d *Daemon) fenceStatus() map[int]nodeFence {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[int]nodeFence{}
	st := d.rep.Fence
	for _, n := range d.cfg.Nodes {
		nf := nodeFence{reason: "0"}
		if o, ok := st.Done[n.ID]; ok {
			nf.doneBy = o.By
			nf.extra = fmt.Sprintf("fence_how=%s ", o.How)
		}
		if r := st.Pending[n.ID]; r != nil {
			nf.reason, nf.need, nf.actor = map[fence.Reason]string{fence.ReasonFailed: "nodedown", fence.ReasonStartup: "startup"}[r.Reason], 1, st.Actor(n.ID)
			if f := d.fencing.fencer; f != nil {
				if t, ok := f.Since(n.ID, r.FailSeq); ok {
					nf.since = t.Unix()
				}
			}
			nf.extra = fmt.Sprintf("fence_attempts=%d fence_rounds=%d fence_error=%s ", r.Attempts, r.Rounds, quoteWord(r.LastError))
		}
		out[n.ID] = nf
	}
	return out
}

// quoteWord quotes s as one word of a status text: a Go string literal
// with its spaces escaped, so the text still splits on spaces.
func quoteWord(s string) string {
	return strings.ReplaceAll(strconv.Quote(s), " ", `\x20`)
}

// idList is ids joined by commas, or "-" when there are none.
func idList(ids []int) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

func errnoOf(err error) int32 {
	var e syscall.Errno
	if errors.As(err, &e) {
		return -int32(e)
	}
	switch {
	case errors.Is(err, libdlm.ErrInvalidName), errors.Is(err, configfs.ErrInvalid):
		return -int32(syscall.EINVAL)
	case errors.Is(err, libdlm.ErrNoLockspace):
		return -int32(syscall.ENOENT)
	}
	return -int32(syscall.EIO)
}

// joinFromClient creates (or joins) a userspace lockspace for a client,
// as the reference's dlm_tool does with libdlm. The kernel sends this
// daemon the online uevent and waits for it, so the create runs apart
// from the uevent loop.
func (d *Daemon) joinFromClient(name string, flags libdlm.LockspaceFlags, mode uint32, cred *unix.Ucred) (int32, string) {
	d.log.Info("join requested", "lockspace", name, "pid", cred.Pid)
	return d.withControl("join", name, func(ctl *libdlm.Control) error {
		if _, err := ctl.Create(name, flags&(libdlm.LSFlagFS|libdlm.LSFlagNewExcl)); err != nil {
			return err
		}
		if mode == 0 {
			mode = 0o600
		}
		d.chmodDevice(name, os.FileMode(mode&0o777))
		return nil
	})
}

// withControl runs f on the control device for a client's request on
// lockspace name, and turns its error into the reply's errno and text.
func (d *Daemon) withControl(op, name string, f func(*libdlm.Control) error) (int32, string) {
	if err := libdlm.ValidateLockspaceName(name); err != nil {
		return errnoOf(err), err.Error()
	}
	ctl, err := d.openControl()
	if err == nil {
		err = f(ctl)
		ctl.Close()
	}
	if err != nil {
		d.log.Warn(op+" request failed", "lockspace", name, "err", err)
		return errnoOf(err), err.Error()
	}
	return 0, ""
}

// chmodDevice gives the lockspace's device node the requested mode, as
// libdlm does for its creator; the node appears shortly after the create.
func (d *Daemon) chmodDevice(name string, mode os.FileMode) {
	paths := []string{filepath.Join(d.k.Root(), "dev/misc/dlm_"+name), filepath.Join(d.k.Root(), "dev/dlm_"+name)}
	deadline := time.Now().Add(2 * time.Second)
	for {
		done := 0
		for _, p := range paths {
			if err := os.Chmod(p, mode); err == nil {
				done++
			}
		}
		if done == len(paths) || time.Now().After(deadline) {
			if done == 0 {
				d.log.Debug("lockspace device node not found to set its mode", "lockspace", name)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *Daemon) leaveFromClient(name string, force bool, cred *unix.Ucred) (int32, string) {
	d.log.Info("leave requested", "lockspace", name, "pid", cred.Pid, "force", force)
	return d.withControl("leave", name, func(ctl *libdlm.Control) error {
		err := ctl.Remove(name, force)
		if errors.Is(err, syscall.EBUSY) {
			err = fmt.Errorf("lockspace %s still has locks; leave with force to free them: %w", name, err)
		}
		return err
	})
}
