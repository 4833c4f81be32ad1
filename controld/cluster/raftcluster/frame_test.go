package raftcluster

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrames(t *testing.T) {
	key := []byte("session key for the test........")
	for _, k := range [][]byte{nil, key} {
		var buf bytes.Buffer
		w := &frameConn{rw: &buf, key: k}
		payloads := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte("x"), 5000)}
		for _, p := range payloads {
			if err := w.writeFrame(p); err != nil {
				t.Fatal(err)
			}
		}
		r := &frameConn{rw: &buf, key: k, max: MaxFrameSize}
		for _, want := range payloads {
			got, err := r.readFrame()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		}
		if _, err := r.readFrame(); err != io.EOF {
			t.Errorf("after the last frame: %v, want io.EOF", err)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	key := []byte("session key for the test........")
	encode := func(k []byte, payloads ...string) []byte {
		var buf bytes.Buffer
		w := &frameConn{rw: &buf, key: k}
		for _, p := range payloads {
			w.writeFrame([]byte(p))
		}
		return buf.Bytes()
	}
	two := encode(key, "first", "second")
	oneLen := 4 + len("first") + macSize
	for _, tc := range []struct {
		name   string
		in     []byte
		key    []byte
		max    int
		frames int // good frames before the error
		want   error
	}{
		{"over the limit", encode(nil, "0123456789"), nil, 9, 0, ErrMalformed},
		{"header cut", []byte{0, 0}, nil, 100, 0, ErrMalformed},
		{"body cut", encode(nil, "hello")[:6], nil, 100, 0, io.ErrUnexpectedEOF},
		{"shorter than a MAC", []byte{0, 0, 0, 5, 1, 2, 3, 4, 5}, key, 100, 0, ErrMalformed},
		{"wrong key", two, []byte("another key"), 100, 0, ErrAuth},
		{"payload altered", append(append([]byte{}, two[:5]...), append([]byte{'F'}, two[6:]...)...), key, 100, 0, ErrAuth},
		{"frame replayed", append(append([]byte{}, two[:oneLen]...), two[:oneLen]...), key, 100, 1, ErrAuth},
		{"frame dropped", two[oneLen:], key, 100, 0, ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &frameConn{rw: bytes.NewBuffer(tc.in), key: tc.key, max: tc.max}
			for i := range tc.frames {
				if _, err := r.readFrame(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			if _, err := r.readFrame(); !errors.Is(err, tc.want) {
				t.Errorf("readFrame: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHandshakeCodec(t *testing.T) {
	h := hello{Keyed: true, From: 3, To: 1, Cluster: "gfs-cluster"}
	h.Nonce[5] = 7
	got, err := decodeHello(h.encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("hello (-want +got):\n%s", diff)
	}
	for _, r := range []reply{
		{Kind: replyAccepted},
		{Kind: replyRefused, Reason: "no"},
		{Kind: replyChallenge, Nonce: [nonceSize]byte{1}, Proof: [macSize]byte{2}},
		{Kind: replyProof, Proof: [macSize]byte{3}},
	} {
		got, err := decodeReply(r.encode())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	}
	for _, bad := range [][]byte{
		nil,
		[]byte("HTTP/1.1 200 OK\r\n"),
		h.encode()[:20],
		append(h.encode(), 0),
		{9},
		{byte(replyChallenge), 1, 2},
	} {
		_, err1 := decodeHello(bad)
		_, err2 := decodeReply(bad)
		if !errors.Is(err1, ErrMalformed) || !errors.Is(err2, ErrMalformed) {
			t.Errorf("decoding %q: %v, %v; want ErrMalformed", bad, err1, err2)
		}
	}
	// The two proofs and the session key differ, and depend on every
	// part of the transcript.
	var n1, n2 [nonceSize]byte
	n2[0] = 1
	key := []byte("0123456789abcdef")
	tr := transcript("c", 1, 2, n1, n2)
	if acceptorProof(key, tr) == dialerProof(key, tr) {
		t.Error("acceptor and dialer proofs are equal")
	}
	for _, other := range [][]byte{transcript("d", 1, 2, n1, n2), transcript("c", 2, 1, n1, n2), transcript("c", 1, 2, n2, n1)} {
		if dialerProof(key, tr) == dialerProof(key, other) {
			t.Error("proof does not depend on the transcript")
		}
	}
}
