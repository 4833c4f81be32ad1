package controld

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld/dlmc"
)

func ask(t *testing.T, sock string, h dlmc.Header) (dlmc.Header, []byte) {
	t.Helper()
	c, err := net.Dial("unix", "@"+sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := dlmc.WriteMessage(c, h, nil); err != nil {
		t.Fatal(err)
	}
	rh, payload, err := dlmc.ReadMessage(c)
	if err != nil {
		t.Fatal(err)
	}
	return rh, payload
}

func TestQueryServer(t *testing.T) {
	root := kernelRoot(t, nil)
	d, ue := newTestDaemon(t, configfs.New(root), oneNode)
	run(t, d)
	addLockspace(t, root, "ls1", "0")
	ue.ch <- configfs.Event{Kind: configfs.EventOnline, Lockspace: "ls1"}
	eventually(t, "the join", func() bool { return read(t, root, "sys/kernel/dlm/ls1/event_done") == "0" })

	q := fmt.Sprintf("godlm-test-q-%d", os.Getpid())
	s, err := ListenQueryOn(d, q, q+"-cmd")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	h, p := ask(t, q, dlmc.Header{Command: dlmc.Lockspaces, Data: 16})
	lss, err := dlmc.ParseLockspaces(p)
	if err != nil || h.Data != 1 || len(lss) != 1 || lss[0].Name != "ls1" || lss[0].GlobalID != configfs.GlobalID("ls1") ||
		lss[0].Prev.MemberCount != 1 {
		t.Errorf("LOCKSPACES: %+v %+v %v", h, lss, err)
	}
	if h, _ := ask(t, q, dlmc.Header{Command: dlmc.LockspaceInfo, Name: "nope"}); h.Data != -int32(syscall.ENOENT) {
		t.Errorf("LOCKSPACE_INFO of an unknown lockspace: %+v", h)
	}
	h, p = ask(t, q, dlmc.Header{Command: dlmc.LockspaceNodes, Name: "ls1", Option: dlmc.NodesMembers, Data: 8})
	nodes, err := dlmc.ParseNodes(p)
	if err != nil || h.Data != 1 || len(nodes) != 1 || nodes[0].NodeID != 1 {
		t.Errorf("LOCKSPACE_NODES: %+v %+v %v", h, nodes, err)
	}
	if _, p := ask(t, q, dlmc.Header{Command: dlmc.DumpDebug}); !bytes.Contains(p, []byte("joined lockspace")) {
		t.Errorf("DUMP_DEBUG:\n%s", p)
	}
	if _, p := ask(t, q, dlmc.Header{Command: dlmc.DumpConfig}); !strings.Contains(string(p), "cluster_name=test (dlm.conf)") {
		t.Errorf("DUMP_CONFIG:\n%s", p)
	}

	// DUMP_STATUS: state records until the daemon closes.
	c, err := net.Dial("unix", "@"+q)
	if err != nil {
		t.Fatal(err)
	}
	dlmc.WriteMessage(c, dlmc.Header{Command: dlmc.DumpStatus}, nil)
	var all bytes.Buffer
	all.ReadFrom(c)
	c.Close()
	states, err := dlmc.ParseStates(all.Bytes())
	// The daemon, both configured nodes (2 is not a member), the lockspace.
	if err != nil || len(states) != 4 || states[0].Type != dlmc.StateDaemon || states[0].NodeID != 1 ||
		states[0].Fields()["quorate"] != "1" || states[1].Fields()["member"] != "1" || states[2].Fields()["member"] != "0" ||
		states[3].Type != dlmc.StateLockspace || states[3].Fields()["members"] != "1" || states[3].Fields()["state"] != "running" {
		t.Errorf("DUMP_STATUS: %+v %v", states, err)
	}
}

func TestStateChangesNeedRoot(t *testing.T) {
	root := kernelRoot(t, nil)
	d, _ := newTestDaemon(t, configfs.New(root), oneNode)
	s := &QueryServer{d: d}
	for _, cmd := range []dlmc.Command{dlmc.Join, dlmc.Leave, dlmc.FenceAck, dlmc.RunStart} {
		var b bytes.Buffer
		if err := s.dispatch(&b, &unix.Ucred{Uid: 1000, Pid: 42}, dlmc.Header{Command: cmd, Name: "x"}, nil); err != nil {
			t.Fatal(err)
		}
		h, p, err := dlmc.ReadMessage(&b)
		if err != nil || h.Data != -int32(syscall.EPERM) || !strings.Contains(string(p), "permission denied") {
			t.Errorf("%v from uid 1000: %+v %q %v", cmd, h, p, err)
		}
	}
	// Queries are open to everyone.
	var b bytes.Buffer
	s.dispatch(&b, &unix.Ucred{Uid: 1000}, dlmc.Header{Command: dlmc.Lockspaces}, nil)
	if h, _, err := dlmc.ReadMessage(&b); err != nil || h.Data != 0 {
		t.Errorf("LOCKSPACES from uid 1000: %+v %v", h, err)
	}
}

// TestReplyWriterDeadlineFromWrite: a reply written long after the
// request came in (the daemon waited for the kernel) still goes out; the
// deadline counts from each write.
func TestReplyWriterDeadlineFromWrite(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	server, client := conn(fds[0]), conn(fds[1])
	w := replyWriter{server, 50 * time.Millisecond}
	time.Sleep(150 * time.Millisecond) // the request's work
	if _, err := w.Write([]byte("reply")); err != nil {
		t.Fatalf("write after the work: %v", err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(client, b); err != nil || string(b) != "reply" {
		t.Fatalf("client read %q %v", b, err)
	}
	// A client that never reads still cannot hold the writer forever.
	big := make([]byte, 16<<20)
	if _, err := w.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write to a client that does not read: %v, want a deadline error", err)
	}
}

// TestQueryBoundButNotServing: between BindQuery and Serve (while Setup
// runs) a client waits, and is answered once the daemon serves.
func TestQueryBoundButNotServing(t *testing.T) {
	d, _ := newTestDaemon(t, configfs.New(kernelRoot(t, nil)), oneNode)
	q := fmt.Sprintf("godlm-test-bound-%d", os.Getpid())
	s, err := BindQueryOn(d, q, q+"-cmd")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("unix", "@"+q)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := dlmc.WriteMessage(c, dlmc.Header{Command: dlmc.DumpDebug}, nil); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := dlmc.ReadMessage(c); err == nil {
		t.Fatal("answered before Serve")
	}
	run(t, d)
	s.Serve()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := dlmc.ReadMessage(c); err != nil {
		t.Fatalf("no answer once serving: %v", err)
	}
}
