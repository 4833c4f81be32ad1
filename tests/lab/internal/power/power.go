// Package power is the protocol of the lab's power switch, between the
// fence agent in a guest (fence_godlm) and the test harness on the host,
// over a virtio-serial port that the cluster network's partitions do not
// cut.
//
// Each request and each reply is one line of ASCII:
//
//	request: <id> <action> <plug>
//	reply:   <id> <status> <message>
//
// The id is chosen by the agent and echoed in the reply, so an agent
// that reconnects can tell a late reply to an earlier request from its
// own. A plug names a VM: "node<N>". The statuses are "ok" (done; for
// status and monitor: reachable and on), "off" (status: powered off),
// and "fail" (not done; the message says why).
package power

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PortName is the virtio-serial port's name.
const PortName = "org.godlm.power"

// Actions a request may carry.
const (
	ActionOff     = "off"
	ActionOn      = "on"
	ActionReboot  = "reboot"
	ActionStatus  = "status"
	ActionList    = "list"
	ActionMonitor = "monitor"
)

// Reply statuses.
const (
	StatusOK   = "ok"
	StatusOff  = "off"
	StatusFail = "fail"
)

// MaxLine bounds a line, request or reply.
const MaxLine = 512

// ErrMalformed marks a line that is not a request or a reply.
var ErrMalformed = errors.New("malformed power switch line")

// Request asks the switch to act on a plug.
type Request struct {
	ID     uint64
	Action string
	Plug   string
}

// Reply answers a Request.
type Reply struct {
	ID      uint64
	Status  string
	Message string
}

// Line returns the request's line, with its newline.
func (r Request) Line() string { return fmt.Sprintf("%d %s %s\n", r.ID, r.Action, r.Plug) }

// Line returns the reply's line, with its newline; a message is made
// printable and kept to one line.
func (r Reply) Line() string {
	msg := strings.Map(func(c rune) rune {
		if c < ' ' || c > '~' {
			return ' '
		}
		return c
	}, r.Message)
	if max := MaxLine - 32; len(msg) > max {
		msg = msg[:max]
	}
	return fmt.Sprintf("%d %s %s\n", r.ID, r.Status, msg)
}

// ParseRequest parses a request line (with or without its newline).
func ParseRequest(line string) (Request, error) {
	f, err := fields(line, 3)
	if err != nil {
		return Request{}, err
	}
	id, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return Request{}, fmt.Errorf("%w: id %q", ErrMalformed, f[0])
	}
	switch f[1] {
	case ActionOff, ActionOn, ActionReboot, ActionStatus, ActionList, ActionMonitor:
	default:
		return Request{}, fmt.Errorf("%w: action %q", ErrMalformed, f[1])
	}
	return Request{ID: id, Action: f[1], Plug: f[2]}, nil
}

// ParseReply parses a reply line.
func ParseReply(line string) (Reply, error) {
	line = strings.TrimSuffix(line, "\n")
	if len(line) > MaxLine {
		return Reply{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(line))
	}
	idText, rest, _ := strings.Cut(line, " ")
	status, msg, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return Reply{}, fmt.Errorf("%w: id %q", ErrMalformed, idText)
	}
	switch status {
	case StatusOK, StatusOff, StatusFail:
	default:
		return Reply{}, fmt.Errorf("%w: status %q", ErrMalformed, status)
	}
	return Reply{ID: id, Status: status, Message: msg}, nil
}

func fields(line string, n int) ([]string, error) {
	line = strings.TrimSuffix(line, "\n")
	if len(line) > MaxLine {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(line))
	}
	f := strings.Split(line, " ")
	if len(f) != n {
		return nil, fmt.Errorf("%w: %q: want %d fields", ErrMalformed, line, n)
	}
	for _, w := range f {
		if w == "" {
			return nil, fmt.Errorf("%w: %q: empty field", ErrMalformed, line)
		}
	}
	return f, nil
}

// Plug is the plug name of node id.
func Plug(id int) string { return "node" + strconv.Itoa(id) }

// ParsePlug returns the node id a plug names: "node3", or "3".
func ParsePlug(plug string) (int, error) {
	id, err := strconv.Atoi(strings.TrimPrefix(plug, "node"))
	if err != nil || id < 1 {
		return 0, fmt.Errorf("plug %q: want node<N>", plug)
	}
	return id, nil
}
