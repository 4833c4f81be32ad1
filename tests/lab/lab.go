// Package lab runs the real Linux kernel DLM, GFS2 and OCFS2 in QEMU
// virtual machines, for godlm's tests, benchmarks and demo.
//
// A Cluster is 1 to 5 VMs booted in parallel from Debian bookworm's 6.1
// kernel (pinned in KernelRelease) and a busybox initramfs that carries
// this module's static binaries. The VMs share raw disks, formatted on the
// host with Debian's mkfs.gfs2 and mkfs.ocfs2, and a private Ethernet
// switched by a Hub inside this process: nothing else can reach it, and
// the test can cut, delay or drop traffic between chosen nodes. Each guest
// runs an agent on a virtio-serial port, so commands and file copies keep
// working while the cluster network is partitioned.
//
// Emulation is software only (TCG): a VM boots in about 10 s and a guest
// is some tens of times slower than the host. Time intervals should be
// measured inside one guest.
//
// Every QEMU process ends when the Cluster is closed, and also when the
// process that started it dies, however it dies.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godlm/godlm/tests/lab/internal/wire"
)

// MaxNodes is the largest cluster the lab boots.
const MaxNodes = 5

// Filesystem formats for a Disk.
const (
	FormatRaw   = ""      // left as zeros
	FormatGFS2  = "gfs2"  // mkfs.gfs2 with lock_dlm, one journal per node
	FormatOCFS2 = "ocfs2" // mkfs.ocfs2 for the user ("pcmk") stack, one slot per node
)

// Disk is a raw image attached to every VM. The guests see the disks as
// /dev/vda, /dev/vdb, ... in the order of Config.Disks.
type Disk struct {
	Name   string // GFS2 lock table fs name or OCFS2 label; also the virtio serial
	SizeMB int    // default 256
	Format string // FormatRaw, FormatGFS2 or FormatOCFS2
	// ClusterName overrides Config.ClusterName in the filesystem's
	// lock table, e.g. to test a mismatch.
	ClusterName string
}

