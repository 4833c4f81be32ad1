//go:build linux

package dlmtest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"

	"github.com/godlm/godlm/libdlm"
	"github.com/godlm/godlm/libdlm/dlmtest"
)

// increment is code under test: a counter kept in a lock value block.
func increment(ctx context.Context, ls *libdlm.Lockspace) (uint64, error) {
	l, err := ls.Lock(ctx, "counter", libdlm.ModeEX, libdlm.ValBlk)
	if err != nil {
		return 0, err
	}
	v, _ := l.LVB()
	n := binary.LittleEndian.Uint64(v) + 1
	binary.LittleEndian.PutUint64(v, n)
	l.SetLVB(v)
	return n, l.Unlock(ctx, libdlm.ValBlk)
}

// Two handles on one fake lockspace share the counter, as two processes
// on one node would, with no kernel DLM and no root.
func Example() {
	s := dlmtest.NewLockspace("test")
	a, _, err := s.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, _, err := s.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	// An NL lock keeps the resource, and its value, alive between users.
	if _, err := a.Lock(ctx, "counter", libdlm.ModeNL, 0); err != nil {
		log.Fatal(err)
	}
	for _, ls := range []*libdlm.Lockspace{a, b, a} {
		n, err := increment(ctx, ls)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("counter", n)
	}
	for _, l := range s.Locks() {
		fmt.Println(l.Resource, "granted", l.Granted)
	}
	// Output:
	// counter 1
	// counter 2
	// counter 3
	// counter granted NL
}

// A device that fails ends every waiting operation with
// libdlm.ErrDeviceFailed, so code under test can be shown to handle it.
func ExampleDevice_Fail() {
	s := dlmtest.NewLockspace("test")
	holder, _, _ := s.Open()
	defer holder.Close()
	waiter, dev, _ := s.Open()
	defer waiter.Close()
	ctx := context.Background()
	holder.Lock(ctx, "r", libdlm.ModeEX, 0)
	done := make(chan libdlm.Result)
	waiter.LockAsync("r", libdlm.ModeEX, 0, func(r libdlm.Result) { done <- r })
	dev.Fail()
	r := <-done
	fmt.Println(errors.Is(r.Err, libdlm.ErrDeviceFailed))
	// Output: true
}
