package raftcluster

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the little binary formats of this package: unsigned
// varints, single bytes and length-prefixed byte strings, with every
// length checked against what is left. The first error sticks; later
// reads return zero values, so a decoder can read a whole record and
// check err once.
type reader struct {
	buf  []byte
	what string // what is being decoded, for error messages
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s: %w", r.what, fmt.Sprintf(format, args...), ErrMalformed)
	}
}

func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("%s: bad or truncated varint", field)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// uvarintMax reads a varint and checks it is at most max.
func (r *reader) uvarintMax(field string, max uint64) uint64 {
	v := r.uvarint(field)
	if r.err == nil && v > max {
		r.fail("%s: %d exceeds %d", field, v, max)
		return 0
	}
	return v
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.buf) < 1 {
		r.fail("%s: truncated", field)
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

// fixed returns the next n bytes, not copied.
func (r *reader) fixed(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.buf) < n {
		r.fail("%s: truncated (%d bytes left, %d needed)", field, len(r.buf), n)
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}

// bytes reads a varint length, at most max, and that many bytes, copied.
func (r *reader) bytes(field string, max int) []byte {
	n := r.uvarintMax(field+" length", uint64(max))
	b := r.fixed(field, int(n))
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// count reads a number of records that follow, each at least min bytes
// long, and checks that they fit in what is left, so a decoder never
// allocates for records that cannot be there.
func (r *reader) count(field string, min int) int {
	n := r.uvarint(field)
	if r.err == nil && n > uint64(len(r.buf)/min) {
		r.fail("%s: %d records cannot fit in %d bytes", field, n, len(r.buf))
		return 0
	}
	return int(n)
}

// end checks that nothing is left.
func (r *reader) end() error {
	if r.err == nil && len(r.buf) != 0 {
		r.fail("%d trailing bytes", len(r.buf))
	}
	return r.err
}

func appendBytes(b, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
