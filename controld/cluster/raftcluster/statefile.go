package raftcluster

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
)

// The persisted state is one binary record:
//
//	magic      8 bytes "GDLMRAFT"
//	version    byte (stateVersion; version 1 lacks the flags)
//	flags      byte: bit 0 amnesiac (PersistentState.Amnesiac)
//	hardstate  term, vote, commit: uvarints
//	snapshot   index, term: uvarints; voter count, voter ids: uvarints;
//	           data: uvarint length, bytes
//	entries    count uvarint; each: index, term uvarints, type byte,
//	           data: uvarint length, bytes
//	checksum   4 bytes, big-endian CRC-32C of everything before
//
// Decoding checks the checksum first (a torn or bit-flipped file is
// ErrCorrupt), then the structure, then that the parts fit together the
// way the consensus library assumes (entries contiguous after the
// snapshot, terms not decreasing, commit within the log), since it
// panics on a state that breaks those rules.

const (
	stateMagic   = "GDLMRAFT"
	stateVersion = 2
	// flagAmnesiac is the flags bit of PersistentState.Amnesiac.
	flagAmnesiac = 1
	// MaxStateSize bounds a persisted state.
	MaxStateSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeState(st *PersistentState) ([]byte, error) {
	hs, snap := st.HardState, st.Snapshot
	md := snap.GetMetadata()
	b := make([]byte, 0, 64+len(snap.GetData()))
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	var flags byte
	if st.Amnesiac {
		flags |= flagAmnesiac
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, hs.GetTerm())
	b = binary.AppendUvarint(b, hs.GetVote())
	b = binary.AppendUvarint(b, hs.GetCommit())
	b = binary.AppendUvarint(b, md.GetIndex())
	b = binary.AppendUvarint(b, md.GetTerm())
	voters := md.GetConfState().GetVoters()
	b = binary.AppendUvarint(b, uint64(len(voters)))
	for _, v := range voters {
		b = binary.AppendUvarint(b, v)
	}
	b = appendBytes(b, snap.GetData())
	b = binary.AppendUvarint(b, uint64(len(st.Entries)))
	for _, e := range st.Entries {
		b = binary.AppendUvarint(b, e.GetIndex())
		b = binary.AppendUvarint(b, e.GetTerm())
		b = append(b, byte(e.GetType()))
		b = appendBytes(b, e.GetData())
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if len(b) > MaxStateSize {
		return nil, fmt.Errorf("persisted state of %d bytes: %w", len(b), ErrTooLarge)
	}
	if _, err := decodeState(b); err != nil {
		// Never write what cannot be read back.
		return nil, fmt.Errorf("encoding persisted state: %w", err)
	}
	return b, nil
}

func decodeState(b []byte) (*PersistentState, error) {
	if len(b) < len(stateMagic)+1+4 {
		return nil, fmt.Errorf("state of %d bytes is truncated: %w", len(b), ErrCorrupt)
	}
	if string(b[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("bad magic %q: %w", b[:len(stateMagic)], ErrCorrupt)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("checksum mismatch (truncated or damaged): %w", ErrCorrupt)
	}
	r := reader{buf: body[len(stateMagic):], what: "persisted state"}
	var flags byte
	switch v := r.byte("version"); {
	case r.err != nil:
	case v == stateVersion:
		if flags = r.byte("flags"); flags&^flagAmnesiac != 0 {
			return nil, fmt.Errorf("persisted state: unknown flags %#x: %w", flags, ErrMalformed)
		}
	case v != 1:
		return nil, fmt.Errorf("persisted state: version %d, want 1 or %d: %w", v, stateVersion, ErrMalformed)
	}
	hs := &raftpb.HardState{
		Term:   new(r.uvarint("term")),
		Vote:   new(r.uvarintMax("vote", MaxNodeID)),
		Commit: new(r.uvarint("commit")),
	}
	md := &raftpb.SnapshotMetadata{
		Index:     new(r.uvarint("snapshot index")),
		Term:      new(r.uvarint("snapshot term")),
		ConfState: raftpb.EnsureConfState(nil),
	}
	nv := r.count("voter count", 1)
	for range nv {
		md.ConfState.Voters = append(md.ConfState.Voters, r.uvarintMax("voter", MaxNodeID))
	}
	snap := &raftpb.Snapshot{Metadata: md, Data: r.bytes("snapshot data", MaxStateSize)}
	ne := r.count("entry count", 4)
	ents := make([]*raftpb.Entry, 0, ne)
	for range ne {
		e := &raftpb.Entry{Index: new(r.uvarint("entry index")), Term: new(r.uvarint("entry term"))}
		t := r.byte("entry type")
		e.Data = r.bytes("entry data", MaxStateSize)
		if r.err != nil {
			break
		}
		if t > byte(raftpb.EntryConfChangeV2) {
			r.fail("entry %d: unknown type %d", e.GetIndex(), t)
			break
		}
		e.Type = raftpb.EntryType(t).Enum()
		ents = append(ents, e)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	st := &PersistentState{HardState: hs, Snapshot: snap, Entries: ents, Amnesiac: flags&flagAmnesiac != 0}
	if err := checkState(st); err != nil {
		return nil, fmt.Errorf("persisted state: %w", err)
	}
	return st, nil
}

// checkState checks the invariants the consensus library relies on when
// it loads a state.
func checkState(st *PersistentState) error {
	md := st.Snapshot.GetMetadata()
	prevIndex, prevTerm := md.GetIndex(), md.GetTerm()
	if prevIndex == 0 && prevTerm != 0 {
		return fmt.Errorf("snapshot at index 0 with term %d: %w", prevTerm, ErrMalformed)
	}
	seen := map[uint64]bool{}
	for _, v := range md.GetConfState().GetVoters() {
		if v == 0 || seen[v] {
			return fmt.Errorf("voter list %v: zero or repeated id: %w", md.GetConfState().GetVoters(), ErrMalformed)
		}
		seen[v] = true
	}
	for _, e := range st.Entries {
		if e.GetIndex() != prevIndex+1 {
			return fmt.Errorf("entry %d follows %d: %w", e.GetIndex(), prevIndex, ErrMalformed)
		}
		if e.GetTerm() < prevTerm {
			return fmt.Errorf("entry %d has term %d after term %d: %w", e.GetIndex(), e.GetTerm(), prevTerm, ErrMalformed)
		}
		prevIndex, prevTerm = e.GetIndex(), e.GetTerm()
	}
	hs := st.HardState
	if hs.GetCommit() > prevIndex || hs.GetCommit() < md.GetIndex() {
		return fmt.Errorf("commit %d outside the log [%d, %d]: %w", hs.GetCommit(), md.GetIndex(), prevIndex, ErrMalformed)
	}
	if hs.GetTerm() < prevTerm {
		return fmt.Errorf("term %d older than the log's last term %d: %w", hs.GetTerm(), prevTerm, ErrMalformed)
	}
	return nil
}
