package configfs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSetMembers(t *testing.T) {
	nodes := nodesDir("ls")
	tests := []struct {
		name      string
		before    []Member // existing members, made with SetMembers
		members   []Member
		renew     []int
		wantOps   []op
		wantFiles map[string]string
	}{
		{
			name:    "new lockspace",
			members: []Member{{2, 1}, {1, 1}},
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
				{"mkdir", nodes + "/1", ""},
				{"write", nodes + "/1/nodeid", "1"},
				{"write", nodes + "/1/weight", "1"},
				{"mkdir", nodes + "/2", ""},
				{"write", nodes + "/2/nodeid", "2"},
				{"write", nodes + "/2/weight", "1"},
			},
			wantFiles: map[string]string{
				"nodes/":   "",
				"nodes/1/": "", "nodes/1/nodeid": "1", "nodes/1/weight": "1",
				"nodes/2/": "", "nodes/2/nodeid": "2", "nodes/2/weight": "1",
			},
		},
		{
			name:    "unchanged",
			before:  []Member{{1, 1}, {2, 0}},
			members: []Member{{1, 1}, {2, 0}},
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
			},
			wantFiles: map[string]string{
				"nodes/":   "",
				"nodes/1/": "", "nodes/1/nodeid": "1", "nodes/1/weight": "1",
				"nodes/2/": "", "nodes/2/nodeid": "2", "nodes/2/weight": "0",
			},
		},
		{
			name:    "weight change is not applied",
			before:  []Member{{1, 1}},
			members: []Member{{1, 5}},
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
			},
			wantFiles: map[string]string{
				"nodes/":   "",
				"nodes/1/": "", "nodes/1/nodeid": "1", "nodes/1/weight": "1",
			},
		},
		{
			name:    "node left, node joined, node renewed",
			before:  []Member{{1, 1}, {2, 1}, {3, 1}},
			members: []Member{{1, 1}, {3, 2}, {4, 1}},
			renew:   []int{3, 9},
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
				{"rmdir", nodes + "/2", ""},
				{"rmdir", nodes + "/3", ""},
				{"mkdir", nodes + "/3", ""},
				{"write", nodes + "/3/nodeid", "3"},
				{"write", nodes + "/3/weight", "2"},
				{"mkdir", nodes + "/4", ""},
				{"write", nodes + "/4/nodeid", "4"},
				{"write", nodes + "/4/weight", "1"},
			},
			wantFiles: map[string]string{
				"nodes/":   "",
				"nodes/1/": "", "nodes/1/nodeid": "1", "nodes/1/weight": "1",
				"nodes/3/": "", "nodes/3/nodeid": "3", "nodes/3/weight": "2",
				"nodes/4/": "", "nodes/4/nodeid": "4", "nodes/4/weight": "1",
			},
		},
		{
			name:    "renewed node that also left",
			before:  []Member{{1, 1}, {2, 1}},
			members: []Member{{1, 1}},
			renew:   []int{2},
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
				{"rmdir", nodes + "/2", ""},
			},
			wantFiles: map[string]string{
				"nodes/":   "",
				"nodes/1/": "", "nodes/1/nodeid": "1", "nodes/1/weight": "1",
			},
		},
		{
			name:    "everyone left",
			before:  []Member{{1, 1}, {2, 1}},
			members: nil,
			wantOps: []op{
				{"mkdir", spaceDir("ls"), ""},
				{"mkdir", nodes, ""},
				{"rmdir", nodes + "/1", ""},
				{"rmdir", nodes + "/2", ""},
			},
			wantFiles: map[string]string{"nodes/": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			if tt.before != nil {
				must(t, r.SetMembers("ls", tt.before, nil))
			}
			r.ops = nil
			if err := r.SetMembers("ls", tt.members, tt.renew); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantOps, r.ops); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFiles, tree(t, r.Kernel, spaceDir("ls"))); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetMembersInvalid(t *testing.T) {
	tests := []struct {
		name    string
		ls      string
		members []Member
	}{
		{"bad name", "a/b", []Member{{1, 1}}},
		{"empty name", "", []Member{{1, 1}}},
		{"zero node", "ls", []Member{{0, 1}}},
		{"duplicate node", "ls", []Member{{1, 1}, {1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			checkErr(t, r.SetMembers(tt.ls, tt.members, nil), ErrInvalid)
			if len(r.ops) != 0 {
				t.Errorf("ops on invalid input: %v", r.ops)
			}
		})
	}
}

func TestSetMembersUndo(t *testing.T) {
	r := newCluster(t)
	boom := errors.New("boom")
	r.fail = func(o op) error {
		if o.Op == "write" && strings.HasSuffix(o.Path, "/2/weight") {
			return boom
		}
		return nil
	}
	checkErr(t, r.SetMembers("ls", []Member{{1, 1}, {2, 1}}, nil), boom)
	got, err := r.Members("ls")
	must(t, err)
	if diff := cmp.Diff([]int{1}, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
}

func TestSetMembersNoCluster(t *testing.T) {
	r := newRecorder(t, dlmConfig)
	checkErr(t, r.SetMembers("ls", []Member{{1, 1}}, nil), os.ErrNotExist)
}

func TestMembers(t *testing.T) {
	r := newCluster(t)
	_, err := r.Members("ls")
	checkErr(t, err, os.ErrNotExist)
	_, err = r.Members("..")
	checkErr(t, err, ErrInvalid)

	// A space without its nodes group has no members.
	mkdirAll(t, r.Kernel, spaceDir("bare"))
	got, err := r.Members("bare")
	if err != nil || len(got) != 0 {
		t.Errorf("Members(bare) = %v, %v, want none", got, err)
	}

	must(t, r.SetMembers("ls", []Member{{10, 1}, {2, 1}, {7, 1}}, nil))
	mkdirAll(t, r.Kernel, nodesDir("ls")+"/junk")
	got, err = r.Members("ls")
	must(t, err)
	if diff := cmp.Diff([]int{2, 7, 10}, got); diff != "" {
		t.Errorf("Members (-want +got):\n%s", diff)
	}
}

func TestRemoveSpace(t *testing.T) {
	r := newCluster(t)
	must(t, r.SetMembers("ls", []Member{{1, 1}, {2, 1}}, nil))
	must(t, r.SetMembers("keep", []Member{{1, 1}}, nil))
	r.ops = nil
	must(t, r.RemoveSpace("ls"))
	wantOps := []op{
		{"rmdir", nodesDir("ls") + "/1", ""},
		{"rmdir", nodesDir("ls") + "/2", ""},
		{"rmdir", nodesDir("ls"), ""},
		{"rmdir", spaceDir("ls"), ""},
	}
	if diff := cmp.Diff(wantOps, r.ops); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
	want := map[string]string{
		"keep/": "", "keep/nodes/": "",
		"keep/nodes/1/": "", "keep/nodes/1/nodeid": "1", "keep/nodes/1/weight": "1",
	}
	if diff := cmp.Diff(want, tree(t, r.Kernel, spacesDir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	must(t, r.RemoveSpace("ls")) // missing is fine
	checkErr(t, r.RemoveSpace("a/b"), ErrInvalid)

	// Without a nodes directory (the kernel removes it with its parent).
	mkdirAll(t, r.Kernel, spaceDir("bare"))
	must(t, r.RemoveSpace("bare"))
	if _, err := os.Stat(r.path(spaceDir("bare"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("space bare still there: %v", err)
	}
}
