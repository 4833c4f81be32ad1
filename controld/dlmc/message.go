package dlmc

import (
	"errors"
	"fmt"
	"io"
)

// ReadMessage reads one header and the Len-HeaderSize payload bytes that
// follow it. A stream that ends before the first byte gives an error
// wrapping io.EOF; one that ends inside the message, io.ErrUnexpectedEOF.
func ReadMessage(r io.Reader) (Header, []byte, error) {
	var buf [HeaderSize]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return Header{}, nil, fmt.Errorf("read dlmc header: %w", err)
	}
	h, err := ParseHeader(buf[:])
	if err != nil {
		return Header{}, nil, err
	}
	payload := make([]byte, h.PayloadLen())
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Header{}, nil, fmt.Errorf("read %v payload of %d bytes: %w", h.Command, len(payload), err)
	}
	return h, payload, nil
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
