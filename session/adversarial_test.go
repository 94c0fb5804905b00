package session

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// Every attack of THREATS.md H1-H10 and issue 3's list, each against a
// responder that at the same moment serves a good client with the same
// configuration (replay cache included). Cast: Alice (ed-a) dials, Bob
// (ed-b) serves, Carol (ed-c) is the good client, Eve and Mallory are
// attackers with identities of their own.

var (
	attackerOnce sync.Once
	attackers    map[string]*cryptosuite.Identity
)

func attacker(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	attackerOnce.Do(func() {
		attackers = map[string]*cryptosuite.Identity{}
		for _, n := range []string{"eve", "mallory"} {
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err != nil {
				panic(err)
			}
			attackers[n] = id
		}
	})
	return attackers[name]
}

// clock is a settable clock for Config.Now, safe to read from the
// handshake goroutines.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// bob returns a responder configuration with its own replay cache.
func bob(t testing.TB) *Config {
	return &Config{Identity: identity(t, "ed-b"), AllowRSA: true, Replay: NewReplayCache(0, 0)}
}

func alice(t testing.TB) *Config { return &Config{Identity: identity(t, "ed-a")} }

// whileServing runs attack while Carol completes a handshake with rs, and
// checks that she was served.
func whileServing(t *testing.T, rs *Config, attack func()) {
	t.Helper()
	done := make(chan outcome, 1)
	go func() {
		p1, p2 := tlsParams(rs.Identity.PeerID())
		done <- runRelayed(t, &Config{Identity: identity(t, "ed-c"), Now: rs.Now}, rs, p1, p2, nil)
	}()
	attack()
	o := <-done
	if o.rq.err != nil || o.rs.err != nil {
		t.Fatalf("the good client was not served: requestor %v, responder %v", o.rq.err, o.rs.err)
	}
}

// rewrite returns a hook that decodes the i-th payload in direction d,
// passes it to f and sends what f returns, encoded.
func rewrite(t testing.TB, d direction, i int, f func(wire.Message) wire.Message) hook {
	return func(fd direction, fi int, p []byte) ([]byte, bool) {
		if fd != d || fi != i {
			return framed(p), false
		}
		m, err := wire.Decode(p)
		if err != nil {
			t.Errorf("rewrite: %v", err)
			return nil, true
		}
		out, err := wire.Encode(f(m))
		if err != nil {
			t.Errorf("rewrite: %v", err)
			return nil, true
		}
		return framed(out), false
	}
}

// replace returns a hook that sends payload in place of the i-th payload
// in direction d.
func replace(d direction, i int, payload []byte) hook {
	return func(fd direction, fi int, p []byte) ([]byte, bool) {
		if fd == d && fi == i {
			return framed(payload), false
		}
		return framed(p), false
	}
}

func encode(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeHello(t testing.TB, p []byte) *wire.Hello {
	t.Helper()
	m, err := wire.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*wire.Hello)
}

// requestorLayout is the layout a requestor with identity id signs for h
// over a connection described by p.
func requestorLayout(h *wire.Hello, id cryptosuite.PeerID, p Params) []byte {
	return canon.RequestorHello(requestorFields(h, id, &p))
}

// resignHello makes h the hello of id: its key, its algorithm, its
// signature over the transcript as a responder with parameters p rebuilds
// it.
func resignHello(t testing.TB, h *wire.Hello, id *cryptosuite.Identity, p Params) {
	t.Helper()
	h.IdentityKey, h.SigAlg = id.Public().SPKI(), uint16(id.Public().Alg())
	sig, err := id.Sign(canon.LabelRequestorHello, requestorLayout(h, id.PeerID(), p))
	if err != nil {
		t.Fatal(err)
	}
	h.Sig = sig
}

// wantRefusal checks that side got its own typed refusal matching want and
// that the other side received it as an Error with the matching code.
func wantRefusal(t *testing.T, o outcome, refuser Role, want error) {
	t.Helper()
	own, other := o.rs, o.rq
	if refuser == RoleRequestor {
		own, other = o.rq, o.rs
	}
	if own.keys != nil || other.keys != nil {
		t.Fatalf("a side completed: requestor %v, responder %v", o.rq.err, o.rs.err)
	}
	if !errors.Is(own.err, want) {
		t.Fatalf("refusal %v, want %v (other side: %v)", own.err, want, other.err)
	}
	if got := peerCode(other.err); got != Code(want) {
		t.Fatalf("the other side got %v (code %v), want code %v", other.err, got, Code(want))
	}
}

func TestBadSignature(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	eve := attacker(t, "eve")
	t.Run("hello signed by another key", func(t *testing.T) {
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
				h := m.(*wire.Hello)
				h.Sig, _ = eve.Sign(canon.LabelRequestorHello, requestorLayout(h, identity(t, "ed-a").PeerID(), p2))
				return h
			}))
			wantRefusal(t, o, RoleResponder, ErrBadSignature)
		})
	})
	t.Run("reply signed by another key", func(t *testing.T) {
		var hello *wire.Hello
		h := func(d direction, i int, p []byte) ([]byte, bool) {
			if d == toResponder && i == 0 {
				hello = decodeHello(t, p)
			}
			if d == toRequestor && i == 0 {
				m, _ := wire.Decode(p)
				r := m.(*wire.HelloReply)
				l1 := transcriptHash(requestorLayout(hello, identity(t, "ed-a").PeerID(), p1))
				l2 := canon.ResponderHello(responderFields(l1, hello.Sig, r, rs.Identity.PeerID()))
				r.Sig, _ = eve.Sign(canon.LabelResponderHello, l2)
				return framed(encode(t, r)), false
			}
			return framed(p), false
		}
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, p2, h), RoleRequestor, ErrBadSignature)
		})
	})
}

