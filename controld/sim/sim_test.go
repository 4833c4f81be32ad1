package sim

import (
	"os"
	"strconv"
	"testing"
)

// TestSimulate runs 1,000 seeds (100 with -short). A failure prints the
// seed; GODLM_SIM_SEED=<n> go test -run TestSimulate ./controld/sim
// replays it alone, with its trace.
func TestSimulate(t *testing.T) {
	if v := os.Getenv("GODLM_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(seed, Options{Trace: os.Stderr}); err != nil {
			t.Fatal(err)
		}
		return
	}
	seeds := 1000
	if testing.Short() {
		seeds = 100
	}
	var total Stats
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		s, err := Run(seed, Options{})
		if err != nil {
			t.Fatalf("%v\n(replay: GODLM_SIM_SEED=%d go test -run TestSimulate ./controld/sim)", err, seed)
		}
		total.Starts += s.Stats.Starts
		total.Joins += s.Stats.Joins
		total.Leaves += s.Stats.Leaves
		total.Crashes += s.Stats.Crashes
		total.Partitions += s.Stats.Partitions
		total.Failed += s.Stats.Failed
		total.Superseded += s.Stats.Superseded
	}
	t.Logf("%d seeds: %+v", seeds, total)
	// The faults must really have happened, or the run proves nothing.
	if total.Starts == 0 || total.Crashes == 0 || total.Partitions == 0 || total.Failed == 0 || total.Leaves == 0 {
		t.Errorf("the schedules exercised too little: %+v", total)
	}
}

// TestReproducible checks that a seed replays exactly.
func TestReproducible(t *testing.T) {
	for _, seed := range []uint64{3, 17} {
		a, errA := Run(seed, Options{})
		b, errB := Run(seed, Options{})
		if (errA == nil) != (errB == nil) || a.trace.String() != b.trace.String() {
			t.Fatalf("seed %d ran differently twice (%v / %v)", seed, errA, errB)
		}
		if a.trace.Len() == 0 {
			t.Fatal("empty trace")
		}
	}
}
