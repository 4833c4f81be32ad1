package configfs

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// uevent builds a datagram from its header and environment entries, each
// NUL-terminated.
func uevent(header string, env ...string) []byte {
	return []byte(header + "\x00" + strings.Join(append(env, ""), "\x00"))
}

func TestParseUevent(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Event
		wantOK  bool
		wantErr string // "" means no error; else a piece of the message
	}{
		{
			name: "online",
			in:   []byte("online@/kernel/dlm/foo\x00ACTION=online\x00DEVPATH=/kernel/dlm/foo\x00SUBSYSTEM=dlm\x00LOCKSPACE=foo\x00SEQNUM=1234\x00"),
			want: Event{Kind: EventOnline, Lockspace: "foo", Seqnum: 1234, Env: map[string]string{
				"ACTION": "online", "DEVPATH": "/kernel/dlm/foo", "SUBSYSTEM": "dlm", "LOCKSPACE": "foo", "SEQNUM": "1234",
			}},
			wantOK: true,
		},
		{
			name: "offline with release recover",
			in: uevent("offline@/kernel/dlm/5141075516284506A6D4E65A59D83906", "ACTION=offline",
				"DEVPATH=/kernel/dlm/5141075516284506A6D4E65A59D83906", "SUBSYSTEM=dlm",
				"LOCKSPACE=5141075516284506A6D4E65A59D83906", "RELEASE_RECOVER=1", "SEQNUM=18446744073709551615"),
			want: Event{Kind: EventOffline, Lockspace: "5141075516284506A6D4E65A59D83906", Seqnum: 18446744073709551615, Env: map[string]string{
				"ACTION": "offline", "DEVPATH": "/kernel/dlm/5141075516284506A6D4E65A59D83906", "SUBSYSTEM": "dlm",
				"LOCKSPACE": "5141075516284506A6D4E65A59D83906", "RELEASE_RECOVER": "1", "SEQNUM": "18446744073709551615",
			}},
			wantOK: true,
		},
		{
			name:   "header only",
			in:     []byte("online@/kernel/dlm/bare\x00"),
			want:   Event{Kind: EventOnline, Lockspace: "bare", Env: map[string]string{}},
			wantOK: true,
		},
		{
			name:   "last entry not NUL-terminated",
			in:     []byte("offline@/kernel/dlm/x\x00LOCKSPACE=x\x00\x00VALUE=a=b"),
			want:   Event{Kind: EventOffline, Lockspace: "x", Env: map[string]string{"LOCKSPACE": "x", "VALUE": "a=b"}},
			wantOK: true,
		},
		{
			name:   "empty value and repeated identical key",
			in:     uevent("online@/kernel/dlm/x", "EMPTY=", "SUBSYSTEM=dlm", "SUBSYSTEM=dlm"),
			want:   Event{Kind: EventOnline, Lockspace: "x", Env: map[string]string{"EMPTY": "", "SUBSYSTEM": "dlm"}},
			wantOK: true,
		},
		{name: "add of a lockspace", in: uevent("add@/kernel/dlm/foo", "ACTION=add", "DEVPATH=/kernel/dlm/foo", "SUBSYSTEM=dlm", "LOCKSPACE=foo", "SEQNUM=1233")},
		{name: "remove of a lockspace", in: uevent("remove@/kernel/dlm/foo", "ACTION=remove", "DEVPATH=/kernel/dlm/foo", "SUBSYSTEM=dlm", "SEQNUM=1240")},
		{name: "add of a misc device", in: uevent("add@/devices/virtual/misc/dlm_foo", "ACTION=add", "DEVPATH=/devices/virtual/misc/dlm_foo", "SUBSYSTEM=misc", "MAJOR=10", "MINOR=125", "DEVNAME=dlm_foo", "SEQNUM=1235")},
		{name: "other subsystem online", in: uevent("online@/devices/system/cpu/cpu1", "ACTION=online", "DEVPATH=/devices/system/cpu/cpu1", "SUBSYSTEM=cpu", "SEQNUM=77")},
		{name: "deeper dlm path", in: uevent("online@/kernel/dlm/foo/bar", "ACTION=online")},
		{name: "dlm kset itself", in: uevent("online@/kernel/dlm", "ACTION=online")},
		{name: "not under kernel", in: uevent("online@/module/dlm/foo")},
		{name: "relative devpath", in: uevent("online@kernel/dlm/foo/x")},
		{name: "libudev", in: []byte("libudev\x00\xfe\xed\xca\xfe\x28\x00\x00\x00ACTION=online\x00")},
		{name: "libudev only magic", in: []byte("libudev\x00")},
		{name: "change", in: uevent("change@/kernel/dlm/foo", "ACTION=change")},

		{name: "empty", in: nil, wantErr: "empty"},
		{name: "empty slice", in: []byte{}, wantErr: "empty"},
		{name: "no NUL", in: []byte("online@/kernel/dlm/foo"), wantErr: "not NUL-terminated"},
		{name: "no at", in: uevent("online/kernel/dlm/foo", "ACTION=online"), wantErr: "not action@devpath"},
		{name: "only NUL", in: []byte("\x00"), wantErr: "not action@devpath"},
		{name: "empty action", in: uevent("@/kernel/dlm/foo"), wantErr: "not action@devpath"},
		{name: "empty devpath", in: uevent("online@"), wantErr: "not action@devpath"},
		{name: "entry without =", in: uevent("online@/kernel/dlm/foo", "ACTION=online", "BOGUS"), wantErr: "not KEY=VALUE"},
		{name: "entry without = elsewhere", in: uevent("add@/devices/x", "BOGUS"), wantErr: "not KEY=VALUE"},
		{name: "empty key", in: uevent("online@/kernel/dlm/foo", "=x"), wantErr: "not KEY=VALUE"},
		{name: "conflicting key", in: uevent("online@/kernel/dlm/foo", "LOCKSPACE=foo", "LOCKSPACE=bar"), wantErr: "two values"},
		{name: "ACTION disagrees", in: uevent("online@/kernel/dlm/foo", "ACTION=offline"), wantErr: "ACTION="},
		{name: "ACTION disagrees elsewhere", in: uevent("add@/devices/x", "ACTION=remove"), wantErr: "ACTION="},
		{name: "DEVPATH disagrees", in: uevent("online@/kernel/dlm/foo", "DEVPATH=/kernel/dlm/bar"), wantErr: "DEVPATH="},
		{name: "LOCKSPACE disagrees", in: uevent("offline@/kernel/dlm/foo", "LOCKSPACE=bar"), wantErr: "LOCKSPACE="},
		{name: "SUBSYSTEM disagrees", in: uevent("online@/kernel/dlm/foo", "SUBSYSTEM=block"), wantErr: "SUBSYSTEM="},
		{name: "bad SEQNUM", in: uevent("online@/kernel/dlm/foo", "SEQNUM=12a"), wantErr: "SEQNUM="},
		{name: "negative SEQNUM", in: uevent("online@/kernel/dlm/foo", "SEQNUM=-1"), wantErr: "SEQNUM="},
		{name: "empty lockspace", in: uevent("online@/kernel/dlm/", "ACTION=online"), wantErr: "empty"},
		{name: "dot-dot lockspace", in: uevent("offline@/kernel/dlm/..", "LOCKSPACE=.."), wantErr: "not a directory name"},
		{name: "long lockspace", in: uevent("online@/kernel/dlm/" + strings.Repeat("a", 65)), wantErr: "65 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseUevent(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseUevent() error = %v, want ErrMalformed mentioning %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("ParseUevent() error = %v", err)
			}
			if ok != tt.wantOK {
				t.Errorf("ParseUevent() ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseUevent() event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventStrings(t *testing.T) {
	tests := []struct {
		in   interface{ String() string }
		want string
	}{
		{EventOnline, "online"},
		{EventOffline, "offline"},
		{EventKind(0), "EventKind(0)"},
		{EventKind(7), "EventKind(7)"},
		{Event{Kind: EventOnline, Lockspace: "gfs0", Seqnum: 9}, `online lockspace "gfs0" (seqnum 9)`},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	seeds := [][]byte{
		[]byte("online@/kernel/dlm/foo\x00ACTION=online\x00DEVPATH=/kernel/dlm/foo\x00SUBSYSTEM=dlm\x00LOCKSPACE=foo\x00SEQNUM=1234\x00"),
		uevent("offline@/kernel/dlm/gfs0", "ACTION=offline", "DEVPATH=/kernel/dlm/gfs0", "SUBSYSTEM=dlm", "LOCKSPACE=gfs0", "RELEASE_RECOVER=1", "SEQNUM=5"),
		uevent("add@/kernel/dlm/foo", "ACTION=add"),
		uevent("add@/devices/virtual/misc/dlm_foo", "SUBSYSTEM=misc"),
		[]byte("libudev\x00\xfe\xed\xca\xfe"),
		[]byte("online@/kernel/dlm/"),
		[]byte("online@/kernel/dlm/..\x00"),
		[]byte("@\x00=\x00"),
		{},
		{0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := ParseUevent(b)
		switch {
		case err != nil:
			if ok {
				t.Fatalf("ok with error %v", err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		case ok:
			if verr := ValidLockspaceName(ev.Lockspace); verr != nil {
				t.Fatalf("ok event with bad lockspace: %v", verr)
			}
			if ev.Kind != EventOnline && ev.Kind != EventOffline {
				t.Fatalf("ok event with kind %v", ev.Kind)
			}
			if ev.Env == nil {
				t.Fatal("ok event without Env")
			}
			header := ev.Kind.String() + "@/kernel/dlm/" + ev.Lockspace + "\x00"
			if !strings.HasPrefix(string(b), header) {
				t.Fatalf("ok event %v from datagram %q", ev, b)
			}
		default:
			if ev.Kind != 0 || ev.Lockspace != "" || ev.Env != nil {
				t.Fatalf("not ok but event %+v", ev)
			}
		}
	})
}
