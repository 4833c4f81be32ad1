package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/godlm/godlm/tests/lab"
)

// pairsUncontended is the number of lock+unlock pairs per one-node run.
const pairsUncontended = 20000

// libdlmPairsOneNode: EX lock + unlock pairs per second on one node,
// uncontended, through the C libdlm (single-threaded libdlm_lt, and the
// threaded libdlm) and through our Go binding, in the same guest,
// alternating runs; in a one-vCPU guest and a two-vCPU one. On one node
// no daemon is on the lock path; ours runs the lockspace.
func libdlmPairsOneNode(ctx context.Context, env *Env) error {
	for _, cpus := range []int{1, 2} {
		c, err := env.Boot(ctx, lab.Config{Nodes: 1, CPUs: cpus, LoadClusterModules: true})
		if err != nil {
			return err
		}
		err = libdlmPairs(ctx, env, c, cpus)
		Done(c)
		if err != nil {
			return err
		}
	}
	return nil
}

func libdlmPairs(ctx context.Context, env *Env, c *lab.Cluster, cpus int) error {
	n := c.Node(1)
	if err := n.StartDLMControld(ctx, c.DLMConf()); err != nil {
		return err
	}
	if err := copyPrograms(ctx, env, c); err != nil {
		return err
	}
	row := func(lib, how string) Measure {
		return Measure{
			Name: fmt.Sprintf("libdlm lock+unlock pairs, 1 node, uncontended, %d-vCPU guest: C %s vs Go", cpus, lib),
			Unit: "pairs/s", Higher: true,
			Note: fmt.Sprintf("the C libdlm's %s (%s) vs our Go libdlm (Lockspace.Lock, Lock.Unlock), %d EX pairs on one resource per run, "+
				"runs alternating in one guest after a warm-up round; both make the same four syscalls per pair", lib, how, pairsUncontended),
		}
	}
	lt := row("libdlm_lt", "dlm_ls_lock_wait/dlm_ls_unlock_wait, the caller reads its own completions")
	mt := row("libdlm (threaded)", "dlm_ls_lock_wait/dlm_ls_unlock_wait with dlm_ls_pthread_init: a dispatch thread reads completions")
	if err := pipePairs(ctx, env, n, fmt.Sprintf("%d-vCPU guest", cpus)); err != nil {
		return err
	}
	for i := -1; i < env.Runs; i++ {
		var got [3]float64
		for j, prog := range []string{"dlmbench", "dlmbench-mt", "gobench"} {
			out, err := n.RunOK(ctx, fmt.Sprintf("/tmp/%s bench res %d", prog, pairsUncontended))
			if err != nil {
				return err
			}
			if got[j], err = rate(prog, out); err != nil {
				return err
			}
		}
		if i < 0 { // the first round warms up
			continue
		}
		env.record(lt, true, got[0])
		env.record(mt, true, got[1])
		env.record(lt, false, got[2])
		env.record(mt, false, got[2])
	}
	return nil
}

// Pipe pairs per run: a pair costs about 1 µs on the host and 4 µs in
// a guest, so a run lasts about a second or half a second.
const (
	pipePairsHost  = 1000000
	pipePairsGuest = 100000
)

// pipeMeasure is the syscall baseline's row for where it ran.
func pipeMeasure(where string, count int) Measure {
	return Measure{
		Name: "syscall baseline, " + where + ": write+read pairs on a pipe, C vs Go",
		Unit: "pairs/s", Higher: true,
		Note: fmt.Sprintf("no DLM: each pair is an 8-byte write(2) to a non-blocking pipe and a read(2) of it, "+
			"the two syscalls of a synchronous DLM operation, made in Go the way our libdlm makes them (the write through "+
			"the scheduler, the read raw); %d pairs per run, runs alternating after a warm-up round; "+
			"the ratio is what the machine's syscall path alone leaves of the Go side's rate", count)}
}

// pipePairs runs the syscall baseline in a guest.
func pipePairs(ctx context.Context, env *Env, n *lab.Node, where string) error {
	m := pipeMeasure(where, pipePairsGuest)
	for i := -1; i < env.Runs; i++ {
		for _, prog := range []string{"pipebench-c", "pipebench"} {
			out, err := n.RunOK(ctx, fmt.Sprintf("/tmp/%s %d", prog, pipePairsGuest))
			if err != nil {
				return err
			}
			v, err := rate(prog, out)
			if err != nil {
				return err
			}
			if i >= 0 { // the first round warms up
				env.record(m, prog == "pipebench-c", v)
			}
		}
	}
	return nil
}

// syscallBaselineHost runs the syscall baseline natively on the host,
// with no emulation, for comparison with the guests'.
func syscallBaselineHost(ctx context.Context, env *Env) error {
	m := pipeMeasure("host (no emulation)", pipePairsHost)
	for i := -1; i < env.Runs; i++ {
		for _, prog := range []string{"pipebench-c", "pipebench"} {
			out, err := exec.CommandContext(ctx, env.Bin[prog], strconv.Itoa(pipePairsHost)).Output()
			if err != nil {
				return fmt.Errorf("%s: %w", prog, err)
			}
			v, err := rate(prog, string(out))
			if err != nil {
				return err
			}
			if i >= 0 {
				env.record(m, prog == "pipebench-c", v)
			}
		}
	}
	return nil
}

// rate reads the rate= field a benchmark program prints.
func rate(prog, out string) (float64, error) {
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "rate="); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no rate in %q", prog, out)
}
