package configfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by errors about uevent datagrams that cannot be
// what the kernel sends.
var ErrMalformed = errors.New("malformed uevent")

// EventKind says what the kernel asks of the daemon for a lockspace.
type EventKind int

// The kinds of lockspace uevents. The zero EventKind is no event.
const (
	// EventOnline asks the daemon to join the lockspace
	// (uevent action "online").
	EventOnline EventKind = iota + 1
	// EventOffline asks the daemon to leave the lockspace
	// (uevent action "offline").
	EventOffline
)

// String returns the uevent action of k ("online" or "offline").
func (k EventKind) String() string {
	switch k {
	case EventOnline:
		return "online"
	case EventOffline:
		return "offline"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a DLM lockspace uevent. The kernel blocks the lockspace's
// creator (or releaser) until the daemon answers it with EventDone.
type Event struct {
	// Kind is what is asked.
	Kind EventKind
	// Lockspace is the lockspace's name.
	Lockspace string
	// Seqnum is the kernel's uevent sequence number (SEQNUM), 0 if absent.
	Seqnum uint64
	// Env holds every KEY=VALUE pair of the uevent, including ACTION,
	// DEVPATH, SUBSYSTEM, LOCKSPACE and SEQNUM, and flags of newer kernels
	// such as RELEASE_RECOVER=1 on offline events.
	Env map[string]string
}

// String describes e for logs.
func (e Event) String() string {
	return fmt.Sprintf("%s lockspace %q (seqnum %d)", e.Kind, e.Lockspace, e.Seqnum)
}

// libudevMagic starts the messages udevd re-broadcasts; they are not
// kernel uevents.
var libudevMagic = []byte("libudev\x00")

// The kset the kernel's lockspace kobjects belong to.
const (
	dlmSubsystem = "dlm"
	dlmDevpath   = "/kernel/dlm/"
)

// ParseUevent parses one kernel uevent datagram,
// "action@devpath\0KEY=VALUE\0KEY=VALUE\0...".
//
// For a DLM lockspace online or offline event (devpath exactly
// "/kernel/dlm/<lockspace>") it returns the event and ok true. Well-formed
// datagrams of any other kind, including add and remove events of
// lockspaces, other subsystems and libudev-framed messages, give ok false
// and no error. Datagrams that cannot come from the kernel give an error
// wrapping ErrMalformed: empty, no '@' or no NUL after the header, an
// environment entry without '=', a repeated key with another value,
// ACTION, DEVPATH or SUBSYSTEM disagreeing with the header, LOCKSPACE
// disagreeing with the devpath, an invalid lockspace name or SEQNUM.
func ParseUevent(b []byte) (ev Event, ok bool, err error) {
	if len(b) == 0 {
		return Event{}, false, fmt.Errorf("configfs: empty datagram: %w", ErrMalformed)
	}
	if bytes.HasPrefix(b, libudevMagic) {
		return Event{}, false, nil
	}
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		return Event{}, false, fmt.Errorf("configfs: header %q is not NUL-terminated: %w", clip(b), ErrMalformed)
	}
	header := string(b[:end])
	action, devpath, found := strings.Cut(header, "@")
	if !found || action == "" || devpath == "" {
		return Event{}, false, fmt.Errorf("configfs: header %q is not action@devpath: %w", clip(b[:end]), ErrMalformed)
	}
	env, err := parseEnv(b[end+1:])
	if err != nil {
		return Event{}, false, fmt.Errorf("configfs: %s event: %w", clip([]byte(header)), err)
	}
	if v, set := env["ACTION"]; set && v != action {
		return Event{}, false, fmt.Errorf("configfs: ACTION=%q disagrees with header %q: %w", clip([]byte(v)), clip([]byte(header)), ErrMalformed)
	}
	if v, set := env["DEVPATH"]; set && v != devpath {
		return Event{}, false, fmt.Errorf("configfs: DEVPATH=%q disagrees with header %q: %w", clip([]byte(v)), clip([]byte(header)), ErrMalformed)
	}

	var kind EventKind
	switch action {
	case "online":
		kind = EventOnline
	case "offline":
		kind = EventOffline
	default:
		return Event{}, false, nil
	}
	parts := strings.Split(devpath, "/")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "kernel" || parts[2] != dlmSubsystem {
		return Event{}, false, nil
	}
	ls := parts[3]
	if err := ValidLockspaceName(ls); err != nil {
		return Event{}, false, fmt.Errorf("configfs: %s event: %w: %w", clip([]byte(header)), err, ErrMalformed)
	}
	if v, set := env["SUBSYSTEM"]; set && v != dlmSubsystem {
		return Event{}, false, fmt.Errorf("configfs: %s event has SUBSYSTEM=%q: %w", header, clip([]byte(v)), ErrMalformed)
	}
	if v, set := env["LOCKSPACE"]; set && v != ls {
		return Event{}, false, fmt.Errorf("configfs: %s event has LOCKSPACE=%q: %w", header, clip([]byte(v)), ErrMalformed)
	}
	var seq uint64
	if v, set := env["SEQNUM"]; set {
		seq, err = strconv.ParseUint(v, 10, 64)
		if err != nil {
			return Event{}, false, fmt.Errorf("configfs: %s event has SEQNUM=%q: %w", header, clip([]byte(v)), ErrMalformed)
		}
	}
	return Event{Kind: kind, Lockspace: ls, Seqnum: seq, Env: env}, true, nil
}

// parseEnv parses the NUL-separated KEY=VALUE entries after the header.
// Empty entries (such as the one after the final NUL) are skipped; the
// last entry need not be NUL-terminated.
func parseEnv(b []byte) (map[string]string, error) {
	env := make(map[string]string)
	for len(b) > 0 {
		var entry []byte
		entry, b, _ = bytes.Cut(b, []byte{0})
		if len(entry) == 0 {
			continue
		}
		k, v, found := bytes.Cut(entry, []byte("="))
		if !found || len(k) == 0 {
			return nil, fmt.Errorf("environment entry %q is not KEY=VALUE: %w", clip(entry), ErrMalformed)
		}
		key, val := string(k), string(v)
		if old, dup := env[key]; dup && old != val {
			return nil, fmt.Errorf("environment key %q has two values: %w", clip(k), ErrMalformed)
		}
		env[key] = val
	}
	return env, nil
}

// clip shortens untrusted bytes for error messages.
func clip(b []byte) string {
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