// Config describes a cluster to boot.
type Config struct {
	Nodes       int    // 1..MaxNodes
	MemoryMB    int    // per VM; default 768
	CPUs        int    // vCPUs per VM; default 1 (emulated: a host core each)
	ClusterName string // default "godlm"; used by mkfs and the daemons
	Disks       []Disk
	// LoadClusterModules makes each guest load configfs, dlm, gfs2 and
	// ocfs2 at boot; without it, /sbin/godlm-modules loads them later.
	LoadClusterModules bool
	// PatchedModules boots the guests with the DLM, GFS2 and OCFS2
	// modules built with the NOTIFY patch series (kernel/build.sh,
	// cached) instead of Debian's.
	PatchedModules bool
	// Dir holds sockets, disks and logs; default a new folder under the
	// system temp dir. It is kept on failure.
	Dir string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Network is the lab's IPv4 /24; node N has address Network.N.
const Network = "192.168.77"

// Cluster is a set of running VMs with their hub and disks.
type Cluster struct {
	cfg    Config
	dir    string
	assets *Assets
	hub    *Hub
	power  *PowerSwitch
	disks  []string // host paths, in Config.Disks order
	nodes  []*Node
	key    dlmKey // godlm's cluster key (dlmkey.go)
}

// Node is one VM of a Cluster.
type Node struct {
	ID   int        // 1-based
	Addr netip.Addr // on the cluster network

	c       *Cluster
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the QEMU process has been reaped
	exitErr error
	agent   *agentClient
}

// Boot prepares the assets (see Prepare), creates the disks and starts all
// nodes in parallel, returning once every agent answers. On error nothing
// is left running.
func Boot(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
		return nil, fmt.Errorf("lab: %d nodes: must be 1 to %d", cfg.Nodes, MaxNodes)
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 768
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "godlm"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return nil, fmt.Errorf("lab: qemu-system-x86_64 not found (install qemu-system-x86; scripts/prereqs.sh does): %w", err)
	}
	assets, err := prepareFor(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	dir := cfg.Dir
	if dir == "" {
		// Unix socket paths are limited to 108 bytes: keep this short.
		if dir, err = os.MkdirTemp("", "godlm-lab-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, dir: dir, assets: assets}
	c.power = newPowerSwitch(c)
	if c.hub, err = newHub(dir, cfg.Nodes); err != nil {
		return nil, err
	}
	if err := c.makeDisks(ctx); err != nil {
		c.Close()
		return nil, err
	}
	for i := 1; i <= cfg.Nodes; i++ {
		addr := netip.MustParseAddr(fmt.Sprintf("%s.%d", Network, i))
		c.nodes = append(c.nodes, &Node{ID: i, Addr: addr, c: c})
	}
	t0 := time.Now()
	errs := make([]error, cfg.Nodes)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, fmt.Errorf("lab: boot (artifacts in %s): %w", dir, err)
	}
	cfg.Logf("lab: %d nodes ready in %v", cfg.Nodes, time.Since(t0).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) makeDisks(ctx context.Context) error {
	for i, d := range c.cfg.Disks {
		if d.Name == "" {
			return fmt.Errorf("lab: disk %d has no name", i)
		}
		size := d.SizeMB
		if size == 0 {
			size = 256
		}
		p := filepath.Join(c.dir, fmt.Sprintf("disk%d-%s.img", i, d.Name))
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(size) << 20)
		f.Close()
		if err != nil {
			return err
		}
		cluster := c.cfg.ClusterName
		if d.ClusterName != "" {
			cluster = d.ClusterName
		}
		var argv []string
		switch d.Format {
		case FormatRaw:
		case FormatGFS2:
			argv = []string{"mkfs.gfs2", "-O", "-p", "lock_dlm", "-t", cluster + ":" + d.Name,
				"-j", fmt.Sprint(c.cfg.Nodes), "-J", "32", p}
		case FormatOCFS2:
			argv = []string{"mkfs.ocfs2", "-F", "-q", "--cluster-stack=pcmk", "--cluster-name=" + cluster,
				"-N", fmt.Sprint(c.cfg.Nodes), "-L", d.Name, p}
		default:
			return fmt.Errorf("lab: disk %s: unknown format %q", d.Name, d.Format)
		}
		if argv != nil {
			if _, err := exec.LookPath(argv[0]); err != nil {
				return fmt.Errorf("lab: %s not found (install gfs2-utils and ocfs2-tools; scripts/prereqs.sh does): %w", argv[0], err)
			}
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			// mkfs.ocfs2 asks again, even with -F, when it cannot reach a
			// cluster stack (none runs on the host), from more than one
			// process: answer yes for as long as it asks, as yes(1).
			cmd.Stdin = yes{}
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("lab: %s: %w\n%s", strings.Join(argv, " "), err, out)
			}
		}
		c.disks = append(c.disks, p)
	}
	return nil
}

// Dir is the folder holding the cluster's sockets, disks and logs.
func (c *Cluster) Dir() string { return c.dir }

// Nodes returns every node, in id order.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Each runs f on the nodes ids (every node when none are given) at
// once, waits for all, and returns their errors joined, each naming its
// node.
func (c *Cluster) Each(f func(n *Node) error, ids ...int) error {
	nodes := c.nodes
	if len(ids) > 0 {
		nodes = nil
		for _, id := range ids {
			nodes = append(nodes, c.Node(id))
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := f(n); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", n.ID, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Node returns node id (1-based).
func (c *Cluster) Node(id int) *Node {
	if id < 1 || id > len(c.nodes) {
		panic(fmt.Sprintf("lab: no node %d in a %d-node cluster", id, len(c.nodes)))
	}
	return c.nodes[id-1]
}

// DiskPath returns the host path of the disk image named name.
func (c *Cluster) DiskPath(name string) string {
	for i, d := range c.cfg.Disks {
		if d.Name == name {
			return c.disks[i]
		}
	}
	return ""
}

// GuestDisk returns the guest device of the disk named name (/dev/vda...).
func (c *Cluster) GuestDisk(name string) string {
	for i, d := range c.cfg.Disks {
		if d.Name == name {
			return "/dev/vd" + string(rune('a'+i))
		}
	}
	return ""
}

// Hub returns the cluster network, for link policies beyond Partition.
func (c *Cluster) Hub() *Hub { return c.hub }

// Partition cuts the network between the given groups of node ids; a node
// in no group is isolated. Heal undoes it.
func (c *Cluster) Partition(groups ...[]int) { c.hub.Partition(groups...) }

// Heal restores every network link.
func (c *Cluster) Heal() { c.hub.Heal() }

// Kill powers node id off at once, as a failing machine: its QEMU process
// gets SIGKILL. It returns once the process is gone.
func (c *Cluster) Kill(id int) error { return c.Node(id).kill() }

// Restart starts node id again (killing it first if it still runs) and
// waits for its agent. The node boots as a fresh machine: disks keep what
// was written, memory does not.
func (c *Cluster) Restart(ctx context.Context, id int) error {
	n := c.Node(id)
	if err := n.kill(); err != nil {
		return err
	}
	return n.start(ctx)
}

// Shutdown powers every running node off cleanly (sync, poweroff) and
// waits for QEMU to exit, then closes the cluster.
func (c *Cluster) Shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			// The agent dies with the guest: no answer is expected.
			n.Run(ctx, "sync; poweroff -f")
			select {
			case <-n.exitedChan():
			case <-ctx.Done():
			}
		})
	}
	wg.Wait()
	return c.Close()
}

