package configfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by errors about arguments the kernel would refuse:
// bad names, out-of-range attribute values, bad node ids or addresses.
var ErrInvalid = errors.New("invalid argument")

// Paths of the kernel control trees, relative to the root.
const (
	configMount = "sys/kernel/config"
	dlmConfig   = configMount + "/dlm"
	clusterDir  = dlmConfig + "/cluster"
	commsDir    = clusterDir + "/comms"
	spacesDir   = clusterDir + "/spaces"
	sysfsDLM    = "sys/kernel/dlm"
	procMounts  = "proc/mounts"
)

// Kernel is the DLM's control surface under a root directory.
//
// A Kernel holds no state besides its root; its methods may be called from
// several goroutines, but the kernel objects themselves are not locked, so
// callers must not race on the same lockspace or comm.
type Kernel struct {
	root string

	// trace, when set (tests only), is called before every mkdir, rmdir
	// and write with the path relative to root; a non-nil result makes
	// the operation fail with that error.
	trace func(op, rel string, data []byte) error
}

// New returns the control surface under root. An empty root means "/".
func New(root string) *Kernel {
	if root == "" {
		root = "/"
	}
	return &Kernel{root: filepath.Clean(root)}
}

// Root returns the root directory every path is derived from.
func (k *Kernel) Root() string { return k.root }

// real reports whether k addresses the live kernel rather than a plain
// directory tree.
func (k *Kernel) real() bool { return k.root == "/" }

// path joins rel (slash-separated, relative) onto the root.
func (k *Kernel) path(rel ...string) string {
	return filepath.Join(append([]string{k.root}, rel...)...)
}

// hook runs the test trace, if any.
func (k *Kernel) hook(op, rel string, data []byte) error {
	if k.trace == nil {
		return nil
	}
	return k.trace(op, rel, data)
}

// write stores data in the file rel with a single write(2), as the kernel's
// configfs and sysfs attributes parse each write on its own.
func (k *Kernel) write(rel string, data []byte) error {
	if err := k.hook("write", rel, data); err != nil {
		return err
	}
	f, err := os.OpenFile(k.path(rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := f.Write(data)
	if err == nil && n != len(data) {
		err = io.ErrShortWrite
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeInt stores the decimal form of v in rel.
func (k *Kernel) writeInt(rel string, v int64) error {
	return k.write(rel, []byte(strconv.FormatInt(v, 10)))
}

// writeUint stores the decimal form of v in rel.
func (k *Kernel) writeUint(rel string, v uint64) error {
	return k.write(rel, []byte(strconv.FormatUint(v, 10)))
}

// read returns the content of rel with the trailing newline (and any NUL
// padding) removed.
func (k *Kernel) read(rel string) (string, error) {
	b, err := os.ReadFile(k.path(rel))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n\x00"), nil
}

// readUint parses rel as an unsigned number in base, of at most bits bits.
func (k *Kernel) readUint(rel string, base, bits int) (uint64, error) {
	s, err := k.read(rel)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), base, bits)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", k.path(rel), err)
	}
	return v, nil
}

// readInt parses rel as a signed decimal int.
func (k *Kernel) readInt(rel string) (int, error) {
	s, err := k.read(rel)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", k.path(rel), err)
	}
	return v, nil
}

// mkdir creates the directory rel; an existing one is an error wrapping
// fs.ErrExist.
func (k *Kernel) mkdir(rel string) error {
	if err := k.hook("mkdir", rel, nil); err != nil {
		return err
	}
	return os.Mkdir(k.path(rel), 0o755)
}

// mkdirExist is mkdir that accepts an existing directory.
func (k *Kernel) mkdirExist(rel string) error {
	err := k.mkdir(rel)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	return err
}

// rmdir removes the directory rel; a missing one is fine. Under a root
// other than "/" the plain files in it (attribute stand-ins) are deleted
// first, since configfs and sysfs attributes vanish with their directory.
func (k *Kernel) rmdir(rel string) error {
	if err := k.hook("rmdir", rel, nil); err != nil {
		return err
	}
	p := k.path(rel)
	if !k.real() {
		ents, err := os.ReadDir(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			if !e.IsDir() {
				if err := os.Remove(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	err := os.Remove(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// subdirs returns the names of the directories in rel. A missing rel is
// returned as an error wrapping fs.ErrNotExist.
func (k *Kernel) subdirs(rel string) ([]string, error) {
	ents, err := os.ReadDir(k.path(rel))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// nodeDirs returns the sorted node ids named by the directories in rel,
// skipping names that are not positive decimal numbers.
func (k *Kernel) nodeDirs(rel string) ([]int, error) {
	names, err := k.subdirs(rel)
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, n := range names {
		if id, ok := parseNodeID(n); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// parseNodeID parses a directory name written by nodeName.
func parseNodeID(s string) (int, bool) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 || strconv.Itoa(id) != s {
		return 0, false
	}
	return id, true
}

// nodeName is the directory name used for a node id.
func nodeName(id int) string { return strconv.Itoa(id) }
