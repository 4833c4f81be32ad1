package libdlm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Result is how a request, conversion or unlock ended: what the kernel
// put in the lock status block.
type Result struct {
	// Err is nil when the request or conversion was granted or the
	// unlock done; otherwise ErrWouldBlock, ErrCancelled, ErrDeadlock...
	Err error
	// LockID is the kernel's lock id.
	LockID uint32
	// Mode is the mode granted after this completion (ModeIV: none).
	Mode Mode
	// Demoted: a ConvDeadlk conversion was demoted to NL.
	Demoted bool
	// ValueNotValid: the value block is not valid.
	ValueNotValid bool
	// AltMode: the alternate mode of AltPR or AltCW was granted.
	AltMode bool
	// LVB is the lock's value block after this completion (nil for a
	// lock without one).
	LVB []byte
}

type opKind int

const (
	opLock opKind = iota
	opConvert
	opUnlock
)

func (k opKind) String() string { return [...]string{"lock", "convert", "unlock"}[k] }

type pendingOp struct {
	kind  opKind
	mode  Mode
	flags Flags
	sync  bool         // a synchronous caller waits for it
	done  func(Result) // asynchronous callers

	// A synchronous caller usually finds its answer by reading the
	// device itself, right after its write; it parks on ch only when
	// the answer is not there yet. res is written before fin is set,
	// and ch is created and taken under the lock's mutex.
	res Result
	fin atomic.Bool
	ch  chan Result
}

// Lock is one lock on a resource. Its methods are safe for concurrent
// use; the kernel allows one request or conversion in progress at a
// time, plus a cancel or forced unlock.
type Lock struct {
	ls     *Lockspace
	name   string
	token  uint64
	hasLVB bool
	bast   func(Mode)
	parent *Lock

	mu       sync.Mutex
	id       uint32
	granted  Mode
	lvb      [LVBLen]byte
	lvbValid bool
	pending  []*pendingOp
	gone     bool // unlocked, never granted, or lost with the handle
	children int

	// Storage for the common case, to spare allocations on the lock
	// path: the first request's operation, the first synchronous
	// unlock's, and room for one pending operation.
	first    pendingOp
	last     pendingOp
	lastUsed bool
	pendBuf  [1]*pendingOp
}

// LockOption configures a lock request.
type LockOption func(*Lock)

// WithBlockingCallback registers f to be called when this lock blocks
// another node's or process's request; f gets the mode that request
// asks for. It runs on the lockspace's callback goroutine.
func WithBlockingCallback(f func(blocked Mode)) LockOption {
	return func(l *Lock) { l.bast = f }
}

func checkResourceName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: resource name of %d bytes; it must be 1 to %d", ErrInvalidArgument, len(name), MaxNameLen)
	}
	return nil
}

// newLock registers a lock with its token.
func (ls *Lockspace) newLock(name string, flags Flags, opts []LockOption) (*Lock, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed.Load() {
		return nil, ErrClosed
	}
	ls.nextToken++
	l := &Lock{ls: ls, name: name, token: ls.nextToken, hasLVB: flags&ValBlk != 0, granted: ModeIV}
	l.pending = l.pendBuf[:0]
	for _, o := range opts {
		o(l)
	}
	ls.locks[l.token] = l
	if l.bast != nil { // its blocking callbacks can come at any time
		ls.need++
		ls.needCond.Signal()
	}
	return l, nil
}

func (ls *Lockspace) forget(l *Lock) {
	ls.mu.Lock()
	if ls.locks[l.token] == l {
		delete(ls.locks, l.token)
		if l.bast != nil {
			ls.need--
		}
	}
	ls.mu.Unlock()
}

// LockAsync requests a lock on the resource name in mode and returns at
// once; done gets the Result when the kernel answers (on the callback
// goroutine). With ValBlk the lock has a value block, read on grant.
// With Orphan it adopts an orphaned Persistent lock of this resource and
// mode instead, which completes before LockAsync returns.
func (ls *Lockspace) LockAsync(name string, mode Mode, flags Flags, done func(Result), opts ...LockOption) (*Lock, error) {
	return ls.lock(name, mode, flags, false, done, opts)
}

