// Package configfs is the daemon's typed access to the kernel DLM's
// control files: /sys/kernel/config/dlm, /sys/kernel/dlm/<lockspace>, the
// lockspace uevents and the dlm-monitor device. It is not implemented yet.
package configfs
