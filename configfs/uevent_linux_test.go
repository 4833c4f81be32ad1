package configfs

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/internal/testenv"
)

// listen opens a UeventListener, skipping the test only when the system
// refuses the socket for lack of privilege.
func listen(t *testing.T) *UeventListener {
	t.Helper()
	l, err := ListenUevents()
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		testenv.Missing(t, "uevent socket not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// nextWithin runs Next and fails t if it takes longer than d.
func nextWithin(t *testing.T, l *UeventListener, ctx context.Context, d time.Duration) (Event, error) {
	t.Helper()
	type result struct {
		ev  Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := l.Next(ctx)
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		return r.ev, r.err
	case <-time.After(d):
		t.Fatalf("Next did not return within %v", d)
		return Event{}, nil
	}
}

func TestUeventListenerContext(t *testing.T) {
	l := listen(t)

	// Cancelled while blocked.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := nextWithin(t, l, ctx, 5*time.Second); err != context.Canceled {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Next returned after %v, before the cancel", d)
	}

	// Already cancelled.
	if _, err := nextWithin(t, l, ctx, time.Second); err != context.Canceled {
		t.Fatalf("Next with a cancelled ctx = %v, want context.Canceled", err)
	}

	// Deadline; the previous wake-up must not leak into this call, which
	// first has to wait.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := nextWithin(t, l, ctx, 5*time.Second); err != context.DeadlineExceeded {
		t.Fatalf("Next past the deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("Next returned after %v, before the deadline", d)
	}
}

func TestUeventListenerClose(t *testing.T) {
	l := listen(t)
	time.AfterFunc(50*time.Millisecond, func() { _ = l.Close() })
	_, err := nextWithin(t, l, context.Background(), 5*time.Second)
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Next during Close = %v, want os.ErrClosed", err)
	}
	_, err = nextWithin(t, l, context.Background(), time.Second)
	if !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Next after Close = %v, want os.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestUeventListenerDropsUserspaceSender(t *testing.T) {
	l := listen(t)
	c, err := netlink.Dial(unix.NETLINK_KOBJECT_UEVENT, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// A perfect DLM event, sent straight to the listener's port id.
	msg := uevent("online@/kernel/dlm/fake", "ACTION=online", "DEVPATH=/kernel/dlm/fake", "SUBSYSTEM=dlm", "LOCKSPACE=fake", "SEQNUM=1")
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: l.conn.PID()})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		t.Fatalf("send to listener: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := nextWithin(t, l, ctx, 10*time.Second)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "not from the kernel") {
		t.Fatalf("Next = %v, %v, want ErrMalformed, not from the kernel", ev, err)
	}
}
