package tools

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/controld/dlmc/dlmctest"
)

func member(id int32, seq uint32) dlmc.Node {
	return dlmc.Node{NodeID: id, Flags: dlmc.NFMember | dlmc.NFStart, AddedSeq: seq}
}

// vmlabDaemon holds the lockspaces of research/vmlab.md §5c: OCFS2 and
// GFS2 mounted on three nodes. Nodes are out of order on purpose.
func vmlabDaemon() *dlmctest.Daemon {
	three := []dlmc.Node{member(3, 1), member(1, 1), member(2, 1)}
	return &dlmctest.Daemon{Lockspaces: []dlmctest.Lockspace{
		{
			Lockspace: dlmc.Lockspace{
				Name: "5141075516284506A6D4E65A59D83906", GlobalID: 0xbdb551ac,
				Prev: dlmc.Change{MemberCount: 3, JoinedCount: 1, Seq: 2, CombinedSeq: 2},
			},
			Members: three, All: three,
		},
		{
			Lockspace: dlmc.Lockspace{
				Name: "gfs0", GlobalID: 0xd6c2e89a,
				Prev: dlmc.Change{MemberCount: 3, JoinedCount: 1, Seq: 1, CombinedSeq: 1},
			},
			Members: three, All: three,
		},
	}}
}

// recoveringDaemon has one lockspace in the middle of a change: node 3
// failed and awaits fencing, node 4 was refused.
func recoveringDaemon(wait, waitMessages int32) *dlmctest.Daemon {
	return &dlmctest.Daemon{Lockspaces: []dlmctest.Lockspace{{
		Lockspace: dlmc.Lockspace{
			Name: "gfs0", GlobalID: 0xd6c2e89a, Flags: dlmc.LFKernelStopped | dlmc.LFFSRegistered | dlmc.LFNeedPlocks,
			Prev: dlmc.Change{MemberCount: 3, JoinedCount: 1, Seq: 1, CombinedSeq: 1},
			Next: dlmc.Change{MemberCount: 2, RemoveCount: 1, FailedCount: 1, WaitCondition: wait, WaitMessages: waitMessages, Seq: 2, CombinedSeq: 2},
		},
		Members: []dlmc.Node{member(1, 1), member(2, 1), member(3, 1)},
		Next:    []dlmc.Node{member(2, 1), member(1, 1)},
		All: []dlmc.Node{
			member(2, 1), member(1, 1),
			{NodeID: 3, Flags: dlmc.NFNeedFencing, AddedSeq: 1, RemovedSeq: 2, FailReason: 3, FailWalltime: 1699999990, FailMonotime: 562},
			{NodeID: 4, Flags: dlmc.NFDisallowed | dlmc.NFCheckFS, AddedSeq: 2},
		},
	}}}
}

const vmlabLs = `dlm lockspaces
name          5141075516284506A6D4E65A59D83906
id            0xbdb551ac
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 2,2
members       1 2 3 

name          gfs0
id            0xd6c2e89a
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 

`

