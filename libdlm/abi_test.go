package libdlm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/godlm/godlm/libdlm/internal/uapi"
	"github.com/google/go-cmp/cmp"
)

// layoutProgram prints the kernel UAPI's sizes, offsets and constants,
// compiled against Debian's linux-libc-dev headers.
const layoutProgram = `#include <stdio.h>
#include <stddef.h>
#include <linux/dlm_device.h>
#include <linux/dlmconstants.h>
#include <linux/dlm.h>
#define P(name, v) printf("%s %ld\n", name, (long)(v))
#define O(s, f) P(#s "." #f, offsetof(struct s, f))
int main(void) {
	P("sizeof.dlm_write_request", sizeof(struct dlm_write_request));
	P("sizeof.dlm_lock_result", sizeof(struct dlm_lock_result));
	O(dlm_write_request, version); O(dlm_write_request, cmd); O(dlm_write_request, is64bit);
	O(dlm_write_request, i.lock.mode); O(dlm_write_request, i.lock.namelen); O(dlm_write_request, i.lock.flags);
	O(dlm_write_request, i.lock.lkid); O(dlm_write_request, i.lock.parent); O(dlm_write_request, i.lock.xid);
	O(dlm_write_request, i.lock.timeout); O(dlm_write_request, i.lock.castparam); O(dlm_write_request, i.lock.castaddr);
	O(dlm_write_request, i.lock.bastparam); O(dlm_write_request, i.lock.bastaddr); O(dlm_write_request, i.lock.lksb);
	O(dlm_write_request, i.lock.lvb); O(dlm_write_request, i.lock.name);
	O(dlm_write_request, i.lspace.flags); O(dlm_write_request, i.lspace.minor); O(dlm_write_request, i.lspace.name);
	O(dlm_lock_result, version); O(dlm_lock_result, length); O(dlm_lock_result, user_astaddr);
	O(dlm_lock_result, user_astparam); O(dlm_lock_result, user_lksb); O(dlm_lock_result, lksb);
	O(dlm_lock_result, lksb.sb_status); O(dlm_lock_result, lksb.sb_lkid); O(dlm_lock_result, lksb.sb_flags);
	O(dlm_lock_result, lksb.sb_lvbptr); O(dlm_lock_result, bast_mode); O(dlm_lock_result, lvb_offset);
	P("DLM_DEVICE_VERSION_MAJOR", DLM_DEVICE_VERSION_MAJOR); P("DLM_DEVICE_VERSION_MINOR", DLM_DEVICE_VERSION_MINOR);
	P("DLM_USER_LOCK", DLM_USER_LOCK); P("DLM_USER_UNLOCK", DLM_USER_UNLOCK);
	P("DLM_USER_CREATE_LOCKSPACE", DLM_USER_CREATE_LOCKSPACE); P("DLM_USER_REMOVE_LOCKSPACE", DLM_USER_REMOVE_LOCKSPACE);
	P("DLM_USER_LSFLG_FORCEFREE", DLM_USER_LSFLG_FORCEFREE); P("DLM_USER_LVB_LEN", DLM_USER_LVB_LEN);
	P("DLM_LOCKSPACE_LEN", DLM_LOCKSPACE_LEN); P("DLM_RESNAME_MAXLEN", DLM_RESNAME_MAXLEN);
	P("DLM_LSFL_NEWEXCL", DLM_LSFL_NEWEXCL); /* DLM_LSFL_FS (4) is kernel-internal in 6.1 */
	P("DLM_LOCK_NL", DLM_LOCK_NL); P("DLM_LOCK_CR", DLM_LOCK_CR); P("DLM_LOCK_CW", DLM_LOCK_CW);
	P("DLM_LOCK_PR", DLM_LOCK_PR); P("DLM_LOCK_PW", DLM_LOCK_PW); P("DLM_LOCK_EX", DLM_LOCK_EX); P("DLM_LOCK_IV", DLM_LOCK_IV);
	P("DLM_LKF_NOQUEUE", DLM_LKF_NOQUEUE); P("DLM_LKF_CANCEL", DLM_LKF_CANCEL); P("DLM_LKF_CONVERT", DLM_LKF_CONVERT);
	P("DLM_LKF_VALBLK", DLM_LKF_VALBLK); P("DLM_LKF_QUECVT", DLM_LKF_QUECVT); P("DLM_LKF_IVVALBLK", DLM_LKF_IVVALBLK);
	P("DLM_LKF_CONVDEADLK", DLM_LKF_CONVDEADLK); P("DLM_LKF_PERSISTENT", DLM_LKF_PERSISTENT);
	P("DLM_LKF_NODLCKWT", DLM_LKF_NODLCKWT); P("DLM_LKF_NODLCKBLK", DLM_LKF_NODLCKBLK); P("DLM_LKF_EXPEDITE", DLM_LKF_EXPEDITE);
	P("DLM_LKF_NOQUEUEBAST", DLM_LKF_NOQUEUEBAST); P("DLM_LKF_HEADQUE", DLM_LKF_HEADQUE); P("DLM_LKF_NOORDER", DLM_LKF_NOORDER);
	P("DLM_LKF_ORPHAN", DLM_LKF_ORPHAN); P("DLM_LKF_ALTPR", DLM_LKF_ALTPR); P("DLM_LKF_ALTCW", DLM_LKF_ALTCW);
	P("DLM_LKF_FORCEUNLOCK", DLM_LKF_FORCEUNLOCK);
	P("DLM_SBF_DEMOTED", DLM_SBF_DEMOTED); P("DLM_SBF_VALNOTVALID", DLM_SBF_VALNOTVALID); P("DLM_SBF_ALTMODE", DLM_SBF_ALTMODE);
	P("DLM_ECANCEL", DLM_ECANCEL); P("DLM_EUNLOCK", DLM_EUNLOCK);
	return 0;
}
`

