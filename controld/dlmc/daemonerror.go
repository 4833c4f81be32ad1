package dlmc

import (
	"fmt"
	"strings"
	"syscall"
	"unicode"
)

// DaemonError is a failure the daemon reported: a reply whose Data is a
// negative errno. It wraps the errno, so errors.Is(err, os.ErrPermission)
// and errors.Is(err, syscall.EEXIST) work, and for a lockspace the
// daemon does not know, [ErrNoLockspace].
type DaemonError struct {
	Command Command
	// Name is the lockspace the request named, "" if none.
	Name  string
	Errno syscall.Errno
	// Text is the daemon's explanation (Join and Leave reply payloads).
	// Error shows it, except for a refusal for lack of privilege.
	Text string
}

func (e *DaemonError) Error() string {
	var msg string
	switch {
	case e.Errno == syscall.EPERM || e.Errno == syscall.EACCES:
		// The daemon's text only repeats this; it stays in Text.
		switch e.Command {
		case Join:
			return "permission denied: joining a lockspace needs root"
		case Leave:
			return "permission denied: leaving a lockspace needs root"
		default:
			return fmt.Sprintf("permission denied: dlm_controld refused %v", e.Command)
		}
	case e.notFound():
		msg = fmt.Sprintf("lockspace %q not found", e.Name)
	default:
		msg = e.verb() + ": " + e.Errno.Error()
	}
	if e.Text != "" {
		msg += " (dlm_controld: " + e.Text + ")"
	}
	return msg
}

// Unwrap returns the errno, and ErrNoLockspace for ENOENT on a request
// that names an existing lockspace.
func (e *DaemonError) Unwrap() []error {
	if e.notFound() {
		return []error{e.Errno, ErrNoLockspace}
	}
	return []error{e.Errno}
}

func (e *DaemonError) notFound() bool {
	if e.Errno != syscall.ENOENT || e.Name == "" {
		return false
	}
	switch e.Command {
	case LockspaceInfo, NodeInfo, LockspaceNodes, DumpPlocks, Leave:
		return true
	}
	return false
}

func (e *DaemonError) verb() string {
	var v string
	switch e.Command {
	case Join:
		v = "joining lockspace"
	case Leave:
		v = "leaving lockspace"
	default:
		v = strings.ToLower(e.Command.String())
	}
	if e.Name != "" {
		v += fmt.Sprintf(" %q", e.Name)
	}
	return v
}

// daemonError builds the error for a reply with a negative Data.
func daemonError(h Header, req Header, payload []byte) *DaemonError {
	return &DaemonError{
		Command: req.Command,
		Name:    req.Name,
		Errno:   syscall.Errno(-int64(h.Data)),
		Text:    cleanText(payload),
	}
}

// maxText bounds the daemon text kept in a DaemonError.
const maxText = 512

// cleanText makes a reply payload printable on one line: invalid UTF-8
// becomes '?', and anything not printable a space — control characters,
// but also line and paragraph separators and the format characters that
// reorder a terminal's text.
func cleanText(p []byte) string {
	s := strings.ToValidUTF8(cstring(p), "?")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		s = strings.ToValidUTF8(s[:maxText], "") + "..."
	}
	return s
}
