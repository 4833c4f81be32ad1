package configfs

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCreateCluster(t *testing.T) {
	r := newRecorder(t, dlmConfig)
	for range 2 { // the second call finds it existing
		if err := r.CreateCluster(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]string{"cluster/": "", "cluster/comms/": "", "cluster/spaces/": ""}, tree(t, r.Kernel, dlmConfig)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestCreateClusterNoDLM(t *testing.T) {
	r := newRecorder(t)
	checkErr(t, r.CreateCluster(), errAny)
}

func TestSetClusterName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "simple", in: "mycluster"},
		{name: "63 bytes", in: strings.Repeat("c", 63)},
		{name: "spaces and dots", in: "my cluster.1"},
		{name: "empty", in: "", wantErr: ErrInvalid},
		{name: "64 bytes", in: strings.Repeat("c", 64), wantErr: ErrInvalid},
		{name: "newline", in: "abc\n", wantErr: ErrInvalid},
		{name: "NUL", in: "a\x00b", wantErr: ErrInvalid},
		{name: "slash", in: "a/b", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			err := r.SetClusterName(tt.in)
			checkErr(t, err, tt.wantErr)
			want := []op(nil)
			if tt.wantErr == nil {
				want = []op{{"write", clusterDir + "/cluster_name", tt.in}}
			}
			if diff := cmp.Diff(want, r.ops); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				return
			}
			files := tree(t, r.Kernel, clusterDir)
			if diff := cmp.Diff(tt.in, files["cluster_name"]); diff != "" {
				t.Errorf("cluster_name bytes (-want +got):\n%s", diff)
			}
			got, err := r.ClusterName()
			if err != nil || got != tt.in {
				t.Errorf("ClusterName() = %q, %v, want %q", got, err, tt.in)
			}
		})
	}
}

func TestClusterNameKernelFormat(t *testing.T) {
	r := newCluster(t)
	writeFile(t, r.Kernel, clusterDir+"/cluster_name", "prod\n")
	got, err := r.ClusterName()
	if err != nil || got != "prod" {
		t.Errorf("ClusterName() = %q, %v, want %q", got, err, "prod")
	}
}

func TestSetClusterAttr(t *testing.T) {
	tests := []struct {
		attr    ClusterAttr
		v       uint64
		want    string
		wantErr error
	}{
		{attr: AttrTCPPort, v: 21064, want: "21064"},
		{attr: AttrTCPPort, v: 65535, want: "65535"},
		{attr: AttrTCPPort, v: 0, wantErr: ErrInvalid},
		{attr: AttrTCPPort, v: 65536, wantErr: ErrInvalid},
		{attr: AttrBufferSize, v: 4096, want: "4096"},
		{attr: AttrBufferSize, v: 1 << 20, want: "1048576"},
		{attr: AttrBufferSize, v: 4095, wantErr: ErrInvalid},
		{attr: AttrRsbtblSize, v: 1024, want: "1024"},
		{attr: AttrRsbtblSize, v: 0, wantErr: ErrInvalid},
		{attr: AttrRecoverTimer, v: 5, want: "5"},
		{attr: AttrRecoverTimer, v: 0, wantErr: ErrInvalid},
		{attr: AttrTossSecs, v: 10, want: "10"},
		{attr: AttrTossSecs, v: 0, wantErr: ErrInvalid},
		{attr: AttrScanSecs, v: 5, want: "5"},
		{attr: AttrScanSecs, v: 0, wantErr: ErrInvalid},
		{attr: AttrLogDebug, v: 0, want: "0"},
		{attr: AttrLogDebug, v: 1, want: "1"},
		{attr: AttrLogInfo, v: 1, want: "1"},
		{attr: AttrProtocol, v: 0, want: "0"},
		{attr: AttrProtocol, v: 1, want: "1"},
		{attr: AttrProtocol, v: 2, wantErr: ErrInvalid},
		{attr: AttrMark, v: 0, want: "0"},
		{attr: AttrMark, v: 4294967295, want: "4294967295"},
		{attr: AttrMark, v: 4294967296, wantErr: ErrInvalid},
		{attr: AttrNewRsbCount, v: 0, want: "0"},
		{attr: AttrRecoverCallbacks, v: 1, want: "1"},
		{attr: "timewarn_cs", v: 500, wantErr: ErrInvalid},
		{attr: "../../x", v: 1, wantErr: ErrInvalid},
		{attr: "", v: 1, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		r := newCluster(t)
		err := r.SetClusterAttr(tt.attr, tt.v)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("SetClusterAttr(%q, %d) = %v, want %v", tt.attr, tt.v, err, tt.wantErr)
			}
			if len(r.ops) != 0 {
				t.Errorf("SetClusterAttr(%q, %d) wrote %v", tt.attr, tt.v, r.ops)
			}
			continue
		}
		if err != nil {
			t.Errorf("SetClusterAttr(%q, %d): %v", tt.attr, tt.v, err)
			continue
		}
		want := map[string]string{"comms/": "", "spaces/": "", string(tt.attr): tt.want}
		if diff := cmp.Diff(want, tree(t, r.Kernel, clusterDir)); diff != "" {
			t.Errorf("SetClusterAttr(%q, %d) tree (-want +got):\n%s", tt.attr, tt.v, diff)
		}
		got, err := r.ClusterAttr(tt.attr)
		if err != nil || got != tt.v {
			t.Errorf("ClusterAttr(%q) = %d, %v, want %d", tt.attr, got, err, tt.v)
		}
	}
}

