package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		want  options
		warn  string
	}{
		{"dlm_controld's stdin", nil, "node=3\nfail_time=1764000000\n", options{action: "reboot", node: "3", timeout: time.Minute}, "Ignoring unknown option 'fail_time=1764000000'"},
		{"configured action and plug", nil, "# comment\naction=off\nplug=node2\nnode=2\npower_timeout=5\n", options{action: "off", plug: "node2", node: "2", timeout: 5 * time.Second}, ""},
		{"last value wins, aliases", nil, "option=on\naction=status\nport=node1\n", options{action: "status", plug: "node1", timeout: time.Minute}, ""},
		{"argv", []string{"-o", "off", "-n", "node4"}, "", options{action: "off", plug: "node4", timeout: time.Minute}, ""},
		{"long argv", []string{"--action=monitor", "--power-timeout", "2.5"}, "", options{action: "monitor", timeout: 2500 * time.Millisecond}, ""},
	} {
		var stderr bytes.Buffer
		got, err := parse(c.args, strings.NewReader(c.stdin), &stderr)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(options{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
		if !strings.Contains(stderr.String(), c.warn) {
			t.Errorf("%s: stderr %q, want %q", c.name, stderr.String(), c.warn)
		}
	}
	for _, c := range []struct {
		args  []string
		stdin string
	}{
		{nil, "action=explode\n"},
		{nil, "power_timeout=soon\n"},
		{[]string{"-o"}, ""},
		{[]string{"plug"}, ""},
	} {
		if _, err := parse(c.args, strings.NewReader(c.stdin), &bytes.Buffer{}); err == nil {
			t.Errorf("%v %q: no error", c.args, c.stdin)
		}
	}
}

func TestRunWithoutSwitch(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"-o", "metadata"}, nil, &out, &errb); rc != 0 {
		t.Fatalf("metadata: exit %d %s", rc, errb.String())
	}
	var md struct {
		Name    string `xml:"name,attr"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal(out.Bytes(), &md); err != nil || md.Name != "fence_godlm" || len(md.Actions) != 8 {
		t.Errorf("metadata: %v %+v", err, md)
	}
	if rc := run(nil, strings.NewReader("action=validate-all\nnode=2\n"), &out, &errb); rc != 0 {
		t.Errorf("validate-all with a node: exit %d", rc)
	}
	errb.Reset()
	if rc := run(nil, strings.NewReader("action=off\n"), &out, &errb); rc != 1 || !strings.Contains(errb.String(), "no plug given") {
		t.Errorf("off without a plug: exit %d, %q", rc, errb.String())
	}
	errb.Reset()
	if rc := run([]string{"-o", "status", "-n", "node2", "--power-timeout=0.2"}, nil, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "org.godlm.power") {
		t.Errorf("status off the lab: exit %d, %q", rc, errb.String())
	}
}
