// Package configfs is the daemon's kernel adapter: typed, thin access to the
// kernel DLM's control files. It covers the configfs tree under
// /sys/kernel/config/dlm (cluster attributes, comms, lockspace members), the
// per-lockspace sysfs directories under /sys/kernel/dlm, the dlm-monitor
// device and the lockspace online/offline uevents.
//
// The package holds no policy: it writes what it is told, in the format and
// order the kernel requires, and validates only what the kernel would refuse.
// Every path is derived from one root directory, "/" in production and a
// temporary directory in tests. Under a root other than "/" the files are
// ordinary files, so writes create them and directory removal first deletes
// the attribute files a real configfs or sysfs would drop by itself.
package configfs
