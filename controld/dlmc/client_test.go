package dlmc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"
)

func sampleDaemon() *dlmctest.Daemon {
	members := []dlmc.Node{
		{NodeID: 1, Flags: dlmc.NFMember | dlmc.NFStart, AddedSeq: 1},
		{NodeID: 2, Flags: dlmc.NFMember | dlmc.NFStart, AddedSeq: 1},
		{NodeID: 3, Flags: dlmc.NFMember | dlmc.NFStart, AddedSeq: 2},
	}
	return &dlmctest.Daemon{
		Lockspaces: []dlmctest.Lockspace{
			{
				Lockspace: dlmc.Lockspace{
					Name: "gfs0", GlobalID: 0xd6c2e89a,
					Prev: dlmc.Change{MemberCount: 3, JoinedCount: 1, Seq: 1, CombinedSeq: 1},
				},
				Members: members, All: members,
			},
			{Lockspace: dlmc.Lockspace{Name: "tls1", GlobalID: 7}},
		},
		Status: []dlmc.State{
			{Type: dlmc.StateDaemon, NodeID: 1, Str: "member_count=3 quorate=1 "},
			{Type: dlmc.StateDaemonNode, NodeID: 2, Str: "member=1 "},
		},
		Debug:    "1 line one\n2 line two\n",
		Config:   "protocol=detect\nport=21064\n",
		LogPlock: "plock log\n",
		Plocks:   map[string]string{"gfs0": "plocks of gfs0\n"},
	}
}

