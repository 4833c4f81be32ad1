package controld

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/dlmc"
)

var sockSeq atomic.Int64

// testServer is a query server on private sockets, with limits set by
// tune before it accepts anything.
func testServer(t *testing.T, tune func(*QueryServer)) (*Daemon, *QueryServer, string) {
	t.Helper()
	root := kernelRoot(t, nil)
	d, _ := newTestDaemon(t, configfs.New(root), oneNode)
	run(t, d)
	s := newQueryServer(d)
	if tune != nil {
		tune(s)
	}
	name := fmt.Sprintf("godlm-test-limits-%d-%d", os.Getpid(), sockSeq.Add(1))
	ln, err := dlmc.ListenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	s.serve(ln, false)
	t.Cleanup(func() { s.Close() })
	return d, s, name
}

// query asks LOCKSPACES on a fresh connection, within 5 s.
func query(sock string) (dlmc.Header, []byte, error) {
	c, err := net.Dial("unix", "@"+sock)
	if err != nil {
		return dlmc.Header{}, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := dlmc.WriteMessage(c, dlmc.Header{Command: dlmc.Lockspaces, Data: 16}, nil); err != nil {
		return dlmc.Header{}, nil, err
	}
	return dlmc.ReadMessage(c)
}

func dialIdle(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", "@"+sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *QueryServer) open(uid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byUID[uid]
}

// failingListener fails its first n accepts as a listener out of file
// descriptors does.
type failingListener struct {
	*net.UnixListener
	n atomic.Int32
}

func (l *failingListener) AcceptUnix() (*net.UnixConn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.UnixListener.AcceptUnix()
}

// TestQueryAcceptSurvivesErrors: accept errors are waited out and
// logged once, and the socket answers afterwards.
func TestQueryAcceptSurvivesErrors(t *testing.T) {
	root := kernelRoot(t, nil)
	d, _ := newTestDaemon(t, configfs.New(root), oneNode)
	run(t, d)
	s := newQueryServer(d)
	name := fmt.Sprintf("godlm-test-accept-%d", os.Getpid())
	ln, err := dlmc.ListenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{UnixListener: ln}
	fl.n.Store(6)
	s.serve(fl, false)
	defer s.Close()
	for i := range 3 {
		if h, _, err := query(name); err != nil || h.Data != 0 {
			t.Fatalf("query %d after accept errors: %+v %v", i, h, err)
		}
	}
	if n := strings.Count(d.ring.String(), "accept failed"); n != 1 {
		t.Errorf("%d reports of the accept errors in the log, want 1 (rate-limited):\n%s", n, d.ring.String())
	}
}

// TestQueryAcceptOutOfFiles: the daemon runs out of file descriptors
// while a client connects; once some are free again, queries work.
func TestQueryAcceptOutOfFiles(t *testing.T) {
	_, s, name := testServer(t, nil)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) }
	defer restore()
	// Fill the table up to a low limit, then free one for the client.
	var fill []*os.File
	defer func() {
		for _, f := range fill {
			f.Close()
		}
	}()
	lim := unix.Rlimit{Cur: 256, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				restore()
				t.Fatal(err)
			}
			break
		}
		fill = append(fill, f)
	}
	fill[len(fill)-1].Close()
	fill = fill[:len(fill)-1]
	c, err := net.Dial("unix", "@"+name)
	if err != nil {
		restore()
		t.Fatalf("dial with one free descriptor: %v", err)
	}
	// The server's accept fails for lack of a descriptor; let it try.
	time.Sleep(200 * time.Millisecond)
	c.Close()
	for _, f := range fill {
		f.Close()
	}
	fill = nil
	restore()
	if h, _, err := query(name); err != nil || h.Data != 0 {
		t.Fatalf("query once descriptors are free again: %+v %v", h, err)
	}
	if !strings.Contains(s.d.ring.String(), "too many open files") {
		t.Errorf("the accept error was not logged:\n%s", s.d.ring.String())
	}
}

