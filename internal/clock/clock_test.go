package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Unix(1000, 0)
	f := NewFake(start)
	a := f.After(2 * time.Second)
	b := f.After(time.Second)
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
	f.WaitForWaiters(2)
	f.Advance(time.Second)
	select {
	case got := <-b:
		if !got.Equal(start.Add(time.Second)) {
			t.Errorf("b fired at %v", got)
		}
	default:
		t.Fatal("b did not fire")
	}
	select {
	case <-a:
		t.Fatal("a fired early")
	default:
	}
	done := make(chan struct{})
	go func() { f.WaitForWaiters(2); close(done) }()
	f.After(time.Hour)
	<-done
	f.Advance(time.Second)
	<-a
	if f.Waiters() != 1 || !f.Now().Equal(start.Add(2*time.Second)) {
		t.Errorf("waiters %d, now %v", f.Waiters(), f.Now())
	}
	if d := time.Since(Real{}.Now()); d > time.Minute || d < -time.Minute {
		t.Errorf("Real is off by %v", d)
	}
}
