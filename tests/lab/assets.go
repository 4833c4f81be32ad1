package lab

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

//go:embed guest
var guestFiles embed.FS

// bootModules are loaded by the guest at start-up: the virtio devices the
// lab uses (network, disks, the agent's serial port).
var bootModules = []string{"virtio_pci", "virtio_net", "virtio_blk", "virtio_console"}

// clusterModules are loaded by /sbin/godlm-modules in the guest.
// crc32c_generic is libcrc32c's soft dependency (it asks the crypto API
// for "crc32c" at load time), which modinfo "depends" does not list.
var clusterModules = []string{"configfs", "dlm", "crc32c_generic", "gfs2", "ocfs2_stack_user", "ocfs2"}

// goBinaries are this module's commands built static for the guest, with
// where they go in it.
var goBinaries = map[string]string{
	"./tests/lab/godlm-agent": "/sbin/godlm-agent",
	"./cmd/dlm_controld":      "/usr/sbin/dlm_controld",
	"./cmd/dlm_tool":          "/usr/sbin/dlm_tool",
	"./tests/cmd/dlmcounter":  "/usr/bin/dlmcounter",
	"./tests/lab/fence_godlm": "/usr/sbin/fence_godlm",
}

// Assets are the files a lab VM boots from.
type Assets struct {
	Kernel string // host path of the guest kernel (the ELF vmlinux)
	Initrd string // host path of the initramfs
	// Built tells whether Prepare had to build the initramfs (false: a
	// cached one with the same inputs was used).
	Built bool
}

// CacheDir is where the lab keeps downloads and images: $GODLM_CACHE, or
// godlm under the user cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("GODLM_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set GODLM_CACHE): %w", err)
	}
	return filepath.Join(d, "godlm"), nil
}

// moduleRoot finds this Go module's source tree, to build the guest
// binaries from it.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the godlm module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// Prepare makes sure the guest kernel and initramfs exist in the cache:
// it downloads the pinned kernel and the guest packages once, builds this
// module's binaries, and rebuilds the initramfs only when an input changed.
func Prepare(ctx context.Context, logf func(string, ...any)) (*Assets, error) {
	return prepare(ctx, logf, "")
}

// prepare is Prepare with the kernel modules found in the folder kmods
// (see PatchedModules) used in place of the kernel package's; "" keeps
// the package's.
func prepare(ctx context.Context, logf func(string, ...any), kmods string) (*Assets, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()

	kdeb, err := ensureKernelDeb(ctx, cache)
	if err != nil {
		return nil, err
	}
	kdir := filepath.Join(cache, "kernel-"+KernelRelease+"_"+KernelVersion)
	if err := extractDebs(ctx, kdir, kdeb); err != nil {
		return nil, err
	}
	debs, err := ensureGuestDebs(ctx, cache)
	if err != nil {
		return nil, err
	}
	root := sysroot(filepath.Join(cache, "sysroot-"+hashStrings(debs...)[:16]))
	if err := extractDebs(ctx, string(root), debs...); err != nil {
		return nil, err
	}
	bins, binDir, err := buildGoBinaries(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)

	vmlinux := filepath.Join(kdir, "vmlinux")
	if err := extractVmlinux(ctx, filepath.Join(kdir, "boot", "vmlinuz-"+KernelRelease), vmlinux); err != nil {
		return nil, err
	}

	im := newImage()
	if err := fillImage(im, kdir, root, bins, kmods); err != nil {
		return nil, err
	}
	manifest, err := im.manifest()
	if err != nil {
		return nil, err
	}
	a := &Assets{
		Kernel: vmlinux,
		Initrd: filepath.Join(cache, "initrd-"+hashStrings(manifest)[:16]+".img"),
	}
	if _, err := os.Stat(a.Initrd); err != nil {
		tmp := a.Initrd + fmt.Sprintf(".tmp%d", os.Getpid())
		f, err := os.Create(tmp)
		if err != nil {
			return nil, err
		}
		werr := im.writeTo(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Rename(tmp, a.Initrd)
		}
		if werr != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("write initramfs: %w", werr)
		}
		a.Built = true
		pruneCache(cache, a.Initrd, string(root))
	}
	if logf != nil {
		logf("lab assets ready in %v (initramfs %s, rebuilt %v)", time.Since(t0).Round(time.Millisecond), filepath.Base(a.Initrd), a.Built)
	}
	return a, nil
}

