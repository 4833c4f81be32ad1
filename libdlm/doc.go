// Package libdlm is the Go binding for applications to the Linux kernel
// DLM (distributed lock manager): pure Go, no cgo, over the kernel's
// devices /dev/misc/dlm-control and /dev/misc/dlm_<lockspace>.
//
// A Lockspace holds locks on named resources (1 to 64 bytes). A lock is
// held in one of six modes (NL, CR, CW, PR, PW, EX) with the VMS
// compatibility table (Compatible), converted between them, and can
// carry a 32-byte lock value block (ValBlk) and a blocking callback that
// tells its holder another one needs the resource. Across the nodes of a
// cluster the locks mean the same, once dlm_controld runs on each.
//
// # Calls
//
// Lockspace.Lock, Lock.Convert and Lock.Unlock wait for the kernel's
// answer; they take a context, and a context that ends cancels the
// request in the kernel (the call still returns only once the kernel has
// answered). LockAsync, ConvertAsync and UnlockAsync return at once and
// deliver a Result to a callback. Callbacks run in order on one goroutine
// per lockspace, which may call the library again.
//
// Errors match sentinel values with errors.Is: ErrWouldBlock (NoQueue),
// ErrDeadlock, ErrCancelled, ErrNotFound, ErrBusy, ErrUnlocked,
// ErrInvalidArgument (refused before reaching the kernel), ErrClosed,
// ErrNoDaemon, ErrNoLockspace.
//
// # Differences from the C libdlm
//
// Blocking callbacks get the mode that is blocked. Synchronous calls
// need no dispatch thread and cannot hang for want of one: the caller
// reads its own answer from the device, as libdlm_lt's calls do, and
// yet any number of goroutines may call at once. A goroutine of the
// library reads the device only for asynchronous operations and
// blocking callbacks, or for a caller while another one is reading. Unlocking with
// ValBlk writes the value the caller set, never uninitialised bytes.
// Creating and releasing report the kernel's errors.
//
// Mutex, RWMutex and Lock.Child are conveniences on top: cluster-wide
// mutexes, and VMS-style lock hierarchies.
package libdlm
