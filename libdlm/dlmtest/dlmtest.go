//go:build linux

package dlmtest

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/godlm/godlm/libdlm"
	"github.com/godlm/godlm/libdlm/internal/uapi"
	"golang.org/x/sys/unix"
)

// Lockspace is a fake kernel lockspace.
type Lockspace struct {
	name string

	mu     sync.Mutex
	nextID uint32
	res    map[string]*resource
	locks  map[uint32]*lock // by id
}

type resource struct {
	name       string
	granted    []*lock
	converting []*lock
	waiting    []*lock
	lvb        [uapi.LVBLen]byte
	lvbInvalid bool
}

type lock struct {
	id  uint32
	dev *Device // nil for an orphan
	res *resource
	gr  libdlm.Mode // granted; ModeIV while a new request waits
	rq  libdlm.Mode // requested; ModeIV when nothing is pending

	flags      uint32 // of the pending request
	castParam  uint64
	castAddr   uint64
	bastParam  uint64
	bastAddr   uint64
	lksb       uint64
	hasLVB     bool
	lvb        [uapi.LVBLen]byte
	persistent bool
	highBast   libdlm.Mode // the highest mode a blocking callback was sent for
	demoted    bool        // ConvDeadlk demoted it while it waits
}

// NewLockspace returns an empty fake lockspace.
func NewLockspace(name string) *Lockspace {
	return &Lockspace{name: name, res: map[string]*resource{}, locks: map[uint32]*lock{}}
}

// Open opens a handle on the lockspace through a new fake device, and
// returns the device too, for Fail.
func (s *Lockspace) Open() (*libdlm.Lockspace, *Device, error) {
	d, err := s.OpenDevice()
	if err != nil {
		return nil, nil, err
	}
	ls, err := libdlm.LockspaceOn(s.name, d)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return ls, d, nil
}

// OpenDevice opens a fake device on the lockspace, for
// libdlm.LockspaceOn.
func (s *Lockspace) OpenDevice() (*Device, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("dlmtest: %w", err)
	}
	return &Device{s: s, r: p[0], w: p[1]}, nil
}

// Lock describes one lock, as Locks reports it.
type Lock struct {
	ID       uint32
	Resource string
	// Granted is the mode held (ModeIV while a new request waits);
	// Requested the mode a request or conversion waits for (ModeIV
	// when none does).
	Granted, Requested libdlm.Mode
	// Orphan: a persistent lock whose handle closed.
	Orphan bool
}

// Locks lists the lockspace's locks by resource name, each resource's
// granted ones first, then those converting, then those waiting, in
// queue order.
func (s *Lockspace) Locks() []Lock {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.res))
	for n := range s.res {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []Lock
	for _, n := range names {
		r := s.res[n]
		for _, q := range [][]*lock{r.granted, r.converting, r.waiting} {
			for _, l := range q {
				out = append(out, Lock{ID: l.id, Resource: n, Granted: l.gr, Requested: l.rq, Orphan: l.dev == nil})
			}
		}
	}
	return out
}

// Device is one handle's fake lockspace device. Its descriptor is the
// read end of a pipe that holds one byte per queued callback, so poll(2)
// sees what it would see on the kernel's device.
type Device struct {
	s *Lockspace

	mu     sync.Mutex
	r, w   int // the pipe; w is -1 once the device failed
	queue  [][]byte
	failed bool
	closed bool
}

// Fd returns the descriptor to poll.
func (d *Device) Fd() int { return d.r }

// Fail makes the device fail: poll(2) reports a hang-up, and reads and
// writes fail with EIO. Its locks stay in the lockspace until Close.
func (d *Device) Fail() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed || d.closed {
		return
	}
	d.failed = true
	unix.Close(d.w)
	d.w = -1
}

