package main

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// failureTimeoutMS is the failure-detection timeout both stacks run
// with: corosync's default token, and godlm's cluster_timeout set to the
// same. Three emulated guests share the host's cores, so shorter
// timeouts risk false failures under load.
const failureTimeoutMS = 3000

// stack is one side of the comparison: how to start it on a node, its
// dlm_tool, and the processes it runs.
type stack struct {
	ref   bool
	name  string
	tool  string
	procs []string // daemons whose memory counts
	start func(ctx context.Context, c *lab.Cluster, n *lab.Node) error
}

var stacks = []stack{
	{
		ref: true, name: "reference", tool: lab.RefDir + "/dlm_tool", procs: []string{"corosync", "dlm_controld"},
		start: func(ctx context.Context, c *lab.Cluster, n *lab.Node) error {
			return n.StartReference(ctx, c.CorosyncConf(failureTimeoutMS), c.RefDLMConf())
		},
	},
	{
		ref: false, name: "godlm", tool: "dlm_tool", procs: []string{"dlm_controld"},
		start: func(ctx context.Context, c *lab.Cluster, n *lab.Node) error {
			return n.StartDLMControld(ctx, c.DLMConf(fmt.Sprintf("cluster_timeout=%d", failureTimeoutMS)))
		},
	},
}

// clusterRun is one booted 3-node cluster running one stack.
type clusterRun struct {
	env    *Env
	c      *lab.Cluster
	st     stack
	run    int
	booted time.Time // when the VMs were started
}

// record adds a sample of this run's stack.
func (r *clusterRun) record(m Measure, v float64) { r.env.record(m, r.st.ref, v) }

// A clusterStep measures one thing in a booted cluster. Steps run in
// order; the first starts the stack.
type clusterStep func(ctx context.Context, r *clusterRun) error

var clusterSteps = []clusterStep{coldStart, joinOne, joinThree, gfs2Mount, remotePairs, contendedPairs, daemonMemory}

// clusterRuns boots a 3-node cluster per stack and run, alternating
// which stack goes first, and runs every cluster step in it.
func clusterRuns(ctx context.Context, env *Env) error {
	for i := 0; i < env.Runs; i++ {
		order := []stack{stacks[0], stacks[1]}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, st := range order {
			fmt.Printf("==> run %d of %d, %s stack\n", i+1, env.Runs, st.name)
			r := &clusterRun{env: env, st: st, run: i, booted: time.Now()}
			c, err := env.Boot(ctx, lab.Config{Nodes: 3, LoadClusterModules: true,
				Disks: []lab.Disk{{Name: "gfs0", Format: lab.FormatGFS2}}})
			if err != nil {
				return err
			}
			r.c = c
			fmt.Printf("    booted in %.1f s\n", time.Since(r.booted).Seconds())
			err = copyPrograms(ctx, env, c)
			for _, step := range clusterSteps {
				if err != nil {
					break
				}
				t0 := time.Now()
				err = step(ctx, r)
				fmt.Printf("    (%s: %.1f s)\n", funcName(step), time.Since(t0).Seconds())
			}
			if err != nil {
				err = fmt.Errorf("%s stack, run %d: %w (lab kept in %s)", st.name, i+1, err, c.SaveArtifacts(ctx))
				c.Close()
				return err
			}
			t0 := time.Now()
			Done(c)
			fmt.Printf("    (shutdown: %.1f s)\n", time.Since(t0).Seconds())
		}
	}
	return nil
}

