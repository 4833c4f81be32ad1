//go:build vmtest

// These tests need the real kernel DLM and a running dlm_controld. They
// are built with -tags vmtest and run inside the lab's VMs by
// tests/vm/libdlm_test.go; a plain `go test` does not compile them.

package libdlm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

var allModes = []Mode{ModeNL, ModeCR, ModeCW, ModePR, ModePW, ModeEX}

func vmLockspace(t *testing.T) *Lockspace {
	t.Helper()
	ls, err := NewLockspace("vmtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestVMCompatibilityMatrix(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	for _, held := range allModes {
		for _, req := range allModes {
			name := fmt.Sprintf("matrix-%v-%v", held, req)
			h, err := ls.Lock(ctx, name, held, 0)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ls.Lock(ctx, name, req, NoQueue)
			want := Compatible(held, req)
			switch {
			case want && err != nil:
				t.Errorf("%v held, %v requested: %v, want granted", held, req, err)
			case !want && !errors.Is(err, ErrWouldBlock):
				t.Errorf("%v held, %v requested: %v, want ErrWouldBlock", held, req, err)
			}
			if r != nil {
				if err := r.Unlock(ctx, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Unlock(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestVMConversions(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	a, err := ls.Lock(ctx, "conv", ModeNL, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{ModeCR, ModePR, ModeEX, ModePW, ModeCW, ModeNL, ModeEX, ModeNL} {
		if err := a.Convert(ctx, m, 0); err != nil {
			t.Fatalf("convert to %v: %v", m, err)
		}
		if a.Mode() != m {
			t.Fatalf("mode %v after converting to %v", a.Mode(), m)
		}
	}
	// A conversion that cannot be granted with NoQueue fails and leaves
	// the lock as it was.
	b, err := ls.Lock(ctx, "conv", ModePR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Convert(ctx, ModeEX, NoQueue); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("blocked convert with NOQUEUE: %v", err)
	}
	if a.Mode() != ModeNL {
		t.Errorf("mode %v after a failed conversion, want NL", a.Mode())
	}
	b.Unlock(ctx, 0)
	a.Unlock(ctx, 0)
}

func TestVMQueCvt(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	// A and B hold PR; B's conversion to EX waits for A. C converts NL to
	// PR: compatible with the granted modes, so granted at once — unless
	// QUECVT puts it behind B's waiting conversion.
	a, _ := ls.Lock(ctx, "quecvt", ModePR, 0)
	b, _ := ls.Lock(ctx, "quecvt", ModePR, 0)
	c, err := ls.Lock(ctx, "quecvt", ModeNL, 0)
	if err != nil {
		t.Fatal(err)
	}
	bdone := make(chan Result, 1)
	if err := b.ConvertAsync(ModeEX, 0, func(r Result) { bdone <- r }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Convert(ctx, ModePR, QueCvt|NoQueue); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("QUECVT behind a waiting conversion: %v, want ErrWouldBlock", err)
	}
	if err := c.Convert(ctx, ModePR, NoQueue); err != nil {
		t.Errorf("plain conversion to a compatible mode: %v", err)
	}
	c.Unlock(ctx, 0)
	a.Unlock(ctx, 0)
	if r := <-bdone; r.Err != nil || r.Mode != ModeEX {
		t.Errorf("B's conversion: %+v", r)
	}
	b.Unlock(ctx, 0)
}

func TestVMConvDeadlk(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	// Both hold PR and both convert to EX: a conversion deadlock.
	a, _ := ls.Lock(ctx, "deadlk", ModePR, 0)
	b, _ := ls.Lock(ctx, "deadlk", ModePR, 0)
	adone := make(chan Result, 1)
	a.ConvertAsync(ModeEX, 0, func(r Result) { adone <- r })
	time.Sleep(100 * time.Millisecond)
	// Without CONVDEADLK, B's conversion fails and B keeps PR.
	if err := b.Convert(ctx, ModeEX, 0); !errors.Is(err, ErrDeadlock) {
		t.Errorf("deadlocked conversion: %v, want ErrDeadlock", err)
	}
	if b.Mode() != ModePR {
		t.Errorf("B has %v after a failed conversion", b.Mode())
	}
	// With CONVDEADLK, B is demoted to NL, A gets EX, and B's
	// conversion is granted after A lets go.
	bdone := make(chan Result, 1)
	if err := b.ConvertAsync(ModeEX, ConvDeadlk, func(r Result) { bdone <- r }); err != nil {
		t.Fatal(err)
	}
	if r := <-adone; r.Err != nil || r.Mode != ModeEX {
		t.Fatalf("A's conversion: %+v", r)
	}
	a.Unlock(ctx, 0)
	r := <-bdone
	if r.Err != nil || !r.Demoted || r.Mode != ModeEX {
		t.Errorf("B's CONVDEADLK conversion: %+v, want granted EX with Demoted", r)
	}
	b.Unlock(ctx, 0)
}

func TestVMValueBlock(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	keep, err := ls.Lock(ctx, "lvb", ModeNL, ValBlk) // keeps the value alive
	if err != nil {
		t.Fatal(err)
	}
	w, err := ls.Lock(ctx, "lvb", ModeEX, ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	w.SetLVB([]byte("written under EX"))
	if err := w.Convert(ctx, ModeNL, ValBlk); err != nil { // down-conversion writes
		t.Fatal(err)
	}
	r, err := ls.Lock(ctx, "lvb", ModePR, ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	got, valid := r.LVB()
	if want := "written under EX"; string(got[:len(want)]) != want || !valid {
		t.Errorf("LVB read under PR: %q valid=%v", got, valid)
	}
	// An unlock with VALBLK from EX writes the value too.
	r.Unlock(ctx, 0)
	w.Convert(ctx, ModeEX, ValBlk)
	w.SetLVB([]byte("on unlock"))
	if err := w.Unlock(ctx, ValBlk); err != nil {
		t.Fatal(err)
	}
	if err := keep.Convert(ctx, ModePR, ValBlk); err != nil {
		t.Fatal(err)
	}
	if got, _ := keep.LVB(); string(got[:9]) != "on unlock" {
		t.Errorf("LVB after unlock with VALBLK: %q", got)
	}
	keep.Unlock(ctx, 0)
}

func TestVMBlockingCallback(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	blocked := make(chan Mode, 4)
	h, err := ls.Lock(ctx, "bast", ModeEX, 0, WithBlockingCallback(func(m Mode) { blocked <- m }))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	w, err := ls.LockAsync("bast", ModePR, 0, func(r Result) { done <- r })
	if err != nil {
		t.Fatal(err)
	}
	wantBlocking(t, blocked, ModePR)
	// The holder gives way by converting down; the waiter is granted.
	if err := h.Convert(ctx, ModeCR, 0); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Err != nil || r.Mode != ModePR {
		t.Errorf("waiter: %+v", r)
	}
	w.Unlock(ctx, 0)
	h.Unlock(ctx, 0)
}

func TestVMCancel(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	h, _ := ls.Lock(ctx, "cancel", ModeEX, 0)
	done := make(chan Result, 1)
	w, err := ls.LockAsync("cancel", ModeEX, 0, func(r Result) { done <- r })
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := w.Cancel(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; !errors.Is(r.Err, ErrCancelled) || r.Mode != ModeIV {
		t.Errorf("cancelled request: %+v", r)
	}
	// A cancelled request is gone; the holder is untouched.
	if err := w.Unlock(ctx, 0); !errors.Is(err, ErrUnlocked) {
		t.Errorf("unlock of a cancelled request: %v", err)
	}
	if h.Mode() != ModeEX {
		t.Errorf("holder has %v", h.Mode())
	}
	h.Unlock(ctx, 0)
}

func TestVMContextTimeout(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	h, _ := ls.Lock(ctx, "timeout", ModeEX, 0)
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := ls.Lock(tctx, "timeout", ModePR, 0)
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued request past its deadline: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	// The kernel no longer has the request: a NOQUEUE EX after the
	// holder leaves is granted.
	h.Unlock(ctx, 0)
	l, err := ls.Lock(ctx, "timeout", ModeEX, NoQueue)
	if err != nil {
		t.Fatalf("resource still blocked by the cancelled request: %v", err)
	}
	l.Unlock(ctx, 0)
}

func TestVMPersistentOrphan(t *testing.T) {
	ctx := ctx10(t)
	ls1, err := NewLockspace("vmtest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls1.Lock(ctx, "orphan", ModeEX, Persistent); err != nil {
		t.Fatal(err)
	}
	ls1.Close() // the persistent lock becomes an orphan
	ls2, err := OpenLockspace("vmtest")
	if err != nil {
		t.Fatal(err)
	}
	defer ls2.Close()
	if _, err := ls2.Lock(ctx, "orphan", ModeEX, NoQueue); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("orphan does not hold the resource: %v", err)
	}
	if _, err := ls2.Lock(ctx, "orphan", ModePR, Orphan); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("adopting an orphan in another mode: %v, want ErrWouldBlock", err)
	}
	if _, err := ls2.Lock(ctx, "no-orphan", ModeEX, Orphan); !errors.Is(err, ErrNotFound) {
		t.Errorf("adopting a missing orphan: %v, want ErrNotFound", err)
	}
	o, err := ls2.Lock(ctx, "orphan", ModeEX, Orphan)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode() != ModeEX || o.ID() == 0 {
		t.Errorf("adopted lock %v id %d", o.Mode(), o.ID())
	}
	if err := o.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
	l, err := ls2.Lock(ctx, "orphan", ModeEX, NoQueue)
	if err != nil {
		t.Fatalf("resource still held after the adopted orphan was unlocked: %v", err)
	}
	l.Unlock(ctx, 0)
}

func TestVMInvalidArguments(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	for _, tt := range []struct {
		name  string
		mode  Mode
		flags Flags
	}{
		{"r", 6, 0},
		{"", ModeEX, 0},
		{string(make([]byte, 65)), ModeEX, 0},
		{"r", ModeEX, QueCvt},
		{"r", ModePR, Expedite},
		{"r", ModeEX, ForceUnlock},
	} {
		if _, err := ls.Lock(ctx, tt.name, tt.mode, tt.flags); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Lock(%d-byte name, %v, %v): %v", len(tt.name), tt.mode, tt.flags, err)
		}
	}
	l, _ := ls.Lock(ctx, "noval", ModeEX, 0)
	if err := l.Convert(ctx, ModeNL, ValBlk); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("VALBLK convert without a value block: %v", err)
	}
	if err := l.SetLVB(make([]byte, 8)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetLVB without a value block: %v", err)
	}
	l.Unlock(ctx, 0)
	if _, err := OpenLockspace("no-such-lockspace"); !errors.Is(err, ErrNoLockspace) {
		t.Errorf("OpenLockspace of a missing lockspace: %v", err)
	}
	if _, err := NewLockspace("x", WithLVBLen(64)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("LVB length 64: %v", err)
	}
}

func TestVMMutexAndHierarchy(t *testing.T) {
	ls := vmLockspace(t)
	ctx := ctx10(t)
	m := ls.RWMutex("mutex")
	if err := m.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.RLock(ctx); err != nil { // readers share
		t.Fatal(err)
	}
	m2 := ls.Mutex("mutex")
	if ok, err := m2.TryLock(ctx); ok || err != nil {
		t.Errorf("TryLock under readers: %v %v", ok, err)
	}
	m.RUnlock(ctx)
	m.RUnlock(ctx)
	if ok, err := m2.TryLock(ctx); !ok || err != nil {
		t.Errorf("TryLock when free: %v %v", ok, err)
	}
	m2.Unlock(ctx)
	if err := m2.Unlock(ctx); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unlock of a free mutex: %v", err)
	}

	db, err := ls.Lock(ctx, "db", ModeCW, 0)
	if err != nil {
		t.Fatal(err)
	}
	table, err := db.Child(ctx, "table", ModeCW, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := table.Child(ctx, "rec1", ModeEX, 0)
	if err != nil || rec.Name() != "db/table/rec1" {
		t.Fatalf("record lock %v: %v", rec, err)
	}
	if err := db.Unlock(ctx, 0); !errors.Is(err, ErrBusy) {
		t.Errorf("unlock of a parent with children: %v", err)
	}
	rec.Unlock(ctx, 0)
	table.Unlock(ctx, 0)
	if err := db.Unlock(ctx, 0); err != nil {
		t.Errorf("unlock of the parent after its children: %v", err)
	}
	if _, err := db.Child(ctx, "table", ModeEX, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("child of an unlocked parent: %v", err)
	}
}

const counterEnv = "LIBDLM_COUNTER_CHILD"

// TestVMCounter runs processes that each add 1 to a counter in a value
// block N times under EX; the total must be exact.
func TestVMCounter(t *testing.T) {
	if n := os.Getenv(counterEnv); n != "" {
		runCounter(t, n)
		return
	}
	const procs, each = 3, 1000
	ls := vmLockspace(t)
	ctx := ctx10(t)
	keep, err := ls.Lock(ctx, "counter", ModeNL, ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestVMCounter$")
			cmd.Env = append(os.Environ(), counterEnv+"="+strconv.Itoa(each))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := keep.Convert(ctx, ModePR, ValBlk); err != nil {
		t.Fatal(err)
	}
	b, _ := keep.LVB()
	if got := binary.LittleEndian.Uint64(b); got != procs*each {
		t.Errorf("counter = %d, want %d", got, procs*each)
	}
	keep.Unlock(ctx, 0)
}

func runCounter(t *testing.T, n string) {
	count, _ := strconv.Atoi(n)
	ls, err := OpenLockspace("vmtest")
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := ls.Lock(ctx, "counter", ModeNL, ValBlk)
	if err != nil {
		t.Fatal(err)
	}
	for range count {
		if err := l.Convert(ctx, ModeEX, ValBlk); err != nil {
			t.Fatal(err)
		}
		b, _ := l.LVB()
		v := binary.LittleEndian.Uint64(b) + 1
		binary.LittleEndian.PutUint64(b, v)
		l.SetLVB(b)
		if err := l.Convert(ctx, ModeNL, ValBlk); err != nil {
			t.Fatal(err)
		}
	}
	l.Unlock(ctx, 0)
}

// TestVMNoGoroutineLeak opens and closes lockspaces with locks and
// callbacks pending, and checks every goroutine the library started ends.
func TestVMNoGoroutineLeak(t *testing.T) {
	ctx := ctx10(t)
	before := runtime.NumGoroutine()
	for range 5 {
		ls, err := NewLockspace("vmtest")
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ls.Lock(ctx, "leak", ModeEX, 0, WithBlockingCallback(func(Mode) {}))
		done := make(chan Result, 1)
		if _, err := ls.LockAsync("leak", ModeEX, 0, func(r Result) { done <- r }); err != nil {
			t.Fatal(err)
		}
		_ = h
		ls.Close()
		if r := <-done; !errors.Is(r.Err, ErrClosed) {
			t.Errorf("pending request at close: %+v", r)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestVMCloseWhileWaiting closes a handle while a synchronous request
// on it waits behind another handle's lock: the request ends with
// ErrClosed, at once.
func TestVMCloseWhileWaiting(t *testing.T) {
	ctx := ctx10(t)
	holder := vmLockspace(t)
	h, err := holder.Lock(ctx, "closewait", ModeEX, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx, 0)
	ls, err := OpenLockspace("vmtest")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := ls.Lock(ctx, "closewait", ModeEX, 0)
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond) // queued, its caller waiting on the device
	t0 := time.Now()
	ls.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("waiting request at close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Lock did not return after Close")
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close and the waiting Lock took %v", d)
	}
}

// TestVMWaitersAndCallbacks has synchronous callers wait while the
// library's reader goroutine also runs (a lock with a blocking
// callback needs it): every grant and every callback arrives.
func TestVMWaitersAndCallbacks(t *testing.T) {
	ctx := ctx10(t)
	ls := vmLockspace(t)
	other := vmLockspace(t)
	basts := make(chan Mode, 16)
	cb, err := ls.Lock(ctx, "watched", ModePR, 0, WithBlockingCallback(func(m Mode) { basts <- m }))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		h, err := other.Lock(ctx, "busy", ModeEX, 0)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			h.Unlock(ctx, 0)
		}()
		l, err := ls.Lock(ctx, "busy", ModeEX, 0) // waits for the unlock
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := l.Unlock(ctx, 0); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	// The watched lock's callback still arrives, while a caller waits.
	w, err := other.LockAsync("watched", ModeEX, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantBlocking(t, basts, ModeEX)
	if err := cb.Unlock(ctx, 0); err != nil {
		t.Fatal(err)
	}
	_ = w
}

// wantBlocking waits up to 5 s for a blocking callback on ch and checks
// it carries the blocked mode want.
func wantBlocking(t *testing.T, ch <-chan Mode, want Mode) {
	t.Helper()
	select {
	case m := <-ch:
		if m != want {
			t.Errorf("blocking callback for %v, want %v", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no blocking callback")
	}
}