// Read returns one queued callback.
func (d *Device) Read(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return 0, unix.EBADF
	case d.failed:
		return 0, unix.EIO
	case len(d.queue) == 0:
		return 0, unix.EAGAIN
	}
	cb := d.queue[0]
	if len(b) < len(cb) {
		return 0, unix.EINVAL
	}
	d.queue = d.queue[1:]
	var one [1]byte
	unix.Read(d.r, one[:])
	return copy(b, cb), nil
}

// push queues a callback for the handle. Called with the lockspace's
// mutex held.
func (d *Device) push(cb []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.failed {
		return
	}
	d.queue = append(d.queue, cb)
	unix.Write(d.w, []byte{1})
}

// Close closes the handle: its locks are unlocked, except persistent
// ones, which stay as orphans, and what they blocked is granted.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return unix.EBADF
	}
	d.closed = true
	d.queue = nil
	unix.Close(d.r)
	if d.w >= 0 {
		unix.Close(d.w)
	}
	d.mu.Unlock()

	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[*resource]bool{}
	for _, l := range s.locks {
		if l.dev != d {
			continue
		}
		touched[l.res] = true
		if l.persistent && l.gr != libdlm.ModeIV {
			l.dev = nil
			if l.rq != libdlm.ModeIV { // its pending conversion dies with the handle
				l.rq = libdlm.ModeIV
				l.res.converting = remove(l.res.converting, l)
				l.res.granted = append(l.res.granted, l)
			}
			continue
		}
		s.drop(l)
	}
	for r := range touched {
		s.grantPending(r)
	}
	return nil
}

// Write carries out one request.
func (d *Device) Write(b []byte) (int, error) {
	d.mu.Lock()
	bad := d.closed || d.failed
	d.mu.Unlock()
	if bad {
		return 0, unix.EIO
	}
	if len(b) < uapi.RequestSize {
		return 0, unix.EINVAL
	}
	if binary.NativeEndian.Uint32(b[uapi.OffReqVersion:]) != uapi.VersionMajor ||
		binary.NativeEndian.Uint32(b[uapi.OffReqVersion+4:]) > uapi.VersionMinor {
		return 0, unix.EINVAL
	}
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch b[uapi.OffReqCmd] {
	case uapi.CmdLock:
		return s.request(d, b)
	case uapi.CmdUnlock:
		return s.unlock(d, b)
	}
	return 0, unix.EINVAL
}

func u32(b []byte, off int) uint32 { return binary.NativeEndian.Uint32(b[off:]) }
func u64(b []byte, off int) uint64 { return binary.NativeEndian.Uint64(b[off:]) }

// request is DLM_USER_LOCK: a new lock, a conversion, or an orphan's
// adoption.
func (s *Lockspace) request(d *Device, b []byte) (int, error) {
	mode := libdlm.Mode(b[uapi.OffLockMode])
	flags := u32(b, uapi.OffLockFlags)
	if !mode.Valid() {
		return 0, unix.EINVAL
	}
	if flags&uapi.FlagConvert != 0 {
		l := s.locks[u32(b, uapi.OffLockLkid)]
		if l == nil || l.dev != d {
			return 0, unix.ENOENT
		}
		if l.rq != libdlm.ModeIV || l.gr == libdlm.ModeIV {
			return 0, unix.EBUSY
		}
		s.setParams(l, b, flags)
		l.rq = mode
		s.convert(l)
		return 0, nil
	}
	n := int(b[uapi.OffLockNamelen])
	if n == 0 || n > libdlm.MaxNameLen || len(b) < uapi.RequestSize+n {
		return 0, unix.EINVAL
	}
	name := string(b[uapi.RequestSize : uapi.RequestSize+n])
	r := s.res[name]
	if r == nil {
		r = &resource{name: name}
		s.res[name] = r
	}
	if flags&uapi.FlagOrphan != 0 {
		for _, l := range r.granted {
			if l.dev == nil && l.gr == mode {
				l.dev = d
				s.setParams(l, b, flags)
				return int(l.id), nil
			}
		}
		return 0, unix.ENOENT
	}
	s.nextID++
	l := &lock{id: s.nextID, dev: d, res: r, gr: libdlm.ModeIV, rq: mode, highBast: libdlm.ModeIV,
		hasLVB: flags&uapi.FlagValBlk != 0, persistent: flags&uapi.FlagPersistent != 0}
	s.setParams(l, b, flags)
	s.locks[l.id] = l
	switch {
	case s.grantable(l, mode, false):
		s.grant(l, mode, 0)
	case s.tryAlt(l, false):
	case flags&uapi.FlagNoQueue != 0:
		if flags&uapi.FlagNoQueueBast != 0 {
			s.blocking(l, mode)
		}
		s.cast(l, -int32(syscall.EAGAIN), 0)
		s.drop(l)
	default:
		if flags&uapi.FlagHeadQue != 0 {
			r.waiting = append([]*lock{l}, r.waiting...)
		} else {
			r.waiting = append(r.waiting, l)
		}
		s.blocking(l, mode)
	}
	return int(l.id), nil
}

