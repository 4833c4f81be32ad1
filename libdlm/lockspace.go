package libdlm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godlm/godlm/libdlm/internal/uapi"
)

// Lockspace is an open handle on a kernel lockspace, through its device
// /dev/misc/dlm_<name>. It is safe for concurrent use. Synchronous
// calls read their own answers from the device; one goroutine reads the
// callbacks nobody else is waiting for (asynchronous results, blocking
// callbacks), and another runs the caller's callbacks, in order, so a
// callback may itself call the lockspace.
type Lockspace struct {
	name string
	root string
	// fd is the device, non-blocking and deliberately kept out of the Go
	// runtime's poller: registered there, every callback the kernel
	// queues would wake the poller's thread, which under emulation costs
	// more than the lock operation. The reader goroutine waits in
	// poll(2) instead, and only while something needs it.
	fd   int
	dev  Device       // what fd polls for: the kernel's device, or a fake
	efd  int          // eventfd that wakes every poller at Close
	wfd  int          // eventfd that wakes a caller polling the device, when its context ends
	fdmu sync.RWMutex // held shared around syscalls on fd, exclusively to close it

	// rmu serialises reading the device and delivering what was read, so
	// callbacks keep the kernel's order whoever reads: the reader
	// goroutine, or a synchronous caller, which reads its own answer
	// (already queued when its write returns, for a lock mastered here;
	// otherwise it polls the device for it) and so avoids goroutine
	// switches.
	rmu sync.Mutex
	buf []byte

	mu        sync.Mutex
	locks     map[uint64]*Lock // by token
	nextToken uint64
	// closed is set once, by Close, under mu (so that waiters on
	// needCond see it); the write path reads it without mu.
	closed atomic.Bool
	// failed holds the error that ended the device, once it failed: every
	// operation then fails with it.
	failed atomic.Pointer[error]
	// writes counts requests, so that write yields to the scheduler
	// every yieldEvery of them (see there).
	writes atomic.Uint32
	// need counts what waits for a callback nobody else will read: async
	// operations, locks with a blocking callback, synchronous callers
	// that found another reader holding the device. The reader goroutine
	// polls the device only while need > 0: polling, it would be woken
	// for every callback, which the synchronous callers read themselves.
	need     int
	needCond *sync.Cond

	readerDone chan struct{}
	cb         *callbackQueue
}

type lsOptions struct {
	root  string
	mode  os.FileMode
	flags LockspaceFlags
	lvb   int
	wait  time.Duration
}

// LockspaceOption configures NewLockspace and OpenLockspace.
type LockspaceOption func(*lsOptions)

// WithPermissions sets the lockspace device's permission bits on
// creation (default 0600): who may open it and take locks.
func WithPermissions(mode os.FileMode) LockspaceOption {
	return func(o *lsOptions) { o.mode = mode.Perm() }
}

// WithLockspaceFlags sets creation flags (LSFlagNewExcl, LSFlagFS,
// LSFlagNotify).
func WithLockspaceFlags(f LockspaceFlags) LockspaceOption {
	return func(o *lsOptions) { o.flags = f }
}

// WithLVBLen sets the lock value block length. Userspace lockspaces have
// LVBLen-byte value blocks, fixed by the kernel: any other length is
// refused.
func WithLVBLen(n int) LockspaceOption { return func(o *lsOptions) { o.lvb = n } }

// WithRoot makes the library look for /dev, /proc and /sys under root
// (for tests and containers).
func WithRoot(root string) LockspaceOption { return func(o *lsOptions) { o.root = root } }