// Lock requests a lock on the resource name in mode and waits until it
// is granted. If ctx ends first, the request is cancelled in the kernel
// and Lock returns once the kernel has answered: with an error that
// matches both ErrCancelled and ctx.Err(), or, if the grant won the
// race, with the lock.
func (ls *Lockspace) Lock(ctx context.Context, name string, mode Mode, flags Flags, opts ...LockOption) (*Lock, error) {
	l, err := ls.lock(name, mode, flags, true, nil, opts)
	if err != nil {
		return nil, err
	}
	if flags&Orphan != 0 {
		return l, nil
	}
	if r := l.wait(ctx, &l.first); r.Err != nil {
		return nil, &OpError{Op: "lock", Resource: name, Err: r.Err}
	}
	return l, nil
}

func (ls *Lockspace) lock(name string, mode Mode, flags Flags, sync bool, done func(Result), opts []LockOption) (*Lock, error) {
	if err := checkResourceName(name); err != nil {
		return nil, &OpError{Op: "lock", Resource: name, Err: err}
	}
	if err := checkLock(mode, flags, false, false); err != nil {
		return nil, &OpError{Op: "lock", Resource: name, Err: err}
	}
	l, err := ls.newLock(name, flags, opts)
	if err != nil {
		return nil, &OpError{Op: "lock", Resource: name, Err: err}
	}
	orphan := flags&Orphan != 0
	op := &l.first
	op.kind, op.mode, op.flags, op.sync, op.done = opLock, mode, flags, sync, done
	l.mu.Lock()
	if !orphan {
		l.pending = append(l.pending, op)
		op.register(ls)
	}
	req := lockRequest{mode: mode, flags: flags, token: l.token, bast: l.bast != nil, name: name}
	if l.hasLVB {
		req.lvb = &l.lvb
	}
	b := req.encode()
	l.mu.Unlock()
	// The completion may arrive before write returns: it is registered.
	lkid, err := ls.write(b)
	if err != nil {
		ls.forget(l)
		if flags&Notify != 0 {
			if nerr := notifyError(err, true); nerr != err {
				return nil, &OpError{Op: "lock", Resource: name, Err: nerr}
			}
		}
		return nil, &OpError{Op: "lock", Resource: name, Err: writeError(err)}
	}
	l.mu.Lock()
	if l.id == 0 {
		l.id = uint32(lkid)
	}
	if orphan { // adopted at once; no callback follows
		l.granted = mode
	}
	l.mu.Unlock()
	return l, nil
}

// wait waits for op's completion; if ctx ends first it cancels the
// operation in the kernel and waits for the kernel's answer, which then
// matches ctx.Err() too if it is ErrCancelled.
func (l *Lock) wait(ctx context.Context, op *pendingOp) Result {
	r, _ := l.await(ctx, op, true) // cancelling, it never gives up
	if errors.Is(r.Err, ErrCancelled) && ctx.Err() != nil {
		r.Err = fmt.Errorf("%w: %w", ErrCancelled, ctx.Err())
	}
	return r
}

// await waits for op, a synchronous operation of l: it reads the device
// itself while nobody else does (readUntil), and otherwise parks until
// the reader goroutine delivers the answer. If ctx ends first, it
// cancels op in the kernel and goes on waiting for the answer (cancel
// set), or gives up and returns ctx.Err() (an unlock, which cannot be
// cancelled, completes in the kernel all the same).
func (l *Lock) await(ctx context.Context, op *pendingOp, cancel bool) (Result, error) {
	r, err := l.readUntil(ctx, op, cancel)
	if err == nil {
		return r, nil
	}
	if errors.Is(err, errGaveUp) {
		return Result{}, ctx.Err()
	}
	ch, r, ok := l.answer(op)
	if ok {
		return r, nil
	}
	l.ls.addNeed(1)
	defer l.ls.addNeed(-1)
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
	}
	if !cancel {
		return Result{}, ctx.Err()
	}
	l.Cancel() // if it cannot be cancelled, its completion still comes
	return <-ch, nil
}

