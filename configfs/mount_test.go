package configfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestEnsureConfigfs(t *testing.T) {
	tests := []struct {
		name    string
		dirs    []string
		files   map[string]string
		wantErr error // nil means success
	}{
		{name: "ready", dirs: []string{dlmConfig}},
		{name: "dlm module not loaded", dirs: []string{configMount}, wantErr: ErrNoDLM},
		{name: "no configfs directory", dirs: []string{"sys/kernel"}, wantErr: os.ErrNotExist},
		{name: "dlm is a file", dirs: []string{configMount}, files: map[string]string{dlmConfig: ""}, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t, tt.dirs...)
			for p, d := range tt.files {
				writeFile(t, r.Kernel, p, d)
			}
			err := r.EnsureConfigfs()
			checkErr(t, err, tt.wantErr)
			if len(r.ops) != 0 {
				t.Errorf("EnsureConfigfs under a test root changed something: %v", r.ops)
			}
		})
	}
}

func TestEnsureConfigfsNoDLMMessage(t *testing.T) {
	r := newRecorder(t, configMount)
	err := r.EnsureConfigfs()
	if err == nil || !strings.Contains(err.Error(), "is the dlm module loaded?") {
		t.Errorf("EnsureConfigfs() = %v, want a hint about the dlm module", err)
	}
}

func TestMountedAt(t *testing.T) {
	const mounts = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
none /mnt/with\040space configfs rw 0 0
tmpfs /sys/kernel/config/x tmpfs rw 0 0
`
	tests := []struct {
		dir, fstype string
		mounts      string
		want        bool
	}{
		{"/sys/kernel/config", "configfs", mounts, false},
		{"/sys/kernel/config", "configfs", mounts + "configfs /sys/kernel/config configfs rw,nosuid,nodev,noexec,relatime 0 0\n", true},
		{"/sys/kernel/config", "configfs", "tmpfs /sys/kernel/config tmpfs rw 0 0\n", false},
		{"/mnt/with space", "configfs", mounts, true},
		{"/sys", "sysfs", mounts, true},
		{"/sys", "sysfs", "", false},
		{"/sys", "sysfs", "garbage\n\n sysfs\n", false},
	}
	for _, tt := range tests {
		if got := mountedAt([]byte(tt.mounts), tt.dir, tt.fstype); got != tt.want {
			t.Errorf("mountedAt(%q, %q, %q) = %v, want %v", tt.mounts, tt.dir, tt.fstype, got, tt.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	tests := map[string]string{
		`/plain`:          "/plain",
		`/a\040b`:         "/a b",
		`/tab\011x\134y`:  "/tab\tx\\y",
		`/short\04`:       `/short\04`,
		`/not\08x`:        `/not\08x`,
		`\`:               `\`,
		`/end\040`:        "/end ",
		`/twice\040\040x`: "/twice  x",
	}
	for in, want := range tests {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// errAny, as a wanted error, accepts any non-nil error.
var errAny = errors.New("any error")

// checkErr fails t unless err matches want: nil for nil, any error for
// errAny, else errors.Is; errors must carry the package prefix.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want == nil:
	case err == nil:
		t.Fatalf("got no error, want one wrapping %v", want)
	case want != errAny && !errors.Is(err, want):
		t.Fatalf("got error %v, want one wrapping %v", err, want)
	case !strings.HasPrefix(err.Error(), "configfs: "):
		t.Fatalf("error %q lacks the package prefix", err)
	}
}
