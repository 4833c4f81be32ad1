// Package systemd holds the systemd units; its tests check them.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/internal/testenv"
)

// unit reads a unit file into section -> key -> values.
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: malformed line %q", path, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func one(t *testing.T, u map[string]map[string][]string, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s set %d times, want once: %q", section, key, len(v), v)
	}
	return v[0]
}

// TestServiceRestartsOnFailure: a daemon that dies is started again,
// after a pause, and one that cannot start is given up on.
func TestServiceRestartsOnFailure(t *testing.T) {
	u := unit(t, "dlm.service")
	if got := one(t, u, "Service", "Restart"); got != "on-failure" {
		t.Errorf("Restart=%s, want on-failure", got)
	}
	d, err := time.ParseDuration(one(t, u, "Service", "RestartSec"))
	if err != nil || d < time.Second || d > time.Minute {
		t.Errorf("RestartSec=%s (%v): want between 1s and 1min", one(t, u, "Service", "RestartSec"), err)
	}
	if one(t, u, "Unit", "StartLimitBurst") == "" || one(t, u, "Unit", "StartLimitIntervalSec") == "" {
		t.Error("no start limit: a daemon that cannot start would be restarted forever")
	}
	// Never killed: a killed daemon stops every lockspace.
	if got := one(t, u, "Service", "SendSIGKILL"); got != "no" {
		t.Errorf("SendSIGKILL=%s, want no", got)
	}
}

// TestServiceVerifies runs systemd-analyze verify on the unit, with the
// programs it runs replaced by ones this machine has.
func TestServiceVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Missing(t, "systemd-analyze is not installed")
	}
	b, err := os.ReadFile("dlm.service")
	if err != nil {
		t.Fatal(err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"ExecStartPre=", "ExecStart="} {
			if strings.HasPrefix(l, k) {
				l = k + truePath
			}
		}
		lines = append(lines, l)
	}
	p := filepath.Join(t.TempDir(), "dlm.service")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
