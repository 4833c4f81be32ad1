//go:build !linux

package configfs

import "errors"

// mountConfigfs fails: configfs exists only on Linux.
func mountConfigfs(string) error { return errors.ErrUnsupported }