// A signature the identity key made for another purpose never passes as a
// handshake signature: labels separate them.
func TestSignatureForAnotherPurpose(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	a := identity(t, "ed-a")
	cases := map[string]func(h *wire.Hello) []byte{
		// The hello's own field bytes, signed under the announcement
		// label (as if Alice had announced them).
		"hello fields under the announce label": func(h *wire.Hello) []byte {
			l1 := requestorLayout(h, a.PeerID(), p2)
			ann := append([]byte(canon.LabelAnnounce+"\x00"), l1[len(canon.LabelRequestorHello)+1:]...)
			sig, err := a.Sign(canon.LabelAnnounce, ann)
			if err != nil {
				t.Error(err)
			}
			return sig
		},
		// An announcement layout signed under the hello label, the
		// mistake labels exist to make impossible.
		"announcement under the hello label": func(h *wire.Hello) []byte {
			ann := canon.New(canon.LabelAnnounce).Bytes(h.Nonce).Uint64(uint64(h.Time)).Out()
			sum := sha256.Sum256(ann)
			in := append(bytes.Repeat([]byte{0x20}, 64), canon.LabelRequestorHello+"\x00"...)
			return ed25519.Sign(a.Signer().(ed25519.PrivateKey), append(in, sum[:]...))
		},
	}
	for name, sign := range cases {
		t.Run(name, func(t *testing.T) {
			whileServing(t, rs, func() {
				o := runRelayed(t, alice(t), rs, p1, p2, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
					h := m.(*wire.Hello)
					h.Sig = sign(h)
					return h
				}))
				wantRefusal(t, o, RoleResponder, ErrBadSignature)
			})
		})
	}
	// The same layout bytes cannot even be signed under a label they do
	// not start with.
	l1 := canon.New(canon.LabelRequestorHello).Bytes([]byte("x")).Out()
	if _, err := a.Sign(canon.LabelAnnounce, l1); err == nil {
		t.Fatal("signed a hello layout under the announce label")
	}
}

func TestTimestamps(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rsClock := newClock(base)
	rs := bob(t)
	rs.Now = rsClock.now
	p1, p2 := tlsParams(rs.Identity.PeerID())
	at := func(d time.Duration) func() time.Time { return func() time.Time { return rsClock.now().Add(d) } }
	skew := DefaultMaxClockSkew
	for _, c := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"oldest accepted", -skew, true},
		{"stale by 1ms", -skew - time.Millisecond, false},
		{"stale by an hour", -time.Hour, false},
		{"newest accepted", skew, true},
		{"future by 1ms", skew + time.Millisecond, false},
		{"future by a day", 24 * time.Hour, false},
	} {
		t.Run("hello/"+c.name, func(t *testing.T) {
			whileServing(t, rs, func() {
				// The requestor's clock is off; it accepts the
				// responder's time with a skew of its own that is wide
				// enough, so only the responder judges.
				rq := &Config{Identity: identity(t, "ed-a"), Now: at(c.offset), MaxClockSkew: 48 * time.Hour}
				o := runRelayed(t, rq, rs, p1, p2, nil)
				if c.ok {
					if o.rq.err != nil || o.rs.err != nil {
						t.Fatalf("requestor %v, responder %v", o.rq.err, o.rs.err)
					}
					return
				}
				wantRefusal(t, o, RoleResponder, ErrStaleTimestamp)
			})
		})
		t.Run("reply/"+c.name, func(t *testing.T) {
			// Now the responder's clock is off and the requestor judges.
			rsOff := bob(t)
			rsOff.Now, rsOff.MaxClockSkew = at(c.offset), 48*time.Hour
			rq := &Config{Identity: identity(t, "ed-a"), Now: rsClock.now}
			o := runRelayed(t, rq, rsOff, p1, p2, nil)
			if c.ok {
				if o.rq.err != nil || o.rs.err != nil {
					t.Fatalf("requestor %v, responder %v", o.rq.err, o.rs.err)
				}
				return
			}
			wantRefusal(t, o, RoleRequestor, ErrStaleTimestamp)
		})
	}
}

// capture runs a good handshake and returns the payloads it carried.
func capture(t *testing.T, rq, rs *Config, p1, p2 Params) outcome {
	t.Helper()
	o := runRelayed(t, rq, rs, p1, p2, nil)
	if o.rq.err != nil || o.rs.err != nil {
		t.Fatalf("requestor %v, responder %v", o.rq.err, o.rs.err)
	}
	return o
}

func TestReplayedHello(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	rec := capture(t, alice(t), rs, p1, p2)
	hello := rec.seen[toResponder][0]
	eve := &Config{Identity: attacker(t, "eve")}
	t.Run("same connection binding", func(t *testing.T) {
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, eve, rs, p1, p2, replace(toResponder, 0, hello)), RoleResponder, ErrReplay)
		})
	})
	t.Run("another connection", func(t *testing.T) {
		// A new TLS connection has another exporter value; the nonce
		// is refused before the signature is even looked at.
		q1, q2 := p1, p2
		q1.ChannelBinding, q2.ChannelBinding = binding(9), binding(9)
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, eve, rs, q1, q2, replace(toResponder, 0, hello)), RoleResponder, ErrReplay)
		})
	})
	t.Run("checked before the signature", func(t *testing.T) {
		h := decodeHello(t, hello)
		h.Sig[0] ^= 1
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, eve, rs, p1, p2, replace(toResponder, 0, encode(t, h))), RoleResponder, ErrReplay)
		})
	})
	t.Run("a thousand times", func(t *testing.T) {
		before := rs.Replay.Len()
		for range 1000 {
			r, err := NewResponder(rs, p2)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.ConsumeHello(decodeHello(t, hello)); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
		}
		if rs.Replay.Len() != before {
			t.Fatalf("replays changed the cache: %d nonces, was %d", rs.Replay.Len(), before)
		}
	})
	t.Run("reply replayed into a new handshake", func(t *testing.T) {
		// H2: a recorded flight 2 answers another hello.
		reply := rec.seen[toRequestor][0]
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, p2, replace(toRequestor, 0, reply)), RoleRequestor, ErrBadSignature)
		})
	})
}

