// Command bench is what `make bench` runs: godlm side by side with the
// reference, in the same VMs, on the same kernel, in one run. It prints
// one table (measure, reference, ours, ratio, runs, min/median/max) and
// writes it to BENCHMARKS.md with the date, the machine and the command.
//
// Each scenario is one function that returns its samples; add one to
// scenarios to add a row.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// Measure is one row of the table: samples of the reference and of ours.
type Measure struct {
	Name   string
	Unit   string
	Higher bool // higher is better (a rate); else lower (a time)
	Ref    []float64
	Ours   []float64
	Note   string
}

// Env is what scenarios share: the number of runs and the built
// programs. Each scenario boots the VMs it needs with Boot.
type Env struct {
	Runs int
	Bin  map[string]string // name -> host path of a guest program
}

// Boot starts a lab cluster; the caller closes it with Done.
func (e *Env) Boot(ctx context.Context, cfg lab.Config) (*lab.Cluster, error) {
	cfg.Logf = func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) }
	return lab.Boot(ctx, cfg)
}

// Done stops a cluster and removes its folder.
func Done(c *lab.Cluster) {
	c.Close()
	c.RemoveDir()
}

// scenario measures one thing on both sides.
type scenario func(ctx context.Context, env *Env) ([]Measure, error)

var scenarios = []scenario{libdlmPairsOneNode}

func main() {
	runs := flag.Int("runs", 5, "runs per side and scenario")
	out := flag.String("out", "BENCHMARKS.md", "file to write the table to")
	flag.Parse()
	if err := run(*runs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(runs int, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	t0 := time.Now()
	bins, err := buildPrograms(ctx)
	if err != nil {
		return err
	}
	env := &Env{Runs: runs, Bin: bins}
	var all []Measure
	for _, s := range scenarios {
		ms, err := s(ctx, env)
		if err != nil {
			return err
		}
		all = append(all, ms...)
	}
	table := render(all)
	fmt.Print(table)
	doc := header(runs, time.Since(t0)) + table + notes(all)
	return os.WriteFile(out, []byte(doc), 0o644)
}

// buildPrograms builds the Go benchmark static and the C one against
// Debian's libdlm-dev.
func buildPrograms(ctx context.Context) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "godlm-bench-")
	if err != nil {
		return nil, err
	}
	bins := map[string]string{"gobench": filepath.Join(dir, "gobench"), "dlmbench": filepath.Join(dir, "dlmbench")}
	gb := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bins["gobench"], "./tests/bench/gobench")
	gb.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build gobench: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "cc", "-O2", "-o", bins["dlmbench"], "tests/bench/cbench/dlmbench.c", "-ldlm_lt").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build dlmbench (needs libdlm-dev; scripts/prereqs.sh installs it): %v\n%s", err, out)
	}
	return bins, nil
}

// libdlmPairsOneNode: EX lock + unlock pairs per second on one node,
// uncontended, through the C libdlm and through our Go binding, in the
// same guest, alternating runs; in a one-vCPU guest and a two-vCPU one.
func libdlmPairsOneNode(ctx context.Context, env *Env) ([]Measure, error) {
	var ms []Measure
	for _, cpus := range []int{1, 2} {
		c, err := env.Boot(ctx, lab.Config{Nodes: 1, CPUs: cpus, LoadClusterModules: true})
		if err != nil {
			return nil, err
		}
		m, err := libdlmPairs(ctx, env, c, cpus)
		Done(c)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func libdlmPairs(ctx context.Context, env *Env, c *lab.Cluster, cpus int) (Measure, error) {
	fail := func(err error) (Measure, error) { return Measure{}, err }
	n := c.Node(1)
	if err := n.StartDLMControld(ctx, c.DLMConf()); err != nil {
		return fail(err)
	}
	for _, b := range []string{"gobench", "dlmbench"} {
		if err := n.CopyIn(ctx, env.Bin[b], "/tmp/"+b); err != nil {
			return fail(err)
		}
	}
	const pairs = 20000
	m := Measure{Name: fmt.Sprintf("libdlm lock+unlock pairs/s, 1 node, uncontended, %d-vCPU guest", cpus), Unit: "pairs/s", Higher: true,
		Note: "C libdlm (libdlm_lt, dlm_ls_lock_wait/dlm_ls_unlock_wait) vs our Go libdlm (Lock/Unlock), " +
			strconv.Itoa(pairs) + " pairs per run, one warm-up run each, runs alternating in one guest; both over our dlm_controld (on one node the daemon is not on the lock path). " +
			"Both make the same four syscalls per pair (two writes, two reads); profiles of the Go side put most of its time inside the write(2) calls"}
	sample := func(prog string) (float64, error) {
		out, err := n.RunOK(ctx, fmt.Sprintf("/tmp/%s bench res %d", prog, pairs))
		if err != nil {
			return 0, err
		}
		for _, f := range strings.Fields(out) {
			if v, ok := strings.CutPrefix(f, "rate="); ok {
				return strconv.ParseFloat(v, 64)
			}
		}
		return 0, fmt.Errorf("%s: no rate in %q", prog, out)
	}
	for i := -1; i < env.Runs; i++ {
		cr, err := sample("dlmbench")
		if err != nil {
			return fail(err)
		}
		g, err := sample("gobench")
		if err != nil {
			return fail(err)
		}
		if i >= 0 { // the first round warms up
			m.Ref, m.Ours = append(m.Ref, cr), append(m.Ours, g)
		}
		fmt.Printf("    %d vCPU run %d: C %.0f, Go %.0f pairs/s\n", cpus, i+1, cr, g)
	}
	return m, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(xs []float64) string {
	return fmt.Sprintf("%.0f / %.0f / %.0f", slices.Min(xs), median(xs), slices.Max(xs))
}

func render(ms []Measure) string {
	var b strings.Builder
	b.WriteString("| measure | reference (median) | ours (median) | ratio ours/ref | runs | reference min/median/max | ours min/median/max |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range ms {
		r, o := median(m.Ref), median(m.Ours)
		better := "higher is better"
		if !m.Higher {
			better = "lower is better"
		}
		fmt.Fprintf(&b, "| %s (%s) | %.0f %s | %.0f %s | %.2f | %d | %s | %s |\n",
			m.Name, better, r, m.Unit, o, m.Unit, o/r, len(m.Ours), spread(m.Ref), spread(m.Ours))
	}
	return b.String()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func header(runs int, took time.Duration) string {
	return fmt.Sprintf(`# Benchmarks

godlm side by side with the reference, measured in the same QEMU VMs (software
emulation, no KVM), on the same kernel (Debian %s), in one run.
Ratios, not absolute numbers, are what carries over to other machines.

- date: %s
- machine: %d cores, %s
- command: `+"`make bench`"+` (`+"`go run ./tests/cmd/bench -runs %d`"+`), %v in all

`, lab.KernelRelease, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), runs, took.Round(time.Second))
}

func notes(ms []Measure) string {
	var b strings.Builder
	b.WriteString("\nHow each row was measured:\n\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "- %s: %s.\n", m.Name, m.Note)
	}
	return b.String()
}