// TestLayoutMatchesKernelHeaders compiles a C program against the kernel
// UAPI headers and checks every size, offset and constant this package
// encodes by hand.
func TestLayoutMatchesKernelHeaders(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatalf("a C compiler is needed to check the ABI against the kernel headers (scripts/prereqs.sh installs gcc): %v", err)
	}
	if _, err := os.Stat("/usr/include/linux/dlm_device.h"); err != nil {
		t.Fatalf("kernel UAPI headers missing (install linux-libc-dev; scripts/prereqs.sh does): %v", err)
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "layout.c"), filepath.Join(dir, "layout")
	if err := os.WriteFile(src, []byte(layoutProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		f := strings.Fields(s.Text())
		v, _ := strconv.ParseInt(f[1], 10, 64)
		got[f[0]] = v
	}
	want := map[string]int64{
		"sizeof.dlm_write_request": uapi.RequestSize, "sizeof.dlm_lock_result": uapi.ResultSize,
		"dlm_write_request.version": uapi.OffReqVersion, "dlm_write_request.cmd": uapi.OffReqCmd, "dlm_write_request.is64bit": uapi.OffReqIs64bit,
		"dlm_write_request.i.lock.mode": uapi.OffLockMode, "dlm_write_request.i.lock.namelen": uapi.OffLockNamelen,
		"dlm_write_request.i.lock.flags": uapi.OffLockFlags, "dlm_write_request.i.lock.lkid": uapi.OffLockLkid,
		"dlm_write_request.i.lock.parent": uapi.OffLockParent, "dlm_write_request.i.lock.xid": uapi.OffLockXid,
		"dlm_write_request.i.lock.timeout": uapi.OffLockTimeout, "dlm_write_request.i.lock.castparam": uapi.OffLockCastparam,
		"dlm_write_request.i.lock.castaddr": uapi.OffLockCastaddr, "dlm_write_request.i.lock.bastparam": uapi.OffLockBastparam,
		"dlm_write_request.i.lock.bastaddr": uapi.OffLockBastaddr, "dlm_write_request.i.lock.lksb": uapi.OffLockLksb,
		"dlm_write_request.i.lock.lvb": uapi.OffLockLVB, "dlm_write_request.i.lock.name": uapi.OffLockName,
		"dlm_write_request.i.lspace.flags": uapi.OffLspaceFlags, "dlm_write_request.i.lspace.minor": uapi.OffLspaceMinor,
		"dlm_write_request.i.lspace.name": uapi.OffLspaceName,
		"dlm_lock_result.version":         uapi.OffResVersion, "dlm_lock_result.length": uapi.OffResLength,
		"dlm_lock_result.user_astaddr": uapi.OffResAstaddr, "dlm_lock_result.user_astparam": uapi.OffResAstparam,
		"dlm_lock_result.user_lksb": uapi.OffResLksb, "dlm_lock_result.lksb": uapi.OffResStatus,
		"dlm_lock_result.lksb.sb_status": uapi.OffResStatus, "dlm_lock_result.lksb.sb_lkid": uapi.OffResLkid,
		"dlm_lock_result.lksb.sb_flags": uapi.OffResSbFlags, "dlm_lock_result.lksb.sb_lvbptr": uapi.OffResLvbptr,
		"dlm_lock_result.bast_mode": uapi.OffResBastMode, "dlm_lock_result.lvb_offset": uapi.OffResLvbOffset,
		"DLM_DEVICE_VERSION_MAJOR": uapi.VersionMajor, "DLM_DEVICE_VERSION_MINOR": uapi.VersionMinor,
		"DLM_USER_LOCK": uapi.CmdLock, "DLM_USER_UNLOCK": uapi.CmdUnlock,
		"DLM_USER_CREATE_LOCKSPACE": uapi.CmdCreateLockspace, "DLM_USER_REMOVE_LOCKSPACE": uapi.CmdRemoveLockspace,
		"DLM_USER_LSFLG_FORCEFREE": removeForceFree, "DLM_USER_LVB_LEN": LVBLen,
		"DLM_LOCKSPACE_LEN": MaxNameLen, "DLM_RESNAME_MAXLEN": MaxNameLen,
		"DLM_LSFL_NEWEXCL": int64(LSFlagNewExcl),
		"DLM_LOCK_NL":      int64(ModeNL), "DLM_LOCK_CR": int64(ModeCR), "DLM_LOCK_CW": int64(ModeCW),
		"DLM_LOCK_PR": int64(ModePR), "DLM_LOCK_PW": int64(ModePW), "DLM_LOCK_EX": int64(ModeEX), "DLM_LOCK_IV": int64(ModeIV),
		"DLM_LKF_NOQUEUE": int64(NoQueue), "DLM_LKF_CANCEL": int64(cancelFlag), "DLM_LKF_CONVERT": int64(Convert),
		"DLM_LKF_VALBLK": int64(ValBlk), "DLM_LKF_QUECVT": int64(QueCvt), "DLM_LKF_IVVALBLK": int64(IVValBlk),
		"DLM_LKF_CONVDEADLK": int64(ConvDeadlk), "DLM_LKF_PERSISTENT": int64(Persistent),
		"DLM_LKF_NODLCKWT": int64(NoDlckWt), "DLM_LKF_NODLCKBLK": int64(NoDlckBlk), "DLM_LKF_EXPEDITE": int64(Expedite),
		"DLM_LKF_NOQUEUEBAST": int64(NoQueueBast), "DLM_LKF_HEADQUE": int64(HeadQue), "DLM_LKF_NOORDER": int64(NoOrder),
		"DLM_LKF_ORPHAN": int64(Orphan), "DLM_LKF_ALTPR": int64(AltPR), "DLM_LKF_ALTCW": int64(AltCW),
		"DLM_LKF_FORCEUNLOCK": int64(ForceUnlock),
		"DLM_SBF_DEMOTED":     SBDemoted, "DLM_SBF_VALNOTVALID": SBValNotValid, "DLM_SBF_ALTMODE": SBAltMode,
		"DLM_ECANCEL": statusECancel, "DLM_EUNLOCK": statusEUnlock,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("our encoding vs the kernel headers (-ours +kernel):\n%s", d)
	}
}