func TestClientQueries(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		do   func() (any, error)
		want any
	}{
		{"DumpDebug", func() (any, error) { return c.DumpDebug(ctx) }, d.Debug},
		{"DumpConfig", func() (any, error) { return c.DumpConfig(ctx) }, d.Config},
		{"DumpLogPlock", func() (any, error) { return c.DumpLogPlock(ctx) }, d.LogPlock},
		{"DumpPlocks", func() (any, error) { return c.DumpPlocks(ctx, "gfs0") }, "plocks of gfs0\n"},
		{"DumpStatus", func() (any, error) { return c.DumpStatus(ctx) }, d.Status},
		{"Lockspaces", func() (any, error) { return c.Lockspaces(ctx) }, []dlmc.Lockspace{d.Lockspaces[0].Lockspace, d.Lockspaces[1].Lockspace}},
		{"LockspaceInfo", func() (any, error) { return c.LockspaceInfo(ctx, "tls1") }, d.Lockspaces[1].Lockspace},
		{"LockspaceNodes", func() (any, error) { return c.LockspaceNodes(ctx, "gfs0", dlmc.NodesMembers, 0) }, d.Lockspaces[0].Members},
		{"LockspaceNodes empty", func() (any, error) { return c.LockspaceNodes(ctx, "gfs0", dlmc.NodesNext, 0) }, []dlmc.Node{}},
		{"NodeInfo", func() (any, error) { return c.NodeInfo(ctx, "gfs0", 3) }, d.Lockspaces[0].Members[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientRequests(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	ctx := context.Background()
	if _, err := c.Lockspaces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LockspaceNodes(ctx, "gfs0", dlmc.NodesAll, 16); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NodeInfo(ctx, "gfs0", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctx, "new", 0x8, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(ctx, "new", true); err != nil {
		t.Fatal(err)
	}
	want := []dlmc.Header{
		{Command: dlmc.Lockspaces, Len: dlmc.HeaderSize, Data: dlmc.MaxPayload / dlmc.LockspaceSize},
		{Command: dlmc.LockspaceNodes, Len: dlmc.HeaderSize, Name: "gfs0", Option: dlmc.NodesAll, Data: 16},
		{Command: dlmc.NodeInfo, Len: dlmc.HeaderSize, Name: "gfs0", Data: 2},
		{Command: dlmc.Join, Len: dlmc.HeaderSize, Name: "new", Option: 0x8, Data: 0o644},
		{Command: dlmc.Leave, Len: dlmc.HeaderSize, Name: "new", Option: 1},
	}
	if diff := cmp.Diff(want, d.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got := d.Connections(); got != len(want) {
		t.Errorf("%d connections, want one per request (%d)", got, len(want))
	}
}

func TestClientE2BIG(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	nodes, err := c.LockspaceNodes(context.Background(), "gfs0", dlmc.NodesAll, 2)
	if !errors.Is(err, syscall.E2BIG) {
		t.Errorf("error %v, want E2BIG", err)
	}
	if len(nodes) != 2 {
		t.Errorf("%d nodes, want the 2 asked for", len(nodes))
	}
}

func TestClientNoLockspace(t *testing.T) {
	c := dlmctest.Start(t, sampleDaemon())
	ctx := context.Background()
	for name, do := range map[string]func() error{
		"LockspaceInfo":  func() error { _, err := c.LockspaceInfo(ctx, "nope"); return err },
		"LockspaceNodes": func() error { _, err := c.LockspaceNodes(ctx, "nope", dlmc.NodesAll, 0); return err },
		"NodeInfo":       func() error { _, err := c.NodeInfo(ctx, "nope", 1); return err },
		"DumpPlocks":     func() error { _, err := c.DumpPlocks(ctx, "nope"); return err },
		"Leave":          func() error { return c.Leave(ctx, "nope", false) },
	} {
		err := do()
		if !errors.Is(err, dlmc.ErrNoLockspace) || !errors.Is(err, syscall.ENOENT) {
			t.Errorf("%s: %v, want ErrNoLockspace and ENOENT", name, err)
		}
		var de *dlmc.DaemonError
		if !errors.As(err, &de) || de.Name != "nope" {
			t.Errorf("%s: %#v, want a DaemonError naming the lockspace", name, err)
		}
		if err != nil && err.Error() != `lockspace "nope" not found` {
			t.Errorf("%s: message %q", name, err)
		}
	}
}

func TestClientJoinErrors(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		text  string
		is    []error
		join  string
		leave string
	}{
		{
			errno: syscall.EPERM, is: []error{os.ErrPermission, syscall.EPERM},
			join:  "permission denied: joining a lockspace needs root",
			leave: "permission denied: leaving a lockspace needs root",
		},
		{
			errno: syscall.EACCES, text: "uid 1000 is not root", is: []error{os.ErrPermission},
			join:  "permission denied: joining a lockspace needs root",
			leave: "permission denied: leaving a lockspace needs root",
		},
		{
			errno: syscall.EBUSY, text: "kernel said no\n\x00junk", is: []error{syscall.EBUSY},
			join:  `joining lockspace "ls": device or resource busy (dlm_controld: kernel said no)`,
			leave: `leaving lockspace "ls": device or resource busy (dlm_controld: kernel said no)`,
		},
	} {
		d := &dlmctest.Daemon{JoinErrno: tc.errno, ErrText: tc.text}
		c := dlmctest.Start(t, d)
		for op, want := range map[string]string{"join": tc.join, "leave": tc.leave} {
			var err error
			if op == "join" {
				err = c.Join(context.Background(), "ls", 0, 0o600)
			} else {
				err = c.Leave(context.Background(), "ls", false)
			}
			if err == nil || err.Error() != want {
				t.Errorf("%s with %v: %v, want %q", op, tc.errno, err, want)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("%s with %v: %v does not wrap %v", op, tc.errno, err, target)
				}
			}
		}
	}
}

func TestClientJoinExisting(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	err := c.Join(context.Background(), "gfs0", 0, 0o600)
	if !errors.Is(err, syscall.EEXIST) || errors.Is(err, dlmc.ErrNoLockspace) {
		t.Errorf("Join of an existing lockspace: %v", err)
	}
}

func TestClientBadNameNoConnection(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	ctx := context.Background()
	long := strings.Repeat("x", 65)
	errs := []error{
		c.Join(ctx, long, 0, 0o600),
		c.Leave(ctx, long, true),
		c.Join(ctx, "", 0, 0o600),
	}
	_, err := c.LockspaceInfo(ctx, long)
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, dlmc.ErrNameTooLong) && !errors.Is(err, dlmc.ErrBadName) {
			t.Errorf("call %d: %v, want a name error", i, err)
		}
	}
	if n := d.Connections(); n != 0 {
		t.Errorf("%d connections, want none", n)
	}
}

func TestClientNoDaemon(t *testing.T) {
	c := &dlmc.Client{QuerySocket: fmt.Sprintf("godlm-absent-%d-q", os.Getpid()), CommandSocket: fmt.Sprintf("godlm-absent-%d-c", os.Getpid())}
	ctx := context.Background()
	_, err := c.Lockspaces(ctx)
	if !errors.Is(err, dlmc.ErrNoDaemon) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Lockspaces: %v, want ErrNoDaemon", err)
	}
	want := fmt.Sprintf("dlm_controld is not running (cannot connect to @%s)", c.QuerySocket)
	if err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if err := c.Join(ctx, "x", 0, 0o600); !errors.Is(err, dlmc.ErrNoDaemon) || !strings.Contains(err.Error(), "@"+c.CommandSocket) {
		t.Errorf("Join: %v", err)
	}
}

