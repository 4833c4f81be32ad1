package tools

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"
)

const daemonStr = "member_count=3 joined_count=3 remove_count=0 daemon_ringid=13 cluster_ringid=13 quorate=1 fence_pid=0 fence_in_progress_unknown=0 zombie_count=0 monotime=569 "

// nodeStr is a daemon node's text as the reference daemon writes it.
func nodeStr(member, needFencing, delay int, extra string) string {
	return "member=" + itoa(member) + " killed=0 left_reason=" + map[bool]string{true: "none", false: "nodedown"}[member == 1] +
		" need_fencing=" + itoa(needFencing) + " delay_fencing=" + itoa(delay) +
		" fence_pid=0 fence_pid_wait=0 fence_result_wait=0 fence_actor_last=0 fence_actor_done=0" +
		" add_time=24 rem_time=0 fail_walltime=0 fail_monotime=0 fence_walltime=0 fence_monotime=0 " + extra
}

func itoa(i int) string { return string(rune('0' + i)) }

func vmlabStatus() []dlmc.State {
	return []dlmc.State{
		{Type: dlmc.StateDaemon, NodeID: 1, Str: daemonStr},
		{Type: dlmc.StateDaemonNode, NodeID: 3, Str: nodeStr(1, 0, 0, "")},
		{Type: dlmc.StateDaemonNode, NodeID: 1, Str: nodeStr(1, 0, 0, "")},
		{Type: dlmc.StateDaemonNode, NodeID: 2, Str: nodeStr(1, 0, 0, "")},
	}
}

