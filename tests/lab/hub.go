package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Link is the behaviour of the traffic from one node to another.
type Link struct {
	Cut   bool          // drop every frame
	Delay time.Duration // hold each frame this long before delivery
	Loss  float64       // drop each frame with this probability (0..1)
}

// Hub is the lab's Ethernet: every VM's -netdev stream connects to its own
// unix socket of the hub, which switches frames between them (learning
// source MAC addresses, flooding the rest). Nothing outside the hub can
// reach it, and no root is needed. Each directed pair of nodes has a Link
// policy, so tests can cut, delay or drop traffic between chosen nodes.
type Hub struct {
	n     int
	dir   string
	lns   []net.Listener
	mu    sync.Mutex
	ports []*hubPort          // by node index 0..n-1; nil when not connected
	links map[[2]int]Link     // by (from, to) node index
	macs  map[[6]byte]int     // learnt: source MAC -> node index
	pipes map[[2]int]*hubPipe // delayed delivery queues
	wg    sync.WaitGroup
	done  chan struct{}
}

type hubPort struct {
	conn net.Conn
	wmu  sync.Mutex
}

type hubPipe struct {
	ch chan delayed
}

type delayed struct {
	at    time.Time
	frame []byte
}

// maxEthernetFrame bounds a frame on the stream; QEMU sends at most a
// jumbo frame plus headers.
const maxEthernetFrame = 65536

func newHub(dir string, n int) (*Hub, error) {
	h := &Hub{
		n: n, dir: dir,
		ports: make([]*hubPort, n),
		links: map[[2]int]Link{},
		macs:  map[[6]byte]int{},
		pipes: map[[2]int]*hubPipe{},
		done:  make(chan struct{}),
	}
	for i := range n {
		p := h.socketPath(i + 1)
		os.Remove(p)
		ln, err := net.Listen("unix", p)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("hub: %w", err)
		}
		h.lns = append(h.lns, ln)
		h.wg.Add(1)
		go h.accept(i, ln)
	}
	return h, nil
}

// socketPath is where node id's QEMU connects.
func (h *Hub) socketPath(id int) string {
	return filepath.Join(h.dir, fmt.Sprintf("hub%d.sock", id))
}

func (h *Hub) accept(i int, ln net.Listener) {
	defer h.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p := &hubPort{conn: c}
		h.mu.Lock()
		if old := h.ports[i]; old != nil {
			old.conn.Close()
		}
		h.ports[i] = p
		h.mu.Unlock()
		h.wg.Add(1)
		go h.read(i, p)
	}
}

func (h *Hub) read(i int, p *hubPort) {
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		if h.ports[i] == p {
			h.ports[i] = nil
		}
		h.mu.Unlock()
		p.conn.Close()
	}()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(p.conn, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxEthernetFrame {
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(p.conn, frame); err != nil {
			return
		}
		if n < 14 {
			continue
		}
		h.forward(i, frame)
	}
}

func (h *Hub) forward(from int, frame []byte) {
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	h.mu.Lock()
	h.macs[src] = from
	targets := []int{}
	if to, ok := h.macs[dst]; ok && dst[0]&1 == 0 {
		if to != from {
			targets = append(targets, to)
		}
	} else {
		for to := range h.n {
			if to != from {
				targets = append(targets, to)
			}
		}
	}
	type send struct {
		to   int
		link Link
		pipe *hubPipe
	}
	var sends []send
	for _, to := range targets {
		l := h.links[[2]int{from, to}]
		if l.Cut || (l.Loss > 0 && rand.Float64() < l.Loss) {
			continue
		}
		s := send{to: to, link: l}
		if l.Delay > 0 {
			s.pipe = h.pipeLocked(from, to)
		}
		sends = append(sends, s)
	}
	h.mu.Unlock()
	for _, s := range sends {
		if s.pipe != nil {
			select {
			case s.pipe.ch <- delayed{at: time.Now().Add(s.link.Delay), frame: frame}:
			default: // queue full: the link drops, as a real one would
			}
			continue
		}
		h.deliver(s.to, frame)
	}
}

// pipeLocked returns the delay queue of a link, starting it when needed.
// Each link has its own queue so a slow link never holds up another.
func (h *Hub) pipeLocked(from, to int) *hubPipe {
	k := [2]int{from, to}
	if p := h.pipes[k]; p != nil {
		return p
	}
	p := &hubPipe{ch: make(chan delayed, 4096)}
	h.pipes[k] = p
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			select {
			case <-h.done:
				return
			case d := <-p.ch:
				if w := time.Until(d.at); w > 0 {
					select {
					case <-h.done:
						return
					case <-time.After(w):
					}
				}
				h.deliver(to, d.frame)
			}
		}
	}()
	return p
}

func (h *Hub) deliver(to int, frame []byte) {
	h.mu.Lock()
	p := h.ports[to]
	h.mu.Unlock()
	if p == nil {
		return
	}
	buf := make([]byte, 4+len(frame))
	binary.BigEndian.PutUint32(buf, uint32(len(frame)))
	copy(buf[4:], frame)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.conn.Write(buf); err != nil && !errors.Is(err, net.ErrClosed) {
		p.conn.Close()
	}
}

// SetLink sets the policy of traffic from node a to node b (1-based ids).
func (h *Hub) SetLink(a, b int, l Link) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links[[2]int{a - 1, b - 1}] = l
}

// Partition cuts every link between nodes of different groups. Nodes in
// no group are cut off from all others. Links inside a group are restored.
func (h *Hub) Partition(groups ...[]int) {
	group := make([]int, h.n) // 0: in no group
	for g, ids := range groups {
		for _, id := range ids {
			if id >= 1 && id <= h.n {
				group[id-1] = g + 1
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for a := range h.n {
		for b := range h.n {
			if a == b {
				continue
			}
			l := h.links[[2]int{a, b}]
			l.Cut = group[a] == 0 || group[a] != group[b]
			h.links[[2]int{a, b}] = l
		}
	}
}

// Heal restores every link to full, immediate delivery.
func (h *Hub) Heal() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.links)
}

// Close stops the hub and disconnects every VM.
func (h *Hub) Close() error {
	select {
	case <-h.done:
		return nil
	default:
	}
	close(h.done)
	for _, ln := range h.lns {
		ln.Close()
	}
	h.mu.Lock()
	for _, p := range h.ports {
		if p != nil {
			p.conn.Close()
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}
