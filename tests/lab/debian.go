package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The guest kernel, pinned in this one place. Debian bookworm's
// linux-source-6.1 and linux-headers of exactly this version exist too,
// so the DLM module can be patched and rebuilt against it.
const (
	// KernelRelease is the guest kernel's `uname -r`.
	KernelRelease = "6.1.0-56-amd64"
	// KernelVersion is the Debian version of the kernel packages.
	KernelVersion = "6.1.192-2"
	// kernelSHA256 is the checksum of linux-image-<release>_<version>_amd64.deb.
	kernelSHA256 = "a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1"
)

// guestPackages are the Debian packages whose files go into the guest
// image: busybox for the shell and tools, ocfs2-tools for mount.ocfs2 and
// the umount helper, the reference stack (corosync with knet and Debian's
// dlm_controld and dlm_tool, from dlm-controld) to check that existing
// tools work against our daemon and to compare the two stacks, libdlm3
// and libgcc-s1 for programs linked with the C libdlm, and the libraries
// those need.
// Nothing is taken from the host's own installation.
var guestPackages = []string{
	"busybox-static",
	"ocfs2-tools",
	"dlm-controld", "libdlmcontrol3",
	"corosync", "libknet1", "libnozzle1", "libnl-3-200", "libnl-route-3-200", "libstatgrab10",
	"libcfg7", "libcpg4", "libquorum5", "libvotequorum8", "libuuid1",
	"libc6", "libgcc-s1", "libaio1", "libcom-err2", "libdlm3", "libcmap4", "libqb100",
	"libcorosync-common4", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1",
}

// guestBinaries are the files of guestPackages copied into the image,
// each with its shared libraries: path in the package -> path in the
// guest. The reference programs (corosync and its tools, Debian's
// dlm_controld and dlm_tool) get their own folder, RefDir, so ours keep
// the standard names.
var guestBinaries = map[string]string{
	"/bin/busybox":                  "/bin/busybox",
	"/sbin/mount.ocfs2":             "/sbin/mount.ocfs2",
	"/sbin/ocfs2_hb_ctl":            "/sbin/ocfs2_hb_ctl",
	"/usr/sbin/dlm_tool":            RefDir + "/dlm_tool",
	"/usr/sbin/dlm_controld":        RefDir + "/dlm_controld",
	"/usr/sbin/corosync":            RefDir + "/corosync",
	"/usr/sbin/corosync-quorumtool": RefDir + "/corosync-quorumtool",
	"/usr/sbin/corosync-cfgtool":    RefDir + "/corosync-cfgtool",
	"/usr/sbin/corosync-cmapctl":    RefDir + "/corosync-cmapctl",
}

// guestLibraries are shared libraries of guestPackages copied into the
// image at the same path, each with the libraries it needs, for programs
// the tests copy in: the C libdlm (threaded), and libgcc_s, which glibc
// loads at run time for pthread_cancel and unwinding.
var guestLibraries = []string{
	"/usr/lib/x86_64-linux-gnu/libdlm.so.3",
	"/lib/x86_64-linux-gnu/libgcc_s.so.1",
}

// RefDir is the guest folder holding the reference implementation's
// programs: corosync and its tools, Debian's dlm_controld and dlm_tool.
const RefDir = "/usr/lib/godlm/ref"

// libDirs are where the dynamic loader looks, in the extracted packages
// and in the guest.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"}

// ErrChecksum reports a downloaded package whose checksum is not the
// pinned one.
var ErrChecksum = errors.New("checksum mismatch")

func kernelDebName() string {
	return fmt.Sprintf("linux-image-%s_%s_amd64.deb", KernelRelease, KernelVersion)
}

// aptDownload fetches packages (name or name=version) into dir with
// apt-get download, which needs no root but does need the package lists.
func aptDownload(ctx context.Context, dir string, pkgs ...string) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("apt-get not found: the lab fetches Debian packages with it: %w", err)
	}
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q"}, pkgs...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get download %s: %w\n%s\n(are the package lists current? run scripts/prereqs.sh or apt-get update)",
			strings.Join(pkgs, " "), err, out)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ensureKernelDeb returns the path of the pinned kernel package in the
// cache, downloading it once and verifying its checksum.
func ensureKernelDeb(ctx context.Context, cache string) (string, error) {
	dir := filepath.Join(cache, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, kernelDebName())
	if _, err := os.Stat(p); err != nil {
		pkg := fmt.Sprintf("linux-image-%s=%s", KernelRelease, KernelVersion)
		if err := aptDownload(ctx, dir, pkg); err != nil {
			return "", err
		}
	}
	sum, err := fileSHA256(p)
	if err != nil {
		return "", err
	}
	if sum != kernelSHA256 {
		os.Remove(p)
		return "", fmt.Errorf("%s: %w: got %s, want %s (removed; it will be fetched again)", p, ErrChecksum, sum, kernelSHA256)
	}
	return p, nil
}

// ensureGuestDebs downloads guestPackages once; the list of files is kept
// in a manifest so later runs neither ask apt nor change the image.
func ensureGuestDebs(ctx context.Context, cache string) ([]string, error) {
	dir := filepath.Join(cache, "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	key := hashStrings(guestPackages...)
	manifest := filepath.Join(dir, "guest-"+key[:16]+".list")
	if b, err := os.ReadFile(manifest); err == nil {
		debs := strings.Fields(string(b))
		ok := len(debs) == len(guestPackages)
		for _, d := range debs {
			if _, err := os.Stat(d); err != nil {
				ok = false
			}
		}
		if ok {
			return debs, nil
		}
	}
	tmp, err := os.MkdirTemp(dir, "dl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := aptDownload(ctx, tmp, guestPackages...); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil {
		return nil, err
	}
	if len(names) != len(guestPackages) {
		return nil, fmt.Errorf("apt-get download gave %d files for %d packages", len(names), len(guestPackages))
	}
	var debs []string
	for _, n := range names {
		dst := filepath.Join(dir, filepath.Base(n))
		if err := os.Rename(n, dst); err != nil {
			return nil, err
		}
		debs = append(debs, dst)
	}
	sort.Strings(debs)
	if err := os.WriteFile(manifest, []byte(strings.Join(debs, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return debs, nil
}

// extractDebs unpacks packages into dir with dpkg-deb, once: a marker
// file records that the extraction finished.
func extractDebs(ctx context.Context, dir string, debs ...string) error {
	marker := filepath.Join(dir, ".extracted")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range debs {
		out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", d, dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %w\n%s", d, err, out)
		}
	}
	return os.WriteFile(marker, nil, 0o644)
}

func hashStrings(ss ...string) string {
	h := sha256.New()
	for _, s := range ss {
		io.WriteString(h, s)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
