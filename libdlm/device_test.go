//go:build linux

package libdlm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/godlm/godlm/libdlm"
	"github.com/godlm/godlm/libdlm/dlmtest"
	"github.com/google/go-cmp/cmp"
)

// These tests run the library's concurrency core (readers, waiters,
// callbacks, Close) against dlmtest's fake kernel, on any Linux host;
// vm_test.go runs the same paths on the real kernel.

func open(t *testing.T, s *dlmtest.Lockspace) (*libdlm.Lockspace, *dlmtest.Device) {
	t.Helper()
	ls, dev, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls, dev
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeLockUnlock(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	ls, _ := open(t, s)
	ctx := ctxT(t)
	l, err := ls.Lock(ctx, "r", libdlm.ModeEX, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Mode() != libdlm.ModeEX || l.ID() == 0 || l.Name() != "r" {
		t.Errorf("lock: mode %v id %d name %q", l.Mode(), l.ID(), l.Name())
	}
	want := []dlmtest.Lock{{ID: l.ID(), Resource: "r", Granted: libdlm.ModeEX, Requested: libdlm.ModeIV}}
	if diff := cmp.Diff(want, s.Locks()); diff != "" {
		t.Errorf("kernel's locks (-want +got):\n%s", diff)
	}
	if err := l.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx, 0); !errors.Is(err, libdlm.ErrUnlocked) {
		t.Errorf("second unlock: %v, want ErrUnlocked", err)
	}
	if got := s.Locks(); len(got) != 0 {
		t.Errorf("locks left: %v", got)
	}
}

func TestFakeContention(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, _ := open(t, s)
	ctx := ctxT(t)
	blocked := make(chan libdlm.Mode, 4)
	la, err := a.Lock(ctx, "r", libdlm.ModeEX, 0, libdlm.WithBlockingCallback(func(m libdlm.Mode) { blocked <- m }))
	if err != nil {
		t.Fatal(err)
	}
	// NoQueue fails at once, and sends no blocking callback.
	if _, err := b.Lock(ctx, "r", libdlm.ModePR, libdlm.NoQueue); !errors.Is(err, libdlm.ErrWouldBlock) {
		t.Fatalf("NoQueue lock: %v, want ErrWouldBlock", err)
	}
	granted := make(chan error, 1)
	go func() {
		lb, err := b.Lock(ctx, "r", libdlm.ModePR, 0)
		if err == nil && lb.Mode() != libdlm.ModePR {
			err = errors.New("granted in " + lb.Mode().String())
		}
		granted <- err
	}()
	select {
	case m := <-blocked:
		if m != libdlm.ModePR {
			t.Errorf("blocking callback for %v, want PR", m)
		}
	case <-ctx.Done():
		t.Fatal("no blocking callback")
	}
	select {
	case err := <-granted:
		t.Fatalf("PR granted while EX is held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Down to PR: compatible, so the waiter is granted.
	if err := la.Convert(ctx, libdlm.ModePR, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
}

func TestFakeValueBlock(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, _ := open(t, s)
	ctx := ctxT(t)
	la, err := a.Lock(ctx, "counter", libdlm.ModeEX, libdlm.ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.SetLVB([]byte("seven")); err != nil {
		t.Fatal(err)
	}
	// Down-converting from EX with ValBlk writes the value.
	if err := la.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lock(ctx, "counter", libdlm.ModePR, libdlm.ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := lb.LVB()
	if !ok || string(v[:5]) != "seven" {
		t.Errorf("other handle read %q (valid %v), want seven", v, ok)
	}
	if err := la.SetLVB(make([]byte, libdlm.LVBLen+1)); !errors.Is(err, libdlm.ErrInvalidArgument) {
		t.Errorf("oversized value block: %v", err)
	}
}

func TestFakeCancelByContext(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, _ := open(t, s)
	if _, err := a.Lock(ctxT(t), "r", libdlm.ModeEX, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := b.Lock(ctx, "r", libdlm.ModeEX, 0)
	if !errors.Is(err, libdlm.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock past its deadline: %v, want ErrCancelled and DeadlineExceeded", err)
	}
	if got := len(s.Locks()); got != 1 {
		t.Errorf("%d locks in the kernel after the cancel, want 1: %v", got, s.Locks())
	}
}

func TestFakeAsync(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, _ := open(t, s)
	ctx := ctxT(t)
	la, err := a.Lock(ctx, "r", libdlm.ModeEX, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan libdlm.Result, 2)
	lb, err := b.LockAsync("r", libdlm.ModeCW, 0, func(r libdlm.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	if err := la.UnlockAsync(0, func(r libdlm.Result) { res <- r }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case r := <-res:
			if r.Err != nil {
				t.Errorf("async result: %+v", r)
			}
		case <-ctx.Done():
			t.Fatal("async results never came")
		}
	}
	if lb.Mode() != libdlm.ModeCW {
		t.Errorf("async lock in %v, want CW", lb.Mode())
	}
	// Cancel of a waiting async request.
	if _, err := a.Lock(ctx, "q", libdlm.ModeEX, 0); err != nil {
		t.Fatal(err)
	}
	lq, err := b.LockAsync("q", libdlm.ModeEX, 0, func(r libdlm.Result) { res <- r })
	if err != nil {
		t.Fatal(err)
	}
	if err := lq.Cancel(); err != nil {
		t.Fatal(err)
	}
	if r := <-res; !errors.Is(r.Err, libdlm.ErrCancelled) || r.Mode != libdlm.ModeIV {
		t.Errorf("cancelled async request: %+v", r)
	}
}

func TestFakeConversionDeadlock(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, _ := open(t, s)
	ctx := ctxT(t)
	la, err := a.Lock(ctx, "r", libdlm.ModePR, 0)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lock(ctx, "r", libdlm.ModePR, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan libdlm.Result, 2)
	if err := la.ConvertAsync(libdlm.ModeEX, 0, func(r libdlm.Result) { done <- r }); err != nil {
		t.Fatal(err)
	}
	// b's conversion deadlocks with a's and fails; a's then waits for b.
	if err := lb.Convert(ctx, libdlm.ModeEX, 0); !errors.Is(err, libdlm.ErrDeadlock) {
		t.Fatalf("second conversion: %v, want ErrDeadlock", err)
	}
	if lb.Mode() != libdlm.ModePR {
		t.Errorf("after the deadlock b holds %v, want PR", lb.Mode())
	}
	if err := lb.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Err != nil || r.Mode != libdlm.ModeEX {
		t.Errorf("first conversion: %+v", r)
	}
	// With ConvDeadlk the lock is demoted to NL instead.
	lb, err = b.Lock(ctx, "s", libdlm.ModePR, 0)
	if err != nil {
		t.Fatal(err)
	}
	la, err = a.Lock(ctx, "s", libdlm.ModePR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.ConvertAsync(libdlm.ModeEX, 0, func(r libdlm.Result) { done <- r }); err != nil {
		t.Fatal(err)
	}
	got := make(chan libdlm.Result, 1)
	if err := la.ConvertAsync(libdlm.ModeEX, libdlm.ConvDeadlk, func(r libdlm.Result) { got <- r }); err != nil {
		t.Fatal(err)
	}
	// a is demoted to NL, which lets b's EX through, and waits for it.
	if r := <-done; r.Err != nil || r.Mode != libdlm.ModeEX {
		t.Fatalf("b's conversion: %+v", r)
	}
	if err := lb.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Err != nil || r.Mode != libdlm.ModeEX || !r.Demoted {
		t.Errorf("demoted conversion: %+v, want EX granted with Demoted", r)
	}
}

// waitBehind makes b wait behind an EX lock that a takes on "r": one
// asynchronous request and n synchronous ones. It returns once the
// fake kernel has them all queued; each ends on its channel.
func waitBehind(t *testing.T, s *dlmtest.Lockspace, a, b *libdlm.Lockspace, n int) (chan libdlm.Result, chan error) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := a.Lock(ctx, "r", libdlm.ModeEX, 0); err != nil {
		t.Fatal(err)
	}
	async := make(chan libdlm.Result, 1)
	if _, err := b.LockAsync("r", libdlm.ModeEX, 0, func(r libdlm.Result) { async <- r }); err != nil {
		t.Fatal(err)
	}
	syncs := make(chan error, n)
	for range n {
		go func() {
			_, err := b.Lock(ctx, "r", libdlm.ModePR, 0)
			syncs <- err
		}()
	}
	waitFor(t, func() bool { return len(s.Locks()) == 2+n })
	return async, syncs
}

// TestFakeWaitersEnd: when the handle closes, or its device fails,
// every operation waiting on it ends with the reason, none hangs, and
// later requests fail the same way.
func TestFakeWaitersEnd(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(b *libdlm.Lockspace, dev *dlmtest.Device) error
		want error
	}{
		{"Close", func(b *libdlm.Lockspace, _ *dlmtest.Device) error { return b.Close() }, libdlm.ErrClosed},
		{"device failure", func(_ *libdlm.Lockspace, dev *dlmtest.Device) error { dev.Fail(); return nil }, libdlm.ErrDeviceFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := dlmtest.NewLockspace("t")
			a, _ := open(t, s)
			b, dev := open(t, s)
			const n = 4
			async, syncs := waitBehind(t, s, a, b, n)
			if err := c.end(b, dev); err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			select {
			case r := <-async:
				if !errors.Is(r.Err, c.want) {
					t.Errorf("async request: %+v, want %v", r, c.want)
				}
			case <-ctx.Done():
				t.Fatal("the async request hangs")
			}
			for range n {
				if err := <-syncs; !errors.Is(err, c.want) {
					t.Errorf("sync request: %v, want %v", err, c.want)
				}
			}
			if _, err := b.Lock(ctx, "other", libdlm.ModeNL, 0); !errors.Is(err, c.want) {
				t.Errorf("lock afterwards: %v, want %v", err, c.want)
			}
			if err := b.Close(); err != nil && c.want != libdlm.ErrClosed {
				t.Errorf("close: %v", err)
			}
			// The kernel freed b's requests (at Close: a failed device
			// keeps them until then), and a holds its lock alone.
			if got := len(s.Locks()); got != 1 {
				t.Errorf("%d locks after b closed, want a's alone: %v", got, s.Locks())
			}
		})
	}
}

// TestFakeOrphans: persistent locks outlive their handle and can be
// adopted.
func TestFakeOrphans(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	ctx := ctxT(t)
	if _, err := a.Lock(ctx, "p", libdlm.ModePW, libdlm.Persistent); err != nil {
		t.Fatal(err)
	}
	a.Close()
	orphans := s.Locks()
	if len(orphans) != 1 || !orphans[0].Orphan || orphans[0].Resource != "p" {
		t.Fatalf("after close: %+v, want the persistent lock as an orphan", orphans)
	}
	c, _ := open(t, s)
	l, err := c.Lock(ctx, "p", libdlm.ModePW, libdlm.Orphan)
	if err != nil || l.Mode() != libdlm.ModePW {
		t.Fatalf("adopt orphan: %v", err)
	}
	if _, err := c.Lock(ctx, "p", libdlm.ModeEX, libdlm.Orphan); !errors.Is(err, libdlm.ErrNotFound) {
		t.Errorf("adopting a missing orphan: %v, want ErrNotFound", err)
	}
}

// TestFakeDeviceFailureWhileReading: a synchronous caller polling the
// device itself sees the failure too.
func TestFakeDeviceFailureWhileReading(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	a, _ := open(t, s)
	b, dev := open(t, s)
	ctx := ctxT(t)
	if _, err := a.Lock(ctx, "r", libdlm.ModeEX, 0); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx, "r", libdlm.ModeEX, 0)
		errc <- err
	}()
	waitFor(t, func() bool { return len(s.Locks()) == 2 })
	time.Sleep(10 * time.Millisecond) // let it reach poll(2)
	dev.Fail()
	select {
	case err := <-errc:
		if !errors.Is(err, libdlm.ErrDeviceFailed) {
			t.Errorf("lock: %v, want ErrDeviceFailed", err)
		}
	case <-ctx.Done():
		t.Fatal("synchronous lock hangs after the device failed")
	}
}

// TestFakeManyGoroutines hammers one resource from several handles and
// goroutines under EX; the race detector and the count check the core.
func TestFakeManyGoroutines(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	ctx := ctxT(t)
	const handles, workers, rounds = 3, 4, 50
	var mu sync.Mutex
	inside, total := 0, 0
	var wg sync.WaitGroup
	for range handles {
		ls, _ := open(t, s)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := ls.Mutex("counter")
				for range rounds {
					if err := m.Lock(ctx); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					inside++
					if inside != 1 {
						t.Errorf("%d holders of an EX lock", inside)
					}
					total++
					inside--
					mu.Unlock()
					if err := m.Unlock(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if total != handles*workers*rounds {
		t.Errorf("%d rounds, want %d", total, handles*workers*rounds)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
	}
}

// The fake device is a kernel without the NOTIFY patches (device minor
// 0): a Notify request fails with ErrNotifySupport, not a vague invalid
// argument, and the lockspace goes on working.
func TestFakeNotifyUnsupported(t *testing.T) {
	s := dlmtest.NewLockspace("t")
	ls, _ := open(t, s)
	ctx := ctxT(t)
	if _, err := ls.Lock(ctx, "r", libdlm.ModeEX, libdlm.Notify); !errors.Is(err, libdlm.ErrNotifySupport) {
		t.Fatalf("Lock with Notify on a kernel without it: %v, want ErrNotifySupport", err)
	}
	// A bad combination is refused before the kernel, whatever it knows.
	if _, err := ls.Lock(ctx, "r", libdlm.ModeEX, libdlm.Notify|libdlm.Orphan); !errors.Is(err, libdlm.ErrInvalidArgument) {
		t.Fatalf("Lock with Notify|Orphan: %v, want ErrInvalidArgument", err)
	}
	l, err := ls.Lock(ctx, "r", libdlm.ModeEX, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// LSFlagNotify is a lockspace flag NewLockspace accepts: it reaches the
// kernel (here a root without a control device, so opening that fails)
// instead of being refused as an invalid argument; unknown flags are.
func TestNewLockspaceFlags(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name    string
		flags   libdlm.LockspaceFlags
		invalid bool
	}{
		{"none", 0, false},
		{"NEWEXCL", libdlm.LSFlagNewExcl, false},
		{"NOTIFY", libdlm.LSFlagNotify, false},
		{"NOTIFY|NEWEXCL", libdlm.LSFlagNotify | libdlm.LSFlagNewExcl, false},
		{"unknown", 0x40, true},
	}
	got, want := map[string]bool{}, map[string]bool{}
	for _, tt := range tests {
		_, err := libdlm.NewLockspace("t", libdlm.WithRoot(root), libdlm.WithLockspaceFlags(tt.flags))
		if err == nil {
			t.Fatalf("%s: NewLockspace without a control device succeeded", tt.name)
		}
		got[tt.name], want[tt.name] = errors.Is(err, libdlm.ErrInvalidArgument), tt.invalid
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("refused as invalid argument (-want +got):\n%s", d)
	}
}
