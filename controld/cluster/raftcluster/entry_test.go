package raftcluster

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{
		{Kind: kindHello, Node: 1, Inc: 1},
		{Kind: kindFail, Node: MaxNodeID, Inc: 1<<64 - 1},
		{Kind: kindLeave, Node: 300, Inc: 7},
		{Kind: kindBatch, Node: 2, Inc: 9, Seq: 1, Msgs: [][]byte{{}}},
		{Kind: kindBatch, Node: 2, Inc: 9, Seq: 1 << 40, Msgs: [][]byte{[]byte("a"), make([]byte, 300), []byte("c")}},
	} {
		got, err := decodeEntry(e.encode())
		if err != nil {
			t.Errorf("%v: %v", e, err)
			continue
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("%v: round trip (-want +got):\n%s", e, diff)
		}
	}
}

func TestDecodeEntryErrors(t *testing.T) {
	hello := entry{Kind: kindHello, Node: 1, Inc: 1}.encode()
	batch := entry{Kind: kindBatch, Node: 1, Inc: 1, Seq: 1, Msgs: [][]byte{[]byte("xy")}}.encode()
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version", append([]byte{9}, hello[1:]...)},
		{"kind 0", []byte{entryVersion, 0, 1, 1}},
		{"kind 5", []byte{entryVersion, 5, 1, 1}},
		{"node 0", []byte{entryVersion, byte(kindHello), 0, 1}},
		{"node too large", []byte{entryVersion, byte(kindHello), 0x80, 0x80, 0x80, 0x80, 0x08, 1}},
		{"incarnation 0", []byte{entryVersion, byte(kindHello), 1, 0}},
		{"truncated varint", []byte{entryVersion, byte(kindHello), 0x80}},
		{"trailing byte", append(hello, 0)},
		{"batch seq 0", []byte{entryVersion, byte(kindBatch), 1, 1, 0, 1, 0}},
		{"empty batch", []byte{entryVersion, byte(kindBatch), 1, 1, 1, 0}},
		{"batch count beyond data", []byte{entryVersion, byte(kindBatch), 1, 1, 1, 0x7f, 0}},
		{"message cut short", batch[:len(batch)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := decodeEntry(tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("decodeEntry(%x) = %v, %v; want ErrMalformed", tc.in, e, err)
			}
		})
	}
}
