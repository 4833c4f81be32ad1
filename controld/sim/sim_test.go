package sim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld/lockspace"
)

// TestSimulate runs 1,000 seeds (100 with -short). A failure prints the
// seed; GODLM_SIM_SEED=<n> go test -run TestSimulate ./controld/sim
// replays it alone, with its trace. GODLM_SIM_SEEDS=<count> and
// GODLM_SIM_FIRST=<seed> run another range (make soak); every failing
// seed of the range is reported.
func TestSimulate(t *testing.T) {
	if v := os.Getenv("GODLM_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GODLM_SIM_SEED=%q: %v", v, err)
		}
		if _, err := Run(seed, Options{Trace: os.Stderr}); err != nil {
			t.Fatal(err)
		}
		return
	}
	seeds, first := uint64(1000), uint64(1)
	if testing.Short() {
		seeds = 100
	}
	for name, p := range map[string]*uint64{"GODLM_SIM_SEEDS": &seeds, "GODLM_SIM_FIRST": &first} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				t.Fatalf("%s=%q: want a positive number", name, v)
			}
			*p = n
		}
	}
	var total Stats
	var failed []uint64
	for seed := first; seed < first+seeds; seed++ {
		s, err := Run(seed, Options{})
		if err != nil {
			failed = append(failed, seed)
			if len(failed) == 1 {
				// The first failure with its trace; the others in one line.
				t.Errorf("%v\n(replay: GODLM_SIM_SEED=%d go test -run TestSimulate ./controld/sim)", err, seed)
			} else {
				t.Errorf("%s", headline(err))
			}
			continue
		}
		total.Starts += s.Stats.Starts
		total.Joins += s.Stats.Joins
		total.Leaves += s.Stats.Leaves
		total.Crashes += s.Stats.Crashes
		total.Partitions += s.Stats.Partitions
		total.Failed += s.Stats.Failed
		total.Superseded += s.Stats.Superseded
		total.Fenced += s.Stats.Fenced
		total.FenceFailures += s.Stats.FenceFailures
	}
	t.Logf("seeds %d to %d: %d passed, %d failed %v; %+v", first, first+seeds-1, seeds-uint64(len(failed)), len(failed), failed, total)
	// The faults must really have happened, or the run proves nothing.
	if total.Starts == 0 || total.Crashes == 0 || total.Partitions == 0 || total.Failed == 0 || total.Leaves == 0 ||
		total.Fenced == 0 || total.FenceFailures == 0 {
		t.Errorf("the schedules exercised too little: %+v", total)
	}
}

// headline is an error of Run without its trace.
func headline(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\ntrace:")
	return msg
}

// TestFailedSeeds replays seeds that failed before the fixes they led
// to, beyond the range TestSimulate runs.
func TestFailedSeeds(t *testing.T) {
	for _, c := range []struct {
		seed uint64
		why  string
	}{
		// A node that learned it was declared failed got a join
		// request before the cluster admitted its next incarnation.
		// The join went out stamped with the expelled incarnation,
		// was ordered under the new one and ignored, and the
		// lockspace's creator was failed a minute later ("the join
		// request was not ordered").
		{107166, "join asked between expulsion and readmission"},
		{112798, "join asked between expulsion and readmission"},
		// The leader proposed a silent node's failure; the node came
		// back before it was committed and, granted a lease, reported
		// quorum until its own acknowledgement committed its failure.
		{4903, "quorum while its failure was proposed"},
		{5744, "quorum while its failure was proposed"},
		{105072, "quorum while its failure was proposed"},
		{109743, "quorum while its failure was proposed"},
		{118329, "quorum while its failure was proposed"},
	} {
		t.Run(fmt.Sprint(c.seed), func(t *testing.T) {
			if _, err := Run(c.seed, Options{}); err != nil {
				t.Fatalf("%s: %v", c.why, err)
			}
		})
	}
}

// TestFinishWaitsForLastEntry: an entry ordered as a run ends is
// applied by the leader before the followers hear it is committed. The
// end check must compare the nodes' states once all applied it, not
// report the delay as a difference.
func TestFinishWaitsForLastEntry(t *testing.T) {
	s, err := Run(3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A leave of a lockspace nobody has: ordered, it moves every
	// node's position and changes nothing else.
	n := s.nodes[0]
	n.sendQ = append(n.sendQ, lockspace.Msg{Kind: lockspace.KindLeave, Lockspace: "unused", Incarnation: n.core.Status().Self.Incarnation})
	before := n.st.Seq
	s.send(n)
	apart := func() bool {
		for _, o := range s.nodes {
			if o.st.Seq != s.nodes[0].st.Seq {
				return true
			}
		}
		return false
	}
	for i := 0; !apart(); i++ {
		if i == 50 {
			t.Fatal("the nodes never applied the entry at different ticks; the test shows nothing")
		}
		s.step()
		if s.err != nil {
			t.Fatal(s.err)
		}
		s.tick++
	}
	if err := s.finish(); err != nil {
		t.Fatal(headline(err))
	}
	for _, o := range s.nodes {
		if o.st.Seq <= before {
			t.Errorf("node %d at position %d, want past %d", o.id, o.st.Seq, before)
		}
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

// TestFenceGateCanFail runs seeds with the lockspaces unlinked from the
// fence state: recovery then does not wait for fencing, and the
// fencing invariant must catch it, or it checks nothing.
func TestFenceGateCanFail(t *testing.T) {
	caught := 0
	for seed := uint64(1); seed <= 100 && caught == 0; seed++ {
		if _, err := Run(seed, Options{NoFenceGate: true}); err != nil {
			if !strings.Contains(headline(err), "was fenced") {
				t.Fatalf("seed %d failed otherwise: %s", seed, headline(err))
			}
			caught++
		}
	}
	if caught == 0 {
		t.Error("without the fence gate, no seed of 100 started a lockspace before a failed member was fenced")
	}
}
