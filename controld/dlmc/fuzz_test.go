package dlmc

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzReadMessage(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteMessage(&buf, Header{Command: LockspaceInfo, Name: "gfs0"}, AppendLockspace(nil, Lockspace{Name: "gfs0"}))
	f.Add(buf.Bytes())
	f.Add(Header{Command: DumpDebug, Len: HeaderSize}.Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, payload, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Valid input re-encodes canonically: encoding the parse gives
		// bytes that parse to the same message and encode identically.
		var enc bytes.Buffer
		if err := WriteMessage(&enc, h, payload); err != nil {
			t.Fatalf("WriteMessage of a parsed message: %v", err)
		}
		h2, p2, err := ReadMessage(bytes.NewReader(enc.Bytes()))
		if err != nil {
			t.Fatalf("ReadMessage of a re-encoded message: %v", err)
		}
		if diff := cmp.Diff(h, h2); diff != "" {
			t.Fatalf("header changed (-first +second):\n%s", diff)
		}
		if !bytes.Equal(payload, p2) {
			t.Fatal("payload changed")
		}
		var enc2 bytes.Buffer
		_ = WriteMessage(&enc2, h2, p2)
		if !bytes.Equal(enc.Bytes(), enc2.Bytes()) {
			t.Fatal("encoding not stable")
		}
		// Everything up to the version's minor half, Unused2 and the
		// name's tail after a NUL is kept byte for byte.
		if !bytes.Equal(enc.Bytes()[8:28], in[8:28]) || !bytes.Equal(enc.Bytes()[HeaderSize:], in[HeaderSize:h.Len]) {
			t.Fatal("fields not preserved")
		}
		// Records in a payload parse without panicking.
		_, _ = ParseLockspaces(payload)
		_, _ = ParseNodes(payload)
		_, _ = ParseStates(payload)
	})
}

func FuzzParseStates(f *testing.F) {
	f.Add(AppendState(AppendState(nil, State{Type: StateDaemon, NodeID: 1, Str: "quorate=1 "}), State{Type: StateDaemonNode, Bin: []byte{1}}))
	f.Add([]byte{})
	f.Add(make([]byte, StateSize))
	f.Fuzz(func(t *testing.T, in []byte) {
		states, err := ParseStates(in)
		if err != nil {
			return
		}
		var enc []byte
		for _, s := range states {
			enc = AppendState(enc, s)
		}
		again, err := ParseStates(enc)
		if err != nil {
			t.Fatalf("ParseStates of a re-encoded stream: %v", err)
		}
		if diff := cmp.Diff(states, again); diff != "" {
			t.Fatalf("states changed (-first +second):\n%s", diff)
		}
		var enc2 []byte
		for _, s := range again {
			enc2 = AppendState(enc2, s)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not stable")
		}
		for _, s := range states {
			_ = s.Fields()
		}
	})
}