func TestClientBadReplies(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook func(conn *net.UnixConn, req dlmc.Header, payload []byte) bool
		do   func(c *dlmc.Client) error
		want error
	}{
		{
			name: "status with header",
			hook: func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
				_ = dlmc.WriteMessage(conn, req, dlmc.AppendState(nil, dlmc.State{Type: 1}))
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.DumpStatus(context.Background()); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "status empty",
			hook: func(*net.UnixConn, dlmc.Header, []byte) bool { return true },
			do:   func(c *dlmc.Client) error { _, err := c.DumpStatus(context.Background()); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "status truncated",
			hook: func(conn *net.UnixConn, _ dlmc.Header, _ []byte) bool {
				_, _ = conn.Write(dlmc.AppendState(nil, dlmc.State{Type: 1, Str: "a=1 "})[:30])
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.DumpStatus(context.Background()); return err },
			want: dlmc.ErrTruncated,
		},
		{
			name: "wrong command",
			hook: func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
				req.Command = dlmc.DumpConfig
				_ = dlmc.WriteMessage(conn, req, nil)
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.DumpDebug(context.Background()); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "count mismatch",
			hook: func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
				req.Data = 2
				_ = dlmc.WriteMessage(conn, req, dlmc.AppendLockspace(nil, dlmc.Lockspace{Name: "a"}))
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.Lockspaces(context.Background()); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "partial record",
			hook: func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
				req.Data = 1
				_ = dlmc.WriteMessage(conn, req, make([]byte, dlmc.NodeSize+1))
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.LockspaceNodes(context.Background(), "a", 1, 0); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "short info",
			hook: func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
				_ = dlmc.WriteMessage(conn, req, make([]byte, 10))
				return true
			},
			do:   func(c *dlmc.Client) error { _, err := c.LockspaceInfo(context.Background(), "a"); return err },
			want: dlmc.ErrBadReply,
		},
		{
			name: "closed without reply",
			hook: func(*net.UnixConn, dlmc.Header, []byte) bool { return true },
			do:   func(c *dlmc.Client) error { _, err := c.DumpConfig(context.Background()); return err },
			want: errors.New("EOF"), // checked by message below
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dlmctest.Start(t, &dlmctest.Daemon{Hook: tc.hook})
			err := tc.do(c)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want.Error() == "EOF" {
				if !strings.Contains(err.Error(), "EOF") {
					t.Errorf("%v, want EOF", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
}

func TestClientContext(t *testing.T) {
	block := make(chan struct{})
	d := &dlmctest.Daemon{Hook: func(*net.UnixConn, dlmc.Header, []byte) bool {
		<-block // never answer
		return true
	}}
	c := dlmctest.Start(t, d)
	t.Cleanup(func() { close(block) }) // runs before the daemon stops

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.DumpDebug(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.DumpStatus(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func TestQueryRaw(t *testing.T) {
	d := sampleDaemon()
	c := dlmctest.Start(t, d)
	h, p, err := c.Query(context.Background(), dlmc.Header{Command: dlmc.DumpDebug}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := dlmc.Header{Command: dlmc.DumpDebug, Len: uint32(dlmc.HeaderSize + len(d.Debug))}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if string(p) != d.Debug {
		t.Errorf("payload %q", p)
	}
	h, _, err = c.Control(context.Background(), dlmc.Header{Command: dlmc.FSRegister, Name: "x"}, nil)
	if err != nil || h.Data != -int32(syscall.EOPNOTSUPP) {
		t.Errorf("Control: %+v, %v", h, err)
	}
}