func TestEncodeLockRequest(t *testing.T) {
	var lvb [LVBLen]byte
	copy(lvb[:], "value")
	b := lockRequest{mode: ModePR, flags: ValBlk | Convert, lkid: 7, token: 42, bast: true, lvb: &lvb, name: "res"}.encode()
	u32 := func(o int) uint32 { return binary.NativeEndian.Uint32(b[o:]) }
	u64 := func(o int) uint64 { return binary.NativeEndian.Uint64(b[o:]) }
	got := []uint64{uint64(len(b)), uint64(u32(0)), uint64(b[uapi.OffReqCmd]), uint64(b[uapi.OffReqIs64bit]), uint64(b[uapi.OffLockMode]),
		uint64(b[uapi.OffLockNamelen]), uint64(u32(uapi.OffLockFlags)), uint64(u32(uapi.OffLockLkid)), u64(uapi.OffLockCastparam),
		u64(uapi.OffLockCastaddr), u64(uapi.OffLockBastparam), u64(uapi.OffLockBastaddr), u64(uapi.OffLockLksb)}
	want := []uint64{123, 6, uapi.CmdLock, 1, 3, 3, 0xc, 7, 42, castMarker, 42, bastMarker, 42}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request fields (-want +got):\n%s", d)
	}
	if string(b[uapi.OffLockLVB:uapi.OffLockLVB+5]) != "value" || string(b[uapi.OffLockName:]) != "res" {
		t.Errorf("lvb or name misplaced: %q", b)
	}
	// Without a blocking callback the kernel must get no bast address.
	b = lockRequest{mode: ModeEX, token: 1, name: "r"}.encode()
	if binary.NativeEndian.Uint64(b[uapi.OffLockBastaddr:]) != 0 {
		t.Error("bastaddr set without a blocking callback")
	}
}

