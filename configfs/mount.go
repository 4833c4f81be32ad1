package configfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoDLM is wrapped by EnsureConfigfs when configfs is available but has
// no dlm subsystem, which means the dlm kernel module is not loaded.
var ErrNoDLM = errors.New("no dlm subsystem in configfs")

// EnsureConfigfs makes sure configfs is mounted at sys/kernel/config and
// that the dlm subsystem is registered in it.
//
// With the root "/" it consults /proc/mounts and mounts configfs when it is
// not mounted there. With any other root it never mounts and only checks
// that the directories exist. A missing dlm directory is reported with an
// error wrapping ErrNoDLM.
func (k *Kernel) EnsureConfigfs() error {
	dir := k.path(configMount)
	if k.real() {
		mounts, err := os.ReadFile(k.path(procMounts))
		if err != nil {
			return fmt.Errorf("configfs: check configfs mount: %w", err)
		}
		if !mountedAt(mounts, "/"+configMount, "configfs") {
			if err := mountConfigfs(dir); err != nil {
				return fmt.Errorf("configfs: mount configfs on %s: %w", dir, err)
			}
		}
	} else if err := isDir(dir); err != nil {
		return fmt.Errorf("configfs: configfs directory: %w", err)
	}
	dlm := k.path(dlmConfig)
	if err := isDir(dlm); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("configfs: %s does not exist (is the dlm module loaded?): %w", dlm, ErrNoDLM)
		}
		return fmt.Errorf("configfs: dlm configfs directory: %w", err)
	}
	return nil
}

// isDir returns nil if p is a directory, an error wrapping fs.ErrNotExist
// if it does not exist, and another error otherwise.
func isDir(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", p)
	}
	return nil
}

// mountedAt reports whether the mount table mounts (in /proc/mounts form)
// has a filesystem of type fstype mounted on dir. The kernel separates
// the fields with one space and escapes spaces, tabs, newlines and
// backslashes in them, but no other white space (a form feed in a path
// stays as it is), so the fields are split on spaces alone.
func mountedAt(mounts []byte, dir, fstype string) bool {
	for _, line := range bytes.Split(mounts, []byte("\n")) {
		f := strings.Split(string(line), " ")
		if len(f) >= 3 && unescapeMount(f[1]) == dir && f[2] == fstype {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escaping (\040 for a space and so on) the
// kernel applies to paths in /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
