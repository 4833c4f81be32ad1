package tools

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"
)

func TestJoinLeave(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  string
		req  dlmc.Header
	}{
		{[]string{"join", "tls1"}, "Joining lockspace \"tls1\" permission 600 \ndone\n",
			dlmc.Header{Command: dlmc.Join, Name: "tls1", Data: 0o600}},
		{[]string{"join", "-e", "1", "-f", "1", "-m", "0644", "tls1"}, "Joining lockspace \"tls1\" permission 644 flags NEWEXCL FS \ndone\n",
			dlmc.Header{Command: dlmc.Join, Name: "tls1", Option: 0xc, Data: 0o644}},
		{[]string{"join", "tls1", "-f", "1", "-m", "660"}, "Joining lockspace \"tls1\" permission 660 flags FS \ndone\n",
			dlmc.Header{Command: dlmc.Join, Name: "tls1", Option: 0x4, Data: 0o660}},
		{[]string{"join", "-e", "0", "-m", "0o0", "tls1"}, "Joining lockspace \"tls1\" permission 0 \ndone\n",
			dlmc.Header{Command: dlmc.Join, Name: "tls1", Data: 0}},
		{[]string{"leave", "gfs0"}, "Leaving lockspace \"gfs0\"\ndone\n",
			dlmc.Header{Command: dlmc.Leave, Name: "gfs0", Option: 1}},
	} {
		d := vmlabDaemon()
		r := run(t, dlmctest.Start(t, d), tc.args...)
		if r.err != nil {
			t.Fatalf("%v: %v", tc.args, r.err)
		}
		if diff := cmp.Diff(tc.out, r.stdout); diff != "" {
			t.Errorf("%v output (-want +got):\n%s", tc.args, diff)
		}
		tc.req.Len = dlmc.HeaderSize
		if diff := cmp.Diff([]dlmc.Header{tc.req}, d.Requests()); diff != "" {
			t.Errorf("%v request (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestJoinLeaveErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		daemon *dlmctest.Daemon
		args   []string
		out    string
		msg    string
		is     error
	}{
		{"join permission", &dlmctest.Daemon{JoinErrno: syscall.EPERM}, []string{"join", "tls1"},
			"Joining lockspace \"tls1\" permission 600 \n", "permission denied: joining a lockspace needs root", os.ErrPermission},
		{"leave permission", &dlmctest.Daemon{JoinErrno: syscall.EACCES}, []string{"leave", "tls1"},
			"Leaving lockspace \"tls1\"\n", "permission denied: leaving a lockspace needs root", os.ErrPermission},
		{"join exists", vmlabDaemon(), []string{"join", "-e", "1", "gfs0"},
			"Joining lockspace \"gfs0\" permission 600 flags NEWEXCL \n", `joining lockspace "gfs0": file exists (dlm_controld: lockspace exists)`, syscall.EEXIST},
		{"join kernel error", &dlmctest.Daemon{JoinErrno: syscall.EIO, ErrText: "writing event_done: input/output error"}, []string{"join", "tls1"},
			"Joining lockspace \"tls1\" permission 600 \n", `joining lockspace "tls1": input/output error (dlm_controld: writing event_done: input/output error)`, syscall.EIO},
		{"leave unknown", vmlabDaemon(), []string{"leave", "nope"},
			"Leaving lockspace \"nope\"\n", `lockspace "nope" not found`, dlmc.ErrNoLockspace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dlmctest.Start(t, tc.daemon), tc.args...)
			if !errors.Is(r.err, tc.is) {
				t.Fatalf("%v, want %v", r.err, tc.is)
			}
			if r.err.Error() != tc.msg {
				t.Errorf("message %q, want %q", r.err, tc.msg)
			}
			if ExitCode(r.err) != 1 {
				t.Errorf("exit code %d, want 1", ExitCode(r.err))
			}
			if diff := cmp.Diff(tc.out, r.stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]uint32{"0600": 0o600, "600": 0o600, "0o644": 0o644, "0": 0, "777": 0o777, "0777": 0o777} {
		got, err := parseMode(in)
		if err != nil || got != want {
			t.Errorf("parseMode(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, in := range []string{"", "8", "1000", "rw", "-1", "0x1"} {
		if _, err := parseMode(in); !errors.Is(err, ErrUsage) {
			t.Errorf("parseMode(%q): %v, want a usage error", in, err)
		}
	}
}
