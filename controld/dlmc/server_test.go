package dlmc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestListenAbstractAddress checks that the socket is bound to exactly
// "\x00"+name: the address the reference computes as
// sizeof(sa_family_t) + 1 + strlen(name).
func TestListenAbstractAddress(t *testing.T) {
	name := fmt.Sprintf("godlm-addr-%d", os.Getpid())
	l, err := ListenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := l.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var (
		addr    unix.RawSockaddrUnix
		addrlen = uint32(unsafe.Sizeof(addr))
		errno   unix.Errno
	)
	_ = raw.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_GETSOCKNAME, fd, uintptr(unsafe.Pointer(&addr)), uintptr(unsafe.Pointer(&addrlen)))
	})
	if errno != 0 {
		t.Fatal(errno)
	}
	if want := uint32(2 + 1 + len(name)); addrlen != want {
		t.Errorf("address length %d, want %d", addrlen, want)
	}
	path := make([]byte, 0, len(name)+1)
	for _, c := range addr.Path[:addrlen-2] {
		path = append(path, byte(c))
	}
	if want := append([]byte{0}, name...); !bytes.Equal(path, want) {
		t.Errorf("address %q, want %q", path, want)
	}
}

// TestClientReachesReferenceBind binds a socket the way the reference
// daemon does, with a raw bind(2), and checks that a Client reaches it.
func TestClientReachesReferenceBind(t *testing.T) {
	name := fmt.Sprintf("godlm-refbind-%d", os.Getpid())
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var addr unix.RawSockaddrUnix
	addr.Family = unix.AF_UNIX
	for i := range len(name) {
		addr.Path[1+i] = int8(name[i])
	}
	addrlen := 2 + 1 + len(name)
	if _, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&addr)), uintptr(addrlen)); errno != 0 {
		unix.Close(fd)
		t.Fatal(errno)
	}
	if err := unix.Listen(fd, 5); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), name)
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, _, err := ReadMessage(conn); err == nil {
			_ = WriteMessage(conn, Header{Command: DumpDebug}, []byte("hi"))
		}
	}()
	c := &Client{QuerySocket: name}
	got, err := c.DumpDebug(context.Background())
	if err != nil || got != "hi" {
		t.Errorf("DumpDebug = %q, %v", got, err)
	}
}

func TestPeerCred(t *testing.T) {
	name := fmt.Sprintf("godlm-cred-%d", os.Getpid())
	l, err := ListenAbstract(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := net.Dial("unix", "@"+name)
		if err == nil {
			c.Close()
		}
	}()
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-done
	cred, err := PeerCred(conn)
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.Pid) != os.Getpid() || int(cred.Uid) != os.Getuid() || int(cred.Gid) != os.Getgid() {
		t.Errorf("cred %+v, want pid %d uid %d gid %d", cred, os.Getpid(), os.Getuid(), os.Getgid())
	}
	if _, err := ListenAbstract(name); err == nil {
		t.Error("second ListenAbstract on the same name succeeded")
	}
}
