package configfs

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadKernelFiles feeds arbitrary contents to the kernel files the
// daemon reads back: a lockspace's sysfs attributes and the configfs
// cluster's. Every read either fails with an error naming the file or
// returns a value that reads back the same once written.
func FuzzReadKernelFiles(f *testing.F) {
	for _, s := range []string{"1234\n", "0", "ff\n", "-1\n", "4294967296\n", " 7 \n\x00\x00", "mycluster\n", "", "\n\n", "0x10"} {
		f.Add([]byte(s))
	}
	root := f.TempDir()
	k := New(root)
	for _, d := range []string{sysfsDLM + "/ls1", clusterDir} {
		if err := os.MkdirAll(k.path(d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	files := []string{lsFile("ls1", "id"), lsFile("ls1", "nodir"), lsFile("ls1", "recover_status"),
		lsFile("ls1", "recover_nodeid"), clusterDir + "/cluster_name", clusterDir + "/" + string(AttrTCPPort)}
	f.Fuzz(func(t *testing.T, content []byte) {
		for _, rel := range files {
			if err := os.WriteFile(k.path(rel), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		named := func(what string, err error, file string) {
			t.Helper()
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("%s: error %q does not name %s", what, err, file)
			}
		}
		if id, err := k.ID("ls1"); err != nil {
			named("ID", err, "id")
		} else {
			if err := k.SetID("ls1", id); err != nil {
				t.Fatal(err)
			}
			if back, err := k.ID("ls1"); err != nil || back != id {
				t.Fatalf("ID %d read back as %d, %v", id, back, err)
			}
		}
		if _, err := k.Nodir("ls1"); err != nil {
			named("Nodir", err, "nodir")
		}
		if _, err := k.RecoverStatus("ls1"); err != nil {
			named("RecoverStatus", err, "recover_status")
		}
		if _, err := k.RecoverNodeID("ls1"); err != nil {
			named("RecoverNodeID", err, "recover_nodeid")
		}
		if name, err := k.ClusterName(); err != nil {
			named("ClusterName", err, "cluster name")
		} else if strings.HasSuffix(name, "\n") || strings.HasSuffix(name, "\x00") {
			t.Fatalf("ClusterName %q keeps its terminator", name)
		}
		if v, err := k.ClusterAttr(AttrTCPPort); err != nil {
			named("ClusterAttr", err, string(AttrTCPPort))
		} else if v > 1<<32-1 {
			t.Fatalf("ClusterAttr %d does not fit 32 bits", v)
		}
	})
}

// mangle escapes a path as the kernel does in /proc/mounts.
func mangle(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzMountedAt: whatever else the mount table holds, a configfs mount
// on dir, escaped as the kernel escapes it, is found.
func FuzzMountedAt(f *testing.F) {
	f.Add("/sys/kernel/config", []byte("sysfs /sys sysfs rw,nosuid 0 0\nproc /proc proc rw 0 0\n"))
	f.Add("/mnt/with space\\and\ttab", []byte("configfs /mnt/with configfs rw 0 0"))
	f.Add("/x", []byte("configfs /x\\ configfs\n\\\\\\"))
	// A line longer than a bufio.Scanner's default buffer comes first.
	f.Add("/sys/kernel/config", []byte("none /"+strings.Repeat("x", 70000)+" tmpfs rw 0 0"))
	f.Fuzz(func(t *testing.T, dir string, other []byte) {
		if dir == "" || strings.ContainsRune(dir, 0) || !utf8.ValidString(dir) {
			return
		}
		mounts := append(append([]byte{}, other...), "\nconfigfs "+mangle(dir)+" configfs rw,relatime 0 0\n"...)
		if !mountedAt(mounts, dir, "configfs") {
			t.Fatalf("configfs on %q not found in:\n%q", dir, mounts)
		}
		// Unescaping never panics, whatever follows a backslash.
		_ = unescapeMount(string(other))
	})
}

// FuzzParseNodeID: a directory name is a node id only in the form
// nodeName writes.
func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "01", "+1", "99999999999999999999", "1 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseNodeID(s)
		if ok && (id <= 0 || nodeName(id) != s) {
			t.Fatalf("parseNodeID(%q) = %d, ok", s, id)
		}
		if !ok && id != 0 {
			t.Fatalf("parseNodeID(%q) = %d, not ok", s, id)
		}
	})
}
