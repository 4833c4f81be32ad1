// Command bench is what `make bench` runs: godlm side by side with the
// reference (Debian's corosync + dlm_controld, and the C libdlm), in the
// same VMs, on the same kernel, in one run. It prints one table
// (measure, reference, ours, ratio, runs, min/median/max) and writes it
// to BENCHMARKS.md with the date, the machine and the command.
//
// There are two kinds of scenario. A cluster step (clusterSteps, in
// cluster.go) runs inside every booted 3-node cluster, once per stack
// and run, and records samples for the stack it runs on. A scenario
// (scenarios) boots what it needs and measures both sides itself, as
// the library comparisons do. Adding either is one function.
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
	"strings"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// Measure is one row of the table: samples of the reference and of ours.
type Measure struct {
	Name   string
	Unit   string
	Higher bool // higher is better (a rate); else lower (a time, a size)
	Note   string
	Ref    []float64
	Ours   []float64
}

// Env is what scenarios share: the number of runs, the built programs
// and the table being filled.
type Env struct {
	Runs int
	Bin  map[string]string // name -> host path of a guest program

	measures []*Measure // in the order first recorded
}

// measure returns the row named m.Name, adding m as a new row the first
// time.
func (e *Env) measure(m Measure) *Measure {
	for _, x := range e.measures {
		if x.Name == m.Name {
			return x
		}
	}
	e.measures = append(e.measures, &m)
	return &m
}

// record adds one sample to the row m, on the reference side or ours.
func (e *Env) record(m Measure, ref bool, v float64) {
	row := e.measure(m)
	if ref {
		row.Ref = append(row.Ref, v)
	} else {
		row.Ours = append(row.Ours, v)
	}
	side := "ours"
	if ref {
		side = "reference"
	}
	fmt.Printf("    %s: %s %s\n", m.Name, side, format(v, m.Unit))
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

// scenario measures both sides itself.
type scenario func(ctx context.Context, env *Env) error

var scenarios = []scenario{syscallBaselineHost, libdlmPairsOneNode, clusterRuns}

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
	if runs < 1 {
		return fmt.Errorf("-runs %d: at least 1", runs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	t0 := time.Now()
	bins, err := buildPrograms(ctx)
	if err != nil {
		return err
	}
	env := &Env{Runs: runs, Bin: bins}
	for _, s := range scenarios {
		if err := s(ctx, env); err != nil {
			return err
		}
	}
	for _, m := range env.measures {
		if len(m.Ref) == 0 || len(m.Ours) == 0 {
			return fmt.Errorf("%s: %d reference and %d samples of ours", m.Name, len(m.Ref), len(m.Ours))
		}
	}
	table := render(env.measures)
	fmt.Print(table)
	doc := header(runs, time.Since(t0)) + table + notes(env.measures)
	return os.WriteFile(out, []byte(doc), 0o644)
}

// buildPrograms builds the Go benchmarks static, the C one against
// Debian's libdlm-dev, with libdlm_lt and with the threaded libdlm, and
// the C syscall baseline.
func buildPrograms(ctx context.Context) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "godlm-bench-")
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, b := range []string{"gobench", "dlmbench", "dlmbench-mt", "pipebench", "pipebench-c"} {
		bins[b] = filepath.Join(dir, b)
	}
	for _, prog := range []string{"gobench", "pipebench"} {
		gb := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bins[prog], "./tests/bench/"+prog)
		gb.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := gb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", prog, err, out)
		}
	}
	for _, c := range [][]string{
		{"-o", bins["dlmbench"], "tests/bench/cbench/dlmbench.c", "-ldlm_lt"},
		{"-DTHREADED", "-pthread", "-o", bins["dlmbench-mt"], "tests/bench/cbench/dlmbench.c", "-ldlm"},
		{"-o", bins["pipebench-c"], "tests/bench/cbench/pipebench.c"},
	} {
		args := append([]string{"-O2", "-Wall"}, c...)
		if out, err := exec.CommandContext(ctx, "cc", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s (needs libdlm-dev; scripts/prereqs.sh installs it): %v\n%s", c[len(c)-1], err, out)
		}
	}
	return bins, nil
}

// copyPrograms puts the benchmark programs in /tmp of every node of c.
func copyPrograms(ctx context.Context, env *Env, c *lab.Cluster) error {
	return c.Each(func(n *lab.Node) error {
		for name, path := range env.Bin {
			if err := n.CopyIn(ctx, path, "/tmp/"+name); err != nil {
				return err
			}
		}
		return nil
	})
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// decimals is how many decimals numbers of the size of v get.
func decimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

// format prints v in unit with sensible precision.
func format(v float64, unit string) string {
	return fmt.Sprintf("%.*f %s", decimals(v), v, unit)
}

// spread prints min / median / max, all with the median's precision.
func spread(xs []float64) string {
	m := median(xs)
	d := decimals(m)
	return fmt.Sprintf("%.*f / %.*f / %.*f", d, slices.Min(xs), d, m, d, slices.Max(xs))
}

// render prints the table. The ratio is ours/reference for rates and
// reference/ours for times and sizes, so that above 1 always means
// godlm does better.
func render(ms []*Measure) string {
	var b strings.Builder
	b.WriteString("| measure | reference (median) | ours (median) | ours vs reference | runs (ref/ours) | reference min / median / max | ours min / median / max |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range ms {
		r, o := median(m.Ref), median(m.Ours)
		better, ratio := "higher is better", o/r
		if !m.Higher {
			better, ratio = "lower is better", r/o
		}
		fmt.Fprintf(&b, "| %s (%s, %s) | %s | %s | %s | %d/%d | %s | %s |\n",
			m.Name, m.Unit, better, format(r, m.Unit), format(o, m.Unit), verdict(ratio, m.Higher),
			len(m.Ref), len(m.Ours), spread(m.Ref), spread(m.Ours))
	}
	return b.String()
}

// verdict words a ratio (above 1: godlm better) for the table.
func verdict(ratio float64, higher bool) string {
	if higher {
		return fmt.Sprintf("%.2f× the rate", ratio)
	}
	if ratio >= 1 {
		return fmt.Sprintf("%.2f× less", ratio)
	}
	return fmt.Sprintf("%.2f× more", 1/ratio)
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

godlm side by side with the reference stack (Debian bookworm's corosync
3.1.7 + dlm_controld 4.2.0 and its C libdlm), measured in the same QEMU
VMs (software emulation, no KVM), on the same kernel (Debian %s), in
one run. Ratios, not absolute numbers, are what carries over to other
machines; "ours vs reference" above 1 means godlm does better.

- date: %s
- machine: %d cores, %s
- command: `+"`make bench`"+` (`+"`go run ./tests/cmd/bench -runs %d`"+`), %v in all

`, lab.KernelRelease, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), runs, took.Round(time.Second))
}

func notes(ms []*Measure) string {
	var b strings.Builder
	b.WriteString("\nHow each row was measured:\n\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "- %s: %s.\n", m.Name, m.Note)
	}
	return b.String()
}
