package dlmc

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadRequest(t *testing.T) {
	msg := func(h Header, payload []byte) []byte {
		var b bytes.Buffer
		if err := WriteMessage(&b, h, payload); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	declare := func(n int) []byte {
		return Header{Command: SetConfig, Len: uint32(HeaderSize + n)}.Marshal()
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int
		payload string
		err     error
	}{
		{"no payload", msg(Header{Command: Lockspaces}, nil), 16, "", nil},
		{"payload at the limit", msg(Header{Command: SetConfig}, []byte("0123456789abcdef")), 16, "0123456789abcdef", nil},
		{"payload over the limit", msg(Header{Command: SetConfig}, []byte("0123456789abcdefg")), 16, "", ErrTooLarge},
		{"declared over the limit, not sent", declare(MaxPayload), 4096, "", ErrTooLarge},
		{"short payload", append(declare(100), "abc"...), 4096, "", io.ErrUnexpectedEOF},
		{"nothing", nil, 16, "", io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := ReadRequest(bytes.NewReader(tc.in), tc.max)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.payload, string(p)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			if errors.Is(err, ErrTooLarge) && h.Command != SetConfig {
				t.Errorf("a refused request's header: %+v, want its command", h)
			}
		})
	}
}

// TestReadMessageAllocatesWhatArrives: a header that declares a large
// payload costs only what is actually sent.
func TestReadMessageAllocatesWhatArrives(t *testing.T) {
	in := append(Header{Command: DumpDebug, Len: HeaderSize + MaxPayload}.Marshal(), "short"...)
	const runs = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, _, err := ReadMessage(bytes.NewReader(in)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated to read a 5-byte payload declared as %d bytes", per, MaxPayload)
	}
}