// setParams takes the callback parameters and value block of a request.
func (s *Lockspace) setParams(l *lock, b []byte, flags uint32) {
	l.flags = flags
	l.castParam, l.castAddr = u64(b, uapi.OffLockCastparam), u64(b, uapi.OffLockCastaddr)
	l.bastParam, l.bastAddr = u64(b, uapi.OffLockBastparam), u64(b, uapi.OffLockBastaddr)
	l.lksb = u64(b, uapi.OffLockLksb)
	if l.hasLVB {
		copy(l.lvb[:], b[uapi.OffLockLVB:uapi.OffLockLVB+uapi.LVBLen])
	}
}

// convert handles a conversion of l, granted, to l.rq.
func (s *Lockspace) convert(l *lock) {
	r := l.res
	r.granted = remove(r.granted, l)
	if l.rq < l.gr { // down-conversions are always granted
		s.grant(l, l.rq, 0)
		s.grantPending(r)
		return
	}
	if s.grantable(l, l.rq, l.flags&uapi.FlagQueCvt == 0) {
		s.grant(l, l.rq, 0)
		return
	}
	if s.tryAlt(l, l.flags&uapi.FlagQueCvt == 0) {
		return
	}
	if l.flags&uapi.FlagNoQueue != 0 {
		r.granted = append(r.granted, l)
		l.rq = libdlm.ModeIV
		s.cast(l, -int32(syscall.EAGAIN), 0)
		return
	}
	for _, o := range r.converting {
		if !libdlm.Compatible(l.rq, o.gr) && !libdlm.Compatible(o.rq, l.gr) {
			if l.flags&uapi.FlagConvDeadlk != 0 {
				l.gr, l.demoted = libdlm.ModeNL, true
				if s.grantable(l, l.rq, true) {
					s.grant(l, l.rq, 0)
					s.grantPending(r)
					return
				}
				r.converting = append(r.converting, l)
				s.grantPending(r)
				return
			}
			r.granted = append(r.granted, l)
			l.rq = libdlm.ModeIV
			s.cast(l, -int32(syscall.EDEADLK), 0)
			return
		}
	}
	r.converting = append(r.converting, l)
	s.blocking(l, l.rq)
}

// tryAlt grants l its alternate mode (AltPR, AltCW) if that can be
// granted now.
func (s *Lockspace) tryAlt(l *lock, first bool) bool {
	alt := libdlm.ModeIV
	switch {
	case l.flags&uapi.FlagAltPR != 0:
		alt = libdlm.ModePR
	case l.flags&uapi.FlagAltCW != 0:
		alt = libdlm.ModeCW
	}
	if alt == libdlm.ModeIV || alt == l.rq || !s.grantable(l, alt, first) {
		return false
	}
	s.grant(l, alt, uapi.SBAltMode)
	return true
}