func TestClusterAttrRead(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" means no file
		attr    ClusterAttr
		want    uint64
		wantErr error
	}{
		{name: "kernel format", content: "21064\n", attr: AttrTCPPort, want: 21064},
		{name: "no newline", content: "7", attr: AttrTossSecs, want: 7},
		{name: "max", content: "4294967295\n", attr: AttrMark, want: 4294967295},
		{name: "too big", content: "4294967296\n", attr: AttrMark, wantErr: errAny},
		{name: "garbage", content: "x\n", attr: AttrMark, wantErr: errAny},
		{name: "missing", attr: AttrMark, wantErr: errAny},
		{name: "unknown", attr: "nope", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			if tt.content != "" {
				writeFile(t, r.Kernel, clusterDir+"/"+string(tt.attr), tt.content)
			}
			got, err := r.ClusterAttr(tt.attr)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("ClusterAttr(%q) = %d, want %d", tt.attr, got, tt.want)
			}
		})
	}
}

func TestClearCluster(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, k *Kernel)
	}{
		{name: "no cluster", setup: func(t *testing.T, k *Kernel) {}},
		{name: "empty cluster", setup: func(t *testing.T, k *Kernel) {
			mkdirAll(t, k, commsDir)
			mkdirAll(t, k, spacesDir)
		}},
		{name: "cluster without default groups", setup: func(t *testing.T, k *Kernel) {
			mkdirAll(t, k, clusterDir)
		}},
		{name: "full", setup: func(t *testing.T, k *Kernel) {
			mkdirAll(t, k, commsDir)
			mkdirAll(t, k, spacesDir)
			must(t, k.SetClusterName("c"))
			must(t, k.SetClusterAttr(AttrTCPPort, 21064))
			must(t, k.AddComm(Comm{NodeID: 1, Addrs: addrs("10.0.0.1"), Local: true}))
			must(t, k.AddComm(Comm{NodeID: 2, Addrs: addrs("10.0.0.2"), Mark: 7}))
			must(t, k.SetMembers("gfs0", []Member{{1, 1}, {2, 1}}, nil))
			must(t, k.SetMembers("other", []Member{{2, 0}}, nil))
			mkdirAll(t, k, spacesDir+"/empty")
			mkdirAll(t, k, commsDir+"/odd-name")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t, dlmConfig)
			tt.setup(t, r.Kernel)
			r.ops = nil
			if err := r.ClearCluster(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{}, tree(t, r.Kernel, dlmConfig)); diff != "" {
				t.Errorf("left over (-want +got):\n%s", diff)
			}
			// Members go before their space, spaces and comms before the
			// cluster.
			seen := map[string]int{}
			for i, o := range r.ops {
				if o.Op != "rmdir" {
					t.Errorf("unexpected op %v", o)
				}
				seen[o.Path] = i
			}
			for p, i := range seen {
				for q, j := range seen {
					if strings.HasPrefix(q, p+"/") && j > i {
						t.Errorf("removed %s after its parent %s", q, p)
					}
				}
			}
		})
	}
}

func TestClearClusterError(t *testing.T) {
	r := newCluster(t)
	must(t, r.AddComm(Comm{NodeID: 1, Addrs: addrs("10.0.0.1")}))
	must(t, r.AddComm(Comm{NodeID: 2, Addrs: addrs("10.0.0.2")}))
	boom := errors.New("boom")
	r.fail = func(o op) error {
		if o.Op == "rmdir" && o.Path == commDir(1) {
			return boom
		}
		return nil
	}
	err := r.ClearCluster()
	checkErr(t, err, boom)
	got, _ := r.Comms()
	if diff := cmp.Diff([]int{1}, got); diff != "" {
		t.Errorf("comms after a failed clear (-want +got):\n%s", diff)
	}
}

// must fails t on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
