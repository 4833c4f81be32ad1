package lab

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type cpioEntry struct {
	Name         string
	Mode         uint32
	Data         string
	RMajor, RMin uint32
}

// readNewc parses a "newc" archive the way the kernel does, checking the
// 4-byte alignment of every header and body.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("bad header at %d: %v", off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off%4 != 0 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		mode, size, rmaj, rmin, nsize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+nsize-1])
		body := align(off + 110 + nsize)
		if name == "TRAILER!!!" {
			if rest := b[align(body+size):]; len(bytes.Trim(rest, "\x00")) != 0 || len(b)%512 != 0 {
				t.Errorf("trailer: %d bytes after it, archive of %d bytes", len(rest), len(b))
			}
			return out
		}
		out = append(out, cpioEntry{Name: name, Mode: mode, Data: string(b[body : body+size]), RMajor: rmaj, RMin: rmin})
		off = align(body + size)
	}
}

func TestImageArchive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "host")
	if err := os.WriteFile(src, []byte("from the host"), 0o600); err != nil {
		t.Fatal(err)
	}
	im := newImage()
	im.file("/etc/a/b.conf", []byte("x=1\n"), 0o644)
	im.copyFile("/sbin/tool", src, 0o755)
	im.symlink("/init", "/bin/busybox")
	im.charDev("/dev/console", 5, 1, 0o600)
	im.dir("/tmp", 0o1777)

	var buf bytes.Buffer
	if err := im.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := []cpioEntry{
		{Name: "dev", Mode: 0o40755},
		{Name: "dev/console", Mode: 0o20600, RMajor: 5, RMin: 1},
		{Name: "etc", Mode: 0o40755},
		{Name: "etc/a", Mode: 0o40755},
		{Name: "etc/a/b.conf", Mode: 0o100644, Data: "x=1\n"},
		{Name: "init", Mode: 0o120777, Data: "/bin/busybox"},
		{Name: "sbin", Mode: 0o40755},
		{Name: "sbin/tool", Mode: 0o100755, Data: "from the host"},
		{Name: "tmp", Mode: 0o41777},
	}
	if d := cmp.Diff(want, readNewc(t, raw)); d != "" {
		t.Errorf("archive (-want +got):\n%s", d)
	}

	// The same inputs give the same manifest; a changed host file does not.
	m1, err := im.manifest()
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := im.manifest()
	if m1 != m2 {
		t.Error("manifest not stable")
	}
	os.WriteFile(src, []byte("changed"), 0o600)
	if m3, _ := im.manifest(); m3 == m1 {
		t.Error("manifest ignores a changed host file")
	}
}
