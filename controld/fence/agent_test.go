package fence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStdin(t *testing.T) {
	step := Step{Device: "d", Agent: "fence_x", Args: []Arg{{"ip", "10.0.0.1"}, {"action", "off"}, {"plug", "3"}}}
	fail := time.Unix(1764000000, 0)
	for _, c := range []struct {
		name string
		r    Request
		want string
	}{
		{"fence", Request{Step: step, Node: 3, FailTime: fail}, "ip=10.0.0.1\naction=off\nplug=3\nnode=3\nfail_time=1764000000\n"},
		{"unfence", Request{Step: step, Node: 3, Unfence: true}, "ip=10.0.0.1\naction=off\nplug=3\nnode=3\naction=on\n"},
		{"node given", Request{Step: Step{Args: []Arg{{"node", "3"}}}, Node: 3, FailTime: fail}, "node=3\nfail_time=1764000000\n"},
	} {
		if diff := cmp.Diff(c.want, string(c.r.Stdin())); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

// agent writes an executable shell script into a new directory.
func agent(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fence_test")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecRunner(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "stdin")
	ok := agent(t, "cat > "+in+"\necho 'Success: Powered OFF'\n")
	r := ExecRunner{Timeout: 10 * time.Second}.Run(context.Background(), Request{Step: Step{Agent: ok, Device: "d", Args: []Arg{{"plug", "2"}}}, Node: 2, FailTime: time.Unix(5, 0)})
	if r.Err != nil || r.ExitCode != 0 || !strings.Contains(r.Output, "Success") {
		t.Fatalf("successful agent: %+v", r)
	}
	b, _ := os.ReadFile(in)
	if diff := cmp.Diff("plug=2\nnode=2\nfail_time=5\n", string(b)); diff != "" {
		t.Errorf("agent's stdin (-want +got):\n%s", diff)
	}

	r = ExecRunner{}.Run(context.Background(), Request{Step: Step{Agent: agent(t, "echo 'Failed: unable to connect' >&2\nexit 1\n")}, Node: 2})
	if !errors.Is(r.Err, ErrAgentFailed) || r.ExitCode != 1 || !strings.Contains(r.Err.Error(), "unable to connect") {
		t.Errorf("failing agent: %+v", r)
	}

	r = ExecRunner{}.Run(context.Background(), Request{Step: Step{Agent: filepath.Join(dir, "no_such_agent")}, Node: 2})
	if !errors.Is(r.Err, ErrAgentStart) {
		t.Errorf("missing agent: %+v", r)
	}
	r = ExecRunner{}.Run(context.Background(), Request{Step: Step{Agent: "fence_godlm_no_such_agent_on_path"}, Node: 2})
	if !errors.Is(r.Err, ErrAgentStart) {
		t.Errorf("agent not on PATH: %+v", r)
	}
}

// TestExecRunnerTimeout: a hung agent is killed at its timeout, with
// everything it started.
func TestExecRunnerTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	hang := agent(t, "sleep 300 &\necho $! > "+pidFile+"\nwait\n")
	start := time.Now()
	r := ExecRunner{Timeout: 300 * time.Millisecond}.Run(context.Background(), Request{Step: Step{Agent: hang}, Node: 2})
	if !errors.Is(r.Err, ErrAgentTimeout) || r.ExitCode != -1 {
		t.Fatalf("hung agent: %+v", r)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the hung agent took %v to be killed", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's child %d outlived it", pid)
		}
	}

	// A cancelled context ends the run too, without calling it a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r = ExecRunner{}.Run(ctx, Request{Step: Step{Agent: agent(t, "sleep 300\n")}, Node: 2})
	if !errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, ErrAgentTimeout) {
		t.Errorf("cancelled agent: %+v", r)
	}
}

// alive reports whether pid runs (a zombie does not count: its parent,
// maybe an init that does not reap, is all that keeps it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestTail(t *testing.T) {
	tl := &tail{max: 4}
	tl.Write([]byte("ab"))
	tl.Write([]byte("cdef"))
	if tl.String() != "cdef" {
		t.Errorf("tail %q", tl.String())
	}
}
