package raftcluster

import (
	"errors"
	"testing"

	"github.com/godlm/godlm/controld/cluster"
	"github.com/google/go-cmp/cmp"
)

// TestCutOffNodeStopsBeforeFailed: a node cut off from the majority
// stops being quorate at least the margin before the majority applies
// its failure, whether it was the leader or a follower, in a cluster of
// three or five.
func TestCutOffNodeStopsBeforeFailed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  int
		leader bool
	}{
		{"leader of 3", 3, true},
		{"follower of 3", 3, false},
		{"leader of 5", 5, true},
		{"follower of 5", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for run := range 10 {
				tn := newTestNet(t, tc.nodes, nil)
				tn.form()
				tn.settle()
				cut := tn.leaders()[0]
				if !tc.leader {
					cut = cut%tc.nodes + 1
				}
				n := tn.nodes[cut]
				inc := n.core.Status().Self.Incarnation
				var rest []int
				for _, id := range tn.ids {
					if id != cut {
						rest = append(rest, id)
					}
				}
				tn.partition([]int{cut}, rest)
				stopped, failed := -1, -1
				for tick := 0; tick < 10*n.core.cfg.FailTicks && failed < 0; tick++ {
					tn.tick()
					if stopped < 0 && !n.quorate {
						stopped = tick
					}
					for _, id := range rest {
						if tn.nodes[id].sawFailed(cut, inc) && failed < 0 {
							failed = tick
						}
					}
				}
				if stopped < 0 || failed < 0 {
					t.Fatalf("run %d: stopped at %d, failed at %d", run, stopped, failed)
				}
				if gap := failed - stopped; gap < n.core.Margin() {
					t.Errorf("run %d: node %d stopped %d ticks before its failure was applied, want at least %d", run, cut, gap, n.core.Margin())
				}
			}
		})
	}
}

// TestLeaseConfig checks the lease's default and its bounds.
func TestLeaseConfig(t *testing.T) {
	for _, tc := range []struct {
		name          string
		fail, lease   int
		heartbeat     int
		wantLease     int
		wantErr       bool
		wantMargin    int
		electionTicks int
	}{
		{name: "defaults", wantLease: 5, wantMargin: 5},
		{name: "half the fail ticks", fail: 20, wantLease: 10, wantMargin: 10},
		{name: "explicit", fail: 20, lease: 6, wantLease: 6, wantMargin: 14},
		{name: "lease not below fail", fail: 10, lease: 10, wantErr: true},
		{name: "lease too short for heartbeats", fail: 20, lease: 5, heartbeat: 2, electionTicks: 6, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Self: cluster.Member{ID: 1, Incarnation: 1}, Voters: []int{1, 2, 3}, SM: &testSM{}, FailTicks: tc.fail, LeaseTicks: tc.lease, HeartbeatTicks: tc.heartbeat, ElectionTicks: tc.electionTicks}
			c, err := NewCore(cfg)
			if tc.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("NewCore with lease %d, fail %d: %v, want ErrConfig", tc.lease, tc.fail, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([2]int{tc.wantLease, tc.wantMargin}, [2]int{c.cfg.LeaseTicks, c.Margin()}); diff != "" {
				t.Errorf("lease and margin (-want +got):\n%s", diff)
			}
		})
	}
}