// With a clock skew longer than half the cache's lifetime, a nonce must
// still be remembered until its hello would be refused as stale.
func TestReplayWindowCoversSkew(t *testing.T) {
	c := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rs := bob(t)
	rs.Now, rs.MaxClockSkew, rs.Replay = c.now, 10*time.Minute, NewReplayCache(0, time.Minute)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	rec := capture(t, &Config{Identity: identity(t, "ed-a"), Now: c.now}, rs, p1, p2)
	hello := decodeHello(t, rec.seen[toResponder][0])
	for _, step := range []struct {
		after time.Duration
		want  error
	}{
		{5 * time.Minute, ErrReplay},          // past the cache's minute, inside the skew
		{10 * time.Minute, ErrReplay},         // the last moment the timestamp passes
		{11 * time.Minute, ErrStaleTimestamp}, // forgotten only once stale
	} {
		c2 := newClock(c.now().Add(step.after))
		cfg := *rs
		cfg.Now = c2.now
		r, err := NewResponder(&cfg, p2)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ConsumeHello(hello); !errors.Is(err, step.want) {
			t.Fatalf("%v after the hello: %v, want %v", step.after, err, step.want)
		}
	}
}

func TestReplayCacheFull(t *testing.T) {
	c := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rs := bob(t)
	rs.Now, rs.Replay = c.now, NewReplayCache(2, 0)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	rq := &Config{Identity: identity(t, "ed-a"), Now: c.now}
	capture(t, rq, rs, p1, p2)
	capture(t, rq, rs, p1, p2)
	wantRefusal(t, runRelayed(t, rq, rs, p1, p2, nil), RoleResponder, ErrBusy)
	c.advance(2*DefaultMaxClockSkew + time.Millisecond)
	capture(t, rq, rs, p1, p2)
}

// A full cache is scanned for expired nonces only once one can have
// expired: a flood against it costs a comparison per hello.
func TestReplayCacheFullFloodScansOnce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := NewReplayCache(4, time.Minute)
	nonce := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, NonceSize) }
	for i := range 4 {
		if err := c.Add(nonce(i), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		if err := c.Add(nonce(100+i%100), t0.Add(10*time.Second)); !errors.Is(err, ErrBusy) {
			t.Fatalf("add to a full cache: %v", err)
		}
	}
	if c.scans != 0 {
		t.Fatalf("%d scans of a full cache before anything in it could expire, want 0", c.scans)
	}
	// The first nonce expires at t0+1m; the next add scans and fits.
	if err := c.Add(nonce(200), t0.Add(time.Minute)); err != nil || c.scans != 1 {
		t.Fatalf("add once the first nonce expired: %v, %d scans", err, c.scans)
	}
	if err := c.Add(nonce(0), t0.Add(time.Minute)); !errors.Is(err, ErrBusy) {
		t.Fatalf("a fresh add to a full cache: %v", err)
	}
	if err := c.Add(nonce(1), t0.Add(time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("an unexpired nonce again: %v", err)
	}
}

func TestReflection(t *testing.T) {
	a := identity(t, "ed-a")
	t.Run("own hello to own responder", func(t *testing.T) {
		// Alice's hello, meant for Bob, sent back to Alice's listener.
		self := &Config{Identity: a, Replay: NewReplayCache(0, 0)}
		p1, p2 := tlsParams(identity(t, "ed-b").PeerID())
		wantRefusal(t, runRelayed(t, alice(t), self, p1, p2, nil), RoleResponder, ErrReflection)
	})
	t.Run("reply from own identity", func(t *testing.T) {
		// A requestor that does not yet know the peer is answered
		// with its own identity.
		rs := bob(t)
		p1, p2 := tlsParams(cryptosuite.PeerID{})
		o := runRelayed(t, alice(t), rs, p1, p2, rewrite(t, toRequestor, 0, func(m wire.Message) wire.Message {
			r := m.(*wire.HelloReply)
			r.IdentityKey, r.SigAlg = a.Public().SPKI(), uint16(a.Public().Alg())
			return r
		}))
		wantRefusal(t, o, RoleRequestor, ErrReflection)
	})
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	rec := capture(t, alice(t), rs, p1, p2)
	t.Run("reply fed to a responder", func(t *testing.T) {
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, replace(toResponder, 0, rec.seen[toRequestor][0]))
			wantRefusal(t, o, RoleResponder, ErrUnexpectedMessage)
		})
	})
	t.Run("hello fed to a requestor", func(t *testing.T) {
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, func(d direction, i int, p []byte) ([]byte, bool) {
				if d == toRequestor && i == 0 {
					return framed(rec.seen[toResponder][0]), false
				}
				return framed(p), false
			})
			wantRefusal(t, o, RoleRequestor, ErrUnexpectedMessage)
		})
	})
}

