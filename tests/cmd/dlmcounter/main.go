// Command dlmcounter adds to a counter kept in the lock value block of a
// DLM resource, one increment per EX lock, from as many processes on as
// many nodes as run it. The lab's demo runs it on every node at once to
// show Go locks across nodes: the final value is exact only if the locks
// excluded each other cluster-wide.
//
// Usage:
//
//	dlmcounter [-lockspace demo] [-resource counter] [-n 1000] [-total 0]
//
// With -total, it keeps a null lock after its own increments (so the
// value block survives) until the counter reaches the total, then prints
// "counter <value>". It creates or joins the lockspace (root needed) and
// releases its share of it at the end.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/godlm/godlm/libdlm"
)

func main() {
	lsName := flag.String("lockspace", "demo", "lockspace to create or join")
	res := flag.String("resource", "counter", "resource whose value block holds the counter")
	n := flag.Int("n", 1000, "increments to add")
	total := flag.Uint64("total", 0, "after the increments, wait until the counter reaches this value")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*lsName, *res, *n, *total, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "dlmcounter:", err)
		os.Exit(1)
	}
}

func run(lsName, res string, n int, total uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ls, err := libdlm.NewLockspace(lsName)
	if err != nil {
		return err
	}
	defer ls.Release(false)
	l, err := ls.Lock(ctx, res, libdlm.ModeNL, libdlm.ValBlk)
	if err != nil {
		return err
	}
	defer l.Unlock(context.Background(), 0)
	t0 := time.Now()
	var v uint64
	for range n {
		if err := l.Convert(ctx, libdlm.ModeEX, libdlm.ValBlk); err != nil {
			return fmt.Errorf("convert to EX: %w", err)
		}
		b, _ := l.LVB()
		v = binary.LittleEndian.Uint64(b) + 1
		binary.LittleEndian.PutUint64(b, v)
		l.SetLVB(b)
		if err := l.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
			return fmt.Errorf("convert to NL: %w", err)
		}
	}
	if n > 0 {
		fmt.Printf("added %d in %.2f s (%.0f increments/s); counter was %d after the last one\n",
			n, time.Since(t0).Seconds(), float64(n)/time.Since(t0).Seconds(), v)
	}
	if total == 0 {
		return nil
	}
	for {
		if err := l.Convert(ctx, libdlm.ModePR, libdlm.ValBlk); err != nil {
			return fmt.Errorf("convert to PR: %w", err)
		}
		b, _ := l.LVB()
		v = binary.LittleEndian.Uint64(b)
		if err := l.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
			return fmt.Errorf("convert to NL: %w", err)
		}
		if v >= total {
			fmt.Printf("counter %d\n", v)
			if v != total {
				return fmt.Errorf("counter %d went past the total %d: increments were not exclusive", v, total)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("counter %d, waiting for %d: %w", v, total, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