func options(opts []LockspaceOption) lsOptions {
	o := lsOptions{root: "/", mode: 0o600, lvb: LVBLen, wait: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewLockspace creates the lockspace name, or joins it if it exists
// (unless WithLockspaceFlags(LSFlagNewExcl)), and opens it. It needs
// CAP_SYS_ADMIN and a running dlm_controld (ErrNoDaemon otherwise); the
// daemon joins the cluster's lockspace before this returns.
func NewLockspace(name string, opts ...LockspaceOption) (*Lockspace, error) {
	o := options(opts)
	if o.lvb != LVBLen {
		return nil, fmt.Errorf("libdlm: %w: value blocks of userspace lockspaces are %d bytes, not %d", ErrInvalidArgument, LVBLen, o.lvb)
	}
	if o.flags&^(LSFlagFS|LSFlagNewExcl|LSFlagNotify) != 0 {
		return nil, fmt.Errorf("libdlm: %w: lockspace flags %#x", ErrInvalidArgument, uint32(o.flags))
	}
	if err := ValidateLockspaceName(name); err != nil {
		return nil, err
	}
	ctl, err := OpenControl(o.root)
	if err != nil {
		return nil, err
	}
	minor, err := ctl.Create(name, o.flags)
	ctl.Close()
	if err != nil {
		return nil, err
	}
	ls, err := openDevice(name, minor, o)
	if err != nil {
		return nil, err
	}
	if err := fchmod(ls.fd, o.mode); err != nil {
		ls.Close()
		return nil, fmt.Errorf("libdlm: set permissions of lockspace %q: %w", name, err)
	}
	return ls, nil
}

// OpenLockspace opens an existing lockspace; it needs only permission on
// its device.
func OpenLockspace(name string, opts ...LockspaceOption) (*Lockspace, error) {
	o := options(opts)
	if err := ValidateLockspaceName(name); err != nil {
		return nil, err
	}
	minor, err := LockspaceMinor(o.root, name)
	if err != nil {
		return nil, err
	}
	return openDevice(name, minor, o)
}

// Device is what a Lockspace reads and writes: the kernel's lockspace
// device, /dev/misc/dlm_<name>, which NewLockspace and OpenLockspace
// open, or a fake of it (package dlmtest provides one).
type Device interface {
	// Fd returns a descriptor that poll(2) reports readable while a
	// callback is queued, and with POLLHUP or POLLERR once the device
	// has failed. It stays the same until Close.
	Fd() int
	// Write passes one request, as write(2) on the kernel's device does:
	// a lock request returns the new lock's id.
	Write(b []byte) (int, error)
	// Read copies one queued callback (a struct dlm_lock_result and its
	// value block) into b without waiting; with none queued it fails
	// with EAGAIN.
	Read(b []byte) (int, error)
	// Close closes the device: the kernel unlocks the locks taken
	// through it, except persistent ones, which become orphans.
	Close() error
}

// LockspaceOn returns a handle on the lockspace name that talks through
// dev, and takes dev over: Close closes it. NewLockspace and
// OpenLockspace use it with the kernel's device; tests use it with a
// fake one.
func LockspaceOn(name string, dev Device) (*Lockspace, error) {
	efd, err := newEventfd()
	if err != nil {
		return nil, fmt.Errorf("libdlm: open lockspace %q: %w", name, err)
	}
	wfd, err := newEventfd()
	if err != nil {
		closeFD(efd)
		return nil, fmt.Errorf("libdlm: open lockspace %q: %w", name, err)
	}
	ls := &Lockspace{name: name, root: "/", fd: dev.Fd(), dev: dev, efd: efd, wfd: wfd, buf: make([]byte, uapi.ResultSizeWithLV),
		locks: map[uint64]*Lock{}, readerDone: make(chan struct{}), cb: newCallbackQueue()}
	ls.needCond = sync.NewCond(&ls.mu)
	go ls.readLoop()
	return ls, nil
}

// Name is the lockspace's name.
func (ls *Lockspace) Name() string { return ls.name }

// Close closes the handle. The kernel unlocks every lock taken through
// it, except Persistent ones, which become orphans. Operations still
// waiting end with ErrClosed. Close waits for the library's goroutines
// to end, callbacks included (so do not call it from a callback).
func (ls *Lockspace) Close() error {
	ls.mu.Lock()
	if ls.closed.Load() {
		ls.mu.Unlock()
		return nil
	}
	ls.closed.Store(true)
	ls.needCond.Broadcast()
	ls.mu.Unlock()
	signal(ls.efd) // wakes the pollers
	<-ls.readerDone
	ls.fdmu.Lock()
	err := ls.dev.Close()
	closeFD(ls.efd)
	closeFD(ls.wfd)
	ls.fd = -1
	ls.fdmu.Unlock()
	ls.mu.Lock()
	locks := ls.locks
	ls.locks = map[uint64]*Lock{}
	ls.mu.Unlock()
	for _, l := range locks {
		l.abort(ErrClosed)
	}
	ls.cb.close()
	return err
}

// Release closes the handle and removes the lockspace (the kernel
// removes it once every creator has released it). Without force, a
// lockspace where locks remain is left in place with ErrBusy; with it,
// the kernel frees them.
func (ls *Lockspace) Release(force bool) error {
	if err := ls.Close(); err != nil {
		return err
	}
	ctl, err := OpenControl(ls.root)
	if err != nil {
		return err
	}
	defer ctl.Close()
	if err := ctl.Remove(ls.name, force); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return err
	}
	return nil
}

// Lockspaces lists the lockspaces the kernel has (of every user:
// filesystems and applications), from /sys/kernel/dlm.
func Lockspaces(opts ...LockspaceOption) ([]string, error) {
	o := options(opts)
	ents, err := os.ReadDir(filepath.Join(o.root, "sys/kernel/dlm"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("libdlm: %w", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// readLoop reads the kernel's callbacks while something needs them
// read in the background, until Close.
func (ls *Lockspace) readLoop() {
	defer close(ls.readerDone)
	for {
		ls.mu.Lock()
		for ls.need == 0 && !ls.closed.Load() {
			ls.needCond.Wait()
		}
		closed := ls.closed.Load()
		ls.mu.Unlock()
		if closed {
			return
		}
		// Wait a bounded time, so a need that ends is noticed.
		ev, err := waitDevice(ls.fd, ls.efd, -1, 1000)
		if err != nil {
			ls.fail(err)
			return
		}
		if ev.closed {
			return // Close
		}
		if ev.failed != nil {
			ls.fail(ev.failed)
			return
		}
		if ev.readable {
			// A caller polling the device itself holds rmu and delivers
			// what it reads; wait for it rather than spin on poll(2).
			ls.rmu.Lock()
			ls.drain(nil, nil)
			ls.rmu.Unlock()
		}
	}
}

// readQueued reads and delivers the callbacks queued now, without
// waiting, until done reports true or none is left; it reports false if
// another reader holds the device. A callback for hint (may be nil) is
// delivered to it without looking its token up.
func (ls *Lockspace) readQueued(done func() bool, hint *Lock) bool {
	if !ls.rmu.TryLock() {
		return false
	}
	defer ls.rmu.Unlock()
	ls.drain(done, hint)
	return true
}

// drain is readQueued with rmu held.
func (ls *Lockspace) drain(done func() bool, hint *Lock) {
	for done == nil || !done() {
		ls.fdmu.RLock()
		if ls.fd < 0 {
			ls.fdmu.RUnlock()
			return
		}
		n, err := ls.dev.Read(ls.buf)
		ls.fdmu.RUnlock()
		if err == errInterrupted {
			continue
		}
		if err == errNoneQueued {
			return
		}
		if err != nil {
			ls.fail(fmt.Errorf("read: %w", err))
			return
		}
		ls.deliver(ls.buf[:n], hint)
	}
}

// errGaveUp ends readUntil when the caller's context ended and its
// operation cannot be cancelled.
var errGaveUp = errors.New("libdlm: stopped waiting")

// readUntil waits for op, an operation of l, by polling and reading the
// device itself, as the C library's synchronous calls do: no other
// goroutine or thread is woken for the answer. It delivers whatever
// else it reads on the way. Called with rmu held. If ctx ends, it
// cancels op in the kernel (when cancel is set) and goes on waiting for
// the kernel's answer, or returns errGaveUp. It returns ErrClosed when
// the handle closes first; op then ends through Close.
func (ls *Lockspace) readUntil(ctx context.Context, l *Lock, op *pendingOp, cancel bool) (Result, error) {
	cancelled := false
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		// Usually the answer is already queued, and the first pass ends
		// here.
		ls.drain(op.fin.Load, l)
		if op.fin.Load() {
			return op.res, nil
		}
		if ctx.Err() != nil && !cancelled {
			if !cancel {
				return Result{}, errGaveUp
			}
			cancelled = true
			l.Cancel() // if it cannot be cancelled, its completion still comes
			continue
		}
		if stop == nil && ctx.Done() != nil && !cancelled {
			stop = context.AfterFunc(ctx, ls.wake)
		}
		ls.fdmu.RLock()
		if ls.fd < 0 {
			ls.fdmu.RUnlock()
			return Result{}, ErrClosed
		}
		ev, err := waitDevice(ls.fd, ls.efd, ls.wfd, -1)
		ls.fdmu.RUnlock()
		if err != nil {
			return Result{}, fmt.Errorf("libdlm: %w", err)
		}
		if ev.closed {
			return Result{}, ErrClosed
		}
		if ev.failed != nil {
			ls.fail(ev.failed)
			continue // op has its answer now: the failure
		}
	}
}

// wake interrupts a caller polling the device in readUntil.
func (ls *Lockspace) wake() {
	ls.fdmu.RLock()
	defer ls.fdmu.RUnlock()
	if ls.fd < 0 { // closed, and wfd with it
		return
	}
	signal(ls.wfd)
}

// addNeed changes the count of waiters that need the reader goroutine.
func (ls *Lockspace) addNeed(d int) {
	ls.mu.Lock()
	ls.need += d
	if d > 0 {
		ls.needCond.Signal()
	}
	ls.mu.Unlock()
}

// poll delivers the callbacks already queued, without waiting, until
// op, an operation of l, has its answer. A synchronous caller whose lock
// is mastered here finds it queued as soon as its write returns.
func (ls *Lockspace) poll(l *Lock, op *pendingOp) {
	ls.readQueued(op.fin.Load, l)
}

// deliver hands one callback read from the device to its lock (hint,
// if the token is its). Called with rmu held.
func (ls *Lockspace) deliver(b []byte, hint *Lock) {
	r, err := decodeResult(b)
	if err != nil {
		return // not ours: nothing to deliver it to
	}
	if r.lvb != nil {
		r.lvb = append([]byte(nil), r.lvb...)
	}
	l := hint
	if l == nil || l.token != r.token {
		ls.mu.Lock()
		l = ls.locks[r.token]
		ls.mu.Unlock()
	}
	if l == nil {
		return
	}
	if r.bast {
		l.blocking(r.bastMode)
	} else {
		l.complete(r)
	}
}

// yieldEvery is how many requests write lets pass between two yields
// to the Go scheduler.
const yieldEvery = 64

// write issues one request to the device and recycles its buffer.
//
// Every yieldEvery requests it yields to the Go scheduler first. A
// caller whose lock operations complete at once never blocks, so it
// never passes through the scheduler: after 10 ms the runtime's monitor
// takes it for a goroutine that has run too long, preempts it, and, if
// it finds it inside a syscall, hands its processor to another thread.
// That costs thread switches on every such round, and keeps the monitor
// waking every few tens of microseconds; in a one-CPU guest it cost a
// fifth of the uncontended lock rate. The yield shows the monitor the
// goroutine is being scheduled, at the cost of one scheduler pass per
// yieldEvery requests.
func (ls *Lockspace) write(b []byte) (int, error) {
	defer putReq(b)
	if ls.closed.Load() {
		return 0, ErrClosed
	}
	if ls.writes.Add(1)%yieldEvery == 0 {
		runtime.Gosched()
	}
	if err := ls.failed.Load(); err != nil {
		return 0, *err
	}
	ls.fdmu.RLock()
	defer ls.fdmu.RUnlock()
	if ls.fd < 0 {
		return 0, ErrClosed
	}
	return ls.dev.Write(b)
}

// fail ends the handle's use of a device that failed: every operation
// waiting for an answer ends with ErrDeviceFailed (nothing else will
// ever answer it), and so does every later request. The handle still
// needs Close.
func (ls *Lockspace) fail(cause error) {
	err := fmt.Errorf("libdlm: lockspace %q: %w: %w", ls.name, ErrDeviceFailed, cause)
	if !ls.failed.CompareAndSwap(nil, &err) {
		return
	}
	ls.mu.Lock()
	locks := make([]*Lock, 0, len(ls.locks))
	for _, l := range ls.locks {
		locks = append(locks, l)
	}
	ls.mu.Unlock()
	for _, l := range locks {
		l.abort(err)
	}
}

// callbackQueue runs the caller's callbacks on one goroutine, in the
// order the kernel delivered them.
type callbackQueue struct {
	mu   sync.Mutex
	cond *sync.Cond
	q    []func()
	done bool
	exit chan struct{}
}

func newCallbackQueue() *callbackQueue {
	c := &callbackQueue{exit: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

func (c *callbackQueue) push(f func()) {
	c.mu.Lock()
	c.q = append(c.q, f)
	c.mu.Unlock()
	c.cond.Signal()
}

func (c *callbackQueue) run() {
	defer close(c.exit)
	for {
		c.mu.Lock()
		for len(c.q) == 0 && !c.done {
			c.cond.Wait()
		}
		if len(c.q) == 0 {
			c.mu.Unlock()
			return
		}
		f := c.q[0]
		c.q = c.q[1:]
		c.mu.Unlock()
		f()
	}
}

// close runs what is queued, then stops.
func (c *callbackQueue) close() {
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	c.cond.Signal()
	<-c.exit
}
