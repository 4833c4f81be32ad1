package raftcluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/testing/protocmp"
)

func sampleState() *PersistentState {
	return &PersistentState{
		HardState: &raftpb.HardState{Term: new(uint64(7)), Vote: new(uint64(2)), Commit: new(uint64(12))},
		Snapshot: &raftpb.Snapshot{
			Data: encodeSnapshot(newClusterState(), []byte("sm")),
			Metadata: &raftpb.SnapshotMetadata{
				Index: new(uint64(10)), Term: new(uint64(5)),
				ConfState: raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}),
			},
		},
		Entries: []*raftpb.Entry{
			{Index: new(uint64(11)), Term: new(uint64(6)), Type: raftpb.EntryNormal.Enum(), Data: entry{Kind: kindHello, Node: 2, Inc: 1}.encode()},
			{Index: new(uint64(12)), Term: new(uint64(7)), Type: raftpb.EntryNormal.Enum(), Data: []byte{}},
			{Index: new(uint64(13)), Term: new(uint64(7)), Type: raftpb.EntryNormal.Enum(), Data: []byte("x")},
		},
	}
}

func TestPersisterRoundTrip(t *testing.T) {
	fp, err := NewFilePersister(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Persister{"memory": &MemoryPersister{}, "file": fp} {
		t.Run(name, func(t *testing.T) {
			if st, err := p.Load(); st != nil || err != nil {
				t.Fatalf("Load of nothing: %v, %v; want nil, nil", st, err)
			}
			want := sampleState()
			for range 2 { // a second Save replaces the first
				if err := p.Save(want); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.Load()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(fp.dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestFilePersisterCorrupt(t *testing.T) {
	good, err := encodeState(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := append([]byte{}, good...)
		b[i] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", []byte{}, ErrCorrupt},
		{"truncated", good[:len(good)-3], ErrCorrupt},
		{"cut in half", good[:len(good)/2], ErrCorrupt},
		{"bit flip in the body", flip(20), ErrCorrupt},
		{"bit flip in the checksum", flip(len(good) - 1), ErrCorrupt},
		{"bad magic", flip(0), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, StateFileName), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := NewFilePersister(dir)
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Load()
			if !errors.Is(err, tc.want) {
				t.Errorf("Load: %v, %v; want %v", st, err, tc.want)
			}
		})
	}
}

func TestEncodeStateRefusesInconsistent(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*PersistentState)
	}{
		{"gap in the log", func(s *PersistentState) { s.Entries = s.Entries[1:] }},
		{"term going down", func(s *PersistentState) { s.Entries[2].Term = new(uint64(6)) }},
		{"commit beyond the log", func(s *PersistentState) { s.HardState.Commit = new(uint64(14)) }},
		{"commit before the snapshot", func(s *PersistentState) { s.HardState.Commit = new(uint64(9)) }},
		{"term older than the log", func(s *PersistentState) { s.HardState.Term = new(uint64(6)) }},
		{"voter twice", func(s *PersistentState) { s.Snapshot.Metadata.ConfState.Voters = []uint64{1, 1} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := sampleState()
			tc.edit(st)
			if _, err := encodeState(st); !errors.Is(err, ErrMalformed) {
				t.Errorf("encodeState: %v, want ErrMalformed", err)
			}
		})
	}
}
