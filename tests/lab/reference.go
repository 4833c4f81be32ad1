package lab

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The reference stack is what godlm replaces: corosync 3 (knet) for
// membership and quorum, and Debian's dlm_controld 4 on top of it. The
// image carries both in RefDir, so a test or benchmark can run the same
// workload on the same VMs under either stack.

// Guest paths of the reference stack's configuration and logs.
const (
	// CorosyncConfPath is where StartReference writes corosync.conf.
	CorosyncConfPath = "/etc/corosync/corosync.conf"
	// CorosyncLog is corosync's log file (set in CorosyncConf; its
	// stderr is appended there too).
	CorosyncLog = "/var/log/corosync.log"
	// RefDLMConfPath is where StartReference writes the reference
	// dlm_controld's dlm.conf (the same path godlm's daemon reads).
	RefDLMConfPath = "/etc/dlm/dlm.conf"
	// RefDLMControldLog receives the reference dlm_controld's debug
	// output (its stderr under -D). The daemon also writes a line of its
	// own to dlm_controld.log in the same folder at start-up.
	RefDLMControldLog = "/var/log/dlm_controld/debug.log"
)

// refStartLimit bounds each step of StartReference: corosync's IPC
// coming up, then dlm_controld answering. Under emulation, with three
// guests starting together, both answer within about 3 s; a loaded host
// can make that many times longer.
const refStartLimit = 60 * time.Second

// CorosyncConf returns a corosync.conf for the cluster: totem version 2
// over knet without encryption, named ClusterName, with every node as
// nodeN, nodeid N, ring0_addr its address; votequorum (a majority of
// the nodes); logging to CorosyncLog with timestamps, not to syslog or
// stderr. tokenMS sets totem.token, in ms (corosync adds
// token_coefficient, 650 ms, per node beyond two); 0 keeps corosync's
// default, 3000.
func (c *Cluster) CorosyncConf(tokenMS int) string {
	var b strings.Builder
	b.WriteString("totem {\n\tversion: 2\n")
	fmt.Fprintf(&b, "\tcluster_name: %s\n", c.cfg.ClusterName)
	b.WriteString("\ttransport: knet\n\tcrypto_cipher: none\n\tcrypto_hash: none\n")
	if tokenMS > 0 {
		fmt.Fprintf(&b, "\ttoken: %d\n", tokenMS)
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "logging {\n\tto_stderr: no\n\tto_syslog: no\n\tto_logfile: yes\n\tlogfile: %s\n\ttimestamp: on\n}\n\n", CorosyncLog)
	b.WriteString("quorum {\n\tprovider: corosync_votequorum\n}\n\n")
	b.WriteString("nodelist {\n")
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\tnode {\n\t\tname: node%d\n\t\tnodeid: %d\n\t\tring0_addr: %s\n\t}\n", n.ID, n.ID, n.Addr)
	}
	b.WriteString("}\n")
	return b.String()
}

// RefDLMConf returns a dlm.conf for the reference dlm_controld:
// enable_fencing=0 (godlm has no fencing yet, so both stacks run
// without it), followed by the extra lines. The kernel DLM's debug
// messages (log_debug) stay off, as godlm's daemon leaves them, so both
// stacks make the kernel log the same. The cluster name and the nodes
// come from corosync.
func (c *Cluster) RefDLMConf(extra ...string) string {
	var b strings.Builder
	b.WriteString("enable_fencing=0\n")
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// StartReference runs the reference stack on n instead of godlm's
// daemon: it writes corosyncConf to CorosyncConfPath and dlmConf to
// RefDLMConfPath, starts corosync in the foreground in the background
// (log in CorosyncLog), waits until corosync answers on its IPC, then
// starts Debian's dlm_controld -D (log in RefDLMControldLog), and
// returns once RefDir/dlm_tool status answers. It does not wait for
// quorum: start every node, then poll status for "quorate 1". The error
// of a step that does not finish in time carries the logs.
func (n *Node) StartReference(ctx context.Context, corosyncConf, dlmConf string) error {
	if err := n.WriteFile(ctx, CorosyncConfPath, []byte(corosyncConf), 0o644); err != nil {
		return err
	}
	if err := n.WriteFile(ctx, RefDLMConfPath, []byte(dlmConf), 0o644); err != nil {
		return err
	}
	// Full paths: busybox applets come before $PATH in its shell.
	if _, err := n.RunOK(ctx, RefDir+"/corosync -f >>"+CorosyncLog+" 2>&1 </dev/null &"); err != nil {
		return err
	}
	// dlm_controld exits at once if corosync's IPC is not there yet.
	if err := n.waitRef(ctx, RefDir+"/corosync-cmapctl -g totem.cluster_name", "corosync not answering"); err != nil {
		return err
	}
	if _, err := n.RunOK(ctx, RefDir+"/dlm_controld -D >>"+RefDLMControldLog+" 2>&1 </dev/null &"); err != nil {
		return err
	}
	return n.waitRef(ctx, RefDir+"/dlm_tool status", "reference dlm_controld not answering")
}

// waitRef polls cmd on n until it exits 0, for at most refStartLimit;
// on timeout the error says what and carries the reference logs.
func (n *Node) waitRef(ctx context.Context, cmd, what string) error {
	return n.waitAnswer(ctx, cmd, what, refStartLimit, "tail -n 40 "+CorosyncLog+" "+RefDLMControldLog+" 2>&1; true")
}
