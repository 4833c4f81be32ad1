package controld

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	const conf = `# a cluster
cluster_name=vmlab
log_debug=1
enable_fencing = 0
port=21065
node id=1 addr=192.168.77.1
node id=2 addr=192.168.77.2 addr=fd00::2 mark=0x10
lockspace gfs0 nodir=1
master gfs0 node=1 weight=2
device  foo fence_foo ipaddr=1.2.3.4
connect foo node=1 port=1
`
	c := NewConfig()
	if err := c.Parse(strings.NewReader(conf), "dlm.conf"); err != nil {
		t.Fatal(err)
	}
	if c.Str("cluster_name") != "vmlab" || !c.Bool("log_debug") || c.Bool("enable_fencing") || c.Int("port") != 21065 {
		t.Errorf("options: %v", c.values)
	}
	if !c.IsSet("port") || c.IsSet("mark") {
		t.Error("IsSet wrong")
	}
	want := []Node{
		{ID: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.168.77.1")}},
		{ID: 2, Addrs: []netip.Addr{netip.MustParseAddr("192.168.77.2"), netip.MustParseAddr("fd00::2")}, Mark: 0x10},
	}
	if d := cmp.Diff(want, c.Nodes, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("nodes (-want +got):\n%s", d)
	}
	if !c.Lockspaces["gfs0"].Nodir || c.Weight("gfs0", 1) != 2 || c.Weight("gfs0", 2) != 0 || c.Weight("other", 2) != 1 {
		t.Errorf("lockspace config %+v", c.Lockspaces["gfs0"])
	}
	if m := c.Fencing.Methods(1); len(m) != 1 || m[0][0].Agent != "fence_foo" || len(c.Fencing.Methods(2)) != 0 {
		t.Errorf("fence methods %+v", m)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		conf string
		want []string // each must appear in the error
	}{
		{"bogus=1\n", []string{"dlm.conf:1:", `unknown option "bogus"`}},
		{"\n\nport=abc\n", []string{"dlm.conf:3:", "port takes"}},
		{"port=0\n", []string{"port takes 1 to 65535"}},
		{"log_debug=yes\n", []string{"log_debug takes 0 or 1"}},
		{"protocol=udp\n", []string{"protocol takes tcp, sctp or detect"}},
		{"node addr=1.2.3.4\n", []string{"node line: no id"}},
		{"node id=x\n", []string{"id must be a positive number"}},
		{"node id=1 addr=1.2.3\n", []string{"bad address"}},
		{"node id=1 color=red\n", []string{"unknown key \"color\""}},
		{"node id=1\nnode id=1\n", []string{"dlm.conf:2:", "defined twice"}},
		{"node id=1 addr=1.1.1.1\nnode id=2 addr=1.1.1.1\n", []string{"given to nodes 1 and 2"}},
		{"just words\n", []string{"expected key=value"}},
		{"bogus=1\nalso=2\n", []string{"dlm.conf:1:", "dlm.conf:2:"}},
		{"master gfs0 weight=2\n", []string{"no node=<id>"}},
		{"\ncluster_state_dir=\n", []string{"dlm.conf:2:", "cluster_state_dir must name a directory"}},
		{"cluster_state_dir= \n", []string{"dlm.conf:1:", "cluster_state_dir must name a directory"}},
	}
	for _, tt := range tests {
		err := NewConfig().Parse(strings.NewReader(tt.conf), "dlm.conf")
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%q: error %v is not ErrConfig", tt.conf, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tt.conf, err, w)
			}
		}
	}
}

func TestParseArgs(t *testing.T) {
	c := NewConfig()
	rest, err := c.ParseArgs([]string{"-D", "--port", "1234", "--mark=5", "-q", "0", "-r=tcp", "extra", "--foreground"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"extra"}, rest); d != "" {
		t.Error(d)
	}
	if !c.Bool("daemon_debug") || c.Int("port") != 1234 || c.Int("mark") != 5 || c.Bool("enable_quorum_fencing") || c.Str("protocol") != "tcp" || !c.Bool("foreground") {
		t.Errorf("values %v", c.values)
	}
	// The command line wins over dlm.conf.
	if err := c.Parse(strings.NewReader("port=999\nmark=7\n"), "f"); err != nil {
		t.Fatal(err)
	}
	if c.Int("port") != 1234 || c.Int("mark") != 5 {
		t.Errorf("dlm.conf overrode the command line: %v", c.values)
	}
	for _, bad := range [][]string{{"--nope"}, {"-Z"}, {"--port"}, {"--port", "x"}} {
		if _, err := NewConfig().ParseArgs(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDumpConfig(t *testing.T) {
	c := NewConfig()
	c.Set("port", "21065", "dlm.conf")
	var b strings.Builder
	c.Dump(&b)
	if !strings.Contains(b.String(), "port=21065 (dlm.conf)\n") || !strings.Contains(b.String(), "mark=0\n") {
		t.Errorf("dump:\n%s", b.String())
	}
}

// TestStateDirRequired: the cluster state directory cannot be emptied,
// in dlm.conf (see TestParseConfigErrors) or on the command line.
func TestStateDirRequired(t *testing.T) {
	for _, args := range [][]string{{"--cluster_state_dir="}, {"--cluster_state_dir", ""}} {
		_, err := NewConfig().ParseArgs(args)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cluster_state_dir must name a directory") {
			t.Errorf("ParseArgs(%q): %v, want ErrConfig naming cluster_state_dir", args, err)
		}
	}
	c := NewConfig()
	if _, err := c.ParseArgs([]string{"--cluster_state_dir=/var/lib/x"}); err != nil || c.Str("cluster_state_dir") != "/var/lib/x" {
		t.Errorf("a directory: %v, %q", err, c.Str("cluster_state_dir"))
	}
}
