package dlmc

import (
	"encoding/binary"
	"fmt"
)

// Protocol constants (dlm_controld.h).
const (
	// Magic opens every header.
	Magic = 0xD13CD13C
	// Version is the protocol version written by [Header.Marshal];
	// peers accept any version with the same upper 16 bits.
	Version = 0x00010001
	// HeaderSize is the size of struct dlmc_header.
	HeaderSize = 96
	// MaxPayload is the largest payload accepted after a header (the
	// reference's DLMC_DUMP_SIZE).
	MaxPayload = 1 << 20
)

// Socket names, without the leading NUL of the abstract namespace.
const (
	QuerySocket   = "dlmc_query_sock"
	CommandSocket = "dlmc_sock"
)

const versionMajorMask = 0xFFFF0000

// Header is struct dlmc_header without its magic, version and unused
// fields, which [Header.Marshal] fills in and [ParseHeader] checks.
type Header struct {
	Command Command
	Option  uint32
	// Len is HeaderSize plus the payload's length. [WriteMessage] sets it.
	Len   uint32
	Data  int32
	Flags int32
	// Name is a lockspace name (or a run uuid, or a decimal nodeid for
	// FENCE_ACK): up to 64 bytes, not NUL-terminated when exactly 64.
	// Marshal cuts longer names to 64 bytes.
	Name string
}

// Byte offsets of the fields of struct dlmc_header.
const (
	offHdrMagic   = 0
	offHdrVersion = 4
	offHdrCommand = 8
	offHdrOption  = 12
	offHdrLen     = 16
	offHdrData    = 20
	offHdrFlags   = 24
	offHdrUnused  = 28
	offHdrName    = 32
)

var ne = binary.NativeEndian

// Marshal encodes h as a 96-byte dlmc_header with Magic and Version.
func (h Header) Marshal() []byte {
	return h.appendTo(make([]byte, 0, HeaderSize))
}

func (h Header) appendTo(b []byte) []byte {
	b = ne.AppendUint32(b, Magic)
	b = ne.AppendUint32(b, Version)
	b = ne.AppendUint32(b, uint32(h.Command))
	b = ne.AppendUint32(b, h.Option)
	b = ne.AppendUint32(b, h.Len)
	b = ne.AppendUint32(b, uint32(h.Data))
	b = ne.AppendUint32(b, uint32(h.Flags))
	b = ne.AppendUint32(b, 0)
	return appendFixed(b, h.Name, NameLen)
}

// appendFixed appends s cut or NUL-padded to exactly n bytes.
func appendFixed(b []byte, s string, n int) []byte {
	if len(s) > n {
		s = s[:n]
	}
	b = append(b, s...)
	for range n - len(s) {
		b = append(b, 0)
	}
	return b
}

// ParseHeader decodes the first HeaderSize bytes of b. It checks the
// magic ([ErrBadMagic]), the major version ([ErrVersion]) and that Len
// lies between HeaderSize ([ErrBadLength]) and HeaderSize+MaxPayload
// ([ErrTooLarge]). A short b gives [ErrTruncated].
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header of %d bytes, want %d: %w", len(b), HeaderSize, ErrTruncated)
	}
	if m := ne.Uint32(b[offHdrMagic:]); m != Magic {
		return Header{}, fmt.Errorf("header magic %#x: %w", m, ErrBadMagic)
	}
	if v := ne.Uint32(b[offHdrVersion:]); v&versionMajorMask != Version&versionMajorMask {
		return Header{}, fmt.Errorf("header version %#08x, want %#08x: %w", v, uint32(Version), ErrVersion)
	}
	h := Header{
		Command: Command(ne.Uint32(b[offHdrCommand:])),
		Option:  ne.Uint32(b[offHdrOption:]),
		Len:     ne.Uint32(b[offHdrLen:]),
		Data:    int32(ne.Uint32(b[offHdrData:])),
		Flags:   int32(ne.Uint32(b[offHdrFlags:])),
		Name:    cstring(b[offHdrName:HeaderSize]),
	}
	switch {
	case h.Len < HeaderSize:
		return Header{}, fmt.Errorf("%v header len %d: %w", h.Command, h.Len, ErrBadLength)
	case h.Len > HeaderSize+MaxPayload:
		return Header{}, fmt.Errorf("%v header len %d, limit %d: %w", h.Command, h.Len, HeaderSize+MaxPayload, ErrTooLarge)
	}
	return h, nil
}

// PayloadLen is the length of the payload that follows h.
func (h Header) PayloadLen() int { return int(h.Len) - HeaderSize }
