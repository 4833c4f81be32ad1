// Command gobench measures lock+unlock pairs per second through godlm's
// libdlm, the same loops as cbench/dlmbench.c does through the C libdlm.
//
//	gobench LOCKSPACE RESOURCE COUNT
//	  COUNT EX lock+unlock pairs, uncontended
//	gobench LOCKSPACE RESOURCE SECONDS lead|follow
//	  pairs for SECONDS, started together with a program on another
//	  node: "lead" holds a gate lock, prints "ready" and starts when the
//	  blocking callback tells it "follow" has asked for the gate;
//	  "follow" starts when it gets the gate.
//	gobench LOCKSPACE RESOURCE SECONDS hold
//	  holds an NL lock on RESOURCE for SECONDS (so that this node
//	  masters it), printing "ready" once granted.
//
// It prints pairs=<n> seconds=<s> rate=<pairs/s>. GOBENCH_CPUPROFILE
// names a file for a CPU profile.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/godlm/godlm/libdlm"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 && len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gobench LOCKSPACE RESOURCE COUNT\n       gobench LOCKSPACE RESOURCE SECONDS lead|follow|hold")
		os.Exit(2)
	}
	n, err := strconv.ParseFloat(args[2], 64)
	if err != nil {
		return fmt.Errorf("bad count or seconds: %w", err)
	}
	if p := os.Getenv("GOBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ls, err := libdlm.NewLockspace(args[0])
	if err != nil {
		return err
	}
	defer ls.Close()
	ctx := context.Background()
	if len(args) == 4 && args[3] == "hold" {
		if _, err := ls.Lock(ctx, args[1], libdlm.ModeNL, 0); err != nil {
			return err
		}
		fmt.Println("ready")
		time.Sleep(time.Duration(n * float64(time.Second)))
		return nil
	}
	if len(args) == 4 {
		if err := gate(ctx, ls, args[3]); err != nil {
			return err
		}
	}
	res := args[1]
	t0 := time.Now()
	var pairs int
	for {
		if len(args) == 3 && pairs == int(n) || len(args) == 4 && pairs%16 == 0 && time.Since(t0).Seconds() >= n {
			break
		}
		l, err := ls.Lock(ctx, res, libdlm.ModeEX, 0)
		if err != nil {
			return err
		}
		if err := l.Unlock(ctx, 0); err != nil {
			return err
		}
		pairs++
	}
	s := time.Since(t0).Seconds()
	fmt.Printf("pairs=%d seconds=%.3f rate=%.1f\n", pairs, s, float64(pairs)/s)
	return nil
}

// gate starts lead and follow together (see the package comment).
func gate(ctx context.Context, ls *libdlm.Lockspace, role string) error {
	switch role {
	case "lead":
		blocked := make(chan struct{}, 1)
		g, err := ls.Lock(ctx, "gate", libdlm.ModeEX, 0, libdlm.WithBlockingCallback(func(libdlm.Mode) {
			select {
			case blocked <- struct{}{}:
			default:
			}
		}))
		if err != nil {
			return err
		}
		fmt.Println("ready")
		<-blocked
		return g.Unlock(ctx, 0)
	case "follow":
		g, err := ls.Lock(ctx, "gate", libdlm.ModePR, 0)
		if err != nil {
			return err
		}
		return g.Unlock(ctx, 0)
	}
	return fmt.Errorf("role %q: want lead, follow or hold", role)
}
