package lsname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"a", "gfs0", strings.Repeat("x", 64), "5141075516284506A6D4E65A59D83906"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"": "empty", strings.Repeat("x", 65): "65 bytes; the limit is 64", "a/b": "'/'", "a\x00": "NUL", ".": "directory", "..": "directory",
	} {
		if err := Check(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", name, err, want)
		}
	}
}
