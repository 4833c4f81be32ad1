// Command gobench measures lock+unlock pairs per second through godlm's
// libdlm, the same loop as cbench/dlmbench.c does through the C libdlm.
//
// usage: gobench LOCKSPACE RESOURCE COUNT
// prints: pairs=<n> seconds=<s> rate=<pairs/s>
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
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gobench LOCKSPACE RESOURCE COUNT")
		os.Exit(2)
	}
	count, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench: bad count:", err)
		os.Exit(2)
	}
	if p := os.Getenv("GOBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gobench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ls, err := libdlm.NewLockspace(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
	defer ls.Close()
	ctx := context.Background()
	res := os.Args[2]
	t0 := time.Now()
	for range count {
		l, err := ls.Lock(ctx, res, libdlm.ModeEX, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gobench:", err)
			return
		}
		if err := l.Unlock(ctx, 0); err != nil {
			fmt.Fprintln(os.Stderr, "gobench:", err)
			os.Exit(1)
		}
	}
	s := time.Since(t0).Seconds()
	fmt.Printf("pairs=%d seconds=%.3f rate=%.1f\n", count, s, float64(count)/s)
}