// Close kills every QEMU process of the cluster by its pid, waits for them
// and stops the hub. The folder is left in place (see RemoveDir).
func (c *Cluster) Close() error {
	if c.power != nil {
		c.power.close()
	}
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.kill())
	}
	if c.hub != nil {
		c.hub.Close()
	}
	return errors.Join(errs...)
}

// RemoveDir deletes the cluster's folder; call it after Close.
func (c *Cluster) RemoveDir() error { return os.RemoveAll(c.dir) }

// SaveArtifacts writes each running node's dmesg next to its console log
// and returns the folder. The console logs are always there.
func (c *Cluster) SaveArtifacts(ctx context.Context) string {
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		r, err := n.Run(ctx, "dmesg")
		cancel()
		out := r.Stdout
		if err != nil {
			out = "dmesg unavailable: " + err.Error() + "\n"
		}
		os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("node%d.dmesg", n.ID)), []byte(out), 0o644)
	}
	return c.dir
}

// ConsolePath is the host file receiving node's kernel console.
func (n *Node) ConsolePath() string {
	return filepath.Join(n.c.dir, fmt.Sprintf("node%d.console.log", n.ID))
}

func (n *Node) start(ctx context.Context) error {
	c := n.c
	agentSock := filepath.Join(c.dir, fmt.Sprintf("node%d.agent.sock", n.ID))
	os.Remove(agentSock)
	mods := 0
	if c.cfg.LoadClusterModules {
		mods = 1
	}
	// tsc=reliable: the emulated TSCs all follow the host's clock, but a
	// guest with several vCPUs finds them unsynchronized and falls back
	// to the HPET, which has no vDSO path, so every clock read becomes a
	// trapped syscall (2.2 µs instead of 0.2 µs). Real machines have an
	// invariant TSC; so do the guests, then.
	args := []string{
		"-nodefaults", "-no-user-config", "-accel", "tcg", "-cpu", "max",
		"-m", fmt.Sprint(c.cfg.MemoryMB), "-smp", fmt.Sprint(c.cfg.CPUs),
		"-display", "none", "-no-reboot",
		"-name", fmt.Sprintf("godlm-node%d", n.ID),
		"-kernel", c.assets.Kernel, "-initrd", c.assets.Initrd,
		"-append", fmt.Sprintf("console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable godlm.node=%d godlm.nodes=%d godlm.net=%s godlm.modules=%d",
			n.ID, c.cfg.Nodes, Network, mods),
		"-serial", "file:" + n.ConsolePath(),
		"-netdev", "stream,id=net0,server=off,addr.type=unix,addr.path=" + c.hub.socketPath(n.ID),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=net0,mac=52:54:00:77:00:%02x", n.ID),
	}
	for i, p := range c.disks {
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=disk%d,cache=none,file.locking=off", p, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=disk%d,share-rw=on,serial=%s", i, c.cfg.Disks[i].Name))
	}
	args = append(args,
		"-chardev", "socket,id=agent,path="+agentSock+",server=on,wait=off",
		"-device", "virtio-serial-pci,id=vser0",
		"-device", "virtserialport,bus=vser0.0,chardev=agent,name="+wire.PortName)
	args = append(args, c.power.qemuArgs(n.ID)...)
	// The emulated watchdog, for self-fencing: if the guest arms it and
	// stops feeding it, QEMU powers the VM off (-no-reboot).
	args = append(args, "-device", "i6300esb", "-action", "watchdog=poweroff")

	qlog, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("node%d.qemu.log", n.ID)))
	if err != nil {
		return err
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = qlog, qlog
	if err := startTied(cmd); err != nil {
		qlog.Close()
		return fmt.Errorf("node %d: cannot start qemu-system-x86_64: %w", n.ID, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.exitErr, n.agent = cmd, exited, nil, nil
	n.mu.Unlock()
	c.power.attach(n.ID)
	go func() {
		err := cmd.Wait()
		qlog.Close()
		reaped(cmd.Process.Pid)
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(exited)
	}()

	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	go func() { // a QEMU that dies while booting ends the wait
		select {
		case <-exited:
			cancel()
		case <-bctx.Done():
		}
	}()
	a, err := dialAgent(bctx, agentSock)
	if err == nil {
		err = a.waitReady(bctx)
		if err != nil {
			a.close()
		}
	}
	if err != nil {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.qemu.log", n.ID)))
			return fmt.Errorf("node %d: qemu exited during boot (%v): %s\nconsole: %s",
				n.ID, n.exitErr, strings.TrimSpace(string(b)), tail(n.ConsolePath(), 20))
		default:
		}
		n.kill()
		return fmt.Errorf("node %d: agent not ready: %w\nconsole: %s", n.ID, err, tail(n.ConsolePath(), 20))
	}
	n.mu.Lock()
	n.agent = a
	n.mu.Unlock()
	return nil
}

// yes is an endless stream of "y\n".
type yes struct{}

func (yes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "y\n"[i%2]
	}
	return len(p) &^ 1, nil
}

