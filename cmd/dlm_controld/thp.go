package main

import "golang.org/x/sys/unix"

// init keeps the daemon's memory off transparent huge pages. On kernels
// that back anonymous memory with them by default (Debian's and RHEL's
// do), the Go heap, a few hundred KiB here, otherwise occupies whole
// 2 MiB pages: in the lab the daemon's anonymous memory went from about
// 4.4 MiB to 2.7 MiB with this. The flag covers every page faulted from
// now on; what the runtime touched before init ran (one or two huge
// pages) may stay huge. GODEBUG=disablethp=1 in the environment
// (dlm.service sets it) covers those as well, for 1.4 MiB. The flag is
// inherited by the programs the daemon runs, such as fence agents,
// which lose nothing by it. Best effort: a kernel that refuses it leaves
// the daemon as it was.
func init() {
	unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0)
}
