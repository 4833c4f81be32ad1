// Package wire is the protocol between the VM lab on the host and the
// agent inside each guest. It runs over a virtio-serial port, so that
// cutting the cluster network never cuts the test's own control channel.
//
// Each frame is a 4-byte big-endian length followed by that many bytes of
// JSON. Requests carry an ID; the agent answers each with one Response of
// the same ID, in any order, so several requests can be in flight at once.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest frame either side accepts. A larger length
// prefix means the stream is corrupt or not ours.
const MaxFrame = 64 << 20

// PortName is the virtio-serial port name the agent looks for.
const PortName = "org.godlm.agent"

// Op names what a Request asks for.
type Op string

// The operations the agent performs.
const (
	OpPing  Op = "ping"  // answer at once: the agent is ready
	OpExec  Op = "exec"  // run Argv (or Shell through /bin/sh -c)
	OpWrite Op = "write" // write Data to Path with Mode
	OpRead  Op = "read"  // read Path into Data
)

// Request is one call from the host to the agent.
type Request struct {
	ID    uint64   `json:"id"`
	Op    Op       `json:"op"`
	Argv  []string `json:"argv,omitempty"`
	Shell string   `json:"shell,omitempty"`
	Stdin []byte   `json:"stdin,omitempty"`
	// TimeoutMS bounds an exec; the process is killed when it expires.
	// Zero means no limit beyond the host's own.
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	Path      string `json:"path,omitempty"`
	Data      []byte `json:"data,omitempty"`
	Mode      uint32 `json:"mode,omitempty"`
}

// Response is the agent's answer to the Request with the same ID.
type Response struct {
	ID       uint64 `json:"id"`
	ExitCode int    `json:"exit_code"`
	Stdout   []byte `json:"stdout,omitempty"`
	Stderr   []byte `json:"stderr,omitempty"`
	Data     []byte `json:"data,omitempty"`
	// Err is set when the operation could not be carried out at all
	// (command not found, file unreadable, timeout); a command that ran
	// and failed reports that through ExitCode instead.
	Err string `json:"err,omitempty"`
}

// ErrFrameTooLarge is returned for a length prefix over MaxFrame.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// WriteFrame encodes v as one frame on w.
func WriteFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wire: encode: %w", err)
	}
	if len(body) > MaxFrame {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame from r and decodes it into v.
func ReadFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("wire: short frame: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("wire: decode: %w", err)
	}
	return nil
}
