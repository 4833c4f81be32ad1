package configfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
)

// maxCommAddrs is the kernel's DLM_MAX_ADDR_COUNT.
const maxCommAddrs = 3

// sockaddrSize is sizeof(struct sockaddr_storage), the exact size of one
// write to a comm's addr file.
const sockaddrSize = 128

// Linux address family numbers (sa_family_t values).
const (
	afINET  = 2
	afINET6 = 10
)

// Comm is one cluster node's entry in the configfs comms directory: how
// the kernel reaches the node.
type Comm struct {
	// NodeID is the node's cluster id; it must be positive. It also names
	// the comm directory.
	NodeID int
	// Addrs are the node's addresses, 1 to 3 of them, all of one family.
	// IPv4-mapped IPv6 addresses count as IPv4.
	Addrs []netip.Addr
	// Local marks the comm of the node the daemon runs on.
	Local bool
	// Mark is the SO_MARK of connections to this node; 0 leaves the
	// cluster-wide mark in effect.
	Mark uint32
}

// commDir is the directory of a node's comm, relative to the root.
func commDir(nodeID int) string { return commsDir + "/" + nodeName(nodeID) }

// validComm checks c the way the kernel would.
func validComm(c Comm) error {
	if c.NodeID <= 0 {
		return fmt.Errorf("node id %d is not positive: %w", c.NodeID, ErrInvalid)
	}
	if len(c.Addrs) == 0 || len(c.Addrs) > maxCommAddrs {
		return fmt.Errorf("node %d has %d addresses, the kernel takes 1 to %d: %w", c.NodeID, len(c.Addrs), maxCommAddrs, ErrInvalid)
	}
	first := c.Addrs[0].Unmap()
	for _, a := range c.Addrs {
		switch {
		case !a.IsValid():
			return fmt.Errorf("node %d has an invalid address: %w", c.NodeID, ErrInvalid)
		case a.Zone() != "":
			return fmt.Errorf("node %d address %s has a zone, which the kernel cannot take: %w", c.NodeID, a, ErrInvalid)
		case a.Unmap().Is4() != first.Is4():
			return fmt.Errorf("node %d mixes IPv4 and IPv6 addresses (%s, %s): %w", c.NodeID, first, a, ErrInvalid)
		}
	}
	return nil
}

// EncodeSockaddr returns a as the 128-byte struct sockaddr_storage the
// kernel expects in a comm's addr file, with port 0 and the family in host
// byte order. IPv4-mapped IPv6 addresses are encoded as IPv4. An invalid
// address encodes as all zeroes.
func EncodeSockaddr(a netip.Addr) [128]byte {
	var b [sockaddrSize]byte
	a = a.Unmap()
	switch {
	case a.Is4():
		// struct sockaddr_in: family, port (big endian), address.
		binary.NativeEndian.PutUint16(b[0:], afINET)
		ip := a.As4()
		copy(b[4:8], ip[:])
	case a.Is6():
		// struct sockaddr_in6: family, port, flowinfo, address, scope id.
		binary.NativeEndian.PutUint16(b[0:], afINET6)
		ip := a.As16()
		copy(b[8:24], ip[:])
	}
	return b
}

// AddComm creates the comm directory of c.NodeID and fills it in the order
// the kernel requires: nodeid, each address, local, then mark (the kernel
// refuses a mark before an address). If any step fails the directory is
// removed again. A comm that already exists is an error wrapping
// fs.ErrExist: remove it first. Invalid comms give an error wrapping
// ErrInvalid.
func (k *Kernel) AddComm(c Comm) error {
	if err := validComm(c); err != nil {
		return fmt.Errorf("configfs: add comm: %w", err)
	}
	dir := commDir(c.NodeID)
	if err := k.mkdir(dir); err != nil {
		return fmt.Errorf("configfs: add comm for node %d: %w", c.NodeID, err)
	}
	if err := k.fillComm(dir, c); err != nil {
		if rerr := k.rmdir(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", rerr))
		}
		return fmt.Errorf("configfs: add comm for node %d: %w", c.NodeID, err)
	}
	return nil
}

// fillComm writes the attributes of a freshly made comm directory.
func (k *Kernel) fillComm(dir string, c Comm) error {
	if err := k.writeInt(dir+"/nodeid", int64(c.NodeID)); err != nil {
		return err
	}
	for _, a := range c.Addrs {
		sa := EncodeSockaddr(a)
		if err := k.write(dir+"/addr", sa[:]); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	if c.Local {
		if err := k.write(dir+"/local", []byte("1")); err != nil {
			return err
		}
	}
	if c.Mark != 0 {
		if err := k.writeUint(dir+"/mark", uint64(c.Mark)); err != nil {
			return err
		}
	}
	return nil
}

// RemoveComm removes the comm directory of nodeID, which makes the kernel
// close its connection to the node and forget its addresses. A missing
// comm is fine.
func (k *Kernel) RemoveComm(nodeID int) error {
	if nodeID <= 0 {
		return fmt.Errorf("configfs: remove comm: node id %d is not positive: %w", nodeID, ErrInvalid)
	}
	if err := k.rmdir(commDir(nodeID)); err != nil {
		return fmt.Errorf("configfs: remove comm for node %d: %w", nodeID, err)
	}
	return nil
}

// Comms returns the sorted node ids of the existing comm directories.
// Directories whose name is not a node id are left out. Without a cluster
// directory there are no comms.
func (k *Kernel) Comms() ([]int, error) {
	ids, err := k.nodeDirs(commsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configfs: list comms: %w", err)
	}
	return ids, nil
}
