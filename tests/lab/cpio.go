package lab

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// An image is the content of an initramfs: a set of entries keyed by
// their absolute path in the guest. It is written as a gzip-compressed
// cpio "newc" archive, entries sorted, times zero, so that the same
// inputs give the same bytes.
type image struct {
	entries map[string]entry
}

type entryKind int

const (
	kindDir entryKind = iota
	kindFile
	kindSymlink
	kindCharDev
)

type entry struct {
	kind   entryKind
	mode   uint32 // permission bits, with setuid, setgid and sticky (0o7777)
	data   []byte // file content or symlink target
	src    string // host file to copy, when data is nil
	rmajor uint32
	rminor uint32
}

func newImage() *image { return &image{entries: map[string]entry{}} }

// parents adds every missing parent directory of p.
func (im *image) parents(p string) {
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := im.entries[d]; ok {
			return
		}
		im.entries[d] = entry{kind: kindDir, mode: 0o755}
	}
}

func (im *image) dir(p string, mode uint32) {
	im.parents(p)
	im.entries[p] = entry{kind: kindDir, mode: mode}
}

func (im *image) file(p string, data []byte, mode uint32) {
	im.parents(p)
	im.entries[p] = entry{kind: kindFile, mode: mode, data: data}
}

// copyFile adds the host file src at p; the content is read when the
// image is written.
func (im *image) copyFile(p, src string, mode uint32) {
	im.parents(p)
	im.entries[p] = entry{kind: kindFile, mode: mode, src: src}
}

func (im *image) symlink(p, target string) {
	im.parents(p)
	im.entries[p] = entry{kind: kindSymlink, mode: 0o777, data: []byte(target)}
}

func (im *image) charDev(p string, major, minor uint32, mode uint32) {
	im.parents(p)
	im.entries[p] = entry{kind: kindCharDev, mode: mode, rmajor: major, rminor: minor}
}

// manifest describes every entry in one line each, for cache keys. Host
// files are named by the hash of their content.
func (im *image) manifest() (string, error) {
	var b strings.Builder
	for _, p := range im.sorted() {
		e := im.entries[p]
		fmt.Fprintf(&b, "%s %d %o %d:%d", p, e.kind, e.mode, e.rmajor, e.rminor)
		switch {
		case e.src != "":
			sum, err := fileSHA256(e.src)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, " sha256=%s", sum)
		default:
			fmt.Fprintf(&b, " data=%q", e.data)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func (im *image) sorted() []string {
	ps := make([]string, 0, len(im.entries))
	for p := range im.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// writeTo writes the compressed archive to w.
func (im *image) writeTo(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cw := &cpioWriter{w: zw}
	for _, p := range im.sorted() {
		e := im.entries[p]
		data := e.data
		if e.src != "" {
			if data, err = os.ReadFile(e.src); err != nil {
				return fmt.Errorf("initramfs %s: %w", p, err)
			}
		}
		if err := cw.add(strings.TrimPrefix(p, "/"), e, data); err != nil {
			return err
		}
	}
	if err := cw.trailer(); err != nil {
		return err
	}
	return zw.Close()
}

// cpioWriter writes the "newc" (070701) cpio format the kernel unpacks.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

func (c *cpioWriter) header(name string, mode uint32, size int, rmajor, rminor uint32) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if err := c.write([]byte(hdr)); err != nil {
		return err
	}
	if err := c.write(append([]byte(name), 0)); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) add(name string, e entry, data []byte) error {
	perm := e.mode & 0o7777
	var mode uint32
	switch e.kind {
	case kindDir:
		mode, data = 0o040000|perm, nil
	case kindFile:
		mode = 0o100000 | perm
	case kindSymlink:
		mode = 0o120000 | 0o777
	case kindCharDev:
		mode, data = 0o020000|perm, nil
	}
	if err := c.header(name, mode, len(data), e.rmajor, e.rminor); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) trailer() error {
	if err := c.header("TRAILER!!!", 0, 0, 0, 0); err != nil {
		return err
	}
	// Round the archive up to a whole block, as cpio(1) does.
	if r := c.off % 512; r != 0 {
		return c.write(make([]byte, 512-r))
	}
	return nil
}