// grantable tells whether l can be granted mode now: compatible with
// every other granted lock and, unless it may go first, nothing queued
// ahead of it.
func (s *Lockspace) grantable(l *lock, mode libdlm.Mode, first bool) bool {
	r := l.res
	for _, o := range r.granted {
		if o != l && !libdlm.Compatible(mode, o.gr) {
			return false
		}
	}
	for _, o := range r.converting {
		if o != l && !libdlm.Compatible(mode, o.gr) {
			return false
		}
	}
	if first || l.flags&uapi.FlagNoOrder != 0 {
		return true
	}
	if l.gr == libdlm.ModeIV { // a new request waits behind every queued one
		if l.flags&uapi.FlagExpedite != 0 {
			return true
		}
		return len(r.converting) == 0 && (len(r.waiting) == 0 || r.waiting[0] == l)
	}
	return len(r.converting) == 0 || r.converting[0] == l
}

// grant gives l mode and queues its completion.
func (s *Lockspace) grant(l *lock, mode libdlm.Mode, sbFlags uint8) {
	r := l.res
	if l.hasLVB && l.flags&uapi.FlagValBlk != 0 {
		// The kernel's rule: from PW or EX, any conversion but PW to EX
		// writes the value block; a new grant, or a conversion to the
		// same or a higher mode, reads it.
		switch {
		case l.gr >= libdlm.ModePW && !(l.gr == libdlm.ModePW && mode == libdlm.ModeEX):
			r.lvb, r.lvbInvalid = l.lvb, false
		case mode >= l.gr:
			l.lvb = r.lvb
		}
	}
	if l.flags&uapi.FlagIVValBlk != 0 {
		r.lvbInvalid = true
	}
	if r.lvbInvalid {
		sbFlags |= uapi.SBValNotValid
	}
	if l.demoted {
		sbFlags |= uapi.SBDemoted
		l.demoted = false
	}
	l.gr, l.rq, l.highBast = mode, libdlm.ModeIV, libdlm.ModeIV
	r.granted = append(r.granted, l)
	s.cast(l, 0, sbFlags)
}

// grantPending grants what waits on r, conversions first, in order.
func (s *Lockspace) grantPending(r *resource) {
	for again := true; again; {
		again = false
		for i, l := range r.converting {
			if s.grantable(l, l.rq, i == 0) {
				r.converting = remove(r.converting, l)
				s.grant(l, l.rq, 0)
				again = true
				break
			}
		}
		if again || len(r.converting) > 0 && r.converting[0].flags&uapi.FlagNoOrder == 0 {
			continue
		}
		if len(r.waiting) > 0 {
			l := r.waiting[0]
			if s.grantable(l, l.rq, true) {
				r.waiting = r.waiting[1:]
				s.grant(l, l.rq, 0)
				again = true
			} else if s.tryAlt(l, true) {
				r.waiting = r.waiting[1:]
				again = true
			}
		}
	}
	for _, l := range r.converting {
		s.blocking(l, l.rq)
	}
	for _, l := range r.waiting {
		s.blocking(l, l.rq)
	}
}

// blocking sends a blocking callback to every holder, with one
// registered, whose mode keeps l from mode.
func (s *Lockspace) blocking(l *lock, mode libdlm.Mode) {
	for _, o := range l.res.granted {
		if o == l || o.dev == nil || o.bastAddr == 0 || libdlm.Compatible(mode, o.gr) || o.highBast >= mode {
			continue
		}
		o.highBast = mode
		b := make([]byte, uapi.ResultSize)
		s.header(b, o, o.bastAddr, o.bastParam)
		b[uapi.OffResBastMode] = byte(mode)
		o.dev.push(b)
	}
}

