// Command pipebench is the syscall baseline for the libdlm rows of
// `make bench`, the Go side of cbench/pipebench.c. Each pair is a
// write(2) of 8 bytes to a non-blocking pipe and a read(2) of them back,
// made the way godlm's libdlm makes its device calls: the write as a
// plain syscall (the scheduler is told, since a DLM request can sleep),
// the read of an already queued answer as a raw one.
//
//	pipebench COUNT
//
// It prints pairs=<n> seconds=<s> rate=<pairs/s>.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pipebench COUNT")
		os.Exit(2)
	}
	count, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("bad count: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	b := make([]byte, 8)
	t0 := time.Now()
	for range count {
		if n, err := unix.Write(p[1], b); n != len(b) || err != nil {
			return fmt.Errorf("write: %d bytes, %v", n, err)
		}
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(p[0]), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e != 0 || n != uintptr(len(b)) {
			return fmt.Errorf("read: %d bytes, %v", n, e)
		}
	}
	s := time.Since(t0).Seconds()
	fmt.Printf("pairs=%d seconds=%.3f rate=%.1f\n", count, s, float64(count)/s)
	return nil
}
