package session

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// message names a handshake flight by direction and index in it.
type message struct {
	name string
	d    direction
	i    int
}

var handshakeMessages = []message{
	{"Hello", toResponder, 0},
	{"HelloReply", toRequestor, 0},
	{"Finished", toResponder, 1},
	{"Ready", toRequestor, 1},
}

// everyByte and sampleBytes choose the offsets of a payload of n bytes to
// flip: all of them for Ed25519 identities, for RSA the first and last 16
// and every 13th between (RSA-PSS signing makes each handshake cost
// milliseconds).
func everyByte(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func sampleBytes(n int) []int {
	var s []int
	for i := 0; i < n; i++ {
		if i < 16 || i >= n-16 || i%13 == 0 {
			s = append(s, i)
		}
	}
	return s
}

// TestTampering flips every byte (a sample for RSA) of every handshake
// message, in both directions, between the connection and the frame codec.
// Each flip of Hello, HelloReply or Finished must be refused by the side
// that reads it with a typed error, sent to the other side as an Error with
// the matching code, and neither side may end with keys. Ready lies outside
// the transcript (its integrity rests on TLS; its limits are advisory): a
// flip there either fails to decode or leaves both sides with the same,
// untouched keys.
func TestTampering(t *testing.T) {
	cases := []struct {
		kex     cryptosuite.KEXID
		rq, rs  string
		offsets func(int) []int
	}{
		{cryptosuite.KEXX25519, "ed-a", "ed-b", everyByte},
		{cryptosuite.KEXP256, "ed-a", "ed-b", everyByte},
		{cryptosuite.KEXX25519MLKEM768, "ed-a", "ed-b", everyByte},
		{cryptosuite.KEXX25519, "rsa2048", "rsa3072", sampleBytes},
		{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "ed-b", sampleBytes},
	}
	for _, c := range cases {
		t.Run(c.kex.String()+"/"+c.rq+"-"+c.rs, func(t *testing.T) {
			t.Parallel()
			rqID, rsID := identity(t, c.rq), identity(t, c.rs)
			rq := &Config{Identity: rqID, KEX: c.kex, AllowRSA: true}
			rs := &Config{Identity: rsID, AllowRSA: true, Replay: NewReplayCache(0, 0)}
			p1, p2 := tlsParams(rsID.PeerID())
			clean := runRelayed(t, rq, rs, p1, p2, nil)
			if clean.rq.err != nil || clean.rs.err != nil {
				t.Fatalf("untouched handshake: requestor %v, responder %v", clean.rq.err, clean.rs.err)
			}
			readyAccepted := 0
			for _, m := range handshakeMessages {
				n := len(clean.seen[m.d][m.i])
				for _, at := range c.offsets(n) {
					o := runRelayed(t, rq, rs, p1, p2, flip(m.d, m.i, at, 0x01))
					where := fmt.Sprintf("%s byte %d of %d", m.name, at, n)
					if m.name == "Ready" && o.rq.err == nil {
						readyAccepted++
						checkReadyFlip(t, where, o)
						continue
					}
					checkRefused(t, where, m, o)
				}
			}
			// Only the two limits' value bytes can change without
			// breaking the encoding.
			if readyAccepted > 4 {
				t.Errorf("%d flips of Ready accepted, want at most 4 (the limits' value bytes)", readyAccepted)
			}
		})
	}
}

func checkRefused(t *testing.T, where string, m message, o outcome) {
	t.Helper()
	if o.rq.keys != nil && o.rs.keys != nil {
		t.Fatalf("%s flipped: both sides completed the handshake", where)
	}
	if o.rq.keys != nil || (o.rs.keys != nil && m.name != "Ready") {
		t.Fatalf("%s flipped: a side yielded keys (requestor %v, responder %v)", where, o.rq.keys != nil, o.rs.keys != nil)
	}
	reader, other := o.rs.err, o.rq.err
	if m.d == toRequestor {
		reader, other = o.rq.err, o.rs.err
	}
	if !detected(reader) {
		t.Fatalf("%s flipped: the reader's error %v is not a typed refusal (other side: %v)", where, reader, other)
	}
	if m.name == "Ready" {
		// The responder finished before Ready was flipped; the
		// requestor alone refuses.
		if o.rs.err != nil {
			t.Fatalf("%s flipped: responder %v", where, o.rs.err)
		}
		return
	}
	if got, want := peerCode(other), Code(reader); got != want {
		t.Fatalf("%s flipped: reader refused with %v (%v), the other side got %v (%v)", where, want, reader, got, other)
	}
}

func checkReadyFlip(t *testing.T, where string, o outcome) {
	t.Helper()
	k1, k2 := o.rq.keys, o.rs.keys
	if o.rs.err != nil || k2 == nil {
		t.Fatalf("%s flipped: responder %v", where, o.rs.err)
	}
	if k1.TranscriptHash != k2.TranscriptHash || !bytes.Equal(k1.C2S, k2.C2S) || !bytes.Equal(k1.S2C, k2.S2C) || k1.AuthKey != k2.AuthKey {
		t.Fatalf("%s flipped: keys differ", where)
	}
	if k1.PeerMaxStreams == k2.PeerMaxStreams && k1.PeerMaxFrameKiB == k2.PeerMaxFrameKiB {
		t.Fatalf("%s flipped and accepted, but the limits did not change", where)
	}
}