// cast queues a completion of l with status (0 or negative).
func (s *Lockspace) cast(l *lock, status int32, sbFlags uint8) {
	if l.dev == nil {
		return
	}
	n := uapi.ResultSize
	if l.hasLVB {
		n = uapi.ResultSizeWithLV
	}
	b := make([]byte, n)
	s.header(b, l, l.castAddr, l.castParam)
	binary.NativeEndian.PutUint32(b[uapi.OffResStatus:], uint32(status))
	b[uapi.OffResSbFlags] = sbFlags
	if l.hasLVB {
		binary.NativeEndian.PutUint32(b[uapi.OffResLvbOffset:], uapi.ResultSize)
		copy(b[uapi.ResultSize:], l.lvb[:])
	}
	l.dev.push(b)
}

func (s *Lockspace) header(b []byte, l *lock, addr, param uint64) {
	binary.NativeEndian.PutUint32(b[uapi.OffResVersion:], uapi.VersionMajor)
	binary.NativeEndian.PutUint32(b[uapi.OffResVersion+4:], uapi.VersionMinor)
	binary.NativeEndian.PutUint32(b[uapi.OffResVersion+8:], uapi.VersionPatch)
	binary.NativeEndian.PutUint32(b[uapi.OffResLength:], uint32(len(b)))
	binary.NativeEndian.PutUint64(b[uapi.OffResAstaddr:], addr)
	binary.NativeEndian.PutUint64(b[uapi.OffResAstparam:], param)
	binary.NativeEndian.PutUint64(b[uapi.OffResLksb:], l.lksb)
	binary.NativeEndian.PutUint32(b[uapi.OffResLkid:], l.id)
}

// unlock is DLM_USER_UNLOCK: an unlock, a forced one, or a cancel.
func (s *Lockspace) unlock(d *Device, b []byte) (int, error) {
	flags := u32(b, uapi.OffLockFlags)
	l := s.locks[u32(b, uapi.OffLockLkid)]
	if l == nil || l.dev != d {
		return 0, unix.ENOENT
	}
	r := l.res
	if flags&uapi.FlagCancel != 0 {
		if l.rq == libdlm.ModeIV {
			return 0, unix.EBUSY
		}
		s.cancel(l)
		s.grantPending(r)
		return 0, nil
	}
	if l.rq != libdlm.ModeIV {
		if flags&uapi.FlagForceUnlock == 0 {
			return 0, unix.EBUSY
		}
		s.cancel(l)
		if l.gr == libdlm.ModeIV { // the cancel ended it
			s.grantPending(r)
			return 0, nil
		}
	}
	if l.hasLVB {
		copy(l.lvb[:], b[uapi.OffLockLVB:uapi.OffLockLVB+uapi.LVBLen])
		if flags&uapi.FlagValBlk != 0 && l.gr >= libdlm.ModePW {
			r.lvb, r.lvbInvalid = l.lvb, false
		}
	}
	if flags&uapi.FlagIVValBlk != 0 {
		r.lvbInvalid = true
	}
	l.castParam = u64(b, uapi.OffLockCastparam)
	s.cast(l, -uapi.StatusEUnlock, 0)
	s.drop(l)
	s.grantPending(r)
	return 0, nil
}

// cancel ends l's pending request or conversion with ECANCEL.
func (s *Lockspace) cancel(l *lock) {
	r := l.res
	if l.gr == libdlm.ModeIV {
		r.waiting = remove(r.waiting, l)
		s.cast(l, -uapi.StatusECancel, 0)
		s.drop(l)
		return
	}
	r.converting = remove(r.converting, l)
	r.granted = append(r.granted, l)
	l.rq = libdlm.ModeIV
	s.cast(l, -uapi.StatusECancel, 0)
}

// drop forgets l.
func (s *Lockspace) drop(l *lock) {
	r := l.res
	r.granted = remove(r.granted, l)
	r.converting = remove(r.converting, l)
	r.waiting = remove(r.waiting, l)
	delete(s.locks, l.id) // the resource, and its value block, stay
}

func remove(q []*lock, l *lock) []*lock {
	if i := slices.Index(q, l); i >= 0 {
		return slices.Delete(q, i, i+1)
	}
	return q
}
