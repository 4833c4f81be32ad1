// Command dlmcounter adds to a counter kept in the lock value block of a
// DLM resource, one increment per EX lock, from as many processes on as
// many nodes as run it. The lab's demo runs it on every node at once to
// show Go locks across nodes: the final value is exact only if the locks
// excluded each other cluster-wide.
//
// Usage:
//
//	dlmcounter [-lockspace demo] [-resource counter] [-n 1000] [-total 0] [-start 0]
//
// With -start N, it first waits until N processes have arrived (counted
// in the value block of the resource "<resource>.start"), so that they
// all increment at the same time.
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
	start := flag.Uint64("start", 0, "first wait until this many processes have arrived")
	flag.Parse()
	if err := run(*lsName, *res, *n, *total, *start, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "dlmcounter:", err)
		os.Exit(1)
	}
}

func run(lsName, res string, n int, total, start uint64, timeout time.Duration) error {
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
	if start > 0 {
		b, err := ls.Lock(ctx, res+".start", libdlm.ModeNL, libdlm.ValBlk)
		if err != nil {
			return err
		}
		defer b.Unlock(context.Background(), 0)
		if _, err := add(ctx, b, 1); err != nil {
			return fmt.Errorf("arrive: %w", err)
		}
		if _, err := waitFor(ctx, b, start); err != nil {
			return fmt.Errorf("waiting for %d processes to arrive: %w", start, err)
		}
	}
	t0 := time.Now()
	var v uint64
	for range n {
		if v, err = add(ctx, l, 1); err != nil {
			return err
		}
	}
	if n > 0 {
		fmt.Printf("added %d in %.2f s (%.0f increments/s); counter was %d after the last one\n",
			n, time.Since(t0).Seconds(), float64(n)/time.Since(t0).Seconds(), v)
	}
	if total == 0 {
		return nil
	}
	if v, err = waitFor(ctx, l, total); err != nil {
		return err
	}
	fmt.Printf("counter %d\n", v)
	if v != total {
		return fmt.Errorf("counter %d went past the total %d: increments were not exclusive", v, total)
	}
	return nil
}

// add adds d to the counter in l's value block under EX, l being held
// in NL, and returns the new value.
func add(ctx context.Context, l *libdlm.Lock, d uint64) (uint64, error) {
	if err := l.Convert(ctx, libdlm.ModeEX, libdlm.ValBlk); err != nil {
		return 0, fmt.Errorf("convert to EX: %w", err)
	}
	b, _ := l.LVB()
	v := binary.LittleEndian.Uint64(b) + d
	binary.LittleEndian.PutUint64(b, v)
	l.SetLVB(b)
	if err := l.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
		return 0, fmt.Errorf("convert to NL: %w", err)
	}
	return v, nil
}

// waitFor reads the counter in l's value block under PR every 50 ms, l
// being held in NL, until it reaches at least target, and returns it.
func waitFor(ctx context.Context, l *libdlm.Lock, target uint64) (uint64, error) {
	for {
		if err := l.Convert(ctx, libdlm.ModePR, libdlm.ValBlk); err != nil {
			return 0, fmt.Errorf("convert to PR: %w", err)
		}
		b, _ := l.LVB()
		v := binary.LittleEndian.Uint64(b)
		if err := l.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
			return 0, fmt.Errorf("convert to NL: %w", err)
		}
		if v >= target {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("counter %d, waiting for %d: %w", v, target, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