// funcName is a step's function name, for progress lines.
func funcName(f any) string {
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

var quorate = regexp.MustCompile(`(?m)^cluster nodeid \d+ quorate 1\b`)

// coldStart starts the stack on all three nodes at once and waits until
// every node's dlm_tool reports the cluster quorate.
func coldStart(ctx context.Context, r *clusterRun) error {
	t0 := time.Now()
	if err := r.c.Each(func(n *lab.Node) error { return r.st.start(ctx, r.c, n) }); err != nil {
		return err
	}
	if err := r.c.Each(func(n *lab.Node) error {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			res, err := n.Run(ctx, r.st.tool+" status")
			if err != nil {
				return err
			}
			if quorate.MatchString(res.Stdout) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d: not quorate after 2 minutes: %s%s", n.ID, res.Stdout, res.Stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}); err != nil {
		return err
	}
	done := time.Now()
	r.record(Measure{Name: "cold start, 3 nodes: daemons started → quorate on all", Unit: "s",
		Note: "host clock, from starting the stack's daemons on the three booted VMs at once until `dlm_tool status` " +
			"on every node says quorate (polled every 100 ms); reference: corosync then dlm_controld; ours: dlm_controld; " +
			fmt.Sprintf("failure timeout %d ms on both (corosync token, godlm cluster_timeout)", failureTimeoutMS)},
		done.Sub(t0).Seconds())
	r.record(Measure{Name: "cold boot, 3 nodes: VMs started → quorate on all", Unit: "s",
		Note: "host clock, from starting the three VMs (boot, then the daemons) until every node is quorate as above; " +
			"the VM boot is the same for both stacks"},
		done.Sub(r.booted).Seconds())
	return nil
}

// joinLatency is the daemon part of joining lockspace ls on n, from the
// guest kernel's log: from "joining the lockspace group" (logged right
// after the uevent is sent) to "group event done" (logged when the
// daemon's event_done wakes the joiner), in milliseconds.
func joinLatency(ctx context.Context, n *lab.Node, ls string) (float64, error) {
	out, err := n.RunOK(ctx, "dmesg | grep -F 'dlm: "+ls+": '")
	if err != nil {
		return 0, err
	}
	ms, err := parseJoinLatency(out, ls)
	if err != nil {
		return 0, fmt.Errorf("node %d: %w", n.ID, err)
	}
	return ms, nil
}

// parseJoinLatency finds the last join of ls in a kernel log and
// returns its latency in milliseconds.
func parseJoinLatency(dmesg, ls string) (float64, error) {
	var start, end float64
	var seen bool
	for _, l := range strings.Split(dmesg, "\n") {
		ts, msg, ok := strings.Cut(l, "] ")
		if !ok || !strings.HasPrefix(msg, "dlm: "+ls+": ") {
			continue
		}
		t, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(ts, "[")), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(msg, "joining the lockspace group..."):
			start, seen, end = t, true, 0
		case seen && end == 0 && strings.Contains(msg, "group event done "):
			if !strings.HasSuffix(msg, "group event done 0") {
				return 0, fmt.Errorf("join of %s failed: %s", ls, msg)
			}
			end = t
		}
	}
	if !seen || end == 0 {
		return 0, fmt.Errorf("no complete join of %s in the kernel log:\n%s", ls, dmesg)
	}
	return (end - start) * 1000, nil
}

var joinNote = "guest kernel log (dmesg timestamps, one guest clock): from the kernel's \"joining the lockspace group\", " +
	"logged as it sends the uevent, to \"group event done 0\", logged when the daemon's event_done wakes it; " +
	"a userspace lockspace made by the stack's own `dlm_tool join`"

// joinOne joins a lockspace on one node while the two others stay out,
// three times per run.
func joinOne(ctx context.Context, r *clusterRun) error {
	n := r.c.Node(1)
	for k := range 3 {
		ls := fmt.Sprintf("one%d%d", r.run, k)
		if _, err := n.RunOK(ctx, r.st.tool+" join "+ls); err != nil {
			return err
		}
		ms, err := joinLatency(ctx, n, ls)
		if err != nil {
			return err
		}
		r.record(Measure{Name: "lockspace join, 1 node (daemon part)", Unit: "ms", Note: joinNote + "; three joins per run, each a sample"}, ms)
		if _, err := n.RunOK(ctx, r.st.tool+" leave "+ls); err != nil {
			return err
		}
	}
	return nil
}

// joinThree joins one lockspace on the three nodes at once; the sample
// is the slowest node's latency.
func joinThree(ctx context.Context, r *clusterRun) error {
	ls := fmt.Sprintf("three%d", r.run)
	if err := r.c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, r.st.tool+" join "+ls)
		return err
	}); err != nil {
		return err
	}
	top, err := slowest(r.c, func(n *lab.Node) (float64, error) { return joinLatency(ctx, n, ls) })
	if err != nil {
		return err
	}
	r.record(Measure{Name: "lockspace join, 3 nodes together (daemon part, slowest node)", Unit: "ms",
		Note: joinNote + "; the three joins started at once, and the sample is the slowest node's"}, top)
	return r.c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, r.st.tool+" leave "+ls)
		return err
	})
}

