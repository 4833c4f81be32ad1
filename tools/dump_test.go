package tools

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/godlm/godlm/controld/dlmc/dlmctest"
)

func TestDumps(t *testing.T) {
	d := &dlmctest.Daemon{
		Debug:  "12 dlm_controld 4.2.0 started\n13 our_nodeid 1\n",
		Config: "protocol=detect\nport=21064\nenable_fencing=0 (dlm.conf)\nenable_plock=1\n",
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		// As the reference, the text then a newline.
		{[]string{"dump"}, d.Debug + "\n"},
		{[]string{"dump", "--json"}, `{
  "lines": [
    "12 dlm_controld 4.2.0 started",
    "13 our_nodeid 1"
  ]
}
`},
		{[]string{"dump_config"}, d.Config + "\n"},
		{[]string{"dump_config", "--json"}, `{
  "enable_fencing": "0",
  "enable_plock": "1",
  "port": "21064",
  "protocol": "detect"
}
`},
	} {
		r := run(t, dlmctest.Start(t, d), tc.args...)
		if r.err != nil {
			t.Fatalf("%v: %v", tc.args, r.err)
		}
		if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestDumpEmpty(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dump"}, "\n"},
		{[]string{"dump", "--json"}, "{\n  \"lines\": []\n}\n"},
		{[]string{"dump_config", "--json"}, "{}\n"},
	} {
		r := run(t, dlmctest.Start(t, &dlmctest.Daemon{}), tc.args...)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if diff := cmp.Diff(tc.want, r.stdout); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, diff)
		}
	}
}
