package dlmc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// golden builds a record by writing each field at its C offset.
type golden []byte

func (g golden) u32(off int, v uint32) golden { binary.NativeEndian.PutUint32(g[off:], v); return g }
func (g golden) u64(off int, v uint64) golden { binary.NativeEndian.PutUint64(g[off:], v); return g }
func (g golden) str(off int, s string) golden { copy(g[off:], s); return g }

func TestHeaderGolden(t *testing.T) {
	h := Header{Command: LockspaceNodes, Option: 3, Len: 136, Data: -7, Flags: 9, Name: "gfs0"}
	want := golden(make([]byte, 96)).
		u32(0, 0xD13CD13C).
		u32(4, 0x00010001).
		u32(8, 6).
		u32(12, 3).
		u32(16, 136).
		u32(20, 0xFFFFFFF9).
		u32(24, 9).
		u32(28, 0). // unused2
		str(32, "gfs0")
	got := h.Marshal()
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("Marshal (-want +got):\n%s", diff)
	}
	back, err := ParseHeader(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, back); diff != "" {
		t.Errorf("ParseHeader (-want +got):\n%s", diff)
	}
}

func TestHeaderName(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"", ""},
		{"a", "a"},
		{strings.Repeat("x", 64), strings.Repeat("x", 64)}, // no NUL on the wire
		{strings.Repeat("y", 70), strings.Repeat("y", 64)}, // cut
	} {
		b := Header{Command: DumpDebug, Len: HeaderSize, Name: tc.name}.Marshal()
		if len(b) != HeaderSize {
			t.Fatalf("len %d", len(b))
		}
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != tc.want {
			t.Errorf("name %q: got %q, want %q", tc.name, h.Name, tc.want)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	valid := Header{Command: DumpDebug, Len: HeaderSize}.Marshal()
	with := func(off int, v uint32) []byte {
		b := bytes.Clone(valid)
		binary.NativeEndian.PutUint32(b[off:], v)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short", valid[:95], ErrTruncated},
		{"magic", with(0, 0xD13CD13D), ErrBadMagic},
		{"major version", with(4, 0x00020001), ErrVersion},
		{"len below header", with(16, 95), ErrBadLength},
		{"len too large", with(16, HeaderSize+MaxPayload+1), ErrTooLarge},
		{"minor version ok", with(4, 0x0001FFFF), nil},
		{"largest len ok", with(16, HeaderSize+MaxPayload), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader(tc.in)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("ParseHeader: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ab"), 5000)} {
		var buf bytes.Buffer
		h := Header{Command: Join, Option: 4, Data: 0o600, Name: "tls1", Len: 12345 /* overwritten */}
		if err := WriteMessage(&buf, h, payload); err != nil {
			t.Fatal(err)
		}
		gh, gp, err := ReadMessage(&buf)
		if err != nil {
			t.Fatal(err)
		}
		h.Len = uint32(HeaderSize + len(payload))
		if diff := cmp.Diff(h, gh); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		if !bytes.Equal(gp, payload) {
			t.Errorf("payload %q, want %q", gp, payload)
		}
		if buf.Len() != 0 {
			t.Errorf("%d bytes left", buf.Len())
		}
	}
}

func TestReadMessageErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMessage(&buf, Header{Command: DumpDebug}, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"inside header", full[:50], io.ErrUnexpectedEOF},
		{"inside payload", full[:HeaderSize+2], io.ErrUnexpectedEOF},
		{"no payload", full[:HeaderSize], io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadMessage(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadMessage: %v, want %v", err, tc.want)
			}
		})
	}
	if err := WriteMessage(io.Discard, Header{}, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("WriteMessage of a large payload: %v, want ErrTooLarge", err)
	}
}

func TestCommandString(t *testing.T) {
	for c, want := range map[Command]string{
		DumpDebug: "DUMP_DEBUG", DumpRun: "DUMP_RUN", SetConfig: "SET_CONFIG",
		Join: "JOIN", Leave: "LEAVE", 55: "Command(55)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Command(%d).String() = %q, want %q", uint32(c), got, want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
		msg  string
	}{
		{"gfs0", nil, ""},
		{strings.Repeat("n", 64), nil, ""},
		{strings.Repeat("n", 65), ErrNameTooLong, "lockspace name is 65 bytes; the limit is 64"},
		{"", ErrBadName, "bad lockspace name: the name is empty"},
		{"a\x00b", ErrBadName, `bad lockspace name: "a\x00b" holds a NUL byte`},
	} {
		err := CheckName(tc.name)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckName(%q) = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err != nil && err.Error() != tc.msg {
			t.Errorf("CheckName(%q) message %q, want %q", tc.name, err, tc.msg)
		}
	}
}
