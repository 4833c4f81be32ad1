package raftcluster

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKey(t *testing.T) {
	key16 := "0123456789abcdef"
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"text with a newline", key16 + "\n", key16, ""},
		{"text without a newline", key16, key16, ""},
		{"CRLF and blank lines", key16 + "\r\n\r\n", key16, ""},
		{"binary", "\x00\x01\x02\xff" + key16, "\x00\x01\x02\xff" + key16, ""},
		{"largest", strings.Repeat("k", MaxKeySize), strings.Repeat("k", MaxKeySize), ""},
		{"empty", "", "", "empty key"},
		{"only newlines", "\n\n", "", "empty key"},
		{"short", "0123456789abcde\n", "", "15 bytes, need at least 16"},
		{"too large", strings.Repeat("k", MaxKeySize+1), "", "more than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey([]byte(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKey: %v, want ErrKey with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "0123456789abcdef0123456789abcdef\n"
	for _, tc := range []struct {
		name    string
		path    string
		wantErr string
		is      error
	}{
		{"private", write("ok", good, 0o600), "", nil},
		{"read-only", write("ro", good, 0o400), "", nil},
		{"readable by others", write("world", good, 0o644), "chmod 600", nil},
		{"readable by group", write("group", good, 0o640), "mode 0640", nil},
		{"writable by others", write("w", good, 0o602), "mode 0602", nil},
		{"missing", filepath.Join(dir, "nothing"), "no such file", fs.ErrNotExist},
		{"directory", dir, "not a regular file", nil},
		{"short", write("short", "abc\n", 0o600), "need at least 16", nil},
		{"huge", write("huge", strings.Repeat("k", 1<<20), 0o600), "more than 4096", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "directory" {
				os.Chmod(dir, 0o700)
			}
			key, err := LoadKey(tc.path)
			if tc.wantErr == "" {
				if err != nil || string(key) != strings.TrimSpace(good) {
					t.Fatalf("LoadKey: %q, %v", key, err)
				}
				return
			}
			if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("LoadKey: %v, want ErrKey naming %s with %q", err, tc.path, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("LoadKey: %v, want it to wrap %v", err, tc.is)
			}
		})
	}
}

func TestWriteNewKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "dlm", "cluster.key")
	if err := WriteNewKey(path, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	first, err := LoadKey(path)
	if err != nil {
		t.Fatalf("LoadKey of a new key: %v", err)
	}
	if len(first) != 2*generatedKeyBytes {
		t.Errorf("key of %d bytes, want %d hex digits", len(first), 2*generatedKeyBytes)
	}
	if err := WriteNewKey(path, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteNewKey: %v, want ErrExist", err)
	}
	if again, _ := LoadKey(path); !bytes.Equal(again, first) {
		t.Error("a refused WriteNewKey changed the key")
	}
	if err := WriteNewKey(path, true); err != nil {
		t.Fatalf("forced WriteNewKey: %v", err)
	}
	second, err := LoadKey(path)
	if err != nil || bytes.Equal(second, first) {
		t.Errorf("after a forced WriteNewKey: %q, %v; want a new key", second, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the key", len(entries))
	}
}