// Eve, a legitimate peer, sits between Alice and Bob (THREATS.md H5).
// Alice means to reach Eve; Eve tries to make Bob share a session with
// Alice while Bob believes he talks to Eve, or the other way round.
func TestUnknownKeyShare(t *testing.T) {
	a, b, e := identity(t, "ed-a"), identity(t, "ed-b"), attacker(t, "eve")
	rs := bob(t)
	// Two TLS connections: Alice-Eve and Eve-Bob, two exporter values.
	aliceSide := Params{Transport: TransportTLS, ChannelBinding: binding(1), Expected: e.PeerID()}
	bobSide := Params{Transport: TransportTLS, ChannelBinding: binding(2)}
	aliceCfg := &Config{Identity: a}

	t.Run("hello relayed unchanged", func(t *testing.T) {
		// The Responder field names Eve.
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, aliceCfg, rs, aliceSide, bobSide, nil), RoleResponder, ErrWrongPeer)
		})
	})
	t.Run("addressee changed", func(t *testing.T) {
		whileServing(t, rs, func() {
			o := runRelayed(t, aliceCfg, rs, aliceSide, bobSide, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
				h := m.(*wire.Hello)
				id := b.PeerID()
				h.Responder = id[:]
				return h
			}))
			wantRefusal(t, o, RoleResponder, ErrBadSignature)
		})
	})

	// Eve re-signs Alice's hello (Alice's ephemeral share, Alice's
	// nonce) as her own, addressed to Bob over the Eve-Bob connection.
	var aliceHello *wire.Hello
	resign := func(d direction, i int, p []byte) ([]byte, bool) {
		if d == toResponder && i == 0 {
			aliceHello = decodeHello(t, p)
			h := decodeHello(t, p)
			id := b.PeerID()
			h.Responder = id[:]
			resignHello(t, h, e, bobSide)
			return framed(encode(t, h)), false
		}
		return framed(p), false
	}
	t.Run("re-signed hello, reply forwarded", func(t *testing.T) {
		// Bob answers "Eve"; Alice, who expects Eve, sees Bob's key.
		whileServing(t, rs, func() {
			o := runRelayed(t, aliceCfg, rs, aliceSide, bobSide, resign)
			wantRefusal(t, o, RoleRequestor, ErrWrongPeer)
		})
	})
	t.Run("re-signed hello and reply", func(t *testing.T) {
		// Eve also re-signs Bob's reply as her own over Alice's view of
		// the transcript. Alice's key schedule is salted with that
		// transcript, Bob's with his: the sealed authentication key
		// does not open, and no Finished for Bob can exist.
		h := func(d direction, i int, p []byte) ([]byte, bool) {
			if d == toResponder {
				return resign(d, i, p)
			}
			if i == 0 {
				m, _ := wire.Decode(p)
				r := m.(*wire.HelloReply)
				r.IdentityKey, r.SigAlg = e.Public().SPKI(), uint16(e.Public().Alg())
				l1 := transcriptHash(requestorLayout(aliceHello, a.PeerID(), aliceSide))
				r.Sig, _ = e.Sign(canon.LabelResponderHello, canon.ResponderHello(responderFields(l1, aliceHello.Sig, r, e.PeerID())))
				return framed(encode(t, r)), false
			}
			return framed(p), false
		}
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, aliceCfg, rs, aliceSide, bobSide, h), RoleRequestor, ErrBadAuthKey)
		})
	})
}

func TestDowngrade(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	all := []uint16{uint16(cryptosuite.AEADA256CBCHS512), uint16(cryptosuite.AEADAES256GCM), uint16(cryptosuite.AEADChaCha20Poly1305)}
	helloCases := []struct {
		name string
		kex  cryptosuite.KEXID
		f    func(h *wire.Hello)
		want error
	}{
		{"suite removed", cryptosuite.KEXX25519, func(h *wire.Hello) { h.AEADs = h.AEADs[1:] }, ErrBadSignature},
		{"only the last suite", cryptosuite.KEXX25519, func(h *wire.Hello) { h.AEADs = h.AEADs[2:] }, ErrBadSignature},
		{"suites reordered", cryptosuite.KEXX25519, func(h *wire.Hello) { h.AEADs = []uint16{all[2], all[1], all[0]} }, ErrBadSignature},
		{"suite added", cryptosuite.KEXX25519, func(h *wire.Hello) { h.AEADs = append(h.AEADs, 0x7777) }, ErrBadSignature},
		{"hybrid to x25519 with the attacker's share", cryptosuite.KEXX25519MLKEM768, func(h *wire.Hello) {
			k, _ := ecdh.X25519().GenerateKey(rand.Reader)
			h.KEX, h.Share = uint16(cryptosuite.KEXX25519), k.PublicKey().Bytes()
		}, ErrBadSignature},
		{"x25519 to p256 with the attacker's share", cryptosuite.KEXX25519, func(h *wire.Hello) {
			k, _ := ecdh.P256().GenerateKey(rand.Reader)
			h.KEX, h.Share = uint16(cryptosuite.KEXP256), k.PublicKey().Bytes()
		}, ErrBadSignature},
		{"mode changed, share kept", cryptosuite.KEXX25519, func(h *wire.Hello) { h.KEX = uint16(cryptosuite.KEXP256) }, ErrBadKeyShare},
	}
	for _, c := range helloCases {
		t.Run("hello/"+c.name, func(t *testing.T) {
			rq := &Config{Identity: identity(t, "ed-a"), KEX: c.kex, AEADs: aeadIDs(all)}
			whileServing(t, rs, func() {
				o := runRelayed(t, rq, rs, p1, p2, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
					c.f(m.(*wire.Hello))
					return m
				}))
				wantRefusal(t, o, RoleResponder, c.want)
			})
		})
	}
	replyCases := []struct {
		name string
		rq   []uint16
		f    func(r *wire.HelloReply)
		want error
	}{
		{"chosen suite changed to another offered", all, func(r *wire.HelloReply) { r.AEAD = all[2] }, ErrBadSignature},
		{"chosen suite changed to one not offered", all[:2], func(r *wire.HelloReply) { r.AEAD = all[2] }, ErrNoCommonSuite},
		{"chosen suite unknown", all, func(r *wire.HelloReply) { r.AEAD = 0x7777 }, ErrNoCommonSuite},
		{"mode changed", all, func(r *wire.HelloReply) { r.KEX = uint16(cryptosuite.KEXP256) }, ErrKEXRefused},
	}
	for _, c := range replyCases {
		t.Run("reply/"+c.name, func(t *testing.T) {
			rq := &Config{Identity: identity(t, "ed-a"), AEADs: aeadIDs(c.rq)}
			whileServing(t, rs, func() {
				o := runRelayed(t, rq, rs, p1, p2, rewrite(t, toRequestor, 0, func(m wire.Message) wire.Message {
					c.f(m.(*wire.HelloReply))
					return m
				}))
				wantRefusal(t, o, RoleRequestor, c.want)
			})
		})
	}
	t.Run("no common suite", func(t *testing.T) {
		rq := &Config{Identity: identity(t, "ed-a"), AEADs: []cryptosuite.AEADID{cryptosuite.AEADChaCha20Poly1305}}
		only := bob(t)
		only.AEADs = []cryptosuite.AEADID{cryptosuite.AEADAES256GCM}
		wantRefusal(t, runRelayed(t, rq, only, p1, p2, nil), RoleResponder, ErrNoCommonSuite)
	})
}

