package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrUnknownModule reports a replacement module that the kernel package
// does not have, so it cannot stand in for one of its modules.
var ErrUnknownModule = errors.New("module not in the kernel package")

// PatchedModules returns the folder holding the DLM, GFS2 and OCFS2
// modules built with the patch series in kernel/patches, for the guest
// kernel. It runs kernel/build.sh, which builds them once and keeps them
// in the cache (a few minutes the first time, nothing after).
func PatchedModules(ctx context.Context, logf func(string, ...any)) (string, error) {
	src, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	if logf != nil {
		logf("lab: building the patched kernel modules (cached)")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(src, "kernel", "build.sh"))
	cmd.Dir = src
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("kernel/build.sh: %w\n%s", err, stderr.Bytes())
	}
	dir := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(dir, '\n'); i >= 0 {
		dir = dir[i+1:]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("kernel/build.sh printed %q, not a folder", dir)
	}
	return dir, nil
}

// prepareFor prepares the assets for cfg: with the patched modules when
// it asks for them.
func prepareFor(ctx context.Context, cfg Config) (*Assets, error) {
	kmods := ""
	if cfg.PatchedModules {
		dir, err := PatchedModules(ctx, cfg.Logf)
		if err != nil {
			return nil, err
		}
		kmods = dir
	}
	return prepare(ctx, cfg.Logf, kmods)
}

// replace makes every .ko file in dir stand in for the package's module
// of the same name. An empty dir changes nothing.
func (idx *moduleIndex) replace(dir string) error {
	if dir == "" {
		return nil
	}
	kos, err := filepath.Glob(filepath.Join(dir, "*.ko"))
	if err != nil {
		return err
	}
	if len(kos) == 0 {
		return fmt.Errorf("replacement modules: no .ko file in %s", dir)
	}
	for _, p := range kos {
		name := modName(p)
		if _, ok := idx.paths[name]; !ok {
			return fmt.Errorf("replacement module %s: %w", p, ErrUnknownModule)
		}
		idx.paths[name] = p
	}
	return nil
}