// slowest runs measure on every node of c at once and returns the
// largest value.
func slowest(c *lab.Cluster, measure func(n *lab.Node) (float64, error)) (float64, error) {
	var mu sync.Mutex
	var top float64
	err := c.Each(func(n *lab.Node) error {
		v, err := measure(n)
		mu.Lock()
		top = max(top, v)
		mu.Unlock()
		return err
	})
	return top, err
}

// gfs2Mount mounts the GFS2 disk on the three nodes at once; the sample
// is the slowest node's mount time.
func gfs2Mount(ctx context.Context, r *clusterRun) error {
	dev := r.c.GuestDisk("gfs0")
	top, err := slowest(r.c, func(n *lab.Node) (float64, error) {
		d, err := n.GuestTime(ctx, "mkdir -p /mnt/gfs2 && /bin/mount -t gfs2 "+dev+" /mnt/gfs2")
		return d.Seconds(), err
	})
	if err != nil {
		return err
	}
	r.record(Measure{Name: "GFS2 mount, 3 nodes together (slowest node)", Unit: "s",
		Note: "guest clock (/proc/uptime), `mount -t gfs2` started on the three nodes at once on a fresh 3-journal filesystem; " +
			"the sample is the slowest node's"}, top)
	return r.c.Each(func(n *lab.Node) error {
		_, err := n.RunOK(ctx, "umount /mnt/gfs2")
		return err
	})
}

// pairsRemote is the number of lock+unlock pairs per remote run.
const pairsRemote = 300

// remotePairs runs EX lock+unlock pairs on node 2 on a resource that
// node 1 masters (it holds an NL lock on it, which blocks nothing), with
// both C libraries and with our Go binding: every request and every
// unlock is a round trip to node 1, without contention. Each C library
// has its row; the Go samples go in both.
func remotePairs(ctx context.Context, r *clusterRun) error {
	holder, n := r.c.Node(1), r.c.Node(2)
	ls, res := fmt.Sprintf("remote%d", r.run), "res"
	out := "/tmp/" + ls + ".hold"
	if _, err := holder.RunOK(ctx, fmt.Sprintf("/tmp/gobench %s %s 600 hold >%s 2>&1 </dev/null & echo $! >%s.pid", ls, res, out, out)); err != nil {
		return err
	}
	if err := waitFile(ctx, holder, out, "ready", time.Minute); err != nil {
		return err
	}
	row := func(c cProgram) Measure {
		return Measure{Name: "libdlm lock+unlock pairs, lock mastered on another node: C " + c.lib + " vs Go", Unit: "pairs/s", Higher: true,
			Note: fmt.Sprintf("node 2 runs %d EX lock+unlock pairs on a resource node 1 masters (node 1 holds an NL lock on it), so every "+
				"request and unlock is a round trip between the nodes, without contention; C %s vs our Go libdlm, "+
				"both in every booted cluster of both stacks, in alternating order", pairsRemote, c.lib)}
	}
	progs := []string{"dlmbench", "dlmbench-mt", "gobench"}
	if r.run%2 == 1 {
		slices.Reverse(progs)
	}
	for _, prog := range progs {
		o, err := n.RunOK(ctx, fmt.Sprintf("/tmp/%s %s %s %d", prog, ls, res, pairsRemote))
		if err != nil {
			return err
		}
		v, err := rate(prog, o)
		if err != nil {
			return err
		}
		recordLibs(r.env, row, prog, v)
	}
	_, err := holder.RunOK(ctx, "kill $(cat "+out+".pid)")
	return err
}

// contendedSeconds is how long each contended run lasts.
const contendedSeconds = 4

