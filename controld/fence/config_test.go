package fence

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lines(text string) []Line {
	var out []Line
	for i, t := range strings.Split(text, "\n") {
		out = append(out, Line{Num: i + 1, Text: t})
	}
	return out
}

func parse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("dlm.conf", lines(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMethods(t *testing.T) {
	c := parse(t, `log_debug=1
device  ipmi fence_ipmilan lanplus=1 login=admin
connect ipmi node=1 ip=10.0.0.1
connect ipmi node=2 ip=10.0.0.2

device  psu:1 fence_apc ip=10.1.0.1
connect psu:1 node=1 plug=3
connect psu:1 node=3 plug=5
device  psu:2 fence_apc ip=10.1.0.2
connect psu:2 node=1 plug=4
unfence psu:2

device scsi fence_scsi devices=/dev/sdb
connect scsi node=1 key=1
connect scsi node=2 key=2
unfence scsi
`)
	if err := c.Check([]int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	want := map[int][]Method{
		1: {
			{{Device: "ipmi", Agent: "fence_ipmilan", Args: []Arg{{"lanplus", "1"}, {"login", "admin"}, {"node", "1"}, {"ip", "10.0.0.1"}}}},
			{
				{Device: "psu:1", Agent: "fence_apc", Args: []Arg{{"ip", "10.1.0.1"}, {"node", "1"}, {"plug", "3"}}},
				{Device: "psu:2", Agent: "fence_apc", Args: []Arg{{"ip", "10.1.0.2"}, {"node", "1"}, {"plug", "4"}}, Unfence: true},
			},
			{{Device: "scsi", Agent: "fence_scsi", Args: []Arg{{"devices", "/dev/sdb"}, {"node", "1"}, {"key", "1"}}, Unfence: true}},
		},
		2: {
			{{Device: "ipmi", Agent: "fence_ipmilan", Args: []Arg{{"lanplus", "1"}, {"login", "admin"}, {"node", "2"}, {"ip", "10.0.0.2"}}}},
			{{Device: "scsi", Agent: "fence_scsi", Args: []Arg{{"devices", "/dev/sdb"}, {"node", "2"}, {"key", "2"}}, Unfence: true}},
		},
		3: {{{Device: "psu:1", Agent: "fence_apc", Args: []Arg{{"ip", "10.1.0.1"}, {"node", "3"}, {"plug", "5"}}}}},
		4: nil,
	}
	for n, w := range want {
		if diff := cmp.Diff(w, c.Methods(n)); diff != "" {
			t.Errorf("node %d (-want +got):\n%s", n, diff)
		}
	}
	if diff := cmp.Diff([]int{4}, c.Missing([]int{1, 2, 3, 4})); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	var unf []string
	for _, s := range c.Unfence(1) {
		unf = append(unf, s.Device)
	}
	if diff := cmp.Diff([]string{"psu:2", "scsi"}, unf); diff != "" {
		t.Errorf("unfence node 1 (-want +got):\n%s", diff)
	}
}

func TestFenceAll(t *testing.T) {
	c := parse(t, "fence_all fence_lab switch=/dev/vport0p1\nunfence_all\n")
	want := []Method{{{Device: "fence_all", Agent: "fence_lab", Args: []Arg{{"switch", "/dev/vport0p1"}}, Unfence: true}}}
	for _, n := range []int{1, 7} {
		if diff := cmp.Diff(want, c.Methods(n)); diff != "" {
			t.Errorf("node %d (-want +got):\n%s", n, diff)
		}
	}
	if c.Empty() || !parse(t, "log_debug=1\n").Empty() {
		t.Error("Empty is wrong")
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"connect ipmi node=1", "dlm.conf:1: connect outside a device section"},
		{"device ipmi fence_ipmilan\n\nconnect ipmi node=1", "dlm.conf:3: connect outside"},
		{"device ipmi fence_ipmilan\nlog_debug=1\nconnect ipmi node=1", "dlm.conf:3: connect outside"},
		{"device ipmi fence_ipmilan\nconnect other node=1", "dlm.conf:2: connect must name the device of its section, \"ipmi\""},
		{"device ipmi fence_ipmilan\nconnect ipmi port=1", "dlm.conf:2: connect needs node=<id>"},
		{"device ipmi fence_ipmilan\nconnect ipmi node=x", "node must be a positive node id"},
		{"device ipmi fence_ipmilan\nconnect ipmi node=1\nconnect ipmi node=1", "dlm.conf:3: node 1 is connected to device \"ipmi\" twice"},
		{"device ipmi", "dlm.conf:1: device needs a name and an agent"},
		{"device ipmi login=x", "looks like an argument"},
		{"device ipmi fence_ipmilan login", "\"login\": agent arguments are key=value"},
		{"device a fence_x\ndevice a fence_y", "dlm.conf:2: device \"a\" is defined twice (first at line 1)"},
		{"device a fence_x\nconnect a node=1\nunfence b", "dlm.conf:3: unfence must follow"},
		{"fence_all fence_x\ndevice a fence_y", "dlm.conf:2: device sections cannot be combined with fence_all"},
		{"device a fence_y\nfence_all fence_x", "dlm.conf:2: fence_all cannot be combined"},
		{"fence_all fence_x\nfence_all fence_y", "fence_all given twice"},
		{"fence_all", "fence_all needs an agent"},
		{"fence_all fence_x node=2", "fence_all cannot name a node"},
		{"unfence_all", "dlm.conf:1: unfence_all must be alone on the line right after fence_all"},
		{"fence_all fence_x\n\nunfence_all", "dlm.conf:3: unfence_all must be"},
		{"device " + strings.Repeat("n", 256) + " fence_x", "device name of 256 bytes"},
		{"device a fence_x k=" + strings.Repeat("v", 4100), "arguments of 4103 bytes"},
	} {
		_, err := Parse("dlm.conf", lines(c.text))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.text, err, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"device a fence_x\nconnect a node=9", "dlm.conf:2: connect names node 9, which is not a cluster node"},
		{"device a fence_x\n\ndevice b fence_y\nconnect b node=1", "dlm.conf:1: device \"a\" has no connect line"},
		{"device a fence_x\nconnect a node=1\ndevice b fence_x\nconnect b node=1\ndevice c fence_x\nconnect c node=1\ndevice d fence_x\nconnect d node=1\ndevice e fence_x\nconnect e node=1",
			"node 1 has 5 fence devices; at most 4"},
	} {
		err := parse(t, c.text).Check([]int{1, 2})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.text, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("device a fence_x k=v\nconnect a node=1 plug=2\nunfence a\n\nfence_all x\nunfence_all")
	f.Add("fence_all fence_x\nunfence_all")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse("f", lines(text))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not match ErrConfig", err)
			}
			return
		}
		nodes := []int{1, 2, 3}
		_ = c.Check(nodes)
		for _, n := range nodes {
			for _, m := range c.Methods(n) {
				if len(m) == 0 {
					t.Fatal("empty method")
				}
				for _, s := range m {
					if s.Agent == "" || strings.Contains(string(Request{Step: s, Node: n}.Stdin()), "\n\n") {
						t.Fatalf("bad step %+v", s)
					}
				}
			}
		}
	})
}
