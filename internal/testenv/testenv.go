// Package testenv lets a test that needs something of its machine (a
// program, a privilege, a network) skip on a developer's machine that
// lacks it, and fail in CI, where `make test` must have installed or
// set up everything its tests need: a skip there would count as a pass.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Missing skips t, saying what is missing; when the CI environment
// variable is set, it fails t instead.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI is set: the test's environment must be there)", msg)
	}
	t.Skip(msg)
}

// InCI reports whether the tests run in CI (the CI variable is set and
// not "false" or "0").
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}
