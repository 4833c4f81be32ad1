package lab

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
)

// The guest boots from the kernel's uncompressed ELF image through its PVH
// entry point rather than from the bzImage: under emulation, the kernel's
// own XZ decompression costs about 4 s of a 10 s boot. Debian's kernel has
// CONFIG_PVH=y and QEMU boots an ELF with a PVH note directly.

// extractVmlinux writes the ELF kernel held in the bzImage at bz to dst,
// once. It reads the payload's place from the x86 boot header and
// decompresses it with xz(1).
func extractVmlinux(ctx context.Context, bz, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	img, err := os.ReadFile(bz)
	if err != nil {
		return err
	}
	// x86 boot protocol: setup_sects at 0x1f1, "HdrS" at 0x202,
	// payload_offset and payload_length at 0x248 and 0x24c, both
	// relative to the protected-mode code after the setup sectors.
	if len(img) < 0x250 || string(img[0x202:0x206]) != "HdrS" {
		return fmt.Errorf("%s: not a bzImage", bz)
	}
	setup := int(img[0x1f1])
	if setup == 0 {
		setup = 4
	}
	base := (setup + 1) * 512
	off := base + int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	if off+n > len(img) || !bytes.HasPrefix(img[off:], []byte("\xfd7zXZ\x00")) {
		return fmt.Errorf("%s: payload is not XZ (the lab expects Debian's CONFIG_KERNEL_XZ)", bz)
	}
	if _, err := exec.LookPath("xz"); err != nil {
		return fmt.Errorf("xz not found (install xz-utils; scripts/prereqs.sh does): %w", err)
	}
	cmd := exec.CommandContext(ctx, "xz", "-dc", "--single-stream")
	cmd.Stdin = bytes.NewReader(img[off : off+n])
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("decompress kernel: %w: %s", err, stderr.String())
	}
	f, err := elf.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		return fmt.Errorf("decompressed kernel is not ELF: %w", err)
	}
	f.Close()
	tmp := fmt.Sprintf("%s.tmp%d", dst, os.Getpid())
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
