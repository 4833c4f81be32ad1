package configfs

import "golang.org/x/sys/unix"

// mountConfigfs mounts configfs on dir.
func mountConfigfs(dir string) error {
	return unix.Mount("configfs", dir, "configfs", 0, "")
}
