package configfs

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addrs parses IP addresses.
func addrs(ss ...string) []netip.Addr {
	var as []netip.Addr
	for _, s := range ss {
		as = append(as, netip.MustParseAddr(s))
	}
	return as
}

// sockaddr builds an expected 128-byte sockaddr from its leading bytes.
func sockaddr(head ...byte) string {
	var b [128]byte
	copy(b[:], head)
	return string(b[:])
}

var (
	sa10001 = sockaddr(2, 0, 0, 0, 10, 0, 0, 1)
	sa10002 = sockaddr(2, 0, 0, 0, 10, 0, 0, 2)
	sa19216 = sockaddr(2, 0, 0, 0, 192, 168, 1, 254)
	saFd00  = sockaddr(10, 0, 0, 0, 0, 0, 0, 0,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	saFd02 = sockaddr(10, 0, 0, 0, 0, 0, 0, 0,
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)
	saLL = sockaddr(10, 0, 0, 0, 0, 0, 0, 0,
		0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55)
)

func TestEncodeSockaddr(t *testing.T) {
	tests := []struct {
		in   netip.Addr
		want string
	}{
		{netip.MustParseAddr("10.0.0.1"), sa10001},
		{netip.MustParseAddr("192.168.1.254"), sa19216},
		{netip.MustParseAddr("::ffff:10.0.0.1"), sa10001},
		{netip.MustParseAddr("fd00::1"), saFd00},
		{netip.MustParseAddr("fe80::211:22ff:fe33:4455"), saLL},
		{netip.MustParseAddr("fe80::211:22ff:fe33:4455%eth0"), saLL},
		{netip.Addr{}, sockaddr()},
	}
	for _, tt := range tests {
		got := EncodeSockaddr(tt.in)
		if diff := cmp.Diff([]byte(tt.want), got[:]); diff != "" {
			t.Errorf("EncodeSockaddr(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestAddComm(t *testing.T) {
	dir := commDir(3)
	tests := []struct {
		name      string
		comm      Comm
		wantFiles map[string]string
		wantOps   []op
	}{
		{
			name:      "one IPv4 address",
			comm:      Comm{NodeID: 3, Addrs: addrs("10.0.0.1")},
			wantFiles: map[string]string{"3/": "", "3/nodeid": "3", "3/addr": sa10001},
			wantOps: []op{
				{"mkdir", dir, ""},
				{"write", dir + "/nodeid", "3"},
				{"write", dir + "/addr", sa10001},
			},
		},
		{
			name: "local, two addresses and a mark",
			comm: Comm{NodeID: 3, Addrs: addrs("10.0.0.1", "::ffff:10.0.0.2"), Local: true, Mark: 42},
			wantFiles: map[string]string{
				"3/": "", "3/nodeid": "3", "3/addr": sa10002, "3/local": "1", "3/mark": "42",
			},
			wantOps: []op{
				{"mkdir", dir, ""},
				{"write", dir + "/nodeid", "3"},
				{"write", dir + "/addr", sa10001},
				{"write", dir + "/addr", sa10002},
				{"write", dir + "/local", "1"},
				{"write", dir + "/mark", "42"},
			},
		},
		{
			name: "three IPv6 addresses",
			comm: Comm{NodeID: 3, Addrs: addrs("fd00::1", "fd00::2", "fe80::211:22ff:fe33:4455")},
			wantFiles: map[string]string{
				"3/": "", "3/nodeid": "3", "3/addr": saLL,
			},
			wantOps: []op{
				{"mkdir", dir, ""},
				{"write", dir + "/nodeid", "3"},
				{"write", dir + "/addr", saFd00},
				{"write", dir + "/addr", saFd02},
				{"write", dir + "/addr", saLL},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			if err := r.AddComm(tt.comm); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantOps, r.ops); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFiles, tree(t, r.Kernel, commsDir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			got, err := r.Comms()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{3}, got); diff != "" {
				t.Errorf("Comms() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddCommInvalid(t *testing.T) {
	tests := []struct {
		name string
		comm Comm
	}{
		{"zero node id", Comm{NodeID: 0, Addrs: addrs("10.0.0.1")}},
		{"negative node id", Comm{NodeID: -1, Addrs: addrs("10.0.0.1")}},
		{"no address", Comm{NodeID: 1}},
		{"four addresses", Comm{NodeID: 1, Addrs: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")}},
		{"mixed families", Comm{NodeID: 1, Addrs: addrs("10.0.0.1", "fd00::1")}},
		{"mixed families, mapped first", Comm{NodeID: 1, Addrs: addrs("::ffff:10.0.0.1", "fd00::1")}},
		{"invalid address", Comm{NodeID: 1, Addrs: []netip.Addr{{}}}},
		{"zone", Comm{NodeID: 1, Addrs: addrs("fe80::1%eth0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCluster(t)
			checkErr(t, r.AddComm(tt.comm), ErrInvalid)
			if len(r.ops) != 0 {
				t.Errorf("ops on invalid comm: %v", r.ops)
			}
		})
	}
}

func TestAddCommUndo(t *testing.T) {
	boom := errors.New("boom")
	for _, failing := range []string{"nodeid", "addr", "local", "mark"} {
		t.Run(failing, func(t *testing.T) {
			r := newCluster(t)
			r.fail = func(o op) error {
				if o.Op == "write" && strings.HasSuffix(o.Path, "/"+failing) {
					return boom
				}
				return nil
			}
			err := r.AddComm(Comm{NodeID: 5, Addrs: addrs("10.0.0.1"), Local: true, Mark: 1})
			checkErr(t, err, boom)
			if diff := cmp.Diff(op{"rmdir", commDir(5), ""}, r.ops[len(r.ops)-1]); diff != "" {
				t.Errorf("last op (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{}, tree(t, r.Kernel, commsDir)); diff != "" {
				t.Errorf("left over (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddCommExisting(t *testing.T) {
	r := newCluster(t)
	c := Comm{NodeID: 1, Addrs: addrs("10.0.0.1")}
	must(t, r.AddComm(c))
	checkErr(t, r.AddComm(c), os.ErrExist)
	// The existing comm is untouched.
	want := map[string]string{"1/": "", "1/nodeid": "1", "1/addr": sa10001}
	if diff := cmp.Diff(want, tree(t, r.Kernel, commsDir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestAddCommNoCluster(t *testing.T) {
	r := newRecorder(t, dlmConfig)
	checkErr(t, r.AddComm(Comm{NodeID: 1, Addrs: addrs("10.0.0.1")}), os.ErrNotExist)
}

func TestRemoveCommAndComms(t *testing.T) {
	r := newRecorder(t, dlmConfig)
	got, err := r.Comms()
	if err != nil || got != nil {
		t.Fatalf("Comms() without a cluster = %v, %v, want nil, nil", got, err)
	}
	mkdirAll(t, r.Kernel, commsDir)
	for _, id := range []int{12, 3, 1} {
		must(t, r.AddComm(Comm{NodeID: id, Addrs: addrs("10.0.0.1")}))
	}
	mkdirAll(t, r.Kernel, commsDir+"/not-a-node")
	mkdirAll(t, r.Kernel, commsDir+"/007")
	writeFile(t, r.Kernel, commsDir+"/99", "a file, not a comm")

	got, err = r.Comms()
	must(t, err)
	if diff := cmp.Diff([]int{1, 3, 12}, got); diff != "" {
		t.Errorf("Comms() (-want +got):\n%s", diff)
	}
	must(t, r.RemoveComm(3))
	must(t, r.RemoveComm(3)) // missing is fine
	must(t, r.RemoveComm(4))
	checkErr(t, r.RemoveComm(0), ErrInvalid)
	got, err = r.Comms()
	must(t, err)
	if diff := cmp.Diff([]int{1, 12}, got); diff != "" {
		t.Errorf("Comms() after RemoveComm(3) (-want +got):\n%s", diff)
	}
}
