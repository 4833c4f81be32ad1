package configfs

import (
	"errors"
	"fmt"
	"os"
)

// Paths of the dlm-monitor misc device, relative to the root: the udev
// symlink first, then the device node itself.
var monitorPaths = []string{"dev/misc/dlm-monitor", "dev/dlm-monitor"}

// OpenMonitor opens the dlm-monitor device read-only. The kernel considers
// the daemon present while it is open and stops every lockspace when it is
// closed, so the caller keeps it open for its whole life. The daemon must
// open it before writing its local comm.
func (k *Kernel) OpenMonitor() (*os.File, error) {
	var errs []error
	for _, rel := range monitorPaths {
		f, err := os.OpenFile(k.path(rel), os.O_RDONLY, 0)
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("configfs: open dlm-monitor: %w", errors.Join(errs...))
}