// buildGoBinaries builds goBinaries static into a fresh folder of the
// cache, which the caller removes, and returns guest path -> host path.
func buildGoBinaries(ctx context.Context, cache string) (map[string]string, string, error) {
	src, err := moduleRoot(ctx)
	if err != nil {
		return nil, "", err
	}
	out, err := os.MkdirTemp(cache, "gobin-")
	if err != nil {
		return nil, "", err
	}
	bins := map[string]string{}
	var pkgs []string
	for pkg, guest := range goBinaries {
		pkgs = append(pkgs, pkg)
		bins[guest] = filepath.Join(out, filepath.Base(pkg))
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", out + "/"}, pkgs...)...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(out)
		return nil, "", fmt.Errorf("build guest binaries: %w\n%s", err, b)
	}
	return bins, out, nil
}

// fillImage lays out the guest filesystem.
func fillImage(im *image, kdir string, root sysroot, bins map[string]string, kmods string) error {
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/mnt", "/root", "/var", "/etc/dlm", "/usr/bin", "/usr/sbin", "/sbin", "/bin"} {
		im.dir(d, 0o755)
	}
	// The reference stack's folders: corosync's configuration and state
	// (its ring ids), dlm_controld's logs.
	for _, d := range []string{"/etc/corosync", "/var/lib/corosync", "/var/log/dlm_controld"} {
		im.dir(d, 0o755)
	}
	im.dir("/tmp", 0o1777)
	im.charDev("/dev/console", 5, 1, 0o600)
	im.symlink("/init", "/bin/busybox")
	im.symlink("/bin/sh", "busybox")

	// Debian binaries and libraries, with the libraries they need.
	libs := map[string]string{}
	for b, dst := range guestBinaries {
		h, err := root.resolve(b)
		if err != nil {
			return fmt.Errorf("guest binary %s: %w", b, err)
		}
		im.copyFile(dst, h, 0o755)
		if err := root.libClosure(b, libs); err != nil {
			return err
		}
	}
	for _, l := range guestLibraries {
		h, err := root.resolve(l)
		if err != nil {
			return fmt.Errorf("guest library %s: %w", l, err)
		}
		libs[l] = h
		if err := root.libClosure(l, libs); err != nil {
			return err
		}
	}
	for g, h := range libs {
		im.copyFile(g, h, 0o755)
	}
	for g, h := range bins {
		im.copyFile(g, h, 0o755)
	}

	// Kernel modules, flat, with the load order in two lists.
	mroot := filepath.Join(kdir, "lib", "modules", KernelRelease)
	idx, err := loadModuleIndex(mroot)
	if err != nil {
		return err
	}
	if err := idx.replace(kmods); err != nil {
		return err
	}
	seen := map[string]bool{}
	boot, err := idx.order(bootModules, seen)
	if err != nil {
		return err
	}
	cluster, err := idx.order(clusterModules, seen)
	if err != nil {
		return err
	}
	for _, m := range append(append([]string{}, boot...), cluster...) {
		im.copyFile("/lib/modules/"+KernelRelease+"/"+m+".ko", idx.paths[m], 0o644)
	}
	im.file("/etc/godlm/modules.boot", []byte(strings.Join(boot, "\n")+"\n"), 0o644)
	im.file("/etc/godlm/modules.cluster", []byte(strings.Join(cluster, "\n")+"\n"), 0o644)

	// Start-up scripts and configuration.
	for src, dst := range map[string]string{
		"guest/rcS":           "/etc/init.d/rcS",
		"guest/godlm-modules": "/sbin/godlm-modules",
	} {
		b, err := guestFiles.ReadFile(src)
		if err != nil {
			return err
		}
		im.file(dst, b, 0o755)
	}
	for src, dst := range map[string]string{
		"guest/inittab":   "/etc/inittab",
		"guest/mdev.conf": "/etc/mdev.conf",
	} {
		b, err := guestFiles.ReadFile(src)
		if err != nil {
			return err
		}
		im.file(dst, b, 0o644)
	}
	im.file("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	im.file("/etc/group", []byte("root:x:0:\nhaclient:x:90:\nnogroup:x:65534:\n"), 0o644)
	return nil
}

// pruneCache removes images and extracted package trees that other
// inputs made and nothing has used for a week, so the cache stays
// bounded as the code changes.
func pruneCache(cache string, keep ...string) {
	old, _ := filepath.Glob(filepath.Join(cache, "initrd-*.img"))
	trees, _ := filepath.Glob(filepath.Join(cache, "sysroot-*"))
	for _, p := range append(old, trees...) {
		if slices.Contains(keep, p) {
			continue
		}
		if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > 7*24*time.Hour {
			os.RemoveAll(p)
		}
	}
}
