package tools

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/cluster/raftcluster"
)

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.key")
	r := run(t, absentClient(), "keygen", path)
	if r.err != nil {
		t.Fatalf("keygen: %v", r.err)
	}
	if !strings.Contains(r.stdout, path) {
		t.Errorf("output %q does not name %s", r.stdout, path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	first, err := raftcluster.LoadKey(path)
	if err != nil {
		t.Fatalf("the daemon's loader refuses the new key: %v", err)
	}

	r = run(t, absentClient(), "keygen", path)
	if !errors.Is(r.err, fs.ErrExist) || ExitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "force") {
		t.Errorf("keygen over an existing key: %v, want ErrExist mentioning force", r.err)
	}
	if again, _ := raftcluster.LoadKey(path); string(again) != string(first) {
		t.Error("a refused keygen changed the key")
	}
	for _, flag := range []string{"--force", "-f"} {
		if r = run(t, absentClient(), "keygen", flag, path); r.err != nil {
			t.Fatalf("keygen %s: %v", flag, r.err)
		}
		next, err := raftcluster.LoadKey(path)
		if err != nil || string(next) == string(first) {
			t.Errorf("keygen %s: key %q, %v; want a new one", flag, next, err)
		}
		first = next
	}
}

func TestKeygenUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"keygen", filepath.Join(dir, "a"), filepath.Join(dir, "b")},
		{"keygen", ""},
		{"keygen", "--frobnicate"},
	} {
		if r := run(t, absentClient(), args...); ExitCode(r.err) != 2 {
			t.Errorf("%q: %v, want a usage error", args, r.err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command line wrote %d files", len(entries))
	}
	r := run(t, absentClient(), "keygen", "--help")
	for _, want := range []string{raftcluster.DefaultKeyFile, "--force", "0600", "every node"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("keygen --help does not mention %q:\n%s", want, r.stdout)
		}
	}
}
