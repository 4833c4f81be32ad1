package dlmc

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var sampleChange = Change{
	MemberCount: 3, JoinedCount: 1, RemoveCount: 2, FailedCount: -1,
	WaitCondition: WaitFencing, WaitMessages: 1, Seq: 0xAABBCCDD, CombinedSeq: 7,
}

func TestChangeGolden(t *testing.T) {
	want := golden(make([]byte, 32)).
		u32(0, 3).u32(4, 1).u32(8, 2).u32(12, 0xFFFFFFFF).
		u32(16, 3).u32(20, 1).u32(24, 0xAABBCCDD).u32(28, 7)
	got := AppendChange(nil, sampleChange)
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("AppendChange (-want +got):\n%s", diff)
	}
	back, err := ParseChange(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleChange, back); diff != "" {
		t.Errorf("ParseChange (-want +got):\n%s", diff)
	}
}

func TestLockspaceGolden(t *testing.T) {
	ls := Lockspace{
		Prev:     Change{MemberCount: 3, JoinedCount: 1, Seq: 2, CombinedSeq: 2},
		Next:     sampleChange,
		Flags:    LFJoining | LFSavePlocks,
		GlobalID: 0xbdb551ac,
		Name:     "5141075516284506A6D4E65A59D83906",
	}
	want := golden(make([]byte, 140)).
		u32(0, 3).u32(4, 1).u32(24, 2).u32(28, 2). // cg_prev
		u32(32, 3).u32(36, 1).u32(40, 2).u32(44, 0xFFFFFFFF).
		u32(48, 3).u32(52, 1).u32(56, 0xAABBCCDD).u32(60, 7). // cg_next
		u32(64, 0x21).                                        // flags
		u32(68, 0xbdb551ac).                                  // global_id
		str(72, "5141075516284506A6D4E65A59D83906")
	got := AppendLockspace(nil, ls)
	if len(got) != LockspaceSize {
		t.Fatalf("size %d, want %d", len(got), LockspaceSize)
	}
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("AppendLockspace (-want +got):\n%s", diff)
	}
	back, err := ParseLockspace(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ls, back); diff != "" {
		t.Errorf("ParseLockspace (-want +got):\n%s", diff)
	}
}

func TestLockspaceName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("b", 65), strings.Repeat("b", 64)},
	} {
		b := AppendLockspace(nil, Lockspace{Name: tc.in})
		if b[72+64] != 0 {
			t.Errorf("name %q: byte 64 of name[65] is %#x, want NUL", tc.in, b[72+64])
		}
		ls, err := ParseLockspace(b)
		if err != nil {
			t.Fatal(err)
		}
		if ls.Name != tc.want {
			t.Errorf("name %q: got %q, want %q", tc.in, ls.Name, tc.want)
		}
	}
}

func TestNodeGolden(t *testing.T) {
	n := Node{
		NodeID: 2, Flags: NFMember | NFNeedFencing, AddedSeq: 5, RemovedSeq: 6,
		FailReason: 3, FailWalltime: 1700000000, FailMonotime: 0x0102030405060708,
	}
	want := golden(make([]byte, 40)).
		u32(0, 2).u32(4, 9).u32(8, 5).u32(12, 6).u32(16, 3).
		u64(24, 1700000000).u64(32, 0x0102030405060708)
	got := AppendNode(nil, n)
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("AppendNode (-want +got):\n%s", diff)
	}
	back, err := ParseNode(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(n, back); diff != "" {
		t.Errorf("ParseNode (-want +got):\n%s", diff)
	}
}

