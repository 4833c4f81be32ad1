package configfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenMonitor(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		want    string // file expected to be opened, "" for an error
		wantErr error
	}{
		{name: "udev symlink", files: []string{"dev/misc/dlm-monitor", "dev/dlm-monitor"}, want: "dev/misc/dlm-monitor"},
		{name: "device node only", files: []string{"dev/dlm-monitor"}, want: "dev/dlm-monitor"},
		{name: "none", wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t)
			for _, f := range tt.files {
				writeFile(t, r.Kernel, f, "")
			}
			f, err := r.OpenMonitor()
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			defer f.Close()
			if got, want := f.Name(), filepath.Join(r.Root(), tt.want); got != want {
				t.Errorf("opened %s, want %s", got, want)
			}
			if _, err := f.Write([]byte("x")); err == nil {
				t.Error("monitor opened writable")
			}
		})
	}
}

func TestNewRoot(t *testing.T) {
	tests := map[string]string{"": "/", "/": "/", "/tmp/x/": "/tmp/x", "rel/dir": "rel/dir"}
	for in, want := range tests {
		if got := New(in).Root(); got != want {
			t.Errorf("New(%q).Root() = %q, want %q", in, got, want)
		}
	}
	if got, want := New("").path(dlmConfig), "/sys/kernel/config/dlm"; got != want {
		t.Errorf("production path = %q, want %q", got, want)
	}
}