func result(addr, param uint64, status int32, lkid uint32, sbflags, bastMode byte, lvb string) []byte {
	b := make([]byte, uapi.ResultSize)
	binary.NativeEndian.PutUint32(b[0:], uapi.VersionMajor)
	binary.NativeEndian.PutUint64(b[uapi.OffResAstaddr:], addr)
	binary.NativeEndian.PutUint64(b[uapi.OffResAstparam:], param)
	binary.NativeEndian.PutUint32(b[uapi.OffResStatus:], uint32(status))
	binary.NativeEndian.PutUint32(b[uapi.OffResLkid:], lkid)
	b[uapi.OffResSbFlags] = sbflags
	b[uapi.OffResBastMode] = bastMode
	if lvb != "" {
		binary.NativeEndian.PutUint32(b[uapi.OffResLvbOffset:], uapi.ResultSize)
		v := make([]byte, LVBLen)
		copy(v, lvb)
		b = append(b, v...)
	}
	return b
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want astResult
		err  bool
	}{
		{"grant with lvb", result(castMarker, 9, 0, 5, SBValNotValid, 0, "abc"),
			astResult{token: 9, lkid: 5, sbFlags: SBValNotValid, lvb: append([]byte("abc"), make([]byte, LVBLen-3)...)}, false},
		{"would block", result(castMarker, 9, -11, 5, 0, 0, ""), astResult{token: 9, lkid: 5, status: -11}, false},
		{"blocking", result(bastMarker, 3, 0, 5, 0, byte(ModePR), ""), astResult{bast: true, token: 3, lkid: 5, bastMode: ModePR}, false},
		{"unknown address", result(77, 3, 0, 5, 0, 0, ""), astResult{}, true},
		{"short", make([]byte, 40), astResult{}, true},
		{"lvb beyond end", result(castMarker, 9, 0, 5, 0, 0, "abc")[:uapi.ResultSize+4], astResult{}, true},
	}
	for _, tt := range tests {
		got, err := decodeResult(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%s: error %v", tt.name, err)
			continue
		}
		if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(astResult{})); !tt.err && d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(result(castMarker, 9, 0, 5, SBValNotValid, 0, "abc"))
	f.Add(result(bastMarker, 3, 0, 5, 0, 3, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResult(b)
		if err == nil && r.lvb != nil && len(r.lvb) != LVBLen {
			t.Fatalf("lvb of %d bytes", len(r.lvb))
		}
	})
}

func TestCompatibleTable(t *testing.T) {
	// The VMS table: a mode is compatible with b iff neither excludes
	// the other; derived here from what each mode allows others to do.
	allowsRead := map[Mode]bool{ModeNL: true, ModeCR: true, ModeCW: true, ModePR: true, ModePW: true}
	for _, a := range []Mode{ModeNL, ModeCR, ModeCW, ModePR, ModePW, ModeEX} {
		for _, b := range []Mode{ModeNL, ModeCR, ModeCW, ModePR, ModePW, ModeEX} {
			if Compatible(a, b) != Compatible(b, a) {
				t.Errorf("not symmetric: %v %v", a, b)
			}
		}
		if !Compatible(ModeNL, a) || Compatible(ModeEX, a) != (a == ModeNL) {
			t.Errorf("NL/EX row wrong for %v", a)
		}
		if Compatible(ModeCR, a) != allowsRead[a] {
			t.Errorf("CR with %v", a)
		}
	}
	for _, p := range [][2]Mode{{ModePR, ModePR}, {ModeCW, ModeCW}, {ModePW, ModeCR}} {
		if !Compatible(p[0], p[1]) {
			t.Errorf("%v %v should be compatible", p[0], p[1])
		}
	}
	for _, p := range [][2]Mode{{ModePR, ModeCW}, {ModePW, ModePR}, {ModePW, ModePW}, {ModeCW, ModePW}} {
		if Compatible(p[0], p[1]) {
			t.Errorf("%v %v should conflict", p[0], p[1])
		}
	}
	if Compatible(ModeIV, ModeNL) || Compatible(6, ModeNL) {
		t.Error("invalid modes compatible")
	}
}

