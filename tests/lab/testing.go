package lab

import (
	"context"
	"testing"
	"time"
)

// BootTimeout bounds Start's boot of a cluster, downloads included.
const BootTimeout = 10 * time.Minute

// Start boots a cluster for a test and arranges its end: every VM is
// killed when the test ends; if the test failed, each guest's dmesg is
// saved beside its console log and the folder is kept and printed,
// otherwise the folder is removed. A cluster that cannot boot fails the
// test: VM tests never skip for want of QEMU.
func Start(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), BootTimeout)
	defer cancel()
	c, err := Boot(ctx, cfg)
	if err != nil {
		t.Fatalf("cannot start the VM lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dir := c.SaveArtifacts(context.Background())
			c.Close()
			t.Logf("lab artifacts (console logs, dmesg, disks) kept in %s", dir)
			return
		}
		if err := c.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
		c.RemoveDir()
	})
	return c
}
