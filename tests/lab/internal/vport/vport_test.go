package vport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	sys := t.TempDir()
	for port, name := range map[string]string{"vport0p1": "org.godlm.agent", "vport0p2": "org.godlm.power"} {
		dir := filepath.Join(sys, "class/virtio-ports", port)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "name"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if dev, err := Find(sys, "org.godlm.power", time.Now()); err != nil || dev != "/dev/vport0p2" {
		t.Errorf("Find = %q, %v", dev, err)
	}
	start := time.Now()
	if _, err := Find(sys, "org.other", start.Add(300*time.Millisecond)); err == nil || !strings.Contains(err.Error(), "org.other") {
		t.Errorf("missing port: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("gave up after %v, before its deadline", took)
	}
}
