package raftcluster

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The log carries four kinds of entries, each in a small binary encoding
// of its own:
//
//	version  byte (entryVersion)
//	kind     byte (Hello, Batch, Fail, Leave)
//	node     uvarint, 1..MaxNodeID
//	inc      uvarint, >= 1
//	Batch only:
//	  seq    uvarint, >= 1
//	  count  uvarint, >= 1
//	  count times: length uvarint (<= MaxBroadcastSize), bytes
//
// Nothing may follow. Entries come from the log, which other nodes
// write, so decodeEntry checks every length and never panics.

const entryVersion = 1

// MaxNodeID is the largest node id (node ids are positive 32-bit
// integers, as in the kernel's configfs).
const MaxNodeID = math.MaxInt32

// MaxBroadcastSize is the largest payload Broadcast accepts. A batch of
// several messages holds at most maxBatchBytes of payload, unless one
// message alone is larger.
const MaxBroadcastSize = 1 << 20

const maxBatchBytes = 1 << 20

// MaxIncarnation is the largest incarnation a node may join with. The
// daemon's incarnations are start times in nanoseconds since 1970,
// which reach it in the year 2116. A Hello beyond it is refused, by the
// leader and by the apply rules, so no message can push a node's
// incarnations to where it could not pick a larger one: from any
// accepted incarnation there are 2^62 left (see Core.newIncarnation).
const MaxIncarnation = 1 << 62

type entryKind byte

const (
	kindHello entryKind = 1 + iota // first entry of an incarnation
	kindBatch                      // broadcast messages of one member
	kindFail                       // the leader declares a member failed
	kindLeave                      // a member leaves cleanly
)

func (k entryKind) String() string {
	switch k {
	case kindHello:
		return "hello"
	case kindBatch:
		return "batch"
	case kindFail:
		return "fail"
	case kindLeave:
		return "leave"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// entry is one decoded log entry.
type entry struct {
	Kind entryKind
	Node int
	Inc  uint64
	Seq  uint64   // Batch: 1 for the first batch of an incarnation, then +1
	Msgs [][]byte // Batch: the payloads, at least one
}

func (e entry) String() string {
	if e.Kind == kindBatch {
		return fmt.Sprintf("batch{%d/%d seq %d, %d msgs}", e.Node, e.Inc, e.Seq, len(e.Msgs))
	}
	return fmt.Sprintf("%s{%d/%d}", e.Kind, e.Node, e.Inc)
}

func (e entry) encode() []byte {
	n := 24
	for _, m := range e.Msgs {
		n += len(m) + binary.MaxVarintLen32
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion, byte(e.Kind))
	b = binary.AppendUvarint(b, uint64(e.Node))
	b = binary.AppendUvarint(b, e.Inc)
	if e.Kind == kindBatch {
		b = binary.AppendUvarint(b, e.Seq)
		b = binary.AppendUvarint(b, uint64(len(e.Msgs)))
		for _, m := range e.Msgs {
			b = appendBytes(b, m)
		}
	}
	return b
}

func decodeEntry(b []byte) (entry, error) {
	r := reader{buf: b, what: "log entry"}
	var e entry
	if v := r.byte("version"); r.err == nil && v != entryVersion {
		return entry{}, fmt.Errorf("log entry: version %d, want %d: %w", v, entryVersion, ErrMalformed)
	}
	e.Kind = entryKind(r.byte("kind"))
	if r.err == nil && (e.Kind < kindHello || e.Kind > kindLeave) {
		r.fail("unknown kind %d", byte(e.Kind))
	}
	e.Node = int(r.uvarintMax("node", MaxNodeID))
	e.Inc = r.uvarint("incarnation")
	if r.err == nil && e.Node == 0 {
		r.fail("node id 0")
	}
	if r.err == nil && e.Inc == 0 {
		r.fail("incarnation 0")
	}
	if e.Kind == kindBatch {
		e.Seq = r.uvarint("seq")
		if r.err == nil && e.Seq == 0 {
			r.fail("batch seq 0")
		}
		n := r.count("message count", 1)
		if r.err == nil && n == 0 {
			r.fail("empty batch")
		}
		e.Msgs = make([][]byte, 0, n)
		for range n {
			m := r.bytes("message", MaxBroadcastSize)
			if r.err != nil {
				break
			}
			if m == nil {
				m = []byte{}
			}
			e.Msgs = append(e.Msgs, m)
		}
	}
	if err := r.end(); err != nil {
		return entry{}, err
	}
	return e, nil
}
