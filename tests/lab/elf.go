package lab

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// moduleIndex maps module names (dashes as underscores) to .ko files in an
// extracted kernel package, and knows which are built in.
type moduleIndex struct {
	paths   map[string]string
	builtin map[string]bool
}

func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
}

func loadModuleIndex(root string) (*moduleIndex, error) {
	idx := &moduleIndex{paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(root, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx.paths[modName(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[modName(l)] = true
		}
	}
	return idx, nil
}

// modinfoDepends reads the "depends=" field of a module's .modinfo section.
func modinfoDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			for _, d := range strings.Split(string(v), ",") {
				deps = append(deps, modName(d))
			}
		}
	}
	return deps, nil
}

// order returns the modules needed for want, dependencies first, each
// once, leaving out those already in seen (which it updates) and those
// built into the kernel.
func (idx *moduleIndex) order(want []string, seen map[string]bool) ([]string, error) {
	var out []string
	var visit func(name string, stack []string) error
	visit = func(name string, stack []string) error {
		if seen[name] || idx.builtin[name] {
			return nil
		}
		for _, s := range stack {
			if s == name {
				return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, name), " -> "))
			}
		}
		p, ok := idx.paths[name]
		if !ok {
			return fmt.Errorf("module %s not found in the kernel package", name)
		}
		deps, err := modinfoDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(stack, name)); err != nil {
				return err
			}
		}
		seen[name] = true
		out = append(out, name)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sysroot resolves files and shared libraries inside a directory of
// extracted Debian packages, following symlinks within it.
type sysroot string

// resolve follows symlinks of guest path p inside the sysroot and returns
// the host path of the final file.
func (r sysroot) resolve(p string) (string, error) {
	for range 40 {
		host := filepath.Join(string(r), p)
		st, err := os.Lstat(host)
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return host, nil
		}
		t, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = t
	}
	return "", fmt.Errorf("%s: too many symlinks", p)
}

func (r sysroot) findLib(name string) (string, error) {
	for _, d := range libDirs {
		if h, err := r.resolve(path.Join(d, name)); err == nil {
			return h, nil
		}
	}
	return "", fmt.Errorf("shared library %s not found in the guest packages %v: add the package that ships it", name, guestPackages)
}

// libClosure returns, for the binary at guest path bin, every shared
// library it needs (recursively) and its program interpreter, as a map of
// guest path to host path.
func (r sysroot) libClosure(bin string, out map[string]string) error {
	host, err := r.resolve(bin)
	if err != nil {
		return fmt.Errorf("guest binary %s: %w", bin, err)
	}
	f, err := elf.Open(host)
	if err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return err
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		h, err := r.resolve(interp)
		if err != nil {
			return fmt.Errorf("%s: interpreter %s: %w", bin, interp, err)
		}
		out[interp] = h
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	for _, l := range libs {
		g := path.Join("/lib/x86_64-linux-gnu", l)
		if _, ok := out[g]; ok {
			continue
		}
		h, err := r.findLib(l)
		if err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		out[g] = h
		if err := r.libClosure(strings.TrimPrefix(h, string(r)), out); err != nil {
			return err
		}
	}
	return nil
}
