package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godlm/godlm/tests/lab/internal/power"
)

// PowerSwitch is the lab's switched power supply. Each VM reaches it
// over a virtio-serial port of its own (org.godlm.power), which the
// cluster network's partitions do not cut, and the fence agent in the
// guest image, fence_godlm, drives it: off kills a VM's QEMU process and
// answers once it is gone; on boots it again; reboot answers after the
// off and boots it in the background; status, list and monitor report.
// The switch knows which VM asks by the port a request arrives on.
//
// Tests can make it fail, hang or answer slowly, and read what it did.
type PowerSwitch struct {
	c      *Cluster
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// powerMu serialises the changes of one VM's power, so that two
	// requests for it see each other's effect (the second off is
	// "Already OFF"), and a boot is never started twice.
	powerMu [MaxNodes + 1]sync.Mutex

	mu     sync.Mutex
	fail   int
	hang   bool
	delay  time.Duration
	events []PowerEvent
	seen   map[int][]seenID // by requester: recent request ids
	conns  map[int]net.Conn
	hung   chan struct{} // closed when Hang(false) releases held requests
}

type seenID struct {
	id    uint64
	reply *power.Reply // nil while in progress
}

// PowerEvent is one request the switch answered.
type PowerEvent struct {
	At      time.Time
	From    int // the requesting VM
	Request power.Request
	Reply   power.Reply
}

func newPowerSwitch(c *Cluster) *PowerSwitch {
	ctx, cancel := context.WithCancel(context.Background())
	return &PowerSwitch{c: c, ctx: ctx, cancel: cancel, seen: map[int][]seenID{}, conns: map[int]net.Conn{}, hung: make(chan struct{})}
}

// Power returns the cluster's power switch.
func (c *Cluster) Power() *PowerSwitch { return c.power }

// FailNext makes the next n requests that would change power fail,
// without acting.
func (p *PowerSwitch) FailNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = n
}

// Hang holds every request that would change power without an answer
// while on is true; Hang(false) lets the held ones proceed.
func (p *PowerSwitch) Hang(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hang && !on {
		close(p.hung)
		p.hung = make(chan struct{})
	}
	p.hang = on
}

