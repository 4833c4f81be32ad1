package dlmc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ReadMessage reads one header and the Len-HeaderSize payload bytes that
// follow it. A stream that ends before the first byte gives an error
// wrapping io.EOF; one that ends inside the message, io.ErrUnexpectedEOF.
// The payload's buffer grows with the bytes that arrive, not with the
// length the header declares.
func ReadMessage(r io.Reader) (Header, []byte, error) {
	return ReadRequest(r, MaxPayload)
}

// ReadRequest is ReadMessage for a server: a header that declares a
// payload over maxPayload bytes is refused with [ErrTooLarge] (and the
// header) before any of the payload is read.
func ReadRequest(r io.Reader, maxPayload int) (Header, []byte, error) {
	var buf [HeaderSize]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return Header{}, nil, fmt.Errorf("read dlmc header: %w", err)
	}
	h, err := ParseHeader(buf[:])
	if err != nil {
		return Header{}, nil, err
	}
	n := h.PayloadLen()
	if n > maxPayload {
		return h, nil, fmt.Errorf("%v payload of %d bytes, limit %d: %w", h.Command, n, maxPayload, ErrTooLarge)
	}
	if n == 0 {
		return h, []byte{}, nil
	}
	var payload bytes.Buffer
	got, err := io.CopyN(&payload, r, int64(n))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, nil, fmt.Errorf("read %v payload of %d bytes (got %d): %w", h.Command, n, got, err)
	}
	return h, payload.Bytes(), nil
}

// WriteMessage writes h, with Len set to cover payload, then payload, in
// one write. A payload over MaxPayload gives [ErrTooLarge].
func WriteMessage(w io.Writer, h Header, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%v payload of %d bytes, limit %d: %w", h.Command, len(payload), MaxPayload, ErrTooLarge)
	}
	h.Len = uint32(HeaderSize + len(payload))
	b := h.appendTo(make([]byte, 0, HeaderSize+len(payload)))
	b = append(b, payload...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %v message: %w", h.Command, err)
	}
	return nil
}
