package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/godlm/godlm/controld"
)

// TestClusterPortBoundOnce: the cluster port is bound by listen, before
// the daemon touches the kernel, and a second daemon's listen fails
// saying why.
func TestClusterPortBoundOnce(t *testing.T) {
	// A free port to configure.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := controld.NewConfig()
	conf := fmt.Sprintf("cluster_name=c\nnode id=1 addr=127.0.0.1\nnode id=2 mark=1\ncluster_port=%d\n", port)
	if err := cfg.Parse(strings.NewReader(conf), "dlm.conf"); err != nil {
		t.Fatal(err)
	}
	first := &raftLayer{}
	if err := first.listen(cfg, 1); err != nil {
		t.Fatal(err)
	}
	defer first.close()
	if first.ln.Addr().String() != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("bound %v", first.ln.Addr())
	}
	second := &raftLayer{}
	if err := second.listen(cfg, 1); err == nil || !strings.Contains(err.Error(), "is another dlm_controld running?") {
		second.close()
		t.Errorf("second listen: %v", err)
	}
	// A node without an address cannot listen.
	if err := (&raftLayer{}).listen(cfg, 2); !errors.Is(err, controld.ErrConfig) {
		t.Errorf("listen for a node without addr: %v", err)
	}
}
