package configfs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidLockspaceName(t *testing.T) {
	tests := []struct {
		ls      string
		wantErr string // "" means valid; else a piece of the message
	}{
		{ls: "gfs0"},
		{ls: "5141075516284506A6D4E65A59D83906"},
		{ls: "with space:and.dots"},
		{ls: "..."},
		{ls: strings.Repeat("x", 64)},
		{ls: "", wantErr: "empty"},
		{ls: strings.Repeat("x", 65), wantErr: "65 bytes; the limit is 64"},
		{ls: strings.Repeat("x", 70), wantErr: "lockspace name is 70 bytes; the limit is 64"},
		{ls: "a/b", wantErr: "'/'"},
		{ls: "/", wantErr: "'/'"},
		{ls: "a\x00b", wantErr: "NUL"},
		{ls: ".", wantErr: "not a directory name"},
		{ls: "..", wantErr: "not a directory name"},
	}
	for _, tt := range tests {
		err := ValidLockspaceName(tt.ls)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidLockspaceName(%q) = %v, want nil", tt.ls, err)
		case tt.wantErr == "":
		case err == nil:
			t.Errorf("ValidLockspaceName(%q) = nil, want an error", tt.ls)
		case !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid):
			t.Errorf("ValidLockspaceName(%q) = %v, want ErrInvalid mentioning %q", tt.ls, err, tt.wantErr)
		}
	}
}

func TestGlobalID(t *testing.T) {
	tests := []struct {
		ls   string
		want uint32
	}{
		{"gfs0", 0xd6c2e89a},
		{"5141075516284506A6D4E65A59D83906", 0xbdb551ac},
		{"test", 0x77222027},
	}
	for _, tt := range tests {
		if got := GlobalID(tt.ls); got != tt.want {
			t.Errorf("GlobalID(%q) = %#x, want %#x", tt.ls, got, tt.want)
		}
	}
}

func TestLockspaceWrites(t *testing.T) {
	dir := sysfsDLM + "/ls"
	tests := []struct {
		name string
		do   func(k *Kernel) error
		file string
		want string
	}{
		{"stop", func(k *Kernel) error { return k.SetControl("ls", false) }, "control", "0"},
		{"start", func(k *Kernel) error { return k.SetControl("ls", true) }, "control", "1"},
		{"event done", func(k *Kernel) error { return k.EventDone("ls", 0) }, "event_done", "0"},
		{"event failed", func(k *Kernel) error { return k.EventDone("ls", -1) }, "event_done", "-1"},
		{"id", func(k *Kernel) error { return k.SetID("ls", GlobalID("gfs0")) }, "id", "3603097754"},
		{"id max", func(k *Kernel) error { return k.SetID("ls", 0xffffffff) }, "id", "4294967295"},
		{"nodir", func(k *Kernel) error { return k.SetNodir("ls") }, "nodir", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t, dir)
			must(t, tt.do(r.Kernel))
			if diff := cmp.Diff([]op{{"write", dir + "/" + tt.file, tt.want}}, r.ops); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{tt.file: tt.want}, tree(t, r.Kernel, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLockspaceWriteErrors(t *testing.T) {
	r := newRecorder(t, sysfsDLM)
	// Invalid names are refused before any write.
	for _, do := range []func(ls string) error{
		func(ls string) error { return r.SetControl(ls, true) },
		func(ls string) error { return r.EventDone(ls, 0) },
		func(ls string) error { return r.SetID(ls, 1) },
		func(ls string) error { return r.SetNodir(ls) },
	} {
		checkErr(t, do("../cluster"), ErrInvalid)
		// A lockspace the kernel does not have.
		checkErr(t, do("gone"), os.ErrNotExist)
	}
	if len(r.ops) != 4 {
		t.Errorf("ops = %v, want only the 4 writes to the missing lockspace", r.ops)
	}
}

func TestLockspaceReads(t *testing.T) {
	r := newRecorder(t)
	dir := sysfsDLM + "/ls"
	writeFile(t, r.Kernel, dir+"/id", "3603097754\n")
	writeFile(t, r.Kernel, dir+"/nodir", "1\n")
	writeFile(t, r.Kernel, dir+"/recover_status", "ff\n")
	writeFile(t, r.Kernel, dir+"/recover_nodeid", "-1\n")
	writeFile(t, r.Kernel, sysfsDLM+"/other/nodir", "0\n")
	writeFile(t, r.Kernel, sysfsDLM+"/bad/id", "-3\n")
	writeFile(t, r.Kernel, sysfsDLM+"/bad/recover_status", "zz\n")
	writeFile(t, r.Kernel, sysfsDLM+"/bad/recover_nodeid", "x\n")

	type result struct {
		V   any
		Err bool
	}
	tests := []struct {
		name string
		do   func() (any, error)
		want result
	}{
		{"id", func() (any, error) { return r.ID("ls") }, result{V: uint32(0xd6c2e89a)}},
		{"nodir", func() (any, error) { return r.Nodir("ls") }, result{V: true}},
		{"nodir off", func() (any, error) { return r.Nodir("other") }, result{V: false}},
		{"recover status", func() (any, error) { return r.RecoverStatus("ls") }, result{V: uint32(0xff)}},
		{"recover nodeid", func() (any, error) { return r.RecoverNodeID("ls") }, result{V: -1}},
		{"bad id", func() (any, error) { return r.ID("bad") }, result{V: uint32(0), Err: true}},
		{"bad status", func() (any, error) { return r.RecoverStatus("bad") }, result{V: uint32(0), Err: true}},
		{"bad nodeid", func() (any, error) { return r.RecoverNodeID("bad") }, result{V: 0, Err: true}},
		{"missing", func() (any, error) { return r.ID("other") }, result{V: uint32(0), Err: true}},
		{"invalid name", func() (any, error) { return r.RecoverNodeID("") }, result{V: 0, Err: true}},
	}
	for _, tt := range tests {
		v, err := tt.do()
		got := result{V: v, Err: err != nil}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s (error %v)", tt.name, diff, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "configfs: ") {
			t.Errorf("%s: error %q lacks the package prefix", tt.name, err)
		}
	}
}

func TestLockspaces(t *testing.T) {
	r := newRecorder(t)
	got, err := r.Lockspaces()
	if err != nil || got != nil {
		t.Fatalf("Lockspaces() without sysfs dir = %v, %v, want nil, nil", got, err)
	}
	mkdirAll(t, r.Kernel, sysfsDLM)
	got, err = r.Lockspaces()
	if err != nil || len(got) != 0 {
		t.Fatalf("Lockspaces() with empty dir = %v, %v, want none", got, err)
	}
	for _, ls := range []string{"zeta", "gfs0", "clvmd"} {
		mkdirAll(t, r.Kernel, sysfsDLM+"/"+ls)
	}
	writeFile(t, r.Kernel, sysfsDLM+"/not-a-lockspace", "")
	got, err = r.Lockspaces()
	must(t, err)
	if diff := cmp.Diff([]string{"clvmd", "gfs0", "zeta"}, got); diff != "" {
		t.Errorf("Lockspaces() (-want +got):\n%s", diff)
	}
}
