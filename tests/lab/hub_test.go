package lab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// port is a fake VM on the hub, speaking QEMU's stream framing.
type port struct {
	t    *testing.T
	conn net.Conn
	mac  [6]byte
	got  chan string
}

func dialHub(t *testing.T, h *Hub, id int) *port {
	t.Helper()
	c, err := net.Dial("unix", h.socketPath(id))
	if err != nil {
		t.Fatal(err)
	}
	p := &port{t: t, conn: c, mac: [6]byte{0x52, 0x54, 0, 0x77, 0, byte(id)}, got: make(chan string, 100)}
	go func() {
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, f); err != nil {
				return
			}
			p.got <- string(f[14:])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *port) send(dst [6]byte, payload string) {
	f := append(append(append([]byte{}, dst[:]...), p.mac[:]...), 0x08, 0x00)
	f = append(f, payload...)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(f)))
	if _, err := p.conn.Write(append(b, f...)); err != nil {
		p.t.Fatal(err)
	}
}

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// expect reads what p receives within a short time and compares it, in
// any order: frames from different senders may interleave either way.
func (p *port) expect(want ...string) {
	p.t.Helper()
	var got []string
	timeout := time.After(300 * time.Millisecond)
	for len(got) < len(want)+1 {
		select {
		case s := <-p.got:
			got = append(got, s)
			continue
		case <-timeout:
		}
		break
	}
	slices.Sort(got)
	slices.Sort(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		p.t.Errorf("port %d got %q, want %q", p.mac[5], got, want)
	}
}

func TestHub(t *testing.T) {
	h, err := newHub(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p1, p2, p3 := dialHub(t, h, 1), dialHub(t, h, 2), dialHub(t, h, 3)
	time.Sleep(50 * time.Millisecond) // let the hub accept

	// Broadcasts flood; unknown unicast floods; known unicast goes to its
	// port only (the hub learnt 2's and 3's MACs from their broadcasts).
	p1.send(broadcast, "hello")
	p2.expect("hello")
	p3.expect("hello")
	p2.send(broadcast, "b2")
	p3.send(broadcast, "b3")
	p1.expect("b2", "b3")
	p2.expect("b3")
	p3.expect("b2")
	p1.send(p2.mac, "to2")
	p2.expect("to2")
	p3.expect()

	// Partition {1,2} | {3}: 3 hears nothing from 1 or 2, and they nothing
	// from 3; 1 and 2 still talk.
	h.Partition([]int{1, 2}, []int{3})
	p1.send(broadcast, "p1")
	p3.send(broadcast, "p3")
	p2.expect("p1")
	p3.expect()
	p1.expect()

	// A node in no group is isolated.
	h.Partition([]int{1, 2})
	p3.send(p1.mac, "lost")
	p1.expect()

	h.Heal()
	p3.send(p1.mac, "back")
	p1.expect("back")

	// Loss 1 drops everything on that one direction.
	h.SetLink(1, 2, Link{Loss: 1})
	p1.send(broadcast, "lossy")
	p2.expect()
	p3.expect("lossy")
	p2.send(p1.mac, "reverse")
	p1.expect("reverse")
	h.Heal()

	// Delay holds frames on that link, in order, and no other.
	h.SetLink(1, 2, Link{Delay: 200 * time.Millisecond})
	t0 := time.Now()
	p1.send(p2.mac, "d1")
	p1.send(p2.mac, "d2")
	p1.send(p3.mac, "fast")
	p3.expect("fast")
	if s1, s2 := <-p2.got, <-p2.got; s1 != "d1" || s2 != "d2" {
		t.Errorf("delayed frames %q %q", s1, s2)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("delayed frames arrived after %v", d)
	}

	// A node that reconnects (a restarted VM) gets traffic again.
	p3.conn.Close()
	p3b := dialHub(t, h, 3)
	time.Sleep(50 * time.Millisecond)
	p1.send(broadcast, "again")
	p3b.expect("again")
}
