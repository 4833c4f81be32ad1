package controld

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Ring is the daemon's debug log kept in memory, served to `dlm_tool
// dump`: the most recent lines up to a byte budget, each prefixed with
// the seconds since the daemon started, as the reference prints.
type Ring struct {
	mu    sync.Mutex
	start time.Time
	max   int
	size  int
	lines []string
}

// NewRing returns a ring holding at most max bytes.
func NewRing(max int) *Ring { return &Ring{start: time.Now(), max: max} }

// Add appends one line.
func (r *Ring) Add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := fmt.Sprintf("%d %s\n", int(time.Since(r.start).Seconds()), line)
	r.lines = append(r.lines, l)
	r.size += len(l)
	for r.size > r.max && len(r.lines) > 1 {
		r.size -= len(r.lines[0])
		r.lines = r.lines[1:]
	}
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

// logHandler writes records as text to w, each line prefixed with its
// syslog priority ("<6>") when journald reads the stream, so it files
// them at the right level; every record also goes to the Ring, debug
// ones included.
type logHandler struct {
	mu      *sync.Mutex
	w       io.Writer
	level   slog.Level
	journal bool
	ring    *Ring
	attrs   []slog.Attr
	group   string
}

// NewLogger returns the daemon's logger: stderr at level (with journald
// priority prefixes under systemd), and everything into ring.
func NewLogger(w io.Writer, level slog.Level, ring *Ring) *slog.Logger {
	return slog.New(&logHandler{
		mu: &sync.Mutex{}, w: w, level: level, ring: ring,
		journal: os.Getenv("JOURNAL_STREAM") != "",
	})
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.ring != nil || l >= h.level
}

func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	default:
		return 7
	}
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		k := a.Key
		if h.group != "" {
			k = h.group + "." + k
		}
		fmt.Fprintf(&b, " %s=%v", k, a.Value.Resolve().Any())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	line := b.String()
	if h.ring != nil {
		h.ring.Add(line)
	}
	if r.Level < h.level {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	if h.journal {
		_, err = fmt.Fprintf(h.w, "<%d>%s\n", priority(r.Level), line)
	} else {
		_, err = fmt.Fprintf(h.w, "%s %s %s\n", r.Time.Format("2006-01-02T15:04:05.000Z07:00"), r.Level, line)
	}
	return err
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &n
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}
