// Command labdemo is what `make demo` runs: it boots a 3-node VM cluster
// on the real kernel DLM and shows it alive, then shuts it down cleanly.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of VMs (1 to 5)")
	keep := flag.Bool("keep", false, "keep the lab folder (logs, disks) after shutdown")
	flag.Parse()
	if err := run(*nodes, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func run(nodes int, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	step("booting %d VMs (QEMU, software emulation, Debian kernel %s)", nodes, lab.KernelRelease)
	c, err := lab.Boot(ctx, lab.Config{
		Nodes:              nodes,
		LoadClusterModules: true,
		Disks: []lab.Disk{
			{Name: "gfs0", Format: lab.FormatGFS2},
			{Name: "ocfs0", Format: lab.FormatOCFS2},
		},
		Logf: func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		if !keep {
			c.RemoveDir()
		}
	}()
	defer c.Close()
	step("%d agents ready %.1f s after start", nodes, time.Since(t0).Seconds())

	for _, n := range c.Nodes() {
		out, err := n.RunOK(ctx, "echo \"$(hostname) $(uname -r) $(cut -d' ' -f1 /proc/uptime)s up\"; "+
			"lsmod | awk '$1==\"dlm\"||$1==\"gfs2\"||$1==\"ocfs2\"{printf \"%s \", $1}'; echo; "+
			"ls -d /sys/kernel/config/dlm && ls /dev/misc")
		if err != nil {
			return err
		}
		step("node %d (%s):\n%s", n.ID, n.Addr, indent(out))
	}
	step("cluster network: node1 pings every other node")
	for _, n := range c.Nodes()[1:] {
		out, err := c.Node(1).RunOK(ctx, fmt.Sprintf("ping -c 1 -W 2 %s | grep 'bytes from'", n.Addr))
		if err != nil {
			return err
		}
		fmt.Print(indent(out))
	}
	step("shared disk: GFS2 and OCFS2 images seen by every node")
	for _, n := range c.Nodes() {
		out, err := n.RunOK(ctx, fmt.Sprintf("echo node%d: $(cat /sys/block/vda/serial) $(cat /sys/block/vdb/serial)", n.ID))
		if err != nil {
			return err
		}
		fmt.Print(indent(out))
	}
	// Until the cluster layer lands, dlm_controld runs as a one-node
	// cluster: on node 1 only, which alone mounts the GFS2 disk.
	n1 := c.Node(1)
	one := fmt.Sprintf("cluster_name=%s\nnode id=1 addr=%s\n", c.ClusterName(), n1.Addr)
	step("node 1: our dlm_controld (a one-node cluster until the cluster layer lands), GFS2 mounted, a lockspace joined")
	if err := n1.StartDLMControld(ctx, one); err != nil {
		return err
	}
	out, err := n1.RunOK(ctx, "mkdir -p /mnt/gfs2 && mount -t gfs2 "+c.GuestDisk("gfs0")+" /mnt/gfs2 && echo hello > /mnt/gfs2/hello && "+
		"dlm_tool join demo >/dev/null && dlm_tool ls && grep gfs2 /proc/mounts && "+
		"grep 'joined lockspace' "+lab.DLMControldLog+" && "+
		"umount /mnt/gfs2 && dlm_tool leave demo >/dev/null")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		return err
	}
	step("done in %.1f s%s", time.Since(t0).Seconds(), map[bool]string{true: "; lab folder kept in " + c.Dir()}[keep])
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
