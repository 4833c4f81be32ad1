// Command notifylocks exercises the NOTIFY lock flag from userspace, on a
// kernel with the NOTIFY patches (kernel/patches): it creates or joins a
// lockspace with LSFlagNotify, waits until NOTIFY is in effect (every
// member opted in), then takes new EX locks with Notify and, at once,
// while the directory may not have confirmed them yet, converts each to
// PR and NL and unlocks it. A second unlock of the same lock must fail
// cleanly. It prints "ok <n>" and the lockspace's notify counters.
//
// Usage:
//
//	notifylocks [-lockspace nfy] [-prefix p] [-n 50] [-active 2m] [-optin=false]
//
// With -optin=false the lockspace is created without LSFlagNotify, and
// it checks that no NOTIFY was sent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/godlm/godlm/libdlm"
)

func main() {
	lsName := flag.String("lockspace", "nfy", "lockspace to create or join")
	prefix := flag.String("prefix", "p", "resource name prefix; each run uses new names")
	n := flag.Int("n", 50, "locks to take")
	active := flag.Duration("active", 2*time.Minute, "how long to wait for NOTIFY to take effect")
	optIn := flag.Bool("optin", true, "create the lockspace with LSFlagNotify; without, Notify has no effect")
	flag.Parse()
	if err := run(*lsName, *prefix, *n, *active, *optIn); err != nil {
		fmt.Fprintln(os.Stderr, "notifylocks:", err)
		os.Exit(1)
	}
}

func run(lsName, prefix string, n int, active time.Duration, optIn bool) error {
	var lsFlags libdlm.LockspaceFlags
	if optIn {
		lsFlags = libdlm.LSFlagNotify
	}
	ls, err := libdlm.NewLockspace(lsName, libdlm.WithLockspaceFlags(lsFlags))
	if err != nil {
		return err
	}
	defer ls.Release(false)

	sysfs := "/sys/kernel/dlm/" + lsName + "/"
	deadline := time.Now().Add(active)
	for optIn {
		b, err := os.ReadFile(sysfs + "notify_active")
		if err != nil {
			return fmt.Errorf("kernel without NOTIFY? %w", err)
		}
		if strings.TrimSpace(string(b)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NOTIFY not in effect after %v (notify_active %q)", active, strings.TrimSpace(string(b)))
		}
		time.Sleep(200 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for k := 1; k <= n; k++ {
		name := fmt.Sprintf("%s-%d", prefix, k)
		l, err := ls.Lock(ctx, name, libdlm.ModeEX, libdlm.Notify)
		if err != nil {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		for _, m := range []libdlm.Mode{libdlm.ModePR, libdlm.ModeNL, libdlm.ModeEX} {
			if err := l.Convert(ctx, m, 0); err != nil {
				return fmt.Errorf("convert %s to %v: %w", name, m, err)
			}
			if l.Mode() != m {
				return fmt.Errorf("convert %s to %v: holds %v", name, m, l.Mode())
			}
		}
		if err := l.Unlock(ctx, 0); err != nil {
			return fmt.Errorf("unlock %s: %w", name, err)
		}
		if err := l.Unlock(ctx, 0); !errors.Is(err, libdlm.ErrUnlocked) && !errors.Is(err, libdlm.ErrNotFound) {
			return fmt.Errorf("second unlock of %s: %v, want an error saying it is unlocked", name, err)
		}
	}
	// A conversion may not carry Notify.
	l, err := ls.Lock(ctx, prefix+"-conv", libdlm.ModeNL, libdlm.Notify)
	if err != nil {
		return err
	}
	if err := l.Convert(ctx, libdlm.ModeEX, libdlm.Notify); !errors.Is(err, libdlm.ErrInvalidArgument) {
		return fmt.Errorf("convert with Notify: %v, want ErrInvalidArgument", err)
	}
	if err := l.Unlock(ctx, 0); err != nil {
		return err
	}
	stats, err := os.ReadFile(sysfs + "notify_stats")
	if err != nil {
		return err
	}
	fields := strings.Fields(string(stats))
	if !optIn {
		// Without the opt-in, the kernel ignores Notify.
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "sent" && fields[i+1] != "0" {
				return fmt.Errorf("lockspace without the opt-in sent %s NOTIFY messages", fields[i+1])
			}
		}
	}
	fmt.Printf("ok %d\n%s\n", n, strings.Join(fields, " "))
	return nil
}
