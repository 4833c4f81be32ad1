package configfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ueventGroup is the multicast group of kernel uevents; udevd re-broadcasts
// on group 2 with its own framing, which is not used here.
const ueventGroup = 1

// ueventBufSize bounds one datagram; kernel uevents are at most 2 KiB.
const ueventBufSize = 64 << 10

// ueventRcvbuf is the receive buffer asked for when the kernel cannot be
// told to stop reporting overruns.
const ueventRcvbuf = 2 << 20

// UeventListener receives the kernel's DLM lockspace uevents from a
// NETLINK_KOBJECT_UEVENT socket. Next must not be called concurrently;
// Close may be called at any time.
type UeventListener struct {
	conn   *netlink.Conn
	raw    syscall.RawConn
	mu     sync.Mutex // serialises Next
	buf    []byte
	closed atomic.Bool
}

// ListenUevents opens a socket subscribed to the kernel's uevents. It asks
// the kernel not to report receive-buffer overruns (NETLINK_NO_ENOBUFS) and
// falls back to a 2 MiB receive buffer when that is not possible.
func ListenUevents() (*UeventListener, error) {
	c, err := netlink.Dial(unix.NETLINK_KOBJECT_UEVENT, &netlink.Config{Groups: ueventGroup})
	if err != nil {
		return nil, fmt.Errorf("configfs: open uevent socket: %w", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("configfs: open uevent socket: %w", err)
	}
	if err := c.SetOption(netlink.NoENOBUFS, true); err != nil {
		if err := setRcvbuf(raw, ueventRcvbuf); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("configfs: uevent socket receive buffer: %w", err)
		}
	}
	return &UeventListener{conn: c, raw: raw, buf: make([]byte, ueventBufSize)}, nil
}

// setRcvbuf sets the socket's receive buffer to n bytes, beyond the
// system limit if privileged.
func setRcvbuf(raw syscall.RawConn, n int) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}

// Next blocks until the next DLM lockspace online or offline uevent and
// returns it. Other uevents are skipped. A datagram that is malformed or
// not sent by the kernel is returned as an error wrapping ErrMalformed;
// the caller can log it and call Next again. An error wrapping
// unix.ENOBUFS also allows another call but means uevents were lost (only
// possible when NETLINK_NO_ENOBUFS could not be set). When ctx is done Next
// returns ctx.Err(); after Close it returns an error wrapping os.ErrClosed.
func (l *UeventListener) Next(ctx context.Context) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		b, err := l.receive(ctx)
		if err != nil {
			return Event{}, err
		}
		ev, ok, err := ParseUevent(b)
		if err != nil {
			return Event{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

// receive reads one datagram from the kernel.
func (l *UeventListener) receive(ctx context.Context) ([]byte, error) {
	if l.closed.Load() {
		return nil, fmt.Errorf("configfs: receive uevent: %w", os.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, l.readError(ctx, err)
	}
	// Wake the read up when ctx is done; wait for that wake-up to finish
	// before returning so it cannot hit a later call.
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		_ = l.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-woken
		}
	}()

	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	err := l.raw.Read(func(fd uintptr) bool {
		for {
			n, from, rerr = unix.Recvfrom(int(fd), l.buf, unix.MSG_TRUNC)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			return nil, fmt.Errorf("configfs: receive uevent: socket overrun, uevents were lost: %w", err)
		}
		return nil, l.readError(ctx, os.NewSyscallError("recvfrom", err))
	}
	if n > len(l.buf) {
		return nil, fmt.Errorf("configfs: uevent of %d bytes truncated to %d: %w", n, len(l.buf), ErrMalformed)
	}
	if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
		return nil, fmt.Errorf("configfs: dropped uevent not from the kernel (%s): %w", sender(from), ErrMalformed)
	}
	return l.buf[:n], nil
}

// readError explains a failed read: ctx.Err() if ctx is done, os.ErrClosed
// after Close.
func (l *UeventListener) readError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if l.closed.Load() {
		return fmt.Errorf("configfs: receive uevent: %w", os.ErrClosed)
	}
	return fmt.Errorf("configfs: receive uevent: %w", err)
}

// sender describes a datagram's source address.
func sender(from unix.Sockaddr) string {
	if sa, ok := from.(*unix.SockaddrNetlink); ok {
		return fmt.Sprintf("netlink port id %d", sa.Pid)
	}
	return fmt.Sprintf("address %T", from)
}

// Close closes the socket; a blocked Next returns.
func (l *UeventListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	if err := l.conn.Close(); err != nil {
		return fmt.Errorf("configfs: close uevent socket: %w", err)
	}
	return nil
}
