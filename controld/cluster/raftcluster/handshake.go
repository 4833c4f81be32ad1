package raftcluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// A connection starts with a handshake, in plain frames, from the node
// that dialed (D) to the node that accepted (A):
//
//	D -> A  hello      magic "GDLM", version, flags (1: keyed), from, to,
//	                   D's nonce (32 bytes), cluster name
//	A -> D  challenge  (keyed only) A's nonce, A's proof
//	D -> A  proof      (keyed only) D's proof
//	A -> D  verdict    accepted, or refused with a reason
//
// Before reading anything, A checks that the connection comes from a
// configured address; after the hello, that the address belongs to the
// node D claims to be, that D addressed A, and that the cluster names
// and the use of a key agree. With a key, each side proves it knows the
// key by an HMAC-SHA256 over a transcript of both nonces, the cluster
// name and both node ids, each side with its own label so one proof
// cannot stand for the other. The same transcript gives the session key
// that authenticates every later frame from D to A. Fresh nonces on
// both sides make every session key new, so nothing recorded from an
// earlier connection can be replayed.
//
// Data flows one way on a connection, from D to A: each node dials
// every peer to send, and accepts to receive.

const (
	handshakeMagic   = "GDLM"
	handshakeVersion = 1
	nonceSize        = 32
	maxClusterName   = 255
	maxReason        = 255
	maxHandshake     = 1024 // largest handshake frame
)

type hello struct {
	Keyed   bool
	From    int
	To      int
	Nonce   [nonceSize]byte
	Cluster string
}

func (h hello) encode() []byte {
	b := append([]byte(handshakeMagic), handshakeVersion)
	flags := byte(0)
	if h.Keyed {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(h.From))
	b = binary.AppendUvarint(b, uint64(h.To))
	b = append(b, h.Nonce[:]...)
	return appendBytes(b, []byte(h.Cluster))
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	r := reader{buf: b, what: "handshake hello"}
	if m := r.fixed("magic", len(handshakeMagic)); r.err == nil && string(m) != handshakeMagic {
		return h, fmt.Errorf("handshake hello: bad magic %q (not a godlm cluster port?): %w", m, ErrMalformed)
	}
	if v := r.byte("version"); r.err == nil && v != handshakeVersion {
		return h, fmt.Errorf("handshake hello: version %d, want %d: %w", v, handshakeVersion, ErrMalformed)
	}
	flags := r.byte("flags")
	if r.err == nil && flags > 1 {
		r.fail("unknown flags %#x", flags)
	}
	h.Keyed = flags == 1
	h.From = int(r.uvarintMax("from", MaxNodeID))
	h.To = int(r.uvarintMax("to", MaxNodeID))
	copy(h.Nonce[:], r.fixed("nonce", nonceSize))
	h.Cluster = string(r.bytes("cluster name", maxClusterName))
	if r.err == nil && (h.From == 0 || h.To == 0) {
		r.fail("node id 0")
	}
	if err := r.end(); err != nil {
		return hello{}, err
	}
	return h, nil
}

// replyKind tells the acceptor's replies apart.
type replyKind byte

const (
	replyAccepted  replyKind = 1 + iota // verdict: go on
	replyRefused                        // verdict: refused, with a reason
	replyChallenge                      // keyed: nonce and proof
	replyProof                          // keyed, from the dialer: proof
)

// reply is a handshake message after the hello, in either direction.
type reply struct {
	Kind   replyKind
	Reason string          // replyRefused
	Nonce  [nonceSize]byte // replyChallenge
	Proof  [macSize]byte   // replyChallenge, replyProof
}

func (p reply) encode() []byte {
	b := []byte{byte(p.Kind)}
	switch p.Kind {
	case replyRefused:
		reason := p.Reason
		if len(reason) > maxReason {
			reason = reason[:maxReason]
		}
		b = appendBytes(b, []byte(reason))
	case replyChallenge:
		b = append(b, p.Nonce[:]...)
		b = append(b, p.Proof[:]...)
	case replyProof:
		b = append(b, p.Proof[:]...)
	}
	return b
}

func decodeReply(b []byte) (reply, error) {
	var p reply
	r := reader{buf: b, what: "handshake reply"}
	p.Kind = replyKind(r.byte("kind"))
	switch p.Kind {
	case replyAccepted:
	case replyRefused:
		p.Reason = string(r.bytes("reason", maxReason))
	case replyChallenge:
		copy(p.Nonce[:], r.fixed("nonce", nonceSize))
		copy(p.Proof[:], r.fixed("proof", macSize))
	case replyProof:
		copy(p.Proof[:], r.fixed("proof", macSize))
	default:
		r.fail("unknown kind %d", p.Kind)
	}
	if err := r.end(); err != nil {
		return reply{}, err
	}
	return p, nil
}

// transcript is what both proofs and the session key are computed over.
func transcript(cluster string, from, to int, dialerNonce, acceptorNonce [nonceSize]byte) []byte {
	b := []byte("godlm cluster transport v1\x00")
	b = appendBytes(b, []byte(cluster))
	b = binary.AppendUvarint(b, uint64(from))
	b = binary.AppendUvarint(b, uint64(to))
	b = append(b, dialerNonce[:]...)
	return append(b, acceptorNonce[:]...)
}

// keyed computes HMAC-SHA256(key, label || transcript).
func keyed(key []byte, label string, t []byte) [macSize]byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(t)
	var out [macSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

func acceptorProof(key, t []byte) [macSize]byte { return keyed(key, "acceptor proof", t) }
func dialerProof(key, t []byte) [macSize]byte   { return keyed(key, "dialer proof", t) }
func sessionKey(key, t []byte) []byte {
	k := keyed(key, "session key", t)
	return k[:]
}
