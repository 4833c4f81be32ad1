package dlmc

import "fmt"

// NodeSize is the size of struct dlmc_node.
const NodeSize = 40

// Node flags (Node.Flags, DLMC_NF_*).
const (
	NFMember      = 0x01 // member of the change
	NFStart       = 0x02 // its start message for the change was received
	NFDisallowed  = 0x04 // refused in the lockspace
	NFNeedFencing = 0x08
	NFCheckFS     = 0x10
)

// Which nodes a LOCKSPACE_NODES request asks for (Header.Option).
const (
	// NodesAll: members of the change in progress (else of the last
	// completed one) plus former members.
	NodesAll = 1
	// NodesMembers: members of the last completed change.
	NodesMembers = 2
	// NodesNext: members of the change in progress.
	NodesNext = 3
)

// Node is struct dlmc_node: one node as seen by a lockspace.
type Node struct {
	NodeID       int32
	Flags        uint32 // NF* bits
	AddedSeq     uint32
	RemovedSeq   uint32
	FailReason   int32
	FailWalltime uint64 // seconds since the epoch
	FailMonotime uint64 // seconds of the daemon's monotonic clock
}

// Byte offsets of the fields of struct dlmc_node.
const (
	offNodeID           = 0
	offNodeFlags        = 4
	offNodeAddedSeq     = 8
	offNodeRemovedSeq   = 12
	offNodeFailReason   = 16
	offNodeFailWalltime = 24 // after 4 bytes of padding
	offNodeFailMonotime = 32
)

// AppendNode appends n's 40-byte encoding to b.
func AppendNode(b []byte, n Node) []byte {
	b = ne.AppendUint32(b, uint32(n.NodeID))
	b = ne.AppendUint32(b, n.Flags)
	b = ne.AppendUint32(b, n.AddedSeq)
	b = ne.AppendUint32(b, n.RemovedSeq)
	b = ne.AppendUint32(b, uint32(n.FailReason))
	b = ne.AppendUint32(b, 0)
	b = ne.AppendUint64(b, n.FailWalltime)
	return ne.AppendUint64(b, n.FailMonotime)
}

// ParseNode decodes the first NodeSize bytes of b.
func ParseNode(b []byte) (Node, error) {
	if len(b) < NodeSize {
		return Node{}, fmt.Errorf("dlmc_node of %d bytes, want %d: %w", len(b), NodeSize, ErrTruncated)
	}
	return Node{
		NodeID:       int32(ne.Uint32(b[offNodeID:])),
		Flags:        ne.Uint32(b[offNodeFlags:]),
		AddedSeq:     ne.Uint32(b[offNodeAddedSeq:]),
		RemovedSeq:   ne.Uint32(b[offNodeRemovedSeq:]),
		FailReason:   int32(ne.Uint32(b[offNodeFailReason:])),
		FailWalltime: ne.Uint64(b[offNodeFailWalltime:]),
		FailMonotime: ne.Uint64(b[offNodeFailMonotime:]),
	}, nil
}

// ParseNodes decodes a LOCKSPACE_NODES reply payload: whole records only.
func ParseNodes(b []byte) ([]Node, error) {
	if len(b)%NodeSize != 0 {
		return nil, fmt.Errorf("%d bytes of dlmc_node records of %d: %w", len(b), NodeSize, ErrTruncated)
	}
	out := make([]Node, 0, len(b)/NodeSize)
	for off := 0; off < len(b); off += NodeSize {
		n, _ := ParseNode(b[off:])
		out = append(out, n)
	}
	return out, nil
}