func TestWrongPeer(t *testing.T) {
	rs := bob(t)
	mallory := attacker(t, "mallory")
	p1, p2 := tlsParams(rs.Identity.PeerID())
	t.Run("man in the middle answers with its own key", func(t *testing.T) {
		// Mallory gets a hello addressed to her from Alice on another
		// connection and uses her genuine reply to answer Alice's hello
		// meant for Bob.
		m := &Config{Identity: mallory, Replay: NewReplayCache(0, 0)}
		q1, q2 := tlsParams(mallory.PeerID())
		own := capture(t, alice(t), m, q1, q2)
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, replace(toRequestor, 0, own.seen[toRequestor][0]))
			wantRefusal(t, o, RoleRequestor, ErrWrongPeer)
		})
	})
	t.Run("hello addressed to another peer", func(t *testing.T) {
		m := &Config{Identity: mallory, Replay: NewReplayCache(0, 0)}
		wantRefusal(t, runRelayed(t, alice(t), m, p1, p2, nil), RoleResponder, ErrWrongPeer)
	})
	t.Run("hello signed by another key than the TLS client certificate", func(t *testing.T) {
		q2 := p2
		q2.Expected = identity(t, "ed-c").PeerID()
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, q2, nil), RoleResponder, ErrWrongPeer)
		})
	})
	t.Run("TLS client certificate matches", func(t *testing.T) {
		q2 := p2
		q2.Expected = identity(t, "ed-a").PeerID()
		capture(t, alice(t), rs, p1, q2)
	})
}

func TestChannelBinding(t *testing.T) {
	rs := bob(t)
	id := rs.Identity.PeerID()
	for _, c := range []struct {
		name   string
		p1, p2 Params
	}{
		{"two TLS exporter values", Params{Transport: TransportTLS, ChannelBinding: binding(1), Expected: id},
			Params{Transport: TransportTLS, ChannelBinding: binding(2)}},
		{"tcp-notls against http", Params{Transport: TransportNoTLS, Expected: id}, Params{Transport: TransportHTTP}},
		{"tcp against http", Params{Transport: TransportTLS, ChannelBinding: binding(1), Expected: id}, Params{Transport: TransportHTTP}},
		{"http against tcp-notls", Params{Transport: TransportHTTP, Expected: id}, Params{Transport: TransportNoTLS}},
	} {
		t.Run(c.name, func(t *testing.T) {
			whileServing(t, rs, func() {
				wantRefusal(t, runRelayed(t, alice(t), rs, c.p1, c.p2, nil), RoleResponder, ErrBadSignature)
			})
		})
	}
	t.Run("matching bindings complete", func(t *testing.T) {
		for _, tr := range []string{TransportNoTLS, TransportHTTP} {
			capture(t, alice(t), rs, Params{Transport: tr, Expected: id}, Params{Transport: tr})
		}
	})
}

