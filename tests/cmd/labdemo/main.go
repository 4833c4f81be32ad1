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
	step("our dlm_controld on every node, and nothing else: the daemons form the cluster")
	t1 := time.Now()
	if err := c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, c.DLMConf()) }); err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		if err := waitQuorate(ctx, n, len(c.Nodes())); err != nil {
			return err
		}
	}
	step("quorate on all %d nodes %.1f s after the daemons started; node 2's view:", nodes, time.Since(t1).Seconds())
	out, err := c.Node(2).RunOK(ctx, "dlm_tool status")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("GFS2 mounted on every node at once")
	dev := c.GuestDisk("gfs0")
	if err := c.Each(func(n *lab.Node) error {
		out, err := n.RunOK(ctx, "mkdir -p /mnt/gfs2 && a=$(cut -d' ' -f1 /proc/uptime) && mount -t gfs2 "+dev+" /mnt/gfs2 && "+
			"b=$(cut -d' ' -f1 /proc/uptime) && echo \"$a $b\" | awk '{printf \"%.2f\", $2-$1}'")
		if err == nil {
			fmt.Printf("    node %d: mounted in %s s\n", n.ID, out)
		}
		return err
	}); err != nil {
		return err
	}
	out, err = c.Node(1).RunOK(ctx, "echo \"written by node 1 at $(date)\" > /mnt/gfs2/hello && sync && echo 'node 1 wrote /mnt/gfs2/hello'")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	for _, n := range c.Nodes()[1:] {
		out, err := n.RunOK(ctx, "cat /mnt/gfs2/hello")
		if err != nil {
			return err
		}
		fmt.Printf("    node %d reads: %s", n.ID, out)
	}

	total := 300 * len(c.Nodes())
	step("Go locks across nodes: every node adds 300 to a counter in a lock value block, under EX, all starting together (tests/cmd/dlmcounter, on libdlm)")
	if err := c.Each(func(n *lab.Node) error {
		out, err := n.RunOK(ctx, fmt.Sprintf("dlmcounter -lockspace demo -n 300 -total %d -start %d", total, len(c.Nodes())))
		if err == nil {
			fmt.Printf("    node %d: %s\n", n.ID, strings.ReplaceAll(strings.TrimSpace(out), "\n", "; "))
		}
		return err
	}); err != nil {
		return err
	}
	step("every node saw the counter reach exactly %d; the lockspaces, from node 3:", total)
	out, err = c.Node(3).RunOK(ctx, "dlm_tool ls")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	if err := c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "umount /mnt/gfs2")
		return err
	}); err != nil {
		return err
	}

	step("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		return err
	}
	step("done in %.1f s%s", time.Since(t0).Seconds(), map[bool]string{true: "; lab folder kept in " + c.Dir()}[keep])
	return nil
}

// waitQuorate waits until n's daemon reports a quorate cluster of all
// the nodes.
func waitQuorate(ctx context.Context, n *lab.Node, nodes int) error {
	want := fmt.Sprintf("members %d of %d", nodes, nodes)
	for deadline := time.Now().Add(time.Minute); ; {
		r, err := n.Run(ctx, "dlm_tool status")
		if err != nil {
			return err
		}
		if strings.Contains(r.Stdout, " quorate 1 ") && strings.Contains(r.Stdout, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d: no quorate cluster of %d after a minute:\n%s", n.ID, nodes, r.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
