package raftcluster

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// A snapshot's data holds the cluster layer's replicated state and the
// StateMachine's snapshot, so both are restored together:
//
//	version  byte (snapshotVersion)
//	count    uvarint
//	count times, node ids strictly increasing:
//	  id uvarint (1..MaxNodeID), inc uvarint (>= 1), seq uvarint,
//	  status byte (0 failed, 1 member, 2 left)
//	sm       uvarint length, bytes (the StateMachine's Snapshot)
//
// Empty data is the state every fresh cluster starts from: no members
// and nothing for the StateMachine to restore.

const snapshotVersion = 1

// MaxSnapshotSize bounds the StateMachine's snapshot: a snapshot must
// fit in one frame on the network.
const MaxSnapshotSize = MaxFrameSize - 1<<20

func encodeSnapshot(s *clusterState, sm []byte) []byte {
	b := make([]byte, 0, 16+len(s.nodes)*16+len(sm))
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(len(s.nodes)))
	for _, id := range slices.Sorted(maps.Keys(s.nodes)) {
		r := s.nodes[id]
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, r.Inc)
		b = binary.AppendUvarint(b, r.Seq)
		b = append(b, byte(r.Status))
	}
	return appendBytes(b, sm)
}

// decodeSnapshot decodes snapshot data. Empty data gives an empty state
// and nil StateMachine bytes.
func decodeSnapshot(b []byte) (*clusterState, []byte, error) {
	s := newClusterState()
	if len(b) == 0 {
		return s, nil, nil
	}
	r := reader{buf: b, what: "snapshot"}
	if v := r.byte("version"); r.err == nil && v != snapshotVersion {
		return nil, nil, fmt.Errorf("snapshot: version %d, want %d: %w", v, snapshotVersion, ErrMalformed)
	}
	n := r.count("node count", 4)
	prev := 0
	for range n {
		id := int(r.uvarintMax("node id", MaxNodeID))
		rec := nodeRecord{Inc: r.uvarintMax("incarnation", MaxIncarnation), Seq: r.uvarint("seq")}
		status := memberStatus(r.byte("status"))
		if r.err != nil {
			break
		}
		switch {
		case id <= prev:
			r.fail("node id %d after %d: not increasing", id, prev)
		case rec.Inc == 0:
			r.fail("node %d: incarnation 0", id)
		case status > statusLeft:
			r.fail("node %d: status %d", id, status)
		}
		rec.Status = status
		s.nodes[id] = rec
		prev = id
	}
	sm := r.bytes("state machine snapshot", MaxSnapshotSize)
	if err := r.end(); err != nil {
		return nil, nil, err
	}
	if sm == nil {
		sm = []byte{}
	}
	return s, sm, nil
}
