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

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/tests/lab"
)

// buildGuestTest compiles a package's vmtest-tagged tests into a binary
// for the guest: static, or with the race detector (which needs cgo,
// so it links the C library, which the guest image has).
func buildGuestTest(t *testing.T, pkg string, race bool) string {
	t.Helper()
	name := filepath.Base(pkg) + ".test"
	args := []string{"test", "-c", "-tags", "vmtest", "-trimpath"}
	env := "CGO_ENABLED=0"
	if race {
		name = filepath.Base(pkg) + ".race.test"
		args = append(args, "-race")
		env = "CGO_ENABLED=1"
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", append(args, "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), env)
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
	bins := map[string]string{
		"libdlm.test":      buildGuestTest(t, "github.com/godlm/godlm/libdlm", false),
		"libdlm.race.test": buildGuestTest(t, "github.com/godlm/godlm/libdlm", true),
	}
	src, err := os.ReadFile("../../libdlm/vm_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^func (TestVM\w+)\(`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	c := lab.Start(t, lab.Config{Nodes: 1, LoadClusterModules: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := c.Node(1)
	startDaemon(ctx, t, c, n)
	// The same tests, then again under the race detector: the library's
	// goroutines meet the real device's timing there.
	for _, name := range []string{"libdlm.test", "libdlm.race.test"} {
		if err := n.CopyIn(ctx, bins[name], "/tmp/"+name); err != nil {
			t.Fatal(err)
		}
		r, err := n.Run(ctx, "cd /tmp && ./"+name+" -test.v -test.count=1 -test.timeout=4m -test.run '^TestVM' 2>&1")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s output in the guest:\n%s", name, r.Stdout)
		if r.ExitCode != 0 {
			t.Fatalf("%s failed in the guest (exit %d)", name, r.ExitCode)
		}
		// Every VM test ran and passed: none skipped, none missing.
		var passed []string
		for _, m := range regexp.MustCompile(`(?m)^--- PASS: (TestVM\w+)`).FindAllStringSubmatch(r.Stdout, -1) {
			passed = append(passed, m[1])
		}
		slices.Sort(passed)
		slices.Sort(want)
		if d := cmp.Diff(want, passed); d != "" || strings.Contains(r.Stdout, "--- SKIP") {
			t.Errorf("%s: VM tests passed (-declared +passed):\n%s", name, d)
		}
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
