package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs itself as a child process with and without CI set,
// and checks that the child skipped or failed.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Missing(t, "no %s here", "widget")
		return
	}
	for _, c := range []struct {
		ci      string
		wantErr bool
		want    string
	}{
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
		{"true", true, "--- FAIL"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.wantErr || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "no widget here") {
			t.Errorf("CI=%q: err %v, output:\n%s", c.ci, err, out)
		}
	}
}