// tail returns the last lines of a file, for error messages.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return path + ":\n" + strings.Join(ls, "\n")
}

func (n *Node) exitedChan() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return n.exited
}

// Running tells whether the node's QEMU process is alive.
func (n *Node) Running() bool {
	select {
	case <-n.exitedChan():
		return false
	default:
		return true
	}
}

// PID is the node's QEMU process id, 0 if it never started.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *Node) kill() error {
	n.mu.Lock()
	cmd, exited, a := n.cmd, n.exited, n.agent
	n.agent = nil
	n.mu.Unlock()
	if a != nil {
		a.close()
	}
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("node %d: kill qemu pid %d: %w", n.ID, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("node %d: qemu pid %d did not exit after SIGKILL", n.ID, cmd.Process.Pid)
	}
}

func (n *Node) client() (*agentClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agent == nil {
		return nil, fmt.Errorf("node %d: %w", n.ID, ErrNodeDown)
	}
	return n.agent, nil
}

// Result is what a command run in a guest did.
type Result struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// ExitError reports a guest command that ran and exited non-zero.
type ExitError struct {
	Node    int
	Command string
	Result
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("node %d: %q exited %d: %s", e.Node, e.Command, e.ExitCode, strings.TrimSpace(e.Stderr+"\n"+e.Stdout))
}

func (n *Node) exec(ctx context.Context, req wire.Request) (Result, error) {
	a, err := n.client()
	if err != nil {
		return Result{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMS = max(1, time.Until(dl).Milliseconds())
	}
	resp, err := a.call(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("node %d: %w", n.ID, err)
	}
	r := Result{ExitCode: resp.ExitCode, Stdout: string(resp.Stdout), Stderr: string(resp.Stderr)}
	if resp.Err != "" {
		return r, fmt.Errorf("node %d: %s", n.ID, resp.Err)
	}
	return r, nil
}

// Run runs a shell command (busybox sh -c) in the guest and returns what
// it did. The error is non-nil only if the command could not be run or
// waited for (node down, timeout); a non-zero exit is in the Result.
// The context's deadline also bounds the command inside the guest.
func (n *Node) Run(ctx context.Context, shell string) (Result, error) {
	return n.exec(ctx, wire.Request{Op: wire.OpExec, Shell: shell})
}

// Exec runs argv in the guest, without a shell; see Run.
func (n *Node) Exec(ctx context.Context, argv ...string) (Result, error) {
	return n.exec(ctx, wire.Request{Op: wire.OpExec, Argv: argv})
}

// RunOK runs a shell command and returns its stdout; a non-zero exit is an
// *ExitError carrying the output.
func (n *Node) RunOK(ctx context.Context, shell string) (string, error) {
	r, err := n.Run(ctx, shell)
	if err != nil {
		return r.Stdout, err
	}
	if r.ExitCode != 0 {
		return r.Stdout, &ExitError{Node: n.ID, Command: shell, Result: r}
	}
	return r.Stdout, nil
}

// GuestTime runs the shell command cmd on n and returns how long it
// took by the guest's own clock (/proc/uptime, 10 ms resolution), which
// does not drift against itself the way guest and host clocks do under
// emulation. The command's output is discarded; a failure is an error.
func (n *Node) GuestTime(ctx context.Context, cmd string) (time.Duration, error) {
	out, err := n.RunOK(ctx, "a=$(cut -d' ' -f1 /proc/uptime); "+cmd+" >/dev/null && b=$(cut -d' ' -f1 /proc/uptime) && echo $a $b")
	if err != nil {
		return 0, err
	}
	var a, b float64
	if _, err := fmt.Sscan(out, &a, &b); err != nil {
		return 0, fmt.Errorf("node %d: timing %q: %w", n.ID, out, err)
	}
	return time.Duration((b - a) * float64(time.Second)).Round(time.Millisecond), nil
}

// WriteFile writes data to path in the guest, creating parent folders.
func (n *Node) WriteFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	a, err := n.client()
	if err != nil {
		return err
	}
	resp, err := a.call(ctx, wire.Request{Op: wire.OpWrite, Path: path, Data: data, Mode: uint32(mode.Perm())})
	if err == nil && resp.Err != "" {
		err = errors.New(resp.Err)
	}
	if err != nil {
		return fmt.Errorf("node %d: write %s: %w", n.ID, path, err)
	}
	return nil
}

