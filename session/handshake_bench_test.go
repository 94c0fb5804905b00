package session

import (
	"crypto/hmac"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// Handshake benchmarks: each case runs the whole handshake (both sides,
// RunRequestor and RunResponder over net.Pipe: encoding, framing, decoding,
// the state machines, the replay cache) b.N times, then the bare
// cryptography of the same handshake (both sides' signatures and
// verifications, key agreement, HKDF, sealing and opening the
// authentication key, both Finished MACs) b.N times in a plain loop, and
// reports handshakes/s, the bare cost per handshake and their ratio
// (x-bare: full time over bare time; 1.0 would mean the protocol adds
// nothing to its cryptography). TLS is not involved: node's benchmarks
// measure handshakes over TCP and TLS.

type benchCase struct {
	kex    cryptosuite.KEXID
	rq, rs string
}

var benchCases = []benchCase{
	{cryptosuite.KEXX25519, "ed-a", "ed-b"},
	{cryptosuite.KEXP256, "ed-a", "ed-b"},
	{cryptosuite.KEXX25519MLKEM768, "ed-a", "ed-b"},
	{cryptosuite.KEXX25519, "rsa2048", "rsa3072"},
	{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072"},
}

func BenchmarkHandshake(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.kex.String()+"/"+c.rq+"-"+c.rs, func(b *testing.B) {
			rqID, rsID := identity(b, c.rq), identity(b, c.rs)
			rq := &Config{Identity: rqID, KEX: c.kex, AllowRSA: true}
			rs := &Config{Identity: rsID, AllowRSA: true, Replay: NewReplayCache(b.N+1, 0)}
			p1, p2 := tlsParams(rsID.PeerID())
			bare := newBareHandshake(b, c)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				benchPair(b, rq, rs, p1, p2)
			}
			b.StopTimer()
			full := b.Elapsed()
			start := time.Now()
			for range b.N {
				bare.run(b)
			}
			bareTime := time.Since(start)
			b.ReportMetric(float64(b.N)/full.Seconds(), "handshakes/s")
			b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "bare-ns/op")
			b.ReportMetric(full.Seconds()/bareTime.Seconds(), "x-bare")
		})
	}
}

// BenchmarkBareHandshake is the bare cryptography alone, for a profile.
func BenchmarkBareHandshake(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.kex.String()+"/"+c.rq+"-"+c.rs, func(b *testing.B) {
			bare := newBareHandshake(b, c)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				bare.run(b)
			}
		})
	}
}

func benchPair(b *testing.B, rq, rs *Config, p1, p2 Params) {
	c1, c2 := net.Pipe()
	var wg sync.WaitGroup
	var err2 error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c2.Close()
		_, err2 = RunResponder(c2, rs, p2)
	}()
	_, err1 := RunRequestor(c1, rq, p1)
	c1.Close()
	wg.Wait()
	if err1 != nil || err2 != nil {
		b.Fatalf("requestor %v, responder %v", err1, err2)
	}
}

// bareHandshake holds the inputs of one handshake's cryptography: layouts
// of the real sizes, built once.
type bareHandshake struct {
	rqID, rsID *cryptosuite.Identity
	suite      *cryptosuite.KEXSuite
	aead       *cryptosuite.AEADSuite
	l1, l2     []byte
	sid        []byte
}

func newBareHandshake(b *testing.B, c benchCase) *bareHandshake {
	suite, _ := cryptosuite.KEXByID(c.kex)
	aead, _ := cryptosuite.AEADByID(cryptosuite.AEADA256CBCHS512)
	h := &bareHandshake{rqID: identity(b, c.rq), rsID: identity(b, c.rs), suite: suite, aead: aead, sid: make([]byte, SessionIDSize)}
	rsPeer := h.rsID.PeerID()
	h.l1 = canon.RequestorHello(&canon.RequestorHelloFields{
		Version: uint64(wire.Version), Transport: TransportTLS, ChannelBinding: binding(7),
		Requestor: h.rqID.PeerID(), Responder: rsPeer[:], IdentityKey: h.rqID.Public().SPKI(),
		SigAlg: uint16(h.rqID.Public().Alg()), KEX: uint16(suite.ID), Share: make([]byte, suite.RequestorShareSize),
		AEADs: []uint16{1, 2, 3}, Nonce: make([]byte, NonceSize), TimeMillis: 1,
	})
	h.l2 = canon.ResponderHello(&canon.ResponderHelloFields{
		RequestorSig: make([]byte, 256), SessionID: h.sid, Responder: rsPeer, IdentityKey: h.rsID.Public().SPKI(),
		SigAlg: uint16(h.rsID.Public().Alg()), KEX: uint16(suite.ID), Share: make([]byte, suite.ResponderShareSize),
		AEAD: uint16(aead.ID), Nonce: make([]byte, NonceSize), TimeMillis: 1,
	})
	return h
}

// run does the cryptography of one handshake, both sides, in the order
// the flights need it.
func (h *bareHandshake) run(b *testing.B) {
	// Flight 1: the requestor's ephemeral key and signature.
	kex, err := h.suite.NewRequestor(cryptosuite.RequestorKEXConfig{Identity: h.rqID})
	if err != nil {
		b.Fatal(err)
	}
	sig1, err := h.rqID.Sign(canon.LabelRequestorHello, h.l1)
	if err != nil {
		b.Fatal(err)
	}
	// Flight 2: verify, agree, derive, seal, sign.
	if err := h.rqID.Public().Verify(canon.LabelRequestorHello, h.l1, sig1); err != nil {
		b.Fatal(err)
	}
	share, shared, err := h.suite.Respond(kex.Share(), h.rqID.Public(), cryptosuite.ResponderKEXConfig{})
	if err != nil {
		b.Fatal(err)
	}
	th := transcriptHash(h.l2)
	rsSched, err := deriveSchedule(shared, th, h.aead)
	if err != nil {
		b.Fatal(err)
	}
	authKey := make([]byte, AuthKeySize)
	a, _ := h.aead.New(rsSched.seal)
	sealed, err := cryptosuite.SealRandom(a, nil, nil, authKey, canon.AuthKeySealAAD(th, h.sid))
	if err != nil {
		b.Fatal(err)
	}
	sig2, err := h.rsID.Sign(canon.LabelResponderHello, h.l2)
	if err != nil {
		b.Fatal(err)
	}
	// Flight 3: verify, agree, derive, open, MAC.
	if err := h.rsID.Public().Verify(canon.LabelResponderHello, h.l2, sig2); err != nil {
		b.Fatal(err)
	}
	shared2, err := kex.Finish(share)
	if err != nil {
		b.Fatal(err)
	}
	rqSched, err := deriveSchedule(shared2, th, h.aead)
	if err != nil {
		b.Fatal(err)
	}
	a2, _ := h.aead.New(rqSched.seal)
	opened, err := cryptosuite.OpenPrefixed(a2, nil, sealed, canon.AuthKeySealAAD(th, h.sid))
	if err != nil {
		b.Fatal(err)
	}
	mac := finishedMAC(rqSched.finished, th, sig2, sealed, opened)
	// The responder checks it.
	if !hmac.Equal(mac, finishedMAC(rsSched.finished, th, sig2, sealed, authKey)) {
		b.Fatal("finished")
	}
}