func TestLsText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		daemon *dlmctest.Daemon
		args   []string
		want   string
	}{
		{"vmlab", vmlabDaemon(), []string{"ls"}, vmlabLs},
		{"no lockspaces", &dlmctest.Daemon{}, []string{"ls"}, ""},
		{"one by name", vmlabDaemon(), []string{"ls", "gfs0"}, `dlm lockspaces
name          gfs0
id            0xd6c2e89a
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 

`},
		{"all nodes", vmlabDaemon(), []string{"ls", "-n", "gfs0"}, `dlm lockspaces
name          gfs0
id            0xd6c2e89a
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 
all nodes
nodeid 1 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 2 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 3 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none

`},
		{"fencing", recoveringDaemon(dlmc.WaitFencing, 0), []string{"ls", "-n"}, `dlm lockspaces
name          gfs0
id            0xd6c2e89a
flags         0x0000001c need_plock,fs_reg,kern_stop
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 
new change    member 2 joined 0 remove 1 failed 1 seq 2,2
new status    wait fencing
new members   1 2 
all nodes
nodeid 1 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 2 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 3 member 0 failed 3 start 0 seq_add 1 seq_rem 2 check fence 562
nodeid 4 member -1 failed 0 start 0 seq_add 2 seq_rem 0 check fs

`},
		{"messages", recoveringDaemon(2, 1), []string{"ls"}, `dlm lockspaces
name          gfs0
id            0xd6c2e89a
flags         0x0000001c need_plock,fs_reg,kern_stop
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 
new change    member 2 joined 0 remove 1 failed 1 seq 2,2
new status    wait messages 2
new members   1 2 

`},
		{"unknown wait", recoveringDaemon(9, 0), []string{"ls"}, `dlm lockspaces
name          gfs0
id            0xd6c2e89a
flags         0x0000001c need_plock,fs_reg,kern_stop
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       1 2 3 
new change    member 2 joined 0 remove 1 failed 1 seq 2,2
new status    wait unknown
new members   1 2 

`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dlmctest.Start(t, tc.daemon), tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLsFlagNames(t *testing.T) {
	got := flagNames(dlmc.LFJoining | dlmc.LFLeaving | dlmc.LFKernelStopped | dlmc.LFFSRegistered | dlmc.LFNeedPlocks | dlmc.LFSavePlocks)
	want := []string{"save_plock", "need_plock", "fs_reg", "kern_stop", "leave", "join"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLsUnknownLockspace(t *testing.T) {
	r := run(t, dlmctest.Start(t, vmlabDaemon()), "ls", "nope")
	if !errors.Is(r.err, dlmc.ErrNoLockspace) || ExitCode(r.err) != 1 {
		t.Fatalf("%v (exit %d), want ErrNoLockspace and exit 1", r.err, ExitCode(r.err))
	}
	if r.err.Error() != `lockspace "nope" not found` || r.stdout != "" {
		t.Errorf("message %q, output %q", r.err, r.stdout)
	}
}

// A lockspace that vanishes between LOCKSPACES and LOCKSPACE_NODES
// shows "error" for its members, as the reference prints, and fails.
func TestLsNodesError(t *testing.T) {
	d := vmlabDaemon()
	d.Hook = func(conn *net.UnixConn, req dlmc.Header, _ []byte) bool {
		if req.Command != dlmc.LockspaceNodes || req.Name != "gfs0" {
			return false
		}
		_ = dlmc.WriteMessage(conn, dlmc.Header{Command: req.Command, Name: req.Name, Data: -int32(syscall.ENOENT)}, nil)
		return true
	}
	r := run(t, dlmctest.Start(t, d), "ls", "-n")
	want := `dlm lockspaces
name          5141075516284506A6D4E65A59D83906
id            0xbdb551ac
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 2,2
members       1 2 3 
all nodes
nodeid 1 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 2 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none
nodeid 3 member 1 failed 0 start 1 seq_add 1 seq_rem 0 check none

name          gfs0
id            0xd6c2e89a
flags         0x00000000 
change        member 3 joined 1 remove 0 failed 0 seq 1,1
members       error
all nodes error

`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if !errors.Is(r.err, dlmc.ErrNoLockspace) || ExitCode(r.err) != 1 {
		t.Errorf("error %v, want ErrNoLockspace, exit 1", r.err)
	}
}

func TestLsJSON(t *testing.T) {
	r := run(t, dlmctest.Start(t, recoveringDaemon(dlmc.WaitFencing, 0)), "ls", "--json", "-n")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := `{
  "lockspaces": [
    {
      "name": "gfs0",
      "id": 3603097754,
      "flags": 28,
      "flag_names": [
        "need_plock",
        "fs_reg",
        "kern_stop"
      ],
      "change": {
        "member": 3,
        "joined": 1,
        "remove": 0,
        "failed": 0,
        "seq": 1,
        "combined_seq": 1
      },
      "new_change": {
        "member": 2,
        "joined": 0,
        "remove": 1,
        "failed": 1,
        "seq": 2,
        "combined_seq": 2,
        "wait": "fencing",
        "members": [
          1,
          2
        ]
      },
      "members": [
        1,
        2,
        3
      ],
      "nodes": [
        {
          "nodeid": 1,
          "member": true,
          "disallowed": false,
          "start": true,
          "fail_reason": 0,
          "seq_add": 1,
          "seq_rem": 0,
          "check": "none",
          "fail_walltime": 0,
          "fail_monotime": 0
        },
        {
          "nodeid": 2,
          "member": true,
          "disallowed": false,
          "start": true,
          "fail_reason": 0,
          "seq_add": 1,
          "seq_rem": 0,
          "check": "none",
          "fail_walltime": 0,
          "fail_monotime": 0
        },
        {
          "nodeid": 3,
          "member": false,
          "disallowed": false,
          "start": false,
          "fail_reason": 3,
          "seq_add": 1,
          "seq_rem": 2,
          "check": "fence",
          "fail_walltime": 1699999990,
          "fail_monotime": 562
        },
        {
          "nodeid": 4,
          "member": false,
          "disallowed": true,
          "start": false,
          "fail_reason": 0,
          "seq_add": 2,
          "seq_rem": 0,
          "check": "fs",
          "fail_walltime": 0,
          "fail_monotime": 0
        }
      ]
    }
  ]
}
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestLsJSONSmall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		daemon *dlmctest.Daemon
		args   []string
		want   string
	}{
		{"empty", &dlmctest.Daemon{}, []string{"ls", "--json"}, "{\n  \"lockspaces\": []\n}\n"},
		{"no nodes", &dlmctest.Daemon{Lockspaces: []dlmctest.Lockspace{{Lockspace: dlmc.Lockspace{Name: "a", GlobalID: 1}}}}, []string{"ls", "--json", "-n"},
			`{
  "lockspaces": [
    {
      "name": "a",
      "id": 1,
      "flags": 0,
      "flag_names": [],
      "change": {
        "member": 0,
        "joined": 0,
        "remove": 0,
        "failed": 0,
        "seq": 0,
        "combined_seq": 0
      },
      "members": [],
      "nodes": []
    }
  ]
}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dlmctest.Start(t, tc.daemon), tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}
