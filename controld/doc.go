// Package controld is the core of dlm_controld: the lockspace engine,
// fencing and POSIX lock replication, driven by the cluster layer's
// ordered events. It is not implemented yet.
package controld
