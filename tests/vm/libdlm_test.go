package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// buildGuestTest compiles a package's vmtest-tagged tests into a static
// binary for the guest.
func buildGuestTest(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".test")
	cmd := exec.Command("go", "test", "-c", "-tags", "vmtest", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for the guest: %v\n%s", pkg, err, b)
	}
	return out
}

// TestLibdlmOneNode runs libdlm's tests on the real kernel: the mode
// compatibility matrix, conversions (QUECVT, CONVDEADLK), value blocks,
// blocking callbacks, cancel, context timeout, persistent and orphan
// locks, the cluster mutexes and lock hierarchy, a value-block counter
// incremented by several processes, and no goroutine left behind.
func TestLibdlmOneNode(t *testing.T) {
	needVMs(t)
	bin := buildGuestTest(t, "github.com/godlm/godlm/libdlm")
	c := lab.Start(t, lab.Config{Nodes: 1, LoadClusterModules: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := c.Node(1)
	startDaemon(ctx, t, c, n)
	if err := n.CopyIn(ctx, bin, "/tmp/libdlm.test"); err != nil {
		t.Fatal(err)
	}
	r, err := n.Run(ctx, "cd /tmp && ./libdlm.test -test.v -test.count=1 -test.timeout=4m -test.run '^TestVM' 2>&1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest test output:\n%s", r.Stdout)
	if r.ExitCode != 0 {
		t.Fatalf("libdlm tests failed in the guest (exit %d)", r.ExitCode)
	}
	// Every VM test ran and passed: none skipped, none missing.
	passed := regexp.MustCompile(`(?m)^--- PASS: (TestVM\w+)`).FindAllStringSubmatch(r.Stdout, -1)
	if strings.Contains(r.Stdout, "--- SKIP") || len(passed) < 13 {
		t.Errorf("%d VM tests passed, want 13, none skipped", len(passed))
	}
	noLeftoversExcept(ctx, t, n, "vmtest")
}

// noLeftoversExcept checks that no lockspace but the named ones remains.
func noLeftoversExcept(ctx context.Context, t *testing.T, n *lab.Node, keep ...string) {
	t.Helper()
	out, err := n.RunOK(ctx, "ls /sys/kernel/dlm")
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range strings.Fields(out) {
		if !slices.Contains(keep, ls) {
			t.Errorf("lockspace %s left behind", ls)
		}
	}
}
