package configfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// ClusterAttr names a numeric attribute file of the configfs cluster
// directory (sys/kernel/config/dlm/cluster/<attr>).
type ClusterAttr string

// The numeric cluster attributes of Linux 6.1. Their values are global to
// the kernel; AttrTCPPort and AttrProtocol can only be changed before the
// first lockspace starts the DLM's connections.
const (
	AttrTCPPort          ClusterAttr = "tcp_port"          // listen and connect port, default 21064
	AttrBufferSize       ClusterAttr = "buffer_size"       // receive buffer size, at least 4096
	AttrRsbtblSize       ClusterAttr = "rsbtbl_size"       // resource hash buckets of new lockspaces
	AttrRecoverTimer     ClusterAttr = "recover_timer"     // stored, unused by the kernel
	AttrTossSecs         ClusterAttr = "toss_secs"         // seconds an unused resource is kept
	AttrScanSecs         ClusterAttr = "scan_secs"         // period of the toss scan
	AttrLogDebug         ClusterAttr = "log_debug"         // non-zero enables debug messages
	AttrLogInfo          ClusterAttr = "log_info"          // non-zero enables info messages
	AttrProtocol         ClusterAttr = "protocol"          // 0 for TCP, 1 for SCTP
	AttrMark             ClusterAttr = "mark"              // default SO_MARK of DLM sockets
	AttrNewRsbCount      ClusterAttr = "new_rsb_count"     // resource preallocation pool size
	AttrRecoverCallbacks ClusterAttr = "recover_callbacks" // 1 enables recovery callbacks for kernel users
)

// attrRule is the kernel's check on a written value.
type attrRule int

const (
	anyValue attrRule = iota
	nonZero
	port
	bufferSize
	protocol
)

// clusterAttrs maps every known attribute to the kernel's check on writes.
var clusterAttrs = map[ClusterAttr]attrRule{
	AttrTCPPort:          port,
	AttrBufferSize:       bufferSize,
	AttrRsbtblSize:       nonZero,
	AttrRecoverTimer:     nonZero,
	AttrTossSecs:         nonZero,
	AttrScanSecs:         nonZero,
	AttrLogDebug:         anyValue,
	AttrLogInfo:          anyValue,
	AttrProtocol:         protocol,
	AttrMark:             anyValue,
	AttrNewRsbCount:      anyValue,
	AttrRecoverCallbacks: anyValue,
}

// minBufferSize is the kernel's DLM_MAX_SOCKET_BUFSIZE, the smallest
// accepted buffer_size.
const minBufferSize = 4096

// maxClusterName is the longest cluster name the kernel keeps (its buffer
// is 64 bytes including the NUL).
const maxClusterName = 63

// checkClusterAttr validates a and v the way the kernel would.
func checkClusterAttr(a ClusterAttr, v uint64) error {
	rule, ok := clusterAttrs[a]
	if !ok {
		return fmt.Errorf("unknown cluster attribute %q: %w", string(a), ErrInvalid)
	}
	if v > math.MaxUint32 {
		return fmt.Errorf("%s %d does not fit in 32 bits: %w", a, v, ErrInvalid)
	}
	switch {
	case rule == nonZero && v == 0:
		return fmt.Errorf("%s must not be 0: %w", a, ErrInvalid)
	case rule == port && (v == 0 || v > math.MaxUint16):
		return fmt.Errorf("%s %d is not a port number (1..65535): %w", a, v, ErrInvalid)
	case rule == bufferSize && v < minBufferSize:
		return fmt.Errorf("%s %d is below the kernel minimum %d: %w", a, v, minBufferSize, ErrInvalid)
	case rule == protocol && v > 1:
		return fmt.Errorf("%s %d is neither 0 (TCP) nor 1 (SCTP): %w", a, v, ErrInvalid)
	}
	return nil
}

// CreateCluster creates the cluster directory
// sys/kernel/config/dlm/cluster; an existing one is fine.
func (k *Kernel) CreateCluster() error {
	if err := k.mkdirExist(clusterDir); err != nil {
		return fmt.Errorf("configfs: create cluster: %w", err)
	}
	if !k.real() {
		// The kernel creates these default groups with the cluster; a
		// test root gets them made here.
		for _, d := range []string{commsDir, spacesDir} {
			if err := k.mkdirExist(d); err != nil {
				return fmt.Errorf("configfs: create cluster: %w", err)
			}
		}
	}
	return nil
}

// ClearCluster removes the cluster directory and everything under it, as
// a stale daemon would have left it: every spaces/*/nodes/*, every
// spaces/*, every comms/*, then the cluster directory itself. Missing
// pieces are fine. It keeps going after a failure and returns all of them.
func (k *Kernel) ClearCluster() error {
	var errs []error
	spaces, err := k.subdirs(spacesDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, ls := range spaces {
		if err := k.removeSpace(ls); err != nil {
			errs = append(errs, err)
		}
	}
	comms, err := k.subdirs(commsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, c := range comms {
		if err := k.rmdir(commsDir + "/" + c); err != nil {
			errs = append(errs, err)
		}
	}
	if !k.real() {
		// Default groups in the real configfs; plain directories here.
		for _, d := range []string{spacesDir, commsDir} {
			if err := k.rmdir(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := k.rmdir(clusterDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configfs: clear cluster: %w", err)
	}
	return nil
}

// SetClusterName writes the cluster name, without a trailing newline (the
// kernel would keep it). The name must be 1..63 bytes without NUL, newline
// or '/'.
func (k *Kernel) SetClusterName(name string) error {
	if err := validClusterName(name); err != nil {
		return fmt.Errorf("configfs: set cluster name: %w", err)
	}
	if err := k.write(clusterDir+"/cluster_name", []byte(name)); err != nil {
		return fmt.Errorf("configfs: set cluster name %q: %w", name, err)
	}
	return nil
}

// validClusterName checks a cluster name.
func validClusterName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("cluster name is empty: %w", ErrInvalid)
	case len(name) > maxClusterName:
		return fmt.Errorf("cluster name is %d bytes, the kernel allows %d: %w", len(name), maxClusterName, ErrInvalid)
	case strings.ContainsAny(name, "\x00\n/"):
		return fmt.Errorf("cluster name %q contains NUL, newline or '/': %w", name, ErrInvalid)
	}
	return nil
}

// ClusterName reads the cluster name back.
func (k *Kernel) ClusterName() (string, error) {
	s, err := k.read(clusterDir + "/cluster_name")
	if err != nil {
		return "", fmt.Errorf("configfs: read cluster name: %w", err)
	}
	return s, nil
}

// SetClusterAttr writes v, in decimal, to the cluster attribute a. Unknown
// attributes and values the kernel would refuse are reported with an error
// wrapping ErrInvalid.
func (k *Kernel) SetClusterAttr(a ClusterAttr, v uint64) error {
	if err := checkClusterAttr(a, v); err != nil {
		return fmt.Errorf("configfs: set cluster attribute: %w", err)
	}
	if err := k.writeUint(clusterDir+"/"+string(a), v); err != nil {
		return fmt.Errorf("configfs: set %s to %d: %w", a, v, err)
	}
	return nil
}

// ClusterAttr reads the cluster attribute a back.
func (k *Kernel) ClusterAttr(a ClusterAttr) (uint64, error) {
	if _, ok := clusterAttrs[a]; !ok {
		return 0, fmt.Errorf("configfs: read cluster attribute: unknown attribute %q: %w", string(a), ErrInvalid)
	}
	v, err := k.readUint(clusterDir+"/"+string(a), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("configfs: read %s: %w", a, err)
	}
	return v, nil
}
