package controld

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// Ring is the daemon's debug log kept in memory, served to `dlm_tool
// dump`: the most recent lines up to a byte budget, each prefixed with
// the seconds since the daemon started, as the reference prints.
type Ring struct {
	mu    sync.Mutex
	start time.Time
	now   func() time.Time
	max   int
	size  int
	lines []string
}

// NewRing returns a ring holding at most max bytes.
func NewRing(max int) *Ring { return &Ring{start: time.Now(), now: time.Now, max: max} }

// Add appends one line.
func (r *Ring) Add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := fmt.Sprintf("%d %s\n", int(r.now().Sub(r.start).Seconds()), line)
	r.lines = append(r.lines, l)
	r.size += len(l)
	for r.size > r.max && len(r.lines) > 1 {
		r.size -= len(r.lines[0])
		r.lines = r.lines[1:]
	}
}

// Write adds each line of p, so that a Ring can sit under any
// slog.Handler that writes text.
func (r *Ring) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		r.Add(l)
	}
	return len(p), nil
}

// String returns the whole log.
func (r *Ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	for _, l := range r.lines {
		b.WriteString(l)
	}
	return b.String()
}

// NewLogger returns the daemon's logger. Records at level and above go
// to w as slog's text, or, when w is the standard error that journald
// reads, to the journal as structured entries (see JournalHandler).
// Every record, debug ones included, also goes to ring (when not nil),
// without the time, which the ring stamps itself.
func NewLogger(w io.Writer, level slog.Level, ring *Ring) *slog.Logger {
	var out slog.Handler
	if journalStream(w) {
		out = NewJournalHandler(journal.Send, level)
	} else {
		out = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	}
	if ring == nil {
		return slog.New(out)
	}
	return slog.New(Fanout(out, slog.NewTextHandler(ring, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: dropTime,
	})))
}

// journalStream reports whether w is this process's standard error
// and journald reads it (systemd sets JOURNAL_STREAM to its device and
// inode), with the journal's socket there to write to.
func journalStream(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || f.Fd() != 2 {
		return false
	}
	on, err := journal.StderrIsJournalStream()
	return err == nil && on && journal.Enabled()
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// Fanout returns a handler that passes every record to each of hs that
// is enabled for its level.
func Fanout(hs ...slog.Handler) slog.Handler { return fanout(hs) }

type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	n := make(fanout, len(f))
	for i, h := range f {
		n[i] = h.WithAttrs(as)
	}
	return n
}

func (f fanout) WithGroup(name string) slog.Handler {
	n := make(fanout, len(f))
	for i, h := range f {
		n[i] = h.WithGroup(name)
	}
	return n
}

// JournalSend sends one journal entry; journal.Send has this type.
type JournalSend func(message string, priority journal.Priority, fields map[string]string) error

// NewJournalHandler returns a handler that sends each record at level
// and above as one journal entry: MESSAGE is the record's message
// followed by its attributes as key=value (as the text handler prints
// them, so that `journalctl` shows the context), PRIORITY follows the
// level, and each attribute is also a field of its own, its key in
// capitals with groups joined by "_" (lockspace "gfs0" in group "ls"
// is LS_LOCKSPACE=gfs0), so `journalctl LOCKSPACE=gfs0` finds it.
func NewJournalHandler(send JournalSend, level slog.Level) slog.Handler {
	return &journalHandler{send: send, level: level}
}

type journalField struct{ key, text, field string }

type journalHandler struct {
	send   JournalSend
	level  slog.Level
	prefix []string       // the open groups
	attrs  []journalField // from WithAttrs, already under their groups
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	fields := append([]journalField{}, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		fields = flatten(fields, h.prefix, a)
		return true
	})
	var msg strings.Builder
	msg.WriteString(r.Message)
	vars := map[string]string{}
	for _, f := range fields {
		fmt.Fprintf(&msg, " %s=%s", f.key, quoteText(f.text))
		vars[f.field] = f.text
	}
	return h.send(msg.String(), journalPriority(r.Level), vars)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]journalField{}, h.attrs...)
	for _, a := range as {
		n.attrs = flatten(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = append(append([]string{}, h.prefix...), name)
	return &n
}

// flatten appends a's fields under the groups in prefix; a group
// attribute opens a further group, an empty one is dropped, and one
// with an empty key inlines its members.
func flatten(out []journalField, prefix []string, a slog.Attr) []journalField {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return out
	}
	if a.Value.Kind() == slog.KindGroup {
		inner := prefix
		if a.Key != "" {
			inner = append(append([]string{}, prefix...), a.Key)
		}
		for _, g := range a.Value.Group() {
			out = flatten(out, inner, g)
		}
		return out
	}
	path := append(append([]string{}, prefix...), a.Key)
	return append(out, journalField{
		key:   strings.Join(path, "."),
		text:  a.Value.String(),
		field: fieldName(path),
	})
}

// fieldName makes a journal field name from a key path: capitals,
// digits and underscores only, not starting with an underscore (those
// are journald's own) or a digit.
func fieldName(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, c := range strings.ToUpper(p) {
			switch {
			case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
				b.WriteRune(c)
			default:
				b.WriteByte('_')
			}
		}
	}
	s := strings.TrimLeft(b.String(), "_0123456789")
	if s == "" {
		return "FIELD"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func quoteText(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func journalPriority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}