// readUntil waits for op by reading the device in the caller, as long
// as nobody else is reading it (see Lockspace.readUntil); it returns
// ErrBusy at once if somebody is.
func (l *Lock) readUntil(ctx context.Context, op *pendingOp, cancel bool) (Result, error) {
	if op.fin.Load() {
		return op.res, nil
	}
	if !l.ls.rmu.TryLock() {
		return Result{}, ErrBusy
	}
	defer l.ls.rmu.Unlock()
	return l.ls.readUntil(ctx, l, op, cancel)
}

// answer returns op's result if the kernel has answered, reading the
// callbacks already queued; otherwise the channel it will come on.
func (l *Lock) answer(op *pendingOp) (chan Result, Result, bool) {
	l.ls.poll(l, op)
	if op.fin.Load() {
		return nil, op.res, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if op.fin.Load() {
		return nil, op.res, true
	}
	op.ch = make(chan Result, 1)
	return op.ch, Result{}, false
}

// Name is the resource name.
func (l *Lock) Name() string { return l.name }

// ID is the kernel's lock id (0 before the kernel accepted the request).
func (l *Lock) ID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}

// Mode is the mode granted now (ModeIV while the request waits).
func (l *Lock) Mode() Mode {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.granted
}

// LVB returns a copy of the lock's value block as last read or set, and
// whether it is valid; nil for a lock requested without ValBlk.
func (l *Lock) LVB() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.hasLVB {
		return nil, false
	}
	return append([]byte(nil), l.lvb[:]...), l.lvbValid
}

// SetLVB sets the value the next down-conversion from PW or EX, or
// unlock, with ValBlk writes to the resource. At most LVBLen bytes; the
// rest is zeroed.
func (l *Lock) SetLVB(b []byte) error {
	if len(b) > LVBLen {
		return fmt.Errorf("libdlm: %w: value block of %d bytes; the limit is %d", ErrInvalidArgument, len(b), LVBLen)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.hasLVB {
		return fmt.Errorf("libdlm: %w: lock %q was requested without ValBlk", ErrInvalidArgument, l.name)
	}
	l.lvb = [LVBLen]byte{}
	copy(l.lvb[:], b)
	l.lvbValid = true
	return nil
}

// ConvertAsync asks for a conversion to mode; done gets the Result.
func (l *Lock) ConvertAsync(mode Mode, flags Flags, done func(Result)) error {
	return l.convert(mode, flags, &pendingOp{kind: opConvert, mode: mode, flags: flags, done: done})
}

// Convert changes the lock's mode and waits for the kernel's answer.
// A failed conversion (ErrWouldBlock, ErrDeadlock, cancelled) leaves the
// lock in its previous mode. ctx works as for Lockspace.Lock.
func (l *Lock) Convert(ctx context.Context, mode Mode, flags Flags) error {
	op := &pendingOp{kind: opConvert, mode: mode, flags: flags, sync: true}
	if err := l.convert(mode, flags, op); err != nil {
		return err
	}
	if r := l.wait(ctx, op); r.Err != nil {
		return &OpError{Op: "convert", Resource: l.name, Err: r.Err}
	}
	return nil
}

func (l *Lock) convert(mode Mode, flags Flags, op *pendingOp) error {
	flags |= Convert
	op.flags = flags
	if err := checkLock(mode, flags, true, l.hasLVB); err != nil {
		return &OpError{Op: "convert", Resource: l.name, Err: err}
	}
	l.mu.Lock()
	if l.gone {
		l.mu.Unlock()
		return &OpError{Op: "convert", Resource: l.name, Err: ErrUnlocked}
	}
	if len(l.pending) > 0 || l.granted == ModeIV {
		l.mu.Unlock()
		return &OpError{Op: "convert", Resource: l.name, Err: fmt.Errorf("%w: a request or conversion is in progress", ErrBusy)}
	}
	l.pending = append(l.pending, op)
	op.register(l.ls)
	req := lockRequest{mode: mode, flags: flags, lkid: l.id, token: l.token, bast: l.bast != nil, name: l.name}
	if l.hasLVB {
		req.lvb = &l.lvb
	}
	b := req.encode()
	l.mu.Unlock()
	if _, err := l.ls.write(b); err != nil {
		l.drop(op)
		return &OpError{Op: "convert", Resource: l.name, Err: writeError(err)}
	}
	return nil
}

// UnlockAsync unlocks; done gets the Result (Err nil when unlocked).
func (l *Lock) UnlockAsync(flags Flags, done func(Result)) error {
	_, err := l.unlock(flags, false, done)
	return err
}

// Unlock releases the lock and waits for the kernel. With ValBlk it
// writes the value set by SetLVB (if the lock is held in PW or EX).
// ForceUnlock releases it even while a request or conversion waits
// (which then ends with ErrCancelled).
func (l *Lock) Unlock(ctx context.Context, flags Flags) error {
	op, err := l.unlock(flags, true, nil)
	if err != nil {
		return err
	}
	r, err := l.await(ctx, op, false)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return &OpError{Op: "unlock", Resource: l.name, Err: err}
	}
	return nil
}

