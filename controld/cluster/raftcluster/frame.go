package raftcluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames carry the handshake and then consensus messages on a TCP
// connection:
//
//	length  4 bytes, big-endian: the length of what follows
//	payload
//	mac     32 bytes, only on an authenticated connection:
//	        HMAC-SHA256(session key, seq || payload), seq the frame's
//	        number on the connection as 8 bytes big-endian, from 0
//
// The length is checked against the limit before anything is allocated.
// The sequence number is not sent: both ends count, so a frame replayed,
// dropped or reordered by someone in the middle fails its MAC.

// MaxFrameSize bounds a frame's payload: a consensus message, and so a
// snapshot, must fit in one.
const MaxFrameSize = 64 << 20

const macSize = sha256.Size

// frameConn reads or writes frames on a stream, authenticated when key
// is set.
type frameConn struct {
	rw   io.ReadWriter
	key  []byte // session key; nil: no MAC
	max  int    // largest payload read
	seqR uint64 // next frame number read
	seqW uint64 // next frame number written
}

func (f *frameConn) mac(seq uint64, payload []byte) []byte {
	h := hmac.New(sha256.New, f.key)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	h.Write(s[:])
	h.Write(payload)
	return h.Sum(nil)
}

// appendFrame appends the encoded frame of payload to b.
func (f *frameConn) appendFrame(b, payload []byte) ([]byte, error) {
	if len(payload) > MaxFrameSize {
		return nil, fmt.Errorf("frame of %d bytes (max %d): %w", len(payload), MaxFrameSize, ErrTooLarge)
	}
	n := len(payload)
	if f.key != nil {
		n += macSize
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, payload...)
	if f.key != nil {
		b = append(b, f.mac(f.seqW, payload)...)
	}
	f.seqW++
	return b, nil
}

// writeFrame writes one frame in one Write call.
func (f *frameConn) writeFrame(payload []byte) error {
	b, err := f.appendFrame(make([]byte, 0, 4+len(payload)+macSize), payload)
	if err != nil {
		return err
	}
	_, err = f.rw.Write(b)
	return err
}

// readFrame reads one frame and returns its payload. A frame over the
// limit or cut short is ErrMalformed (wrapping io.ErrUnexpectedEOF when
// cut short); a wrong MAC is ErrAuth. A clean end of stream before a
// frame is io.EOF.
func (f *frameConn) readFrame() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.rw, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("frame header: %w: %w", ErrMalformed, err)
		}
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	overhead := int64(0)
	if f.key != nil {
		overhead = macSize
	}
	if n < overhead || n-overhead > int64(f.max) {
		return nil, fmt.Errorf("frame length %d (max %d): %w", n-overhead, f.max, ErrMalformed)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(f.rw, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("frame body: %w: %w", ErrMalformed, err)
	}
	payload := body[:n-overhead]
	if f.key != nil {
		if !hmac.Equal(body[n-overhead:], f.mac(f.seqR, payload)) {
			return nil, fmt.Errorf("frame %d: bad MAC: %w", f.seqR, ErrAuth)
		}
	}
	f.seqR++
	return payload, nil
}
