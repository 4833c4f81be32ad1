package dlmc

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDaemonError: whatever errno and text a daemon replies with, the
// error a client shows is one printable line of bounded length, and it
// still matches its errno with errors.Is.
func FuzzDaemonError(f *testing.F) {
	f.Add(uint32(Join), "ls1", int32(-int32(syscall.EEXIST)), []byte("lockspace exists\x00junk"))
	f.Add(uint32(Leave), "gfs0", int32(-int32(syscall.EBUSY)), []byte("still has locks;\nleave with force"))
	f.Add(uint32(LockspaceInfo), "x", int32(-int32(syscall.ENOENT)), []byte{})
	f.Add(uint32(Lockspaces), "", int32(-int32(syscall.EUSERS)), []byte("too many connections: uid 1000 already has 16"))
	f.Add(uint32(999), "\x1b[31m", int32(-1<<31), []byte("\xff\xfe\x1b[2J\u2028\u202e"))
	f.Fuzz(func(t *testing.T, cmd uint32, name string, data int32, payload []byte) {
		if data >= 0 {
			return
		}
		req := Header{Command: Command(cmd), Name: name}
		e := daemonError(Header{Command: Command(cmd), Data: data}, req, payload)
		for what, s := range map[string]string{"Text": e.Text, "Error()": e.Error()} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not UTF-8: %q", what, s)
			}
			for _, r := range s {
				if !unicode.IsPrint(r) {
					t.Fatalf("%s holds %U: %q", what, r, s)
				}
			}
		}
		if len(e.Text) > maxText+len("...") {
			t.Fatalf("Text of %d bytes", len(e.Text))
		}
		if e.Text != strings.TrimSpace(e.Text) {
			t.Fatalf("Text %q is not trimmed", e.Text)
		}
		if !errors.Is(e, e.Errno) {
			t.Fatalf("%v does not match its errno %d", e, e.Errno)
		}
	})
}