func TestBadFrames(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	tooLarge := func(d direction) hook {
		return func(fd direction, fi int, p []byte) ([]byte, bool) {
			if fd == d && fi == 0 {
				return []byte{0, 1, 0, 1}, false // 65537: one byte over MaxControlFrame, no payload follows
			}
			return framed(p), false
		}
	}
	truncated := func(d direction) hook {
		return func(fd direction, fi int, p []byte) ([]byte, bool) {
			if fd == d && fi == 0 {
				return framed(p)[:4+len(p)/2], true
			}
			return framed(p), false
		}
	}
	empty := func(d direction) hook {
		return func(fd direction, fi int, p []byte) ([]byte, bool) {
			if fd == d && fi == 0 {
				return []byte{0, 0, 0, 0}, false
			}
			return framed(p), false
		}
	}
	for _, d := range []direction{toResponder, toRequestor} {
		reader, sender := RoleResponder, RoleRequestor
		if d == toRequestor {
			reader, sender = RoleRequestor, RoleResponder
		}
		pick := func(o outcome, r Role) result {
			if r == RoleRequestor {
				return o.rq
			}
			return o.rs
		}
		t.Run(d.String()+"/oversized", func(t *testing.T) {
			whileServing(t, rs, func() {
				o := runRelayed(t, alice(t), rs, p1, p2, tooLarge(d))
				var tl *framing.FrameTooLargeError
				if err := pick(o, reader).err; !errors.As(err, &tl) || tl.N != framing.MaxControlFrame+1 {
					t.Fatalf("reader: %v", err)
				}
				if got := peerCode(pick(o, sender).err); got != wire.CodeTooLarge {
					t.Fatalf("sender got %v", pick(o, sender).err)
				}
			})
		})
		t.Run(d.String()+"/truncated", func(t *testing.T) {
			whileServing(t, rs, func() {
				o := runRelayed(t, alice(t), rs, p1, p2, truncated(d))
				if err := pick(o, reader).err; !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("reader: %v", err)
				}
				if o.rq.keys != nil || o.rs.keys != nil {
					t.Fatal("keys after a truncated frame")
				}
			})
		})
		t.Run(d.String()+"/empty", func(t *testing.T) {
			whileServing(t, rs, func() {
				o := runRelayed(t, alice(t), rs, p1, p2, empty(d))
				if err := pick(o, reader).err; !errors.Is(err, framing.ErrEmptyFrame) {
					t.Fatalf("reader: %v", err)
				}
				if got := peerCode(pick(o, sender).err); got != wire.CodeProtocol {
					t.Fatalf("sender got %v", pick(o, sender).err)
				}
			})
		})
	}
}

func TestOutOfOrder(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	finished := encode(t, &wire.Finished{MAC: make([]byte, wire.MACSize)})
	ready := encode(t, &wire.Ready{MaxStreams: 1, MaxFrameKiB: 1})
	// again sends the first payload of direction d a second time in place
	// of the second.
	again := func(d direction) hook {
		var first []byte
		return func(fd direction, fi int, p []byte) ([]byte, bool) {
			if fd == d && fi == 0 {
				first = append([]byte(nil), p...)
			}
			if fd == d && fi == 1 {
				return framed(first), false
			}
			return framed(p), false
		}
	}
	t.Run("Finished first", func(t *testing.T) {
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, p2, replace(toResponder, 0, finished)), RoleResponder, ErrUnexpectedMessage)
		})
	})
	t.Run("Hello twice", func(t *testing.T) {
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, p2, again(toResponder)), RoleResponder, ErrUnexpectedMessage)
		})
	})
	t.Run("Ready first", func(t *testing.T) {
		whileServing(t, rs, func() {
			wantRefusal(t, runRelayed(t, alice(t), rs, p1, p2, replace(toRequestor, 0, ready)), RoleRequestor, ErrUnexpectedMessage)
		})
	})
	t.Run("HelloReply twice", func(t *testing.T) {
		// The responder has sent Ready as far as it knows; the
		// requestor refuses the second reply and yields no keys.
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, again(toRequestor))
			if !errors.Is(o.rq.err, ErrUnexpectedMessage) || o.rq.keys != nil {
				t.Fatalf("requestor: %v", o.rq.err)
			}
		})
	})
	t.Run("state machines called out of turn", func(t *testing.T) {
		r, _ := NewResponder(rs, p2)
		if _, err := r.ConsumeFinished(&wire.Finished{MAC: make([]byte, 32)}); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("ConsumeFinished first: %v", err)
		}
		q, _ := NewRequestor(alice(t), p1)
		hello, err := q.CreateHello()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ConsumeHello(hello); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("a failed responder went on: %v", err)
		}
		if _, err := q.CreateHello(); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("CreateHello twice: %v", err)
		}
		if _, _, err := q.CreateFinished(); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("a failed requestor went on: %v", err)
		}
	})
}

func TestPolicyRefusal(t *testing.T) {
	rs := bob(t)
	eve := attacker(t, "eve")
	errNotAllowed := errors.New("not on the allow list")
	rs.Policy = func(pk *cryptosuite.PublicKey) error {
		if pk.PeerID() == eve.PeerID() {
			return errNotAllowed
		}
		return nil
	}
	p1, p2 := tlsParams(rs.Identity.PeerID())
	whileServing(t, rs, func() {
		o := runRelayed(t, &Config{Identity: eve}, rs, p1, p2, nil)
		wantRefusal(t, o, RoleResponder, ErrPolicy)
		if !errors.Is(o.rs.err, errNotAllowed) {
			t.Fatalf("the policy's reason is lost: %v", o.rs.err)
		}
	})
}

