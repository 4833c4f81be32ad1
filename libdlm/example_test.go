package libdlm_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/godlm/godlm/libdlm"
)

// Take an exclusive lock on a resource, cluster-wide, giving up after a
// while: the request is then cancelled in the kernel.
func ExampleLockspace_Lock() {
	ls, err := libdlm.NewLockspace("myapp")
	if err != nil {
		log.Fatal(err) // e.g. libdlm.ErrNoDaemon: start dlm_controld
	}
	defer ls.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := ls.Lock(ctx, "config-file", libdlm.ModeEX, 0)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Fatal("someone holds config-file")
	}
	if err != nil {
		log.Fatal(err)
	}
	// ... the only holder in the cluster ...
	if err := l.Unlock(ctx, 0); err != nil {
		log.Fatal(err)
	}
}

// A cluster-wide counter in the lock value block: read under EX,
// incremented, written back by the down-conversion to NL.
func ExampleLock_SetLVB() {
	ls, err := libdlm.NewLockspace("myapp")
	if err != nil {
		log.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	// Holding NL keeps the value alive between users.
	l, err := ls.Lock(ctx, "counter", libdlm.ModeNL, libdlm.ValBlk)
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Convert(ctx, libdlm.ModeEX, libdlm.ValBlk); err != nil {
		log.Fatal(err)
	}
	v, _ := l.LVB()
	n := binary.LittleEndian.Uint64(v) + 1
	binary.LittleEndian.PutUint64(v, n)
	l.SetLVB(v)
	if err := l.Convert(ctx, libdlm.ModeNL, libdlm.ValBlk); err != nil {
		log.Fatal(err)
	}
	fmt.Println("counter is now", n)
}

// Hold a lock until someone else needs it: the blocking callback tells
// which mode they asked for.
func ExampleWithBlockingCallback() {
	ls, err := libdlm.NewLockspace("myapp")
	if err != nil {
		log.Fatal(err)
	}
	defer ls.Close()
	wanted := make(chan libdlm.Mode, 1)
	l, err := ls.Lock(context.Background(), "cache", libdlm.ModePW, 0,
		libdlm.WithBlockingCallback(func(m libdlm.Mode) { wanted <- m }))
	if err != nil {
		log.Fatal(err)
	}
	m := <-wanted
	fmt.Println("another holder wants", m)
	// Flush, then give way.
	l.Unlock(context.Background(), 0)
}

// Completions can arrive asynchronously, on a callback or a channel.
func ExampleLockspace_LockAsync() {
	ls, err := libdlm.NewLockspace("myapp")
	if err != nil {
		log.Fatal(err)
	}
	defer ls.Close()
	done := make(chan libdlm.Result, 1)
	l, err := ls.LockAsync("job-42", libdlm.ModeEX, libdlm.NoQueue, func(r libdlm.Result) { done <- r })
	if err != nil {
		log.Fatal(err)
	}
	if r := <-done; errors.Is(r.Err, libdlm.ErrWouldBlock) {
		fmt.Println("job-42 is taken")
		return
	}
	defer l.Unlock(context.Background(), 0)
	fmt.Println("running job-42")
}

// Cluster-wide mutexes.
func ExampleRWMutex() {
	ls, err := libdlm.NewLockspace("myapp")
	if err != nil {
		log.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	m := ls.RWMutex("catalog")
	if err := m.RLock(ctx); err != nil { // many readers, cluster-wide
		log.Fatal(err)
	}
	m.RUnlock(ctx)
	if err := m.Lock(ctx); err != nil { // one writer
		log.Fatal(err)
	}
	m.Unlock(ctx)
}

// Nested locks, VMS-style: a record is locked only under its table, the
// table under its database.
func ExampleLock_Child() {
	ls, err := libdlm.NewLockspace("mydb")
	if err != nil {
		log.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	db, _ := ls.Lock(ctx, "sales", libdlm.ModeCW, 0)
	table, _ := db.Child(ctx, "orders", libdlm.ModeCW, 0)
	rec, _ := table.Child(ctx, "1042", libdlm.ModeEX, 0)
	fmt.Println(rec.Name()) // sales/orders/1042
	rec.Unlock(ctx, 0)
	table.Unlock(ctx, 0)
	db.Unlock(ctx, 0)
}
