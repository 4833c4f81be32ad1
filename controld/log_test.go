package controld

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/google/go-cmp/cmp"
)

// logCase is one way of building a logger and logging one record.
type logCase struct {
	name string
	log  func(*slog.Logger)
	// want is the text line without time and level, and the journal
	// entry's message and fields.
	text    string
	message string
	fields  map[string]string
}

var logCases = []logCase{
	{
		name:    "plain",
		log:     func(l *slog.Logger) { l.Info("joined", "ls", "gfs0", "nodes", 3) },
		text:    `msg=joined ls=gfs0 nodes=3`,
		message: `joined ls=gfs0 nodes=3`,
		fields:  map[string]string{"LS": "gfs0", "NODES": "3"},
	},
	{
		name:    "attrs before a group stay outside it",
		log:     func(l *slog.Logger) { l.With("a", 1).WithGroup("g").Info("m", "b", 2) },
		text:    `msg=m a=1 g.b=2`,
		message: `m a=1 g.b=2`,
		fields:  map[string]string{"A": "1", "G_B": "2"},
	},
	{
		name:    "nested groups",
		log:     func(l *slog.Logger) { l.WithGroup("g").With("a", 1).WithGroup("h").Info("m", "b", 2) },
		text:    `msg=m g.a=1 g.h.b=2`,
		message: `m g.a=1 g.h.b=2`,
		fields:  map[string]string{"G_A": "1", "G_H_B": "2"},
	},
	{
		name:    "group attribute and an inlined one",
		log:     func(l *slog.Logger) { l.Info("m", slog.Group("ls", "name", "x y"), slog.Group("", "c", 3)) },
		text:    `msg=m ls.name="x y" c=3`,
		message: `m ls.name="x y" c=3`,
		fields:  map[string]string{"LS_NAME": "x y", "C": "3"},
	},
	{
		name:    "empty group and empty attribute dropped",
		log:     func(l *slog.Logger) { l.WithGroup("g").Info("m", slog.Attr{}, slog.Group("e")) },
		text:    `msg=m`,
		message: `m`,
		fields:  map[string]string{},
	},
}

func TestLoggerText(t *testing.T) {
	for _, c := range logCases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			ring := NewRing(1 << 10)
			c.log(NewLogger(&out, slog.LevelInfo, ring))
			line := strings.TrimSpace(out.String())
			// time=... level=INFO msg=...
			_, rest, ok := strings.Cut(line, " level=INFO ")
			if !ok || !strings.HasPrefix(line, "time=") {
				t.Fatalf("stderr line %q lacks its time and level", line)
			}
			if diff := cmp.Diff(c.text, rest); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff("0 level=INFO "+c.text+"\n", ring.String()); diff != "" {
				t.Errorf("ring (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJournalHandler(t *testing.T) {
	for _, c := range logCases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			var gotFields map[string]string
			var gotPri journal.Priority
			send := func(m string, p journal.Priority, f map[string]string) error {
				got, gotFields, gotPri = append(got, m), f, p
				return nil
			}
			c.log(slog.New(NewJournalHandler(send, slog.LevelInfo)))
			if diff := cmp.Diff([]string{c.message}, got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.fields, gotFields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if gotPri != journal.PriInfo {
				t.Errorf("priority %d, want %d", gotPri, journal.PriInfo)
			}
		})
	}
}

func TestJournalLevels(t *testing.T) {
	var pris []journal.Priority
	send := func(_ string, p journal.Priority, _ map[string]string) error {
		pris = append(pris, p)
		return nil
	}
	l := slog.New(NewJournalHandler(send, slog.LevelDebug))
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	slog.New(NewJournalHandler(send, slog.LevelWarn)).Info("dropped")
	want := []journal.Priority{journal.PriDebug, journal.PriInfo, journal.PriWarning, journal.PriErr}
	if diff := cmp.Diff(want, pris); diff != "" {
		t.Errorf("priorities (-want +got):\n%s", diff)
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"ls":                          "LS",
		"join-time":                   "JOIN_TIME",
		"_private":                    "PRIVATE",
		"9lives":                      "LIVES",
		"":                            "FIELD",
		"ünïcode":                     "N_CODE",
		"a.b":                         "A_B",
		"x" + strings.Repeat("y", 80): "X" + strings.Repeat("Y", 63),
	} {
		if got := fieldName([]string{in}); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRingKeepsDebug checks that the ring gets debug records that the
// output's level drops, and that it forgets the oldest past its size.
func TestRingKeepsDebug(t *testing.T) {
	var out bytes.Buffer
	ring := NewRing(60)
	now := ring.start
	ring.now = func() time.Time { return now }
	l := NewLogger(&out, slog.LevelInfo, ring)
	l.Debug("first")
	now = now.Add(2 * time.Second)
	l.Debug("second")
	l.Debug("third")
	if out.Len() != 0 {
		t.Errorf("debug records reached the output: %q", out.String())
	}
	want := "2 level=DEBUG msg=second\n2 level=DEBUG msg=third\n"
	if diff := cmp.Diff(want, ring.String()); diff != "" {
		t.Errorf("ring (-want +got):\n%s", diff)
	}
}
