// Package libdlm is the pure-Go binding for applications to the Linux
// kernel DLM, over /dev/misc/dlm-control and /dev/misc/dlm_<lockspace>.
// It is not implemented yet.
package libdlm