func TestCheckLock(t *testing.T) {
	tests := []struct {
		mode    Mode
		flags   Flags
		convert bool
		hasLVB  bool
		ok      bool
	}{
		{ModeEX, NoQueue | ValBlk, false, false, true},
		{ModeNL, Expedite, false, false, true},
		{ModePR, Expedite, false, false, false},
		{ModeNL, Expedite | NoQueue, false, false, false},
		{ModeEX, QueCvt, false, false, false},
		{ModeEX, QueCvt | Convert, true, false, true},
		{ModeEX, ConvDeadlk | NoQueue | Convert, true, false, false},
		{ModeEX, ValBlk | Convert, true, false, false},
		{ModeEX, ValBlk | Convert, true, true, true},
		{ModeEX, ForceUnlock, false, false, false},
		{ModeEX, cancelFlag, false, false, false},
		{ModeEX, Convert, false, false, false},
		{ModeEX, Notify, false, false, true},
		{ModePR, Notify | NoQueue | ValBlk, false, false, true},
		{ModeEX, Notify | Convert, true, false, false},
		{ModeEX, Notify | Orphan, false, false, false},
		{7, 0, false, false, false},
	}
	for _, tt := range tests {
		err := checkLock(tt.mode, tt.flags, tt.convert, tt.hasLVB)
		if (err == nil) != tt.ok {
			t.Errorf("checkLock(%v, %v, convert=%v, lvb=%v) = %v", tt.mode, tt.flags, tt.convert, tt.hasLVB, err)
		}
	}
	if err := checkUnlock(ValBlk|ForceUnlock, true); err != nil {
		t.Error(err)
	}
	if err := checkUnlock(NoQueue, true); err == nil {
		t.Error("NOQUEUE accepted on unlock")
	}
	if got := (NoQueue | ValBlk | 0x80000000).String(); got != "NOQUEUE|VALBLK|0x80000000" {
		t.Errorf("Flags.String = %q", got)
	}
}

// A request that uses the NOTIFY flags says device minor 1, so that a
// kernel without them refuses it; every other request says minor 0, as
// before, so that unpatched kernels keep accepting them.
func TestNotifyVersion(t *testing.T) {
	minor := func(b []byte) uint32 { return binary.NativeEndian.Uint32(b[uapi.OffReqVersion+4:]) }
	tests := []struct {
		name string
		req  []byte
		want uint32
	}{
		{"lock", lockRequest{mode: ModeEX, name: "r"}.encode(), uapi.VersionMinor},
		{"lock NOTIFY", lockRequest{mode: ModeEX, flags: Notify, name: "r"}.encode(), uapi.VersionMinorNotify},
		{"lock NOQUEUE|VALBLK", lockRequest{mode: ModeEX, flags: NoQueue | ValBlk, name: "r"}.encode(), uapi.VersionMinor},
		{"create", lspaceRequest(uapi.CmdCreateLockspace, uint32(LSFlagNewExcl), 0, "ls"), uapi.VersionMinor},
		{"create NOTIFY", lspaceRequest(uapi.CmdCreateLockspace, uint32(LSFlagNotify), 0, "ls"), uapi.VersionMinorNotify},
		{"remove", lspaceRequest(uapi.CmdRemoveLockspace, 0, 3, "ls"), uapi.VersionMinor},
	}
	got := map[string]uint32{}
	want := map[string]uint32{}
	for _, tt := range tests {
		got[tt.name], want[tt.name] = minor(tt.req), tt.want
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("device minor version (-want +got):\n%s", d)
	}
}
