// Package vport finds a virtio-serial port in a lab guest by the name
// QEMU gave it.
package vport

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Find returns the device node of the virtio-serial port named name,
// waiting until deadline for it to appear. sys is the sysfs root ("/sys"
// in a guest).
func Find(sys, name string, deadline time.Time) (string, error) {
	for {
		dirs, _ := filepath.Glob(filepath.Join(sys, "class/virtio-ports/*"))
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			if err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(d), nil
			}
		}
		if !time.Now().Before(deadline) {
			return "", fmt.Errorf("no virtio-serial port named %q (is this a godlm lab VM?)", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
