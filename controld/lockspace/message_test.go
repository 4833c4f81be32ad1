package lockspace

import "testing"

func TestSuperseded(t *testing.T) {
	stopped := func(ls string, k uint64) Msg {
		return Msg{Kind: KindStopped, Lockspace: ls, Change: k}
	}
	join := Msg{Kind: KindJoin, Lockspace: "a"}
	for _, tc := range []struct {
		name string
		q    []Msg
		want bool
	}{
		{"empty", nil, false},
		{"alone", []Msg{stopped("a", 1)}, false},
		{"a later change of the same lockspace", []Msg{stopped("a", 1), join, stopped("a", 3)}, true},
		{"another lockspace", []Msg{stopped("a", 1), stopped("b", 3)}, false},
		{"an earlier change", []Msg{stopped("a", 3), stopped("a", 2)}, false},
		{"the same change", []Msg{stopped("a", 3), stopped("a", 3)}, false},
		{"not a stopped", []Msg{join, stopped("a", 3)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Superseded(tc.q); got != tc.want {
				t.Errorf("Superseded(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}
