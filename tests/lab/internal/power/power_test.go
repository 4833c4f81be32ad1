package power

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	for _, r := range []Request{{1, ActionOff, "node3"}, {1 << 62, ActionMonitor, "node1"}} {
		got, err := ParseRequest(r.Line())
		if err != nil || got != r {
			t.Errorf("%+v: %+v %v", r, got, err)
		}
	}
	rep := Reply{ID: 7, Status: StatusFail, Message: "node 3\nis\tgone"}
	got, err := ParseReply(rep.Line())
	if diff := cmp.Diff(Reply{ID: 7, Status: StatusFail, Message: "node 3 is gone"}, got); err != nil || diff != "" {
		t.Errorf("reply: %v %s", err, diff)
	}
	if got, err := ParseReply("9 ok\n"); err != nil || got != (Reply{ID: 9, Status: StatusOK}) {
		t.Errorf("reply without message: %+v %v", got, err)
	}
}

func TestMalformed(t *testing.T) {
	for _, l := range []string{"", "1 off", "1 off node3 x", "x off node3", "1 explode node3", "1  node3", strings.Repeat("1", 600)} {
		if _, err := ParseRequest(l); !errors.Is(err, ErrMalformed) {
			t.Errorf("request %q: %v", l, err)
		}
	}
	for _, l := range []string{"", "1", "1 maybe", "x ok", strings.Repeat("1", 600)} {
		if _, err := ParseReply(l); !errors.Is(err, ErrMalformed) {
			t.Errorf("reply %q: %v", l, err)
		}
	}
}

func TestPlug(t *testing.T) {
	if Plug(3) != "node3" {
		t.Error(Plug(3))
	}
	for in, want := range map[string]int{"node3": 3, "5": 5, "node0": 0, "nodex": 0, "": 0} {
		got, err := ParsePlug(in)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("ParsePlug(%q) = %d, %v", in, got, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("1 off node3")
	f.Add("2 ok Powered OFF")
	f.Fuzz(func(t *testing.T, line string) {
		if r, err := ParseRequest(line); err == nil {
			if again, err := ParseRequest(r.Line()); err != nil || again != r {
				t.Fatalf("request %q: %+v %v", line, again, err)
			}
		}
		if r, err := ParseReply(line); err == nil {
			if _, err := ParseReply(r.Line()); err != nil {
				t.Fatalf("reply %q: %v", line, err)
			}
		}
	})
}