func (l *Lock) unlock(flags Flags, sync bool, done func(Result)) (*pendingOp, error) {
	if err := checkUnlock(flags, l.hasLVB); err != nil {
		return nil, &OpError{Op: "unlock", Resource: l.name, Err: err}
	}
	l.mu.Lock()
	if l.gone {
		l.mu.Unlock()
		return nil, &OpError{Op: "unlock", Resource: l.name, Err: ErrUnlocked}
	}
	if l.children > 0 {
		n := l.children
		l.mu.Unlock()
		return nil, &OpError{Op: "unlock", Resource: l.name, Err: fmt.Errorf("%w: %d child locks are still held", ErrBusy, n)}
	}
	if len(l.pending) > 0 && flags&ForceUnlock == 0 {
		l.mu.Unlock()
		return nil, &OpError{Op: "unlock", Resource: l.name, Err: fmt.Errorf("%w: a request or conversion is in progress (Cancel it, or use ForceUnlock)", ErrBusy)}
	}
	op := &l.last
	if !sync || l.lastUsed {
		op = new(pendingOp)
	} else {
		l.lastUsed = true
	}
	op.kind, op.flags, op.sync, op.done = opUnlock, flags, sync, done
	l.pending = append(l.pending, op)
	op.register(l.ls)
	var lvb *[LVBLen]byte
	if l.hasLVB {
		lvb = &l.lvb
	}
	b := unlockRequest(l.id, flags, l.token, lvb)
	l.mu.Unlock()
	if _, err := l.ls.write(b); err != nil {
		l.drop(op)
		return nil, &OpError{Op: "unlock", Resource: l.name, Err: writeError(err)}
	}
	return op, nil
}

// Cancel cancels the request or conversion in progress, which then ends
// with ErrCancelled — unless the kernel granted it first. With nothing to
// cancel it does nothing.
func (l *Lock) Cancel() error {
	l.mu.Lock()
	if l.gone || len(l.pending) == 0 || l.id == 0 {
		l.mu.Unlock()
		return nil
	}
	b := unlockRequest(l.id, cancelFlag, l.token, nil)
	l.mu.Unlock()
	if _, err := l.ls.write(b); err != nil {
		return &OpError{Op: "cancel", Resource: l.name, Err: writeError(err)}
	}
	return nil
}

// drop removes an operation whose write failed.
func (l *Lock) drop(op *pendingOp) {
	if !op.sync {
		l.ls.addNeed(-1)
	}
	l.mu.Lock()
	for i, p := range l.pending {
		if p == op {
			l.pending = append(l.pending[:i], l.pending[i+1:]...)
			break
		}
	}
	never := l.granted == ModeIV && len(l.pending) == 0
	l.mu.Unlock()
	if never {
		l.ls.forget(l)
	}
}