// TestQueryIdleConnectionsMemory: connections that declare a large
// payload and send nothing more, or send nothing at all, cost the
// daemon little memory each.
func TestQueryIdleConnectionsMemory(t *testing.T) {
	_, s, name := testServer(t, func(s *QueryServer) { s.perUser = 1000; s.global = 1000 })
	const n = 100
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for i := range n {
		c := dialIdle(t, name)
		conns = append(conns, c)
		switch i % 3 {
		case 0: // a header declaring the largest payload, then silence
			h := dlmc.Header{Command: dlmc.SetConfig, Len: dlmc.HeaderSize + dlmc.MaxPayload}
			c.Write(h.Marshal())
		case 1: // a header declaring a small payload, and part of it
			h := dlmc.Header{Command: dlmc.SetConfig, Len: dlmc.HeaderSize + 1024}
			c.Write(append(h.Marshal(), "daemon_debug"...))
		}
	}
	// Let the server read what was sent.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.open(0) == n-(n+2)/3 {
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per connection", per)
	if per > 32<<10 {
		t.Errorf("%d bytes allocated per idle connection, want at most 32 KiB", per)
	}
	// The oversized requests were answered and closed.
	for i := 0; i < n; i += 3 {
		conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		h, p, err := dlmc.ReadMessage(conns[i])
		if err != nil || h.Data != -int32(syscall.EMSGSIZE) || !strings.Contains(string(p), "limit") {
			t.Fatalf("oversized request %d: %+v %q %v", i, h, p, err)
		}
	}
}

// TestQueryIdleTimeout: a connection that sends no request is closed.
func TestQueryIdleTimeout(t *testing.T) {
	_, s, name := testServer(t, func(s *QueryServer) { s.idle = 100 * time.Millisecond })
	c := dialIdle(t, name)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read %v, want EOF", err)
	}
	eventually(t, "the connection's slot", func() bool { return s.open(0) == 0 })
}

// TestQueryConnectionLimits: a user over its limit is refused with a
// reason; unprivileged users together cannot take more than the global
// cap, and never root's connections.
func TestQueryConnectionLimits(t *testing.T) {
	var uid atomic.Uint32
	_, s, name := testServer(t, func(s *QueryServer) {
		s.perUser, s.global = 3, 5
		s.peerCred = func(c *net.UnixConn) (*unix.Ucred, error) {
			return &unix.Ucred{Uid: uid.Load(), Pid: 1}, nil
		}
	})
	connect := func(u uint32) net.Conn {
		uid.Store(u)
		c := dialIdle(t, name)
		eventually(t, fmt.Sprintf("connection of uid %d", u), func() bool { return s.open(u) > 0 })
		return c
	}
	refused := func(u uint32, what string) {
		t.Helper()
		uid.Store(u)
		h, p, err := query(name)
		if err != nil || h.Data != -int32(syscall.EUSERS) || !strings.Contains(string(p), what) {
			t.Errorf("query of uid %d: %+v %q %v, want EUSERS and %q", u, h, p, err, what)
		}
	}
	var held []net.Conn
	for range 3 {
		held = append(held, connect(1000))
	}
	eventually(t, "three connections", func() bool { return s.open(1000) == 3 })
	refused(1000, "uid 1000 already has 3 connections open (limit 3)")

	// Once one closes, the user gets another.
	held[0].Close()
	eventually(t, "a free slot", func() bool { return s.open(1000) == 2 })
	uid.Store(1000)
	if h, _, err := query(name); err != nil || h.Data != 0 {
		t.Errorf("query after a connection closed: %+v %v", h, err)
	}

	// Other users fill the global cap (5 with uid 1000's two).
	connect(1001)
	connect(1002)
	connect(1002)
	eventually(t, "five unprivileged connections", func() bool { return s.open(1001)+s.open(1002) == 3 })
	refused(1003, "limit 5")
	// Root is not held back by them.
	for range 2 {
		connect(0)
	}
	uid.Store(0)
	if h, _, err := query(name); err != nil || h.Data != 0 {
		t.Errorf("root's query with the unprivileged cap reached: %+v %v", h, err)
	}
	connect(0)
	eventually(t, "three root connections", func() bool { return s.open(0) == 3 })
	refused(0, "uid 0 already has 3 connections open")
}

// TestRateLimiter: one report per period, with the count held back.
func TestRateLimiter(t *testing.T) {
	r := rateLimiter{every: time.Second}
	t0 := time.Unix(1000, 0)
	var got []string
	var mu sync.Mutex
	for _, dt := range []time.Duration{0, 100 * time.Millisecond, 900 * time.Millisecond, time.Second, 1500 * time.Millisecond, 3 * time.Second} {
		n, ok := r.allow(t0.Add(dt))
		mu.Lock()
		got = append(got, fmt.Sprintf("%v:%v/%d", dt, ok, n))
		mu.Unlock()
	}
	want := "0s:true/0 100ms:false/0 900ms:false/0 1s:true/2 1.5s:false/0 3s:true/1"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("got %s\nwant %s", s, want)
	}
}
