package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"
	"github.com/godlm/godlm/internal/version"
)

// fixedNow is the clock of the tests' fence lines.
var fixedNow = time.Unix(1700000000, 0)

type result struct {
	stdout, stderr string
	err            error
}

// run runs dlm_tool with args against client, capturing its output.
func run(t *testing.T, client *dlmc.Client, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	app := NewApp(Options{Client: client, Now: func() time.Time { return fixedNow }})
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(context.Background(), append([]string{"dlm_tool"}, args...))
	return result{out.String(), errOut.String(), err}
}

// absentClient reaches no daemon.
func absentClient() *dlmc.Client {
	return &dlmc.Client{
		QuerySocket:   fmt.Sprintf("godlm-tools-absent-%d-q", os.Getpid()),
		CommandSocket: fmt.Sprintf("godlm-tools-absent-%d-c", os.Getpid()),
	}
}

func TestVersion(t *testing.T) {
	line := "dlm_tool " + version.Version + " (godlm)\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, line},
		{[]string{"-V"}, line},
		{[]string{"--version"}, line},
		{[]string{"version", "--json"}, fmt.Sprintf("{\n  \"name\": \"dlm_tool\",\n  \"version\": %q,\n  \"implementation\": \"godlm\"\n}\n", version.Version)},
	} {
		r := run(t, absentClient(), tc.args...)
		if r.err != nil {
			t.Fatalf("%v: %v", tc.args, r.err)
		}
		if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see dlm_tool --help)`},
		{[]string{"ls", "a", "b"}, "ls takes at most one lockspace name, got 2 arguments"},
		{[]string{"ls", "--bogus"}, "ls: flag provided but not defined: -bogus (see dlm_tool ls --help)"},
		{[]string{"status", "extra"}, "status takes no arguments, got 1 arguments"},
		{[]string{"join"}, "join needs one lockspace name"},
		{[]string{"join", "a", "b"}, "join takes one lockspace name, got 2 arguments"},
		{[]string{"join", "-e", "2", "a"}, "join: -e takes 0 or 1, not 2"},
		{[]string{"join", "-f", "x", "a"}, `join: invalid value "x" for flag -f: strconv.ParseInt: parsing "x": invalid syntax (see dlm_tool join --help)`},
		{[]string{"join", "-m", "0800", "a"}, `join: mode "0800" is not an octal permission from 0 to 0777`},
		{[]string{"join", "-m", "01777", "a"}, `join: mode "01777" is not an octal permission from 0 to 0777`},
		{[]string{"leave"}, "leave needs one lockspace name"},
		{[]string{"join", strings.Repeat("n", 65)}, "lockspace name is 65 bytes; the limit is 64"},
		{[]string{"leave", strings.Repeat("n", 100)}, "lockspace name is 100 bytes; the limit is 64"},
		{[]string{"ls", strings.Repeat("n", 65)}, "lockspace name is 65 bytes; the limit is 64"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			d := &dlmctest.Daemon{}
			r := run(t, dlmctest.Start(t, d), tc.args...)
			if r.err == nil {
				t.Fatal("no error")
			}
			if got := ExitCode(r.err); got != 2 {
				t.Errorf("exit code %d, want 2 (%v)", got, r.err)
			}
			if r.err.Error() != tc.msg {
				t.Errorf("message %q, want %q", r.err, tc.msg)
			}
			if n := d.Connections(); n != 0 {
				t.Errorf("%d connections to the daemon, want none", n)
			}
			if strings.Contains(r.stdout, "Joining") {
				t.Errorf("printed %q before rejecting the command", r.stdout)
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	for _, args := range [][]string{
		{"ls"}, {"ls", "--json"}, {"ls", "gfs0"}, {"status"}, {"status", "--json"}, {"dump"},
		{"dump_config"}, {"join", "tls1"}, {"leave", "tls1"},
	} {
		r := run(t, absentClient(), args...)
		if !errors.Is(r.err, dlmc.ErrNoDaemon) {
			t.Errorf("%v: %v, want ErrNoDaemon", args, r.err)
			continue
		}
		if ExitCode(r.err) != 1 {
			t.Errorf("%v: exit code %d, want 1", args, ExitCode(r.err))
		}
		msg := r.err.Error()
		if !strings.HasPrefix(msg, "dlm_controld is not running (cannot connect to @godlm-tools-absent-") || strings.Contains(msg, "\n") {
			t.Errorf("%v: message %q", args, msg)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{usagef("bad"), 2},
		{fmt.Errorf("wrapped: %w", usagef("bad")), 2},
		{dlmc.CheckName(strings.Repeat("a", 65)), 2},
		{dlmc.CheckName(""), 2},
		{fmt.Errorf("x: %w", dlmc.ErrNoDaemon), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