// blocking delivers a blocking callback.
func (l *Lock) blocking(m Mode) {
	if f := l.bast; f != nil {
		l.ls.cb.push(func() { f(m) })
	}
}

// complete applies a completion to the lock and hands its Result to
// the operation that waits for it.
func (l *Lock) complete(r astResult) {
	err := statusError(r.status)
	l.mu.Lock()
	// An EUNLOCK answers the unlock; anything else the oldest request or
	// conversion.
	idx := -1
	for i, p := range l.pending {
		if (p.kind == opUnlock) == errors.Is(err, ErrUnlocked) {
			idx = i
			break
		}
	}
	if idx < 0 {
		l.mu.Unlock()
		return
	}
	op := l.pending[idx]
	l.pending = append(l.pending[:idx], l.pending[idx+1:]...)
	if r.lkid != 0 {
		l.id = r.lkid
	}
	res := Result{LockID: l.id}
	switch op.kind {
	case opLock, opConvert:
		// DEMOTED: a ConvDeadlk conversion was demoted to NL on its way;
		// granted, it holds the mode asked for, otherwise NL.
		if r.sbFlags&SBDemoted != 0 {
			res.Demoted = true
			l.granted = ModeNL
		}
		if err == nil {
			l.granted = op.mode
			if r.sbFlags&SBAltMode != 0 {
				res.AltMode = true
				switch op.mode {
				case ModePR:
					l.granted = ModeCW
				case ModeCW:
					l.granted = ModePR
				}
			}
		}
		if r.lvb != nil {
			copy(l.lvb[:], r.lvb)
			l.lvbValid = r.sbFlags&SBValNotValid == 0
		}
		if r.sbFlags&SBValNotValid != 0 {
			l.lvbValid = false
		}
		res.ValueNotValid = r.sbFlags&SBValNotValid != 0
		if op.kind == opLock && err != nil && l.granted == ModeIV {
			l.gone = true // never granted: this lock id is dead
		}
	case opUnlock:
		err = nil
		l.gone, l.granted = true, ModeIV
	}
	res.Err, res.Mode = err, l.granted
	if l.hasLVB {
		res.LVB = append([]byte(nil), l.lvb[:]...)
	}
	gone := l.gone && len(l.pending) == 0
	var parent *Lock
	if op.kind == opUnlock { // a failed request is uncounted by Child
		parent, l.parent = l.parent, nil
	}
	ch := op.finish(res)
	l.mu.Unlock()
	if gone {
		l.ls.forget(l)
		if parent != nil {
			parent.mu.Lock()
			parent.children--
			parent.mu.Unlock()
		}
	}
	op.deliver(l.ls, ch, res)
}

// finish records op's result for a synchronous caller and returns the
// channel it parked on, if it did. Called with the lock's mutex held.
func (op *pendingOp) finish(r Result) chan Result {
	if !op.sync {
		return nil
	}
	op.res = r
	op.fin.Store(true)
	return op.ch
}

// deliver hands a finished operation's result to its caller: on ch to
// a parked synchronous caller, or to an asynchronous one's callback.
func (op *pendingOp) deliver(ls *Lockspace, ch chan Result, r Result) {
	if op.sync {
		if ch != nil {
			ch <- r
		}
		return
	}
	ls.addNeed(-1)
	if op.done != nil {
		ls.cb.push(func() { op.done(r) })
	}
}

// register counts an asynchronous operation as needing the reader.
func (op *pendingOp) register(ls *Lockspace) {
	if !op.sync {
		ls.addNeed(1)
	}
}

// abort ends every waiting operation, when the handle closes.
func (l *Lock) abort(err error) {
	r := Result{Err: err, Mode: ModeIV}
	l.mu.Lock()
	ops := l.pending
	l.pending = nil
	l.gone, l.granted = true, ModeIV
	chs := make([]chan Result, len(ops))
	for i, op := range ops {
		chs[i] = op.finish(r)
	}
	l.mu.Unlock()
	for i, op := range ops {
		op.deliver(l.ls, chs[i], r)
	}
}
