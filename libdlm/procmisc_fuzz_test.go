package libdlm

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLockspaceMinor feeds arbitrary /proc/misc contents to the reader
// that finds a lockspace's device minor. It either fails with an error
// or returns a minor the kernel could have given (0 to 2^20-1) that a
// line of the file names for the lockspace.
func FuzzLockspaceMinor(f *testing.F) {
	f.Add([]byte("183 dlm_plock\n184 dlm-monitor\n185 dlm-control\n 57 dlm_ls1\n"))
	f.Add([]byte("-1 dlm_ls1\n"))
	f.Add([]byte("99999999999999999999 dlm_ls1\n"))
	f.Add([]byte("1048576 dlm_ls1\n"))
	f.Add([]byte("12 dlm_ls1 extra\n13\tdlm_ls1\n"))
	f.Add([]byte(""))
	root := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(filepath.Join(root, "proc/misc"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := LockspaceMinor(root, "ls1")
		if err != nil {
			if m != 0 {
				t.Fatalf("minor %d with error %v", m, err)
			}
			if !strings.HasPrefix(err.Error(), "libdlm: ") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			_ = errors.Is(err, ErrNoLockspace)
			return
		}
		if m < 0 || m >= 1<<20 {
			t.Fatalf("minor %d is not a device minor", m)
		}
		found := false
		for _, line := range strings.Split(string(content), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 2 && fs[1] == "dlm_ls1" {
				n, err := strconv.Atoi(fs[0])
				found = err == nil && n == m
				break
			}
		}
		if !found {
			t.Fatalf("minor %d is not the first dlm_ls1 line's in %q", m, content)
		}
	})
}
