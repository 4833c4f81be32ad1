package controld

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// checkConfig is what every configuration that parsed must satisfy.
func checkConfig(t *testing.T, c *Config) {
	t.Helper()
	for _, d := range optDefs {
		// Every value is one Set would take again.
		if err := NewConfig().Set(d.name, c.Str(d.name), "check"); err != nil {
			t.Fatalf("option %s holds %q, which Set refuses: %v", d.name, c.Str(d.name), err)
		}
	}
	var ids []int
	for _, n := range c.Nodes {
		// A node line may give only a mark, as the reference's do.
		if n.ID <= 0 || len(n.Addrs) > 3 {
			t.Fatalf("node %+v: want a positive id and at most 3 addresses", n)
		}
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(c.Nodes) {
		t.Fatalf("node ids repeat: %+v", c.Nodes)
	}
	for ls, lc := range c.Lockspaces {
		if lc == nil || ls == "" {
			t.Fatalf("lockspace %q: %+v", ls, lc)
		}
		for id := range lc.Masters {
			_ = c.Weight(ls, id)
		}
	}
	var b bytes.Buffer
	c.Dump(&b)
	if strings.Count(b.String(), "\n") != len(optDefs) {
		t.Fatalf("Dump wrote %d lines for %d options:\n%s", strings.Count(b.String(), "\n"), len(optDefs), b.String())
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("cluster_name=c\nnode id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.2 addr=fe80::1\n"))
	f.Add([]byte("# comment\nlog_debug=1\nprotocol=sctp\nport=0x5000\nlockspace gfs0 nodir=1\nmaster gfs0 node=1 weight=2\n"))
	f.Add([]byte("device foo /usr/sbin/fence_foo ipaddr=1.2.3.4\nconnect foo node=1 port=1\nfence_all /bin/true\n"))
	f.Add([]byte("node id=0 addr=x\nunknown=1\nport=70000\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := NewConfig()
		err := c.Parse(bytes.NewReader(in), "dlm.conf")
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), "dlm.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		checkConfig(t, c)
	})
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-D\x00--cluster_name\x00c\x00-r=sctp\x00--port=21064\x00-K\x000")
	f.Add("--foreground\x00-q\x001\x00extra")
	f.Add("--\x00-\x00--=\x00-R")
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\x00")
		c := NewConfig()
		rest, err := c.ParseArgs(args)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			return
		}
		for _, r := range rest {
			if !slices.Contains(args, r) {
				t.Fatalf("leftover %q is not an argument", r)
			}
		}
		checkConfig(t, c)
		// The command line wins over dlm.conf.
		for _, d := range optDefs {
			if c.IsSet(d.name) {
				before := c.Str(d.name)
				_ = c.Parse(strings.NewReader(d.name+"="+d.def+"\n"), "dlm.conf")
				if c.Str(d.name) != before {
					t.Fatalf("dlm.conf overrode --%s=%q with %q", d.name, before, c.Str(d.name))
				}
			}
		}
	})
}
