package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors an agent run can end with; test with errors.Is.
var (
	// ErrAgentFailed: the agent exited with a status other than 0, or
	// was killed by a signal.
	ErrAgentFailed = errors.New("fence agent failed")
	// ErrAgentTimeout: the agent outlived its timeout; its process group
	// was killed.
	ErrAgentTimeout = errors.New("fence agent timed out")
	// ErrAgentStart: the agent could not be started (not found, not
	// executable).
	ErrAgentStart = errors.New("fence agent did not start")
)

// Request is one run of an agent.
type Request struct {
	Step Step
	Node int
	// FailTime is when the node failed (fencing); the agent gets it as
	// fail_time=<unix seconds>, as from the reference.
	FailTime time.Time
	// Unfence runs the agent with action=on instead, for the local node
	// at start.
	Unfence bool
}

// Stdin is the text the agent reads, in the reference's order: the
// device's arguments, the node's connect arguments, node=<id> unless
// those named one, then fail_time=<unix seconds> when fencing or
// action=on when unfencing. Agents take the last value of a key, so an
// action= in the arguments (off rather than the agent's default reboot,
// say) is obeyed when fencing, and overridden when unfencing.
func (r Request) Stdin() []byte {
	var b bytes.Buffer
	hasNode := false
	for _, a := range r.Step.Args {
		fmt.Fprintf(&b, "%s=%s\n", a.Key, a.Value)
		hasNode = hasNode || a.Key == "node"
	}
	if !hasNode {
		fmt.Fprintf(&b, "node=%d\n", r.Node)
	}
	if r.Unfence {
		b.WriteString("action=on\n")
	} else {
		fmt.Fprintf(&b, "fail_time=%d\n", r.FailTime.Unix())
	}
	return b.Bytes()
}

// Result is how an agent run ended.
type Result struct {
	// Err is nil when the agent exited with status 0; otherwise it
	// matches ErrAgentFailed, ErrAgentTimeout or ErrAgentStart, or the
	// context's error when the run was cancelled.
	Err error
	// ExitCode is the agent's exit status, or -1 when it did not exit
	// by itself.
	ExitCode int
	// Output is the end of what the agent printed (standard output and
	// error), for the log and dlm_tool status.
	Output string
	Took   time.Duration
}

// Runner runs fence agents. Run returns when the agent has ended and
// nothing of it is left running.
type Runner interface {
	Run(ctx context.Context, r Request) Result
}

// ExecRunner runs agents as fence-agents programs, as the reference
// does: the agent is looked up on PATH and started with no arguments,
// its input on stdin. Unlike the reference, a run has a time limit,
// after which the agent's whole process group is killed.
type ExecRunner struct {
	// Timeout bounds each run (0: no limit, as the reference).
	Timeout time.Duration
	// Env is the agents' environment (nil: the daemon's).
	Env []string
}

// maxOutput is how much of an agent's output a Result keeps.
const maxOutput = 2048

// Run runs one agent.
func (e ExecRunner) Run(ctx context.Context, r Request) Result {
	start := time.Now()
	res := Result{ExitCode: -1}
	defer func() { res.Took = time.Since(start) }()
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	what := fmt.Sprintf("agent %s (device %s) for node %d", r.Step.Agent, r.Step.Device, r.Node)
	cmd := exec.CommandContext(ctx, r.Step.Agent)
	cmd.Env = e.Env
	cmd.Stdin = bytes.NewReader(r.Stdin())
	out := &tail{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that whatever it started dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Start()
	if err != nil {
		res.Err = fmt.Errorf("%s: %w: %w", what, ErrAgentStart, err)
		return res
	}
	err = cmd.Wait()
	// Kill what the agent left behind in its group, even on success:
	// nothing of a finished fence operation may go on acting.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	res.Output = out.String()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Exited() {
		res.ExitCode = st.ExitStatus()
	}
	switch {
	case err == nil:
		return res
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && e.Timeout > 0:
		res.Err = fmt.Errorf("%s: %w after %v", what, ErrAgentTimeout, e.Timeout)
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("%s: %w", what, ctx.Err())
	default:
		res.Err = fmt.Errorf("%s: %w: %v%s", what, ErrAgentFailed, err, lastLine(res.Output))
	}
	return res
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