func TestRSAModeRefusals(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	rsaMode := cryptosuite.KEXRSAOAEPSHA256
	t.Run("Ed25519 requestor asks", func(t *testing.T) {
		o := runRelayed(t, &Config{Identity: identity(t, "ed-a"), KEX: rsaMode, AllowRSA: true}, rs, p1, p2, nil)
		if !errors.Is(o.rq.err, ErrKEXRefused) {
			t.Fatalf("requestor: %v", o.rq.err)
		}
		if len(o.seen[toResponder]) != 0 {
			t.Fatal("the requestor sent a hello it could not complete")
		}
	})
	t.Run("requestor has not enabled it", func(t *testing.T) {
		_, err := NewRequestor(&Config{Identity: identity(t, "rsa2048"), KEX: rsaMode}, p1)
		if !errors.Is(err, ErrKEXRefused) {
			t.Fatalf("NewRequestor: %v", err)
		}
	})
	t.Run("responder has not enabled it", func(t *testing.T) {
		off := bob(t)
		off.AllowRSA = false
		o := runRelayed(t, &Config{Identity: identity(t, "rsa2048"), KEX: rsaMode, AllowRSA: true}, off, p1, p2, nil)
		wantRefusal(t, o, RoleResponder, ErrKEXRefused)
	})
	for _, allow := range []bool{true, false} {
		name := "tampered hello claims it, responder allows rsa"
		if !allow {
			name = "tampered hello claims it, responder refuses rsa"
		}
		t.Run(name, func(t *testing.T) {
			r := bob(t)
			r.AllowRSA = allow
			whileServing(t, r, func() {
				o := runRelayed(t, alice(t), r, p1, p2, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
					h := m.(*wire.Hello)
					h.KEX, h.Share = uint16(rsaMode), nil
					return h
				}))
				wantRefusal(t, o, RoleResponder, ErrKEXRefused)
			})
		})
	}
}

// A requestor that never sends Finished leaves the responder with no keys,
// and nothing secret left in its pending state.
func TestNoFinished(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	t.Run("connection closed", func(t *testing.T) {
		whileServing(t, rs, func() {
			o := runRelayed(t, alice(t), rs, p1, p2, func(d direction, i int, p []byte) ([]byte, bool) {
				if d == toResponder && i == 1 {
					return nil, true
				}
				return framed(p), false
			})
			if o.rs.keys != nil || !gone(o.rs.err) {
				t.Fatalf("responder: keys %v, %v", o.rs.keys != nil, o.rs.err)
			}
		})
	})
	t.Run("silent past the deadline", func(t *testing.T) {
		// The caller's deadline (node sets it) ends the wait.
		rqConn, rsConn := net.Pipe()
		defer rqConn.Close()
		rsConn.SetDeadline(time.Now().Add(200 * time.Millisecond))
		rqConn.SetDeadline(time.Now().Add(hangDeadline))
		done := make(chan result, 1)
		go func() {
			defer rsConn.Close()
			var r result
			r.keys, r.err = RunResponder(rsConn, rs, p2)
			done <- r
		}()
		q, _ := NewRequestor(alice(t), p1)
		c := newCodec(rqConn)
		hello, _ := q.CreateHello()
		if err := c.send(hello); err != nil {
			t.Fatal(err)
		}
		if _, err := c.recv(); err != nil {
			t.Fatal(err)
		}
		r := <-done // the requestor stays silent
		if r.keys != nil || !errors.Is(r.err, os.ErrDeadlineExceeded) || Code(r.err) != wire.CodeTimeout {
			t.Fatalf("responder: keys %v, %v", r.keys != nil, r.err)
		}
	})
	t.Run("pending secrets zeroed", func(t *testing.T) {
		q, _ := NewRequestor(alice(t), p1)
		r, _ := NewResponder(rs, p2)
		hello, _ := q.CreateHello()
		if err := r.ConsumeHello(hello); err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreateReply(); err != nil {
			t.Fatal(err)
		}
		sched, authKey, keys := r.sched, r.authKey, r.keys
		r.Abort()
		for name, b := range map[string][]byte{"c2s": sched.c2s, "s2c": sched.s2c, "seal": sched.seal,
			"finished": sched.finished, "auth key": authKey, "keys.C2S": keys.C2S, "keys.S2C": keys.S2C, "keys.AuthKey": keys.AuthKey[:]} {
			if !bytes.Equal(b, make([]byte, len(b))) || len(b) == 0 {
				t.Errorf("%s not zeroed after Abort", name)
			}
		}
		if _, err := r.ConsumeFinished(&wire.Finished{MAC: make([]byte, 32)}); !errors.Is(err, ErrUnexpectedMessage) {
			t.Fatalf("ConsumeFinished after Abort: %v", err)
		}
	})
	t.Run("bad Finished zeroes too", func(t *testing.T) {
		q, _ := NewRequestor(alice(t), p1)
		r, _ := NewResponder(rs, p2)
		hello, _ := q.CreateHello()
		if err := r.ConsumeHello(hello); err != nil {
			t.Fatal(err)
		}
		reply, err := r.CreateReply()
		if err != nil {
			t.Fatal(err)
		}
		if err := q.ConsumeReply(reply); err != nil {
			t.Fatal(err)
		}
		qsched, qkeys := q.sched, q.keys
		q.Abort()
		if !bytes.Equal(qsched.finished, make([]byte, 32)) || !bytes.Equal(qkeys.C2S, make([]byte, len(qkeys.C2S))) {
			t.Fatal("requestor secrets not zeroed after Abort")
		}
		keys := r.keys
		if _, err := r.ConsumeFinished(&wire.Finished{MAC: make([]byte, 32)}); !errors.Is(err, ErrBadFinished) {
			t.Fatalf("zero MAC: %v", err)
		}
		if !bytes.Equal(keys.S2C, make([]byte, len(keys.S2C))) || keys.AuthKey != [AuthKeySize]byte{} {
			t.Fatal("responder keys not zeroed after a bad Finished")
		}
	})
}

