package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld"
	"github.com/godlm/godlm/controld/cluster/raftcluster"
	"github.com/google/go-cmp/cmp"
)

func TestClusterKey(t *testing.T) {
	dir := t.TempDir()
	key := "0123456789abcdef0123456789abcdef"
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(good, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	missing := filepath.Join(dir, "missing.key")
	one := "cluster_name=c\nnode id=1 addr=10.0.0.1\n"
	three := one + "node id=2 addr=10.0.0.2\nnode id=3 addr=10.0.0.3\n"
	for _, tc := range []struct {
		name        string
		conf        string
		defaultFile string
		want        string   // the key; "" for none
		wantErr     []string // parts of the error
		is          error
	}{
		{"three nodes, key file", three + "cluster_key_file=" + good, missing, key, nil, nil},
		{"three nodes, default key", three, good, key, nil, nil},
		{"three nodes, no key", three, missing, "", []string{"3 nodes needs a shared key", "dlm_tool keygen", "cluster_key_file", missing}, nil},
		{"three nodes, key file missing", three + "cluster_key_file=" + missing, good, "", []string{"cluster_key_file", missing}, fs.ErrNotExist},
		{"three nodes, key readable by others", three + "cluster_key_file=" + open, missing, "", []string{"chmod 600"}, raftcluster.ErrKey},
		{"three nodes, default key readable by others", three, open, "", []string{open, "chmod 600"}, raftcluster.ErrKey},
		{"one node, no key", one, missing, "", nil, nil},
		{"one node, default key", one, good, key, nil, nil},
		{"one node, key file missing", one + "cluster_key_file=" + missing, good, "", []string{missing}, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := controld.NewConfig()
			if err := cfg.Parse(strings.NewReader(tc.conf), "dlm.conf"); err != nil {
				t.Fatal(err)
			}
			got, err := clusterKey(cfg, tc.defaultFile)
			if tc.wantErr != nil {
				if !errors.Is(err, controld.ErrConfig) {
					t.Fatalf("clusterKey: %v, want ErrConfig", err)
				}
				for _, part := range tc.wantErr {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not mention %q", err, part)
					}
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v does not wrap %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}