// contendedPairs runs EX lock+unlock pairs on one resource from nodes 1
// and 2 at once, with each C library and then with our Go binding; the
// sample is the two nodes' pairs per second added up. Each C library
// has its row; the Go samples go in both.
func contendedPairs(ctx context.Context, r *clusterRun) error {
	lead, follow := r.c.Node(1), r.c.Node(2)
	row := func(c cProgram) Measure {
		return Measure{Name: "libdlm lock+unlock pairs, 2 nodes contending: C " + c.lib + " vs Go", Unit: "pairs/s", Higher: true,
			Note: fmt.Sprintf("nodes 1 and 2 each run EX lock+unlock pairs on one resource for %d s, started together by a gate lock "+
				"(the second node's request for it reaches the first as a blocking callback); the sample is both nodes' pairs/s added up; "+
				"C %s vs our Go libdlm, both run in every booted cluster of both stacks (no daemon is on the lock path); "+
				"the node that masters the resource does most of the pairs", contendedSeconds, c.lib)}
	}
	for _, prog := range []string{"dlmbench", "dlmbench-mt", "gobench"} {
		ls := fmt.Sprintf("%s%d", strings.ReplaceAll(prog, "-", ""), r.run)
		out := "/tmp/" + ls + ".out"
		if _, err := lead.RunOK(ctx, fmt.Sprintf("/tmp/%s %s res %d lead >%s 2>&1 </dev/null &", prog, ls, contendedSeconds, out)); err != nil {
			return err
		}
		if err := waitFile(ctx, lead, out, "ready", time.Minute); err != nil {
			return err
		}
		fo, err := follow.RunOK(ctx, fmt.Sprintf("/tmp/%s %s res %d follow", prog, ls, contendedSeconds))
		if err != nil {
			return err
		}
		if err := waitFile(ctx, lead, out, "rate=", time.Minute); err != nil {
			return err
		}
		lo, err := lead.RunOK(ctx, "cat "+out)
		if err != nil {
			return err
		}
		a, err := rate(prog, lo)
		if err != nil {
			return err
		}
		b, err := rate(prog, fo)
		if err != nil {
			return err
		}
		fmt.Printf("    %s contended: node 1 %.0f pairs/s, node 2 %.0f pairs/s\n", prog, a, b)
		recordLibs(r.env, row, prog, a+b)
	}
	return nil
}

// waitFile waits until the guest file path contains want.
func waitFile(ctx context.Context, n *lab.Node, path, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		b, err := n.ReadFile(ctx, path)
		if err == nil && strings.Contains(string(b), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d: %s has no %q after %v: %q %v", n.ID, path, want, limit, b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonMemory reads the resident memory of the stack's daemons after
// the other steps; the sample is the largest of the three nodes.
func daemonMemory(ctx context.Context, r *clusterRun) error {
	var mu sync.Mutex
	var ctl, all float64
	if err := r.c.Each(func(n *lab.Node) error {
		var c, a float64
		for _, p := range r.st.procs {
			kb, err := rssKB(ctx, n, p)
			if err != nil {
				return err
			}
			a += kb / 1024
			if p == "dlm_controld" {
				c = kb / 1024
			}
		}
		mu.Lock()
		ctl, all = max(ctl, c), max(all, a)
		mu.Unlock()
		return nil
	}); err != nil {
		return err
	}
	r.record(Measure{Name: "daemon resident memory: dlm_controld", Unit: "MiB",
		Note: "VmRSS of dlm_controld after all the steps above (the reference's includes its forked helper process), " +
			"the largest of the three nodes"}, ctl)
	r.record(Measure{Name: "daemon resident memory: whole stack (reference: corosync + dlm_controld)", Unit: "MiB",
		Note: "VmRSS of every daemon of the stack after all the steps above, added up per node, the largest of the three nodes; " +
			"godlm needs no corosync"}, all)
	return nil
}

// rssKB is the resident memory of every process named name on n, added
// up, in KiB; there must be at least one.
func rssKB(ctx context.Context, n *lab.Node, name string) (float64, error) {
	out, err := n.RunOK(ctx, "for p in $(pidof "+name+"); do grep VmRSS /proc/$p/status; done")
	if err != nil {
		return 0, fmt.Errorf("node %d: %s: %w", n.ID, name, err)
	}
	var sum float64
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "VmRSS:" || f[2] != "kB" {
			return 0, fmt.Errorf("node %d: %s: no resident size in %q", n.ID, name, out)
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return 0, fmt.Errorf("node %d: %s: %w", n.ID, name, err)
		}
		sum += kb
	}
	return sum, nil
}
