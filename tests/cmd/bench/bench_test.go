package main

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseJoinLatency(t *testing.T) {
	log := `[  467.700000] dlm: other: joining the lockspace group...
[  467.803437] dlm: jl1: joining the lockspace group...
[  467.826330] dlm: jl1: dlm_recover 1
[  467.828119] dlm: jl1: group event done 0
[  467.828256] dlm: jl1: join complete
[  467.927343] dlm: jl1: leaving the lockspace group...
[  467.954088] dlm: jl1: group event done 0
[  470.000000] dlm: jl10: joining the lockspace group...
[  470.500000] dlm: jl10: group event done 0`
	for _, tc := range []struct {
		name, log, ls string
		want          float64
		err           string
	}{
		{name: "join then leave", log: log, ls: "jl1", want: 24.682},
		{name: "a longer name is another lockspace", log: log, ls: "jl10", want: 500},
		{name: "the last join counts", log: log + "\n[  480.000000] dlm: jl1: joining the lockspace group...\n[  480.100000] dlm: jl1: group event done 0", ls: "jl1", want: 100},
		{name: "failed join", log: "[ 1.0] dlm: x: joining the lockspace group...\n[ 2.0] dlm: x: group event done -110", ls: "x", err: "failed"},
		{name: "still waiting", log: "[ 1.0] dlm: x: joining the lockspace group...", ls: "x", err: "no complete join"},
		{name: "absent", log: log, ls: "nope", err: "no complete join"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJoinLatency(tc.log, tc.ls)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || math.Abs(got-tc.want) > 0.001 {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	ms := []*Measure{
		{Name: "rate", Unit: "pairs/s", Higher: true, Ref: []float64{100, 300, 200}, Ours: []float64{150, 50, 100}},
		{Name: "time", Unit: "s", Ref: []float64{4, 2}, Ours: []float64{1, 1, 1}},
		{Name: "size", Unit: "MiB", Ref: []float64{10}, Ours: []float64{20}},
	}
	got := strings.Split(strings.TrimSpace(render(ms)), "\n")[2:]
	want := []string{
		"| rate (pairs/s, higher is better) | 200 pairs/s | 100 pairs/s | 0.50× the rate | 3/3 | 100 / 200 / 300 | 50 / 100 / 150 |",
		"| time (s, lower is better) | 3.00 s | 1.00 s | 3.00× less | 2/3 | 2.00 / 3.00 / 4.00 | 1.00 / 1.00 / 1.00 |",
		"| size (MiB, lower is better) | 10.0 MiB | 20.0 MiB | 2.00× more | 1/1 | 10.0 / 10.0 / 10.0 | 20.0 / 20.0 / 20.0 |",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("render (-want +got):\n%s", d)
	}
}