// ReadFile returns the content of path in the guest.
func (n *Node) ReadFile(ctx context.Context, path string) ([]byte, error) {
	a, err := n.client()
	if err != nil {
		return nil, err
	}
	resp, err := a.call(ctx, wire.Request{Op: wire.OpRead, Path: path})
	if err == nil && resp.Err != "" {
		err = errors.New(resp.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("node %d: read %s: %w", n.ID, path, err)
	}
	return resp.Data, nil
}

// CopyIn copies the host file src to dst in the guest, keeping its mode.
func (n *Node) CopyIn(ctx context.Context, src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return n.WriteFile(ctx, dst, b, st.Mode())
}

// CopyOut copies the guest file src to the host file dst.
func (n *Node) CopyOut(ctx context.Context, src, dst string) error {
	b, err := n.ReadFile(ctx, src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// ClusterName is the cluster's name, as given to mkfs and the daemons.
func (c *Cluster) ClusterName() string { return c.cfg.ClusterName }

// LabFencing is the fence line DLMConf adds: every node is fenced by
// powering its VM off through the lab's power switch (see PowerSwitch),
// and it stays off until the test restarts it.
const LabFencing = "fence_all fence_godlm action=off"

// DLMConf returns a dlm.conf for godlm's dlm_controld naming the cluster,
// the cluster key file (DLMKeyPath) and every node with its address,
// followed by the extra lines, then LabFencing unless the extra lines
// configure fencing themselves or turn it off.
func (c *Cluster) DLMConf(extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster_name=%s\n", c.cfg.ClusterName)
	fmt.Fprintf(&b, "cluster_key_file=%s\n", DLMKeyPath)
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "node id=%d addr=%s\n", n.ID, n.Addr)
	}
	fencing := true
	for _, e := range extra {
		b.WriteString(e + "\n")
		if f := strings.Fields(e); len(f) > 0 && (f[0] == "device" || f[0] == "fence_all" || strings.ReplaceAll(e, " ", "") == "enable_fencing=0") {
			fencing = false
		}
	}
	if fencing {
		b.WriteString(LabFencing + "\n")
	}
	return b.String()
}

// DLMControldLog is where StartDLMControld's daemon logs in the guest.
const DLMControldLog = "/var/log/dlm_controld.log"

// StartDLMControld writes the cluster key to DLMKeyPath and conf to
// /etc/dlm/dlm.conf, starts godlm's
// dlm_controld -D in the background, appending its log to
// DLMControldLog, and waits until it answers `dlm_tool status`. The
// error of a daemon that does not answer carries its log.
func (n *Node) StartDLMControld(ctx context.Context, conf string) error {
	if err := n.writeDLMKey(ctx); err != nil {
		return err
	}
	if err := n.WriteFile(ctx, "/etc/dlm/dlm.conf", []byte(conf), 0o644); err != nil {
		return err
	}
	if _, err := n.RunOK(ctx, "dlm_controld -D >>"+DLMControldLog+" 2>&1 </dev/null &"); err != nil {
		return err
	}
	return n.waitAnswer(ctx, "dlm_tool status", "dlm_controld not answering", 30*time.Second, "cat "+DLMControldLog)
}

// waitAnswer polls the shell command cmd on n until it exits 0, for at
// most limit or until ctx ends; the error then says what, with the
// output of the shell command logs.
func (n *Node) waitAnswer(ctx context.Context, cmd, what string, limit time.Duration, logs string) error {
	deadline := time.Now().Add(limit)
	for {
		r, err := n.Run(ctx, cmd)
		if err == nil && r.ExitCode == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			out, _ := n.RunOK(lctx, logs)
			cancel()
			return fmt.Errorf("node %d: %s after %v: %v %+v\nlogs:\n%s", n.ID, what, limit, err, r, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