func TestStateGolden(t *testing.T) {
	s := State{Type: StateDaemonNode, Flags: 1, NodeID: -3, Data32: 4, Data64: 5, Str: "member=1 ", Bin: []byte{0xEE, 0xFF}}
	want := append(golden(make([]byte, 28)).
		u32(0, 2).u32(4, 1).u32(8, 0xFFFFFFFD).u32(12, 4).u32(16, 5).
		u32(20, 10). // str_len counts the NUL
		u32(24, 2),
		"member=1 \x00\xEE\xFF"...)
	got := AppendState(nil, s)
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("AppendState (-want +got):\n%s", diff)
	}
	back, err := ParseStates(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]State{s}, back); diff != "" {
		t.Errorf("ParseStates (-want +got):\n%s", diff)
	}
}

func TestStatesRoundTrip(t *testing.T) {
	in := []State{
		{Type: StateDaemon, NodeID: 1, Str: "member_count=3 quorate=1 "},
		{Type: StateDaemonNode, NodeID: 1, Str: "member=1 "},
		{Type: StateDaemonNode, NodeID: 2},
		{Type: StateStartupNode, NodeID: 3, Bin: []byte{1, 2, 3}},
	}
	var b []byte
	for _, s := range in {
		b = AppendState(b, s)
	}
	got, err := ParseStates(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestAppendStateLimits(t *testing.T) {
	long := State{Str: strings.Repeat("k", 5000) + "\x00tail", Bin: make([]byte, 5000)}
	got, err := ParseStates(AppendState(nil, long))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Str) != MaxStateStr-1 || len(got[0].Bin) != MaxStateBin {
		t.Errorf("str %d bytes, bin %d bytes; want %d and %d", len(got[0].Str), len(got[0].Bin), MaxStateStr-1, MaxStateBin)
	}
	cut, _ := ParseStates(AppendState(nil, State{Str: "a=1\x00b=2"}))
	if cut[0].Str != "a=1" {
		t.Errorf("Str cut at NUL: %q", cut[0].Str)
	}
}

func TestParseStatesErrors(t *testing.T) {
	ok := AppendState(nil, State{Type: 1, Str: "x=1 "})
	big := golden(make([]byte, 28)).u32(20, MaxStateStr+1)
	bigBin := golden(make([]byte, 28)).u32(24, MaxStateBin+1)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short record", ok[:20], ErrTruncated},
		{"short text", ok[:len(ok)-1], ErrTruncated},
		{"second short", append(append([]byte{}, ok...), 1), ErrTruncated},
		{"str too long", big, ErrTooLarge},
		{"bin too long", bigBin, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseStates(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("ParseStates: %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := ParseStates(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseStates(nil) = %v, %v", got, err)
	}
}

func TestStateFields(t *testing.T) {
	s := State{Str: "member=1 killed=0 left_reason=leave junk member=2 fence_pid=-1 "}
	want := map[string]string{"member": "1", "killed": "0", "left_reason": "leave", "fence_pid": "-1"}
	if diff := cmp.Diff(want, s.Fields()); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
}

func TestParseListsErrors(t *testing.T) {
	if _, err := ParseLockspaces(make([]byte, LockspaceSize+1)); !errors.Is(err, ErrTruncated) {
		t.Errorf("ParseLockspaces: %v", err)
	}
	if _, err := ParseNodes(make([]byte, NodeSize*2-1)); !errors.Is(err, ErrTruncated) {
		t.Errorf("ParseNodes: %v", err)
	}
	for _, f := range []func() error{
		func() error { _, err := ParseChange(make([]byte, 31)); return err },
		func() error { _, err := ParseLockspace(make([]byte, 139)); return err },
		func() error { _, err := ParseNode(make([]byte, 39)); return err },
	} {
		if err := f(); !errors.Is(err, ErrTruncated) {
			t.Errorf("short record: %v", err)
		}
	}
	lss, err := ParseLockspaces(append(AppendLockspace(nil, Lockspace{Name: "a"}), AppendLockspace(nil, Lockspace{Name: "b"})...))
	if err != nil || len(lss) != 2 || lss[1].Name != "b" {
		t.Errorf("ParseLockspaces = %v, %v", lss, err)
	}
}
