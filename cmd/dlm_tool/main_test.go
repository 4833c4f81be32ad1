package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/godlm/godlm/internal/version"
)

// TestMain lets the test binary act as dlm_tool when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("GODLM_RUN_DLM_TOOL") == "1" {
		os.Args = append([]string{"dlm_tool"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestExit(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"version"}, 0, "dlm_tool " + version.Version + " (godlm)\n", ""},
		{[]string{"frobnicate"}, 2, "", "dlm_tool: unknown command \"frobnicate\" (see dlm_tool --help)\n"},
		{[]string{"join", "0123456789012345678901234567890123456789012345678901234567890123456789"}, 2, "",
			"dlm_tool: lockspace name is 70 bytes; the limit is 64\n"},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "GODLM_RUN_DLM_TOOL=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || out.String() != tc.stdout || errOut.String() != tc.stderr {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q",
				tc.args, code, out.String(), errOut.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
