package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	reqs := []Request{
		{ID: 1, Op: OpPing},
		{ID: 2, Op: OpExec, Shell: "echo hi", Stdin: []byte{0, 1, 0xff}, TimeoutMS: 5000},
		{ID: 3, Op: OpWrite, Path: "/tmp/x", Data: []byte("data\x00"), Mode: 0o600},
	}
	var buf bytes.Buffer
	for _, r := range reqs {
		if err := WriteFrame(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	var got []Request
	for {
		var r Request
		err := ReadFrame(&buf, &r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if d := cmp.Diff(reqs, got); d != "" {
		t.Errorf("round trip (-sent +got):\n%s", d)
	}
}

func TestReadFrameRejects(t *testing.T) {
	frame := func(n uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(b, body...)
	}
	tests := []struct {
		name string
		in   []byte
		want error // nil: any error
	}{
		{"too large", frame(MaxFrame+1, ""), ErrFrameTooLarge},
		{"short body", frame(10, "{}"), io.ErrUnexpectedEOF},
		{"not json", frame(3, "abc"), nil},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := ReadFrame(bytes.NewReader(tt.in), &r)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	WriteFrame(&buf, Request{ID: 7, Op: OpExec, Argv: []string{"ls"}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if err := ReadFrame(bytes.NewReader(b), &r); err != nil {
			return
		}
		// What decodes must encode and decode to the same request.
		var out bytes.Buffer
		if err := WriteFrame(&out, r); err != nil {
			t.Fatal(err)
		}
		var r2 Request
		if err := ReadFrame(&out, &r2); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(r, r2); d != "" {
			t.Fatal(d)
		}
	})
}
