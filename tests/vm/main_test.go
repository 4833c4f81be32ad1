// Package vm holds godlm's tests on the real kernel, in QEMU virtual
// machines booted by the lab (tests/lab). They never skip for want of
// QEMU: a lab that cannot start fails the test. `go test -short` leaves
// them out for a quick unit run.
package vm

import (
	"fmt"
	"os"
	"testing"

	"github.com/godlm/godlm/tests/lab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Every test kills its VMs when it ends; any QEMU still running here
	// is a bug in the lab. Name it, kill it, fail.
	if pids := lab.LivePIDs(); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: QEMU processes still running after the tests: %v\n", pids)
		for _, p := range pids {
			if pr, err := os.FindProcess(p); err == nil {
				pr.Kill()
			}
		}
		code = 1
	}
	os.Exit(code)
}

// needVMs leaves VM tests out of `go test -short`.
func needVMs(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("VM test: not run with -short")
	}
}
