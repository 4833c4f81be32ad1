package libdlm

import "fmt"

// Mode is a lock mode. The six modes and their compatibility are the
// VMS lock manager's, which the kernel DLM implements.
type Mode int8

// Lock modes, from the least to the most restrictive.
const (
	ModeIV Mode = -1 // invalid: no mode granted (a lock still waiting)
	ModeNL Mode = 0  // null: holds nothing, keeps the lock (and its LVB) alive
	ModeCR Mode = 1  // concurrent read
	ModeCW Mode = 2  // concurrent write
	ModePR Mode = 3  // protected read: shared
	ModePW Mode = 4  // protected write: one writer, concurrent readers (CR)
	ModeEX Mode = 5  // exclusive
)

var modeNames = [...]string{"NL", "CR", "CW", "PR", "PW", "EX"}

// String returns the mode's usual two-letter name.
func (m Mode) String() string {
	if m >= ModeNL && m <= ModeEX {
		return modeNames[m]
	}
	if m == ModeIV {
		return "IV"
	}
	return fmt.Sprintf("Mode(%d)", int8(m))
}

// Valid tells whether m is one of the six modes a lock can be requested in.
func (m Mode) Valid() bool { return m >= ModeNL && m <= ModeEX }

// compat[a][b]: can a lock be granted in mode a while another holds b.
var compat = [6][6]bool{
	//        NL    CR     CW     PR     PW     EX
	/*NL*/ {true, true, true, true, true, true},
	/*CR*/ {true, true, true, true, true, false},
	/*CW*/ {true, true, true, false, false, false},
	/*PR*/ {true, true, false, true, false, false},
	/*PW*/ {true, true, false, false, false, false},
	/*EX*/ {true, false, false, false, false, false},
}

// Compatible tells whether locks in modes a and b can be held on one
// resource at the same time.
func Compatible(a, b Mode) bool {
	if !a.Valid() || !b.Valid() {
		return false
	}
	return compat[a][b]
}
