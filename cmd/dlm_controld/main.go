// Command dlm_controld is godlm's cluster daemon for the Linux kernel DLM.
//
// It configures the kernel DLM (configfs), answers the kernel's lockspace
// join and leave requests (uevents), and serves dlm_tool and other
// libdlmcontrol clients on the reference's query sockets. It reads
// /etc/dlm/dlm.conf; options given on the command line win over it.
//
// Usage:
//
//	dlm_controld [--config FILE] [--name value | --name=value | -x value]...
//
// Run `dlm_controld --help` for the options. It never forks: run it
// under systemd (Type=notify) or in the background.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/godlm/godlm/configfs"
	"github.com/godlm/godlm/controld"
	"github.com/godlm/godlm/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func usage() {
	fmt.Fprintf(os.Stderr, `Usage: dlm_controld [options]

godlm's cluster daemon for the kernel DLM. It reads %s (or --config
FILE); command-line options win over it. It never forks.

  --config FILE   configuration file
  -h, --help      this help
  -V, --version   print the version

dlm.conf names the cluster and its nodes:

  cluster_name=mycluster           # as in the lock tables (mkfs.gfs2 -t mycluster:fs)
  node id=1 addr=192.168.77.1      # each node, with up to 3 addresses
  node id=2 addr=192.168.77.2
  lockspace gfs0 nodir=1           # optional, per lockspace, as the reference
  master gfs0 node=1 weight=2

The daemons of the listed nodes form the cluster themselves, with no
corosync: they talk over TCP on cluster_port (21065), agree on one order
of events through an embedded Raft log, and change nothing without a
majority of the listed nodes (quorum). A node silent for cluster_timeout
ms is declared failed. The nodes authenticate each other with a shared
key: make one with `+"`dlm_tool keygen`"+` (it writes /etc/dlm/cluster.key)
and copy it to every node, or set cluster_key_file. With more than one
node the daemon does not start without it.

Options (also dlm.conf keys: name=value):
`, controld.DefaultConfigPath)
	controld.NewConfig().Help(os.Stderr)
}

func run(args []string) int {
	path := controld.DefaultConfigPath
	root := "/"
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help" || a == "help":
			usage()
			return 0
		case a == "-V" || a == "--version" || a == "version":
			fmt.Printf("dlm_controld %s (godlm)\n", version.Version)
			return 0
		case a == "--config" && i+1 < len(args):
			i++
			path = args[i]
		case strings.HasPrefix(a, "--config="):
			path = strings.TrimPrefix(a, "--config=")
		case a == "--root" && i+1 < len(args): // tests: kernel files under another root
			i++
			root = args[i]
		default:
			rest = append(rest, a)
		}
	}
	cfg := controld.NewConfig()
	extra, err := cfg.ParseArgs(rest)
	if err == nil && len(extra) > 0 {
		err = fmt.Errorf("%w: unexpected argument %q", controld.ErrConfig, extra[0])
	}
	if err == nil {
		err = cfg.ReadFile(path)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dlm_controld: %v\n", err)
		return 1
	}

	level := slog.LevelInfo
	if cfg.Bool("daemon_debug") {
		level = slog.LevelDebug
	}
	ring := controld.NewRing(1 << 20)
	log := controld.NewLogger(os.Stderr, level, ring)
	fail := func(err error) int {
		log.Error("cannot start", "err", err)
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		return 1
	}

	k := configfs.New(root)
	// Listen for uevents before anything can create a lockspace.
	ue, err := configfs.ListenUevents()
	if err != nil {
		return fail(err)
	}
	layer, err := raftCluster(cfg, log)
	if err != nil {
		ue.Close()
		return fail(err)
	}
	defer layer.close()
	// Setup locks cluster_state_dir, then binds the query sockets and
	// the cluster port, and only then touches the kernel: a second
	// daemon fails on one of these and changes nothing.
	var srv *controld.QueryServer
	bind := func(d *controld.Daemon) error {
		var err error
		if srv, err = controld.BindQuery(d); err != nil {
			return err
		}
		return layer.listen(cfg, d.NodeID())
	}
	d, err := controld.New(cfg, controld.Options{Kernel: k, Uevents: ue, Logger: log, Ring: ring, Cluster: layer.start, Bind: bind})
	if err != nil {
		ue.Close()
		return fail(err)
	}
	defer d.Close()
	defer func() {
		if srv != nil {
			srv.Close()
		}
	}()
	t0 := time.Now()
	if err := d.Setup(); err != nil {
		return fail(err)
	}
	srv.Serve()
	log.Info("dlm_controld started", "version", version.Version, "nodeid", d.NodeID(), "cluster", cfg.Str("cluster_name"),
		"setup_ms", time.Since(t0).Milliseconds())
	daemon.SdNotify(false, fmt.Sprintf("READY=1\nSTATUS=node %d of cluster %s", d.NodeID(), cfg.Str("cluster_name")))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go handleSignals(d, log, cancel)
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped", "err", err)
		return 1
	}
	daemon.SdNotify(false, "STOPPING=1")
	log.Info("dlm_controld stopped")
	return 0
}

// handleSignals stops the daemon on SIGTERM or SIGINT, unless lockspaces
// are active: leaving the kernel without its daemon would stop them all
// (and get this node fenced in a cluster), so then it refuses, as the
// reference does.
func handleSignals(d *controld.Daemon, log *slog.Logger, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	for sig := range ch {
		if active := d.Active(); len(active) > 0 {
			log.Warn("shutdown refused: lockspaces are active; leave them first", "signal", sig, "lockspaces", strings.Join(active, " "))
			continue
		}
		stop()
		return
	}
}
