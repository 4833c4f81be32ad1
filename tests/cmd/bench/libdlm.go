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
	row := func(c cProgram) Measure {
		return Measure{
			Name: fmt.Sprintf("libdlm lock+unlock pairs, 1 node, uncontended, %d-vCPU guest: C %s vs Go", cpus, c.lib),
			Unit: "pairs/s", Higher: true,
			Note: fmt.Sprintf("the C libdlm's %s (%s) vs our Go libdlm (Lockspace.Lock, Lock.Unlock), %d EX pairs on one resource per run, "+
				"runs alternating in one guest after a warm-up round; both make the same four syscalls per pair", c.lib, c.how, pairsUncontended),
		}
	}
	if err := pipePairs(ctx, env, n, fmt.Sprintf("%d-vCPU guest", cpus)); err != nil {
		return err
	}
	return alternate(env, []string{"dlmbench", "dlmbench-mt", "gobench"},
		func(prog string) (string, error) {
			return n.RunOK(ctx, fmt.Sprintf("/tmp/%s bench res %d", prog, pairsUncontended))
		},
		func(prog string, v float64) { recordLibs(env, row, prog, v) })
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
	return pipeRuns(env, pipeMeasure(where, pipePairsGuest), func(prog string) (string, error) {
		return n.RunOK(ctx, fmt.Sprintf("/tmp/%s %d", prog, pipePairsGuest))
	})
}

// syscallBaselineHost runs the syscall baseline natively on the host,
// with no emulation, for comparison with the guests'.
func syscallBaselineHost(ctx context.Context, env *Env) error {
	return pipeRuns(env, pipeMeasure("host (no emulation)", pipePairsHost), func(prog string) (string, error) {
		out, err := exec.CommandContext(ctx, env.Bin[prog], strconv.Itoa(pipePairsHost)).Output()
		if err != nil {
			return "", fmt.Errorf("%s: %w", prog, err)
		}
		return string(out), nil
	})
}

// pipeRuns records the syscall baseline in m: the C and Go programs,
// started by run, alternating.
func pipeRuns(env *Env, m Measure, run func(prog string) (string, error)) error {
	return alternate(env, []string{"pipebench-c", "pipebench"}, run,
		func(prog string, v float64) { env.record(m, prog == "pipebench-c", v) })
}

// alternate runs progs in turn with run, for env.Runs rounds after a
// warm-up round, and hands record the rate each measured.
func alternate(env *Env, progs []string, run func(prog string) (string, error), record func(prog string, v float64)) error {
	for i := -1; i < env.Runs; i++ {
		for _, prog := range progs {
			out, err := run(prog)
			if err != nil {
				return err
			}
			v, err := rate(prog, out)
			if err != nil {
				return err
			}
			if i >= 0 { // the first round warms up
				record(prog, v)
			}
		}
	}
	return nil
}

// cProgram is a build of the C benchmark: the C library it links, for
// row names, the program's name, and how that library waits.
type cProgram struct{ lib, prog, how string }

// cPrograms are the two builds of the C benchmark.
var cPrograms = []cProgram{
	{"libdlm_lt", "dlmbench", "dlm_ls_lock_wait/dlm_ls_unlock_wait, the caller reads its own completions"},
	{"libdlm (threaded)", "dlmbench-mt", "dlm_ls_lock_wait/dlm_ls_unlock_wait with dlm_ls_pthread_init: a dispatch thread reads completions"},
}

// recordLibs records v, a sample of prog, in the row (made by row) of
// each C library it is compared with: a C program's sample goes on the
// reference side of its own library's row, gobench's on our side of
// every row.
func recordLibs(env *Env, row func(cProgram) Measure, prog string, v float64) {
	for _, c := range cPrograms {
		if prog == "gobench" || prog == c.prog {
			env.record(row(c), prog != "gobench", v)
		}
	}
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
