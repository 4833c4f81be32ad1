package configfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// op is one recorded mkdir, rmdir or write, with its path relative to the
// root.
type op struct {
	Op, Path, Data string
}

// recorder is a test Kernel under a temporary root that records its
// operations and can fail one of them.
type recorder struct {
	*Kernel
	ops []op
	// fail, when set, decides whether an operation fails.
	fail func(o op) error
}

// newRecorder returns a recorder whose root holds the given directories.
func newRecorder(t *testing.T, dirs ...string) *recorder {
	t.Helper()
	r := &recorder{Kernel: New(t.TempDir())}
	for _, d := range dirs {
		mkdirAll(t, r.Kernel, d)
	}
	r.trace = func(o, rel string, data []byte) error {
		rec := op{o, rel, string(data)}
		if r.fail != nil {
			if err := r.fail(rec); err != nil {
				return err
			}
		}
		r.ops = append(r.ops, rec)
		return nil
	}
	return r
}

// newCluster returns a recorder with the configfs cluster tree (as the
// kernel's default groups would make it) and no recorded operations.
func newCluster(t *testing.T) *recorder {
	return newRecorder(t, commsDir, spacesDir)
}

// mkdirAll creates rel and its parents under k's root.
func mkdirAll(t *testing.T, k *Kernel, rel string) {
	t.Helper()
	if err := os.MkdirAll(k.path(rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeFile creates the file rel under k's root with content data.
func writeFile(t *testing.T, k *Kernel, rel, data string) {
	t.Helper()
	mkdirAll(t, k, filepath.Dir(rel))
	if err := os.WriteFile(k.path(rel), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree returns every file and directory under dir (relative to k's root)
// with its path relative to dir: files map to their content, directories
// (with a trailing slash) to "".
func tree(t *testing.T, k *Kernel, dir string) map[string]string {
	t.Helper()
	base := k.path(dir)
	m := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			m[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