// TestNoReuse: many handshakes between the same two identities never
// repeat a session id, transcript hash, key, nonce or ephemeral share
// (THREATS.md H10; tailscale's TestNoReuse).
func TestNoReuse(t *testing.T) {
	const n = 50
	for _, kex := range []cryptosuite.KEXID{cryptosuite.KEXX25519, cryptosuite.KEXX25519MLKEM768} {
		t.Run(kex.String(), func(t *testing.T) {
			rs := bob(t)
			p1, p2 := tlsParams(rs.Identity.PeerID())
			rq := &Config{Identity: identity(t, "ed-a"), KEX: kex}
			seen := map[string]map[string]bool{}
			record := func(kind string, b []byte) {
				if seen[kind] == nil {
					seen[kind] = map[string]bool{}
				}
				if seen[kind][string(b)] {
					t.Fatalf("%s repeated", kind)
				}
				seen[kind][string(b)] = true
			}
			for range n {
				o := capture(t, rq, rs, p1, p2)
				k := o.rq.keys
				hello := decodeHello(t, o.seen[toResponder][0])
				m, _ := wire.Decode(o.seen[toRequestor][0])
				reply := m.(*wire.HelloReply)
				record("session id", k.SessionID[:])
				record("transcript hash", k.TranscriptHash[:])
				// One namespace for every key: no key may serve twice,
				// even in another role.
				record("key", k.C2S)
				record("key", k.S2C)
				record("key", k.AuthKey[:])
				record("nonce", hello.Nonce)
				record("nonce", reply.Nonce)
				record("share", hello.Share)
				record("share", reply.Share)
				record("sealed auth key", reply.SealedAuthKey)
				record("finished", o.seen[toResponder][1])
			}
			if len(seen["key"]) != 3*n {
				t.Fatalf("%d distinct keys, want %d", len(seen["key"]), 3*n)
			}
		})
	}
}

// Invalid ephemeral shares, signed by their sender so that they reach the
// key agreement (THREATS.md K2): small-order X25519 points, a P-256 point
// off the curve, an ML-KEM key with unreduced coefficients. Each is
// refused as a bad key share before the receiver signs or seals anything.
func TestInvalidShares(t *testing.T) {
	rs := bob(t)
	p1, p2 := tlsParams(rs.Identity.PeerID())
	offCurve := append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)
	unreduced := func(share []byte) []byte {
		s := append([]byte(nil), share...)
		s[0], s[1] = 0xff, s[1]|0x0f // first coefficient 0xfff >= q
		return s
	}
	for _, c := range []struct {
		name  string
		kex   cryptosuite.KEXID
		share func([]byte) []byte
	}{
		{"x25519 zero point", cryptosuite.KEXX25519, func([]byte) []byte { return make([]byte, 32) }},
		{"x25519 point of order 1", cryptosuite.KEXX25519, func([]byte) []byte { return append([]byte{1}, make([]byte, 31)...) }},
		{"p256 point off the curve", cryptosuite.KEXP256, func([]byte) []byte { return offCurve }},
		{"hybrid x25519 zero point", cryptosuite.KEXX25519MLKEM768, func(s []byte) []byte {
			return append(append([]byte(nil), s[:len(s)-32]...), make([]byte, 32)...)
		}},
		{"hybrid ML-KEM key unreduced", cryptosuite.KEXX25519MLKEM768, unreduced},
	} {
		t.Run("hello/"+c.name, func(t *testing.T) {
			rq := &Config{Identity: identity(t, "ed-a"), KEX: c.kex}
			whileServing(t, rs, func() {
				o := runRelayed(t, rq, rs, p1, p2, rewrite(t, toResponder, 0, func(m wire.Message) wire.Message {
					h := m.(*wire.Hello)
					h.Share = c.share(h.Share)
					resignHello(t, h, identity(t, "ed-a"), p2)
					return h
				}))
				wantRefusal(t, o, RoleResponder, ErrBadKeyShare)
				if len(o.seen[toRequestor]) != 1 || peerCode(o.rq.err) != wire.CodeBadSignature {
					t.Fatal("the responder answered more than its refusal")
				}
			})
		})
	}
	for _, c := range []struct {
		name  string
		kex   cryptosuite.KEXID
		share func([]byte) []byte
	}{
		{"x25519 zero point", cryptosuite.KEXX25519, func([]byte) []byte { return make([]byte, 32) }},
		{"p256 point off the curve", cryptosuite.KEXP256, func([]byte) []byte { return offCurve }},
		{"hybrid x25519 zero point", cryptosuite.KEXX25519MLKEM768, func(s []byte) []byte {
			return append(append([]byte(nil), s[:len(s)-32]...), make([]byte, 32)...)
		}},
	} {
		t.Run("reply/"+c.name, func(t *testing.T) {
			// The responder itself signs a bad share.
			var hello *wire.Hello
			a := identity(t, "ed-a")
			h := func(d direction, i int, p []byte) ([]byte, bool) {
				if d == toResponder && i == 0 {
					hello = decodeHello(t, p)
				}
				if d == toRequestor && i == 0 {
					m, _ := wire.Decode(p)
					r := m.(*wire.HelloReply)
					r.Share = c.share(r.Share)
					l1 := transcriptHash(requestorLayout(hello, a.PeerID(), p1))
					r.Sig, _ = rs.Identity.Sign(canon.LabelResponderHello, canon.ResponderHello(responderFields(l1, hello.Sig, r, rs.Identity.PeerID())))
					return framed(encode(t, r)), false
				}
				return framed(p), false
			}
			o := runRelayed(t, &Config{Identity: a, KEX: c.kex}, rs, p1, p2, h)
			wantRefusal(t, o, RoleRequestor, ErrBadKeyShare)
		})
	}
}