// Delay makes every request that changes power wait d before it acts.
func (p *PowerSwitch) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Events returns the requests answered so far, in order.
func (p *PowerSwitch) Events() []PowerEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// WaitEvent waits until an answered request satisfies ok, and returns
// it.
func (p *PowerSwitch) WaitEvent(ctx context.Context, ok func(PowerEvent) bool) (PowerEvent, error) {
	for {
		for _, e := range p.Events() {
			if ok(e) {
				return e, nil
			}
		}
		select {
		case <-ctx.Done():
			return PowerEvent{}, fmt.Errorf("lab: power switch: no such event: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *PowerSwitch) socketPath(id int) string {
	return filepath.Join(p.c.dir, fmt.Sprintf("node%d.power.sock", id))
}

// qemuArgs attach node id's port; the node's virtio-serial bus vser0
// must exist.
func (p *PowerSwitch) qemuArgs(id int) []string {
	sock := p.socketPath(id)
	os.Remove(sock)
	return []string{
		"-chardev", "socket,id=power,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=power,name=" + power.PortName,
	}
}

// attach connects to node id's port once QEMU made it, and serves the
// requests from that VM until it goes away.
func (p *PowerSwitch) attach(id int) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var conn net.Conn
		for deadline := time.Now().Add(30 * time.Second); ; {
			var err error
			conn, err = net.Dial("unix", p.socketPath(id))
			if err == nil {
				break
			}
			if time.Now().After(deadline) || p.ctx.Err() != nil {
				p.c.cfg.Logf("lab: power switch: node %d's port: %v", id, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.mu.Lock()
		if old := p.conns[id]; old != nil {
			old.Close()
		}
		p.conns[id] = conn
		p.mu.Unlock()
		p.serve(id, conn)
	}()
}

func (p *PowerSwitch) serve(from int, conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, power.MaxLine*2)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return // the VM is gone (killed, rebooted) or the switch closed
		}
		req, err := power.ParseRequest(line)
		if err != nil {
			p.c.cfg.Logf("lab: power switch: node %d: %v", from, err)
			continue
		}
		rep, ok := p.handle(from, req)
		if !ok {
			continue // a repeat of a request in progress
		}
		conn.Write([]byte(rep.Line()))
	}
}

// handle carries out one request; ok is false for a repeat of a
// request still in progress (its answer comes when it ends).
func (p *PowerSwitch) handle(from int, req power.Request) (power.Reply, bool) {
	p.mu.Lock()
	for _, s := range p.seen[from] {
		if s.id == req.ID {
			p.mu.Unlock()
			if s.reply == nil {
				return power.Reply{}, false
			}
			return *s.reply, true // answered before: the agent missed it
		}
	}
	p.seen[from] = append(p.seen[from], seenID{id: req.ID})
	if n := len(p.seen[from]); n > 64 {
		p.seen[from] = p.seen[from][n-64:]
	}
	changes := req.Action == power.ActionOff || req.Action == power.ActionOn || req.Action == power.ActionReboot
	hang, hung, delay := p.hang, p.hung, p.delay
	failing := changes && p.fail > 0
	if failing {
		p.fail--
	}
	p.mu.Unlock()

	rep := power.Reply{ID: req.ID}
	if changes && hang {
		select {
		case <-hung:
		case <-p.ctx.Done():
		}
	}
	if changes && delay > 0 {
		select {
		case <-time.After(delay):
		case <-p.ctx.Done():
		}
	}
	switch {
	case p.ctx.Err() != nil:
		rep.Status, rep.Message = power.StatusFail, "the switch is shutting down"
	case failing:
		rep.Status, rep.Message = power.StatusFail, "injected failure"
	default:
		rep.Status, rep.Message = p.act(req)
	}
	p.mu.Lock()
	for i := range p.seen[from] {
		if p.seen[from][i].id == req.ID {
			p.seen[from][i].reply = &rep
		}
	}
	p.events = append(p.events, PowerEvent{At: time.Now(), From: from, Request: req, Reply: rep})
	p.mu.Unlock()
	p.c.cfg.Logf("lab: power switch: node %d asked %s %s: %s %s", from, req.Action, req.Plug, rep.Status, rep.Message)
	return rep, true
}

func (p *PowerSwitch) act(req power.Request) (status, msg string) {
	switch req.Action {
	case power.ActionMonitor:
		return power.StatusOK, ""
	case power.ActionList:
		var plugs []string
		for _, n := range p.c.nodes {
			plugs = append(plugs, power.Plug(n.ID))
		}
		return power.StatusOK, strings.Join(plugs, " ")
	}
	id, err := power.ParsePlug(req.Plug)
	if err != nil || id > len(p.c.nodes) {
		return power.StatusFail, fmt.Sprintf("no such plug %q", req.Plug)
	}
	n := p.c.Node(id)
	switch req.Action {
	case power.ActionStatus:
		if n.Running() {
			return power.StatusOK, "ON"
		}
		return power.StatusOff, "OFF"
	case power.ActionOff, power.ActionReboot:
		p.powerMu[id].Lock()
		was := n.Running()
		err := n.kill()
		p.powerMu[id].Unlock()
		if err != nil {
			return power.StatusFail, err.Error()
		}
		if req.Action == power.ActionReboot {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.powerMu[id].Lock()
				defer p.powerMu[id].Unlock()
				if err := n.start(p.ctx); err != nil {
					p.c.cfg.Logf("lab: power switch: node %d did not come back after reboot: %v", id, err)
				}
			}()
		}
		if !was {
			return power.StatusOK, "Already OFF"
		}
		return power.StatusOK, "Powered OFF"
	case power.ActionOn:
		p.powerMu[id].Lock()
		defer p.powerMu[id].Unlock()
		if n.Running() {
			return power.StatusOK, "Already ON"
		}
		if err := n.start(p.ctx); err != nil {
			return power.StatusFail, err.Error()
		}
		return power.StatusOK, "Powered ON"
	}
	return power.StatusFail, "unsupported action"
}

// close stops serving and waits for the switch's goroutines.
func (p *PowerSwitch) close() {
	p.cancel()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