func TestStatusText(t *testing.T) {
	fencing := []dlmc.State{
		{Type: dlmc.StateDaemon, NodeID: 2, Str: "quorate=1 cluster_ringid=20 daemon_ringid=19 fence_pid=812 fence_in_progress_unknown=1 monotime=700 "},
		{Type: dlmc.StateDaemonNode, NodeID: 3, Str: "member=0 killed=1 left_reason=nodedown need_fencing=1 delay_fencing=0 fence_pid=812 fence_result_wait=1 fence_actor_last=2 fence_actor_done=0 add_time=24 rem_time=650 fail_walltime=1699999900 fail_monotime=650 fence_walltime=0 fence_monotime=0 "},
		{Type: dlmc.StateDaemonNode, NodeID: 2, Str: "member=1 need_fencing=0 add_time=24 "},
		{Type: dlmc.StateDaemonNode, NodeID: 1, Str: "member=0 killed=0 left_reason=procdown need_fencing=1 delay_fencing=1 fence_actor_last=2 add_time=24 rem_time=640 fail_walltime=1699999890 fail_monotime=640 fence_walltime=1699000000 fence_monotime=10 fence_actor_done=2 "},
		{Type: dlmc.StateStartupNode, NodeID: 4, Str: "member=0 "},
		{Type: dlmc.StateStartupNode, NodeID: 2, Str: "member=0 "},
	}
	for _, tc := range []struct {
		name   string
		states []dlmc.State
		args   []string
		want   string
	}{
		{"vmlab", vmlabStatus(), []string{"status"}, `cluster nodeid 1 quorate 1 ring seq 13 13
daemon now 569 fence_pid 0 
node 1 M add 24 rem 0 fail 0 fence 0 at 0 0
node 2 M add 24 rem 0 fail 0 fence 0 at 0 0
node 3 M add 24 rem 0 fail 0 fence 0 at 0 0
`},
		{"fencing", fencing, []string{"status"}, `cluster nodeid 2 quorate 1 ring seq 20 19
daemon now 700 fence_pid 812 fence_init
startup node 4
startup node 2 M add 24 rem 0 fail 0 fence 0 at 0 0
fence 1 procdown delay actor 2 fail 1699999890 fence 1699000000 now 1700000000
fence 3 nodedown pid 812 actor 2 fail 1699999900 fence 0 now 1700000000 result_wait killed
node 1 X add 24 rem 640 fail 640 fence 10 at 2 1699000000
node 2 M add 24 rem 0 fail 0 fence 0 at 0 0
node 3 X add 24 rem 650 fail 650 fence 0 at 0 0
`},
		{"godlm", []dlmc.State{
			{Type: dlmc.StateDaemon, NodeID: 2, Str: daemonStr + "cluster_protocol=raft leader=1 term=4 incarnation=77 expected_votes=3 timeout_ms=1000 "},
			{Type: dlmc.StateDaemonNode, NodeID: 1, Str: nodeStr(1, 0, 0, "incarnation=5 connected=1 last_heard_ms=80 ")},
			{Type: dlmc.StateDaemonNode, NodeID: 2, Str: nodeStr(1, 0, 0, "incarnation=77 ")},
			{Type: dlmc.StateDaemonNode, NodeID: 3, Str: "member=0 incarnation=0 connected=0 last_heard_ms=-1 "},
			{Type: dlmc.StateLockspace, Str: "name=gfs0 state=running change=3 started=3 members=1,2 next=- waiting=- "},
			{Type: dlmc.StateLockspace, Str: "name=x state=changing change=5 started=4 members=1,2 next=1,2,3 waiting=3 "},
		}, []string{"status"}, `cluster nodeid 2 quorate 1 ring seq 13 13
daemon now 569 fence_pid 0 
cluster raft leader 1 term 4 members 3 of 3 incarnation 77 timeout 1000 ms
node 1 M add 24 rem 0 fail 0 fence 0 at 0 0
node 2 M add 24 rem 0 fail 0 fence 0 at 0 0
node 3 X add 0 rem 0 fail 0 fence 0 at 0 0
lockspace gfs0 running change 3 members 1,2
lockspace x changing change 5 members 1,2 next 1,2,3 waiting 3
`},
		{"godlm fencing", []dlmc.State{
			{Type: dlmc.StateDaemon, NodeID: 1, Str: daemonStr},
			{Type: dlmc.StateDaemonNode, NodeID: 3, Str: "member=0 left_reason=nodedown need_fencing=1 fence_actor_last=1 fail_walltime=1699999988 " +
				`fence_attempts=2 fence_rounds=1 fence_error="agent\x20fence_godlm\x20failed:\x20\"Failed:\x20no\x20answer\"" `},
			{Type: dlmc.StateLockspace, Str: "name=gfs0 state=changing change=6 started=5 members=1,2,3 next=1,2 waiting=- wait_fencing=3 "},
		}, []string{"status"}, `cluster nodeid 1 quorate 1 ring seq 13 13
daemon now 569 fence_pid 0 
fence 3 nodedown pid 0 actor 1 fail 1699999988 fence 0 now 1700000000
fencing node 3 for 12s: actor 1, 2 attempts, last error: agent fence_godlm failed: "Failed: no answer"
node 3 X add 0 rem 0 fail 0 fence 0 at 0 0
lockspace gfs0 changing change 6 members 1,2,3 next 1,2 waiting - fencing 3
`},
		{"verbose", []dlmc.State{
			{Type: dlmc.StateDaemon, NodeID: 1, Str: "quorate=1 monotime=5 "},
			{Type: dlmc.StateStartupNode, NodeID: 7},
			{Type: dlmc.StateDaemonNode, NodeID: 2, Str: "member=1 add_time=3"},
			{Type: dlmc.StateDaemonNode, NodeID: 1},
		}, []string{"status", "-v"}, `our_nodeid 1
    quorate=1
    monotime=5
    
nodeid 2
    member=1
    add_time=3
nodeid 1
    
startup node 7
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dlmctest.Start(t, &dlmctest.Daemon{Status: tc.states}), tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	states := []dlmc.State{
		{Type: dlmc.StateDaemon, NodeID: 1, Str: "quorate=1 monotime=569 "},
		{Type: dlmc.StateDaemonNode, NodeID: 2, Str: "member=1 left_reason=none fence_pid=-1 "},
		{Type: dlmc.StateDaemonNode, NodeID: 1, Str: "member=1 "},
		{Type: dlmc.StateStartupNode, NodeID: 3, Str: "member=0 "},
		{Type: dlmc.StateLockspace, Str: "name=gfs0 state=changing change=6 started=5 members=1,2 next=1,2,3 waiting=3 "},
	}
	r := run(t, dlmctest.Start(t, &dlmctest.Daemon{Status: states}), "status", "--json")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := `{
  "daemon": {
    "nodeid": 1,
    "state": {
      "monotime": 569,
      "quorate": 1
    }
  },
  "nodes": [
    {
      "nodeid": 1,
      "state": {
        "member": 1
      }
    },
    {
      "nodeid": 2,
      "state": {
        "fence_pid": -1,
        "left_reason": "none",
        "member": 1
      }
    }
  ],
  "startup_nodes": [
    {
      "nodeid": 3,
      "state": {
        "member": 0
      }
    }
  ],
  "lockspaces": [
    {
      "change": 6,
      "members": [
        1,
        2
      ],
      "name": "gfs0",
      "next": [
        1,
        2,
        3
      ],
      "started": 5,
      "state": "changing",
      "waiting": [
        3
      ]
    }
  ]
}
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestCuint(t *testing.T) {
	for in, want := range map[string]uint32{
		"":                     0,
		"0":                    0,
		"42":                   42,
		"42abc":                42,
		"-1":                   0xFFFFFFFF,
		"+7":                   7,
		"0x1F":                 31,
		"0x":                   0,
		"010":                  8,
		"09":                   0,
		"4294967296":           0,
		"99999999999999999999": 0xFFFFFFFF,
		"none":                 0,
	} {
		if got := cuint(in); got != want {
			t.Errorf("cuint(%q) = %d, want %d", in, got, want)
		}
	}
}
