// Package dlmtest is an in-process fake of a kernel DLM lockspace, for
// testing code built on libdlm without a kernel DLM, a daemon or root.
//
// A Lockspace holds resources and their locks as the kernel's does on a
// one-node cluster: the six modes and their compatibility, grant,
// conversion and wait queues in order, NoQueue, conversion deadlocks
// (and ConvDeadlk's demotion), the alternate modes, blocking callbacks,
// value blocks, cancel, forced unlock, persistent locks left as orphans
// and adopted again. Each Open is one process's handle on it, speaking
// the kernel's device ABI through a libdlm.Device, so the library under
// test runs unchanged; handles contend for resources as processes do.
// Device.Fail makes a handle's device fail, as a broken one would.
//
// It is not the kernel: there are no other nodes, no recovery, and no
// deadlock detection beyond conversion deadlocks. It needs Linux, as
// libdlm does.
package dlmtest
