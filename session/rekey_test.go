package session

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// rekeyClock is an injected Now.
type rekeyClock struct {
	mu sync.Mutex
	t  time.Time
}

func newRekeyClock() *rekeyClock { return &rekeyClock{t: time.UnixMilli(1_767_225_600_000)} }

func (c *rekeyClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *rekeyClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rekeyEnds are both ends of one session with their rekey state machines.
type rekeyEnds struct {
	*directEnds
	rq, rs *Rekey
	clk    *rekeyClock
}

type modeCase struct {
	kex    cryptosuite.KEXID
	rq, rs string // identity fixtures
}

var rekeyModes = []modeCase{
	{cryptosuite.KEXX25519, "ed-a", "ed-b"},
	{cryptosuite.KEXP256, "rsa2048", "ed-b"},
	{cryptosuite.KEXX25519MLKEM768, "ed-a", "rsa3072"},
	{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072"},
	{cryptosuite.KEXRSAOAEPSHA256, "rsa3072", "ed-b"},
}

func (c modeCase) String() string { return c.kex.String() + "/" + c.rq + "-" + c.rs }

func newRekeyEnds(t testing.TB, c modeCase, aead cryptosuite.AEADID, p RekeyPolicy) *rekeyEnds {
	t.Helper()
	return rekeyEndsFrom(t, newDirectEnds(t, c.kex, aead, c.rq, c.rs), c, p)
}

func rekeyEndsFrom(t testing.TB, d *directEnds, c modeCase, p RekeyPolicy) *rekeyEnds {
	t.Helper()
	e := &rekeyEnds{directEnds: d, clk: newRekeyClock()}
	var err error
	if e.rq, err = NewRekey(d.rqKeys, d.rqS, d.rqR, RekeyConfig{Identity: identity(t, c.rq), Policy: p, Now: e.clk.now}); err != nil {
		t.Fatal(err)
	}
	if e.rs, err = NewRekey(d.rsKeys, d.rsS, d.rsR, RekeyConfig{Identity: identity(t, c.rs), Policy: p, Now: e.clk.now}); err != nil {
		t.Fatal(err)
	}
	return e
}

// deliver hands m, through the codec, to the requestor (toRequestor) or
// the responder, and so on with each answer until there is none. It
// returns the messages that travelled.
func (e *rekeyEnds) deliver(t testing.TB, m wire.Message, toRequestor bool) []wire.Message {
	t.Helper()
	var seen []wire.Message
	for i := 0; m != nil; i++ {
		if i == 6 {
			t.Fatal("the exchange does not end")
		}
		m = wireTrip(t, m)
		seen = append(seen, m)
		var err error
		if toRequestor {
			m, err = e.rq.Consume(m)
		} else {
			m, err = e.rs.Consume(m)
		}
		if err != nil {
			t.Fatalf("%T: %v", seen[len(seen)-1], err)
		}
		toRequestor = !toRequestor
	}
	return seen
}

// rekey runs one exchange the requestor starts and checks its flights.
func (e *rekeyEnds) rekey(t testing.TB) {
	t.Helper()
	before := e.rq.Epoch()
	m, err := e.rq.Start()
	if err != nil {
		t.Fatal(err)
	}
	seen := e.deliver(t, m, false)
	if len(seen) != 3 {
		t.Fatalf("%d flights, want 3", len(seen))
	}
	_, ok1 := seen[0].(*wire.RekeyInit)
	_, ok2 := seen[1].(*wire.RekeyReply)
	_, ok3 := seen[2].(*wire.RekeyConfirm)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("flights %T %T %T", seen[0], seen[1], seen[2])
	}
	if e.rq.Epoch() != before+1 || e.rs.Epoch() != before+1 || e.rqS.Epoch() != before+1 || e.rsS.Epoch() != before+1 {
		t.Fatalf("after the exchange: epochs %d %d, senders %d %d, want %d", e.rq.Epoch(), e.rs.Epoch(), e.rqS.Epoch(), e.rsS.Epoch(), before+1)
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return len(b) > 0
}

func newestKey(r *DirectReceiver) []byte { return r.keys[len(r.keys)-1].key }

func TestRekeyModes(t *testing.T) {
	for _, c := range rekeyModes {
		for _, aead := range aeadIDsUnderTest {
			t.Run(c.String()+"/"+aead.String(), func(t *testing.T) {
				e := newRekeyEnds(t, c, aead, RekeyPolicy{})
				mustOpen(t, e.rsR, mustSeal(t, e.rqS, "before"), "before")
				mustOpen(t, e.rqR, mustSeal(t, e.rsS, "before back"), "before back")
				// Sealed under epoch 0, delivered after the switch.
				upLate, downLate := mustSeal(t, e.rqS, "late up"), mustSeal(t, e.rsS, "late down")
				oldC2S, oldS2C := bytes.Clone(e.rqKeys.C2S), bytes.Clone(e.rqKeys.S2C)
				oldSecret, oldHash := bytes.Clone(e.rqKeys.RekeySecret), e.rqKeys.TranscriptHash

				e.rekey(t)

				if !bytes.Equal(e.rqS.key, newestKey(e.rsR)) || !bytes.Equal(e.rsS.key, newestKey(e.rqR)) {
					t.Fatal("the two sides derived different direction keys")
				}
				if e.rq.hash != e.rs.hash || !bytes.Equal(e.rq.secret, e.rs.secret) {
					t.Fatal("the two sides derived different rekey hashes or secrets")
				}
				if bytes.Equal(e.rqS.key, oldC2S) || bytes.Equal(e.rsS.key, oldS2C) || bytes.Equal(e.rqS.key, e.rsS.key) ||
					bytes.Equal(e.rq.secret, oldSecret) || e.rq.hash == oldHash {
					t.Fatal("a new key repeats an old one, or the two directions share one")
				}
				// The senders have switched: their old keys and the old
				// chaining secret are zero on both sides.
				for name, b := range map[string][]byte{
					"requestor c2s": e.rqKeys.C2S, "responder s2c": e.rsKeys.S2C,
					"requestor secret": e.rqKeys.RekeySecret, "responder secret": e.rsKeys.RekeySecret,
				} {
					if !allZero(b) {
						t.Fatalf("%s not zeroed after the switch", name)
					}
				}
				// The receivers keep the old keys until a message under
				// the new epoch arrives.
				if allZero(e.rsKeys.C2S) || allZero(e.rqKeys.S2C) {
					t.Fatal("a receiver dropped the old key before the peer's first new message")
				}
				up, down := mustSeal(t, e.rqS, "after up"), mustSeal(t, e.rsS, "after down")
				if up.Epoch != 1 || up.Seq != 2 || down.Epoch != 1 || down.Seq != 2 {
					t.Fatalf("after the switch: up seq %d epoch %d, down seq %d epoch %d", up.Seq, up.Epoch, down.Seq, down.Epoch)
				}
				mustOpen(t, e.rsR, upLate, "late up")
				mustOpen(t, e.rqR, downLate, "late down")
				if allZero(e.rsKeys.C2S) || allZero(e.rqKeys.S2C) {
					t.Fatal("a receiver dropped the old key on a message under it")
				}
				mustOpen(t, e.rsR, up, "after up")
				mustOpen(t, e.rqR, down, "after down")
				if !allZero(e.rsKeys.C2S) || !allZero(e.rqKeys.S2C) || e.rsR.Epoch() != 1 || e.rqR.Epoch() != 1 {
					t.Fatal("the old receive keys survived the first message under the new epoch")
				}
				// Messages under the zeroed epoch, or under one no rekey
				// made, are refused.
				stale := *upLate
				stale.Seq = 3
				_, err := e.rsR.Open(&stale)
				var ee *EpochError
				if !errors.As(err, &ee) || ee.Got != 0 || ee.Oldest != 1 || ee.Newest != 1 {
					t.Fatalf("message under the retired epoch: %v", err)
				}
				next := mustSeal(t, e.rqS, "next")
				future := *next
				future.Epoch = 2
				if _, err := e.rsR.Open(&future); !errors.Is(err, ErrDirectEpoch) {
					t.Fatalf("message under an epoch no rekey made: %v", err)
				}
				mustOpen(t, e.rsR, next, "next")
			})
		}
	}
}

// TestRekeyKeySchedule recomputes an epoch's keys from the documented
// schedule (docs/PROTOCOL.md, "Rekey key schedule") with the standard
// library alone, from known ephemeral keys: the direction keys, the
// chaining secret, the rekey hash and both confirmation MACs.
func TestRekeyKeySchedule(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADAES256GCM, RekeyPolicy{})
	seedA, seedB := bytes.Repeat([]byte{0xa1}, 32), bytes.Repeat([]byte{0xb2}, 32)
	e.rq.kexSeed, e.rs.kexSeed = seedA, seedB
	th0, secret0 := e.rqKeys.TranscriptHash, bytes.Clone(e.rqKeys.RekeySecret)
	init, err := e.rq.Start()
	if err != nil {
		t.Fatal(err)
	}
	flights := e.deliver(t, init, false)
	reply, confirm := flights[1].(*wire.RekeyReply), flights[2].(*wire.RekeyConfirm)

	a, _ := ecdh.X25519().NewPrivateKey(seedA)
	b, _ := ecdh.X25519().NewPrivateKey(seedB)
	shared, err := a.ECDH(b.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(init.(*wire.RekeyInit).Share, a.PublicKey().Bytes()) || !bytes.Equal(reply.Share, b.PublicKey().Bytes()) {
		t.Fatal("the shares are not the seeded keys")
	}
	h1 := sha256.Sum256(canon.Rekey(th0, 1, a.PublicKey().Bytes(), b.PublicKey().Bytes()))
	prk, err := hkdf.Extract(sha256.New, append(bytes.Clone(shared), secret0...), h1[:])
	if err != nil {
		t.Fatal(err)
	}
	expand := func(label string, n int) []byte {
		out, err := hkdf.Expand(sha256.New, prk, label, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	mac := func(role string) []byte {
		m := hmac.New(sha256.New, expand("lanpeer/v1 rekey confirm", 32))
		m.Write(canon.RekeyConfirm(role, h1, 1))
		return m.Sum(nil)
	}
	for name, c := range map[string]struct{ got, want []byte }{
		"c2s":           {e.rqS.key, expand("lanpeer/v1 c2s", 32)},
		"s2c":           {e.rsS.key, expand("lanpeer/v1 s2c", 32)},
		"rekey secret":  {e.rs.secret, expand("lanpeer/v1 rekey", 32)},
		"rekey hash":    {e.rs.hash[:], h1[:]},
		"responder MAC": {reply.MAC, mac("responder")},
		"requestor MAC": {confirm.MAC, mac("requestor")},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, the schedule gives %x", name, c.got, c.want)
		}
	}
}

// TestRekeyMessageBeforeConfirm: the requestor sends under the new epoch
// as soon as it has checked the reply; its first message may reach the
// responder (on the direct stream) before RekeyConfirm does (on the
// control stream), and opens.
func TestRekeyMessageBeforeConfirm(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newRekeyEnds(t, rekeyModes[0], aead, RekeyPolicy{})
		init, _ := e.rq.Start()
		reply, err := e.rs.Consume(wireTrip(t, init))
		if err != nil {
			t.Fatal(err)
		}
		confirm, err := e.rq.Consume(wireTrip(t, reply))
		if err != nil {
			t.Fatal(err)
		}
		m := mustSeal(t, e.rqS, "overtakes the confirmation")
		if m.Epoch != 1 {
			t.Fatalf("%v: sealed under epoch %d", aead, m.Epoch)
		}
		mustOpen(t, e.rsR, m, "overtakes the confirmation")
		if e.rsS.Epoch() != 0 {
			t.Fatal("the responder switched before the confirmation")
		}
		if _, err := e.rs.Consume(wireTrip(t, confirm)); err != nil {
			t.Fatal(err)
		}
		mustOpen(t, e.rqR, mustSeal(t, e.rsS, "back"), "back")
	}
}

// TestRekeyChain: epochs follow each other, started by either side; every
// epoch's keys are new, and Seq runs on across them.
func TestRekeyChain(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADAES256GCM, RekeyPolicy{})
	seen := map[string]int{}
	record := func(epoch int, keys ...[]byte) {
		for _, k := range keys {
			if prev, ok := seen[string(k)]; ok {
				t.Fatalf("a key of epoch %d repeats one of epoch %d", epoch, prev)
			}
			seen[string(k)] = epoch
		}
	}
	record(0, e.rqS.key, e.rsS.key, e.rq.secret)
	seq := uint64(0)
	for epoch := 1; epoch <= 5; epoch++ {
		if epoch%2 == 0 {
			e.clk.add(DefaultRekeyMinInterval)
			m, err := e.rs.Start()
			if err != nil {
				t.Fatal(err)
			}
			if len(e.deliver(t, m, true)) != 4 {
				t.Fatal("a responder's request takes four flights")
			}
		} else {
			e.rekey(t)
		}
		if e.rq.Epoch() != uint32(epoch) || e.rs.Epoch() != uint32(epoch) {
			t.Fatalf("epochs %d %d, want %d", e.rq.Epoch(), e.rs.Epoch(), epoch)
		}
		record(epoch, e.rqS.key, e.rsS.key, e.rq.secret)
		for i := 0; i < 3; i++ {
			up, down := mustSeal(t, e.rqS, "up"), mustSeal(t, e.rsS, "down")
			if up.Seq != seq || down.Seq != seq || up.Epoch != uint32(epoch) {
				t.Fatalf("epoch %d: seq %d/%d epoch %d, want seq %d", epoch, up.Seq, down.Seq, up.Epoch, seq)
			}
			seq++
			mustOpen(t, e.rsR, up, "up")
			mustOpen(t, e.rqR, down, "down")
		}
	}
}

// TestRekeyLateMessages: a receiver holds the keys of up to two epochs the
// peer has not used yet, so a message two exchanges late still opens; one
// three exchanges late is refused.
func TestRekeyLateMessages(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADChaCha20Poly1305, RekeyPolicy{})
	late := mustSeal(t, e.rqS, "two late")
	e.rekey(t)
	e.rekey(t)
	mustOpen(t, e.rsR, late, "two late")
	mustOpen(t, e.rsR, mustSeal(t, e.rqS, "current"), "current")
	if e.rsR.Epoch() != 2 {
		t.Fatalf("receiver at epoch %d", e.rsR.Epoch())
	}
	late = mustSeal(t, e.rqS, "three late")
	for i := 0; i < 3; i++ {
		e.rekey(t)
	}
	_, err := e.rsR.Open(late)
	var ee *EpochError
	if !errors.As(err, &ee) || ee.Got != 2 || ee.Oldest != 3 || ee.Newest != 5 {
		t.Fatalf("message three exchanges late: %v", err)
	}
}

// cloneEnds makes fresh ends of the session d was made from, as they were
// before any message: the same keys, copied.
func cloneEnds(t testing.TB, k1, k2 *Keys) *directEnds {
	t.Helper()
	cp := func(k *Keys) *Keys {
		c := *k
		c.C2S, c.S2C, c.RekeySecret = bytes.Clone(k.C2S), bytes.Clone(k.S2C), bytes.Clone(k.RekeySecret)
		return &c
	}
	d := &directEnds{rqKeys: cp(k1), rsKeys: cp(k2)}
	var err error
	if d.rqS, err = NewDirectSender(d.rqKeys, nil); err != nil {
		t.Fatal(err)
	}
	if d.rqR, err = NewDirectReceiver(d.rqKeys); err != nil {
		t.Fatal(err)
	}
	if d.rsS, err = NewDirectSender(d.rsKeys, nil); err != nil {
		t.Fatal(err)
	}
	if d.rsR, err = NewDirectReceiver(d.rsKeys); err != nil {
		t.Fatal(err)
	}
	return d
}

// flips returns the byte positions of an n-byte encoding to tamper with:
// all of them, or about 60 spread over them and the last 40 (where the MAC
// is) for long ones.
func flips(n int) []int {
	if n <= 100 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for i := 0; i < n-40; i += (n - 40) / 20 {
		out = append(out, i)
	}
	for i := n - 40; i < n; i++ {
		out = append(out, i)
	}
	return out
}

func tampered(t testing.TB, m wire.Message, i int, mask byte) (wire.Message, bool) {
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= mask
	out, err := wire.Decode(b)
	return out, err == nil
}

// TestRekeyTamper flips bytes of each flight in every mode: the exchange
// never completes, the side that notices refuses with a typed error and
// stays failed, and no sender leaves epoch 0.
func TestRekeyTamper(t *testing.T) {
	refusals := []error{ErrRekeyBadShare, ErrRekeyBadConfirm, ErrRekeyEpoch}
	typed := func(err error) bool {
		for _, want := range refusals {
			if errors.Is(err, want) {
				return true
			}
		}
		return false
	}
	for _, c := range rekeyModes {
		t.Run(c.String(), func(t *testing.T) {
			k1, k2 := sessionKeys(t, c.kex, cryptosuite.AEADAES256GCM, c.rq, c.rs)
			fresh := func() *rekeyEnds { return rekeyEndsFrom(t, cloneEnds(t, k1, k2), c, RekeyPolicy{}) }
			unswitched := func(e *rekeyEnds, flight string, i int) {
				t.Helper()
				if e.rqS.Epoch() != 0 || e.rsS.Epoch() != 0 {
					t.Fatalf("%s byte %d: a sender switched to epoch %d/%d", flight, i, e.rqS.Epoch(), e.rsS.Epoch())
				}
			}
			// The untampered flights, on the same kind of fresh ends,
			// complete.
			e := fresh()
			init, err := e.rq.Start()
			if err != nil {
				t.Fatal(err)
			}
			reply, err := e.rs.Consume(wireTrip(t, init))
			if err != nil {
				t.Fatal(err)
			}
			confirm, err := e.rq.Consume(wireTrip(t, reply))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.rs.Consume(wireTrip(t, confirm)); err != nil || e.rsS.Epoch() != 1 {
				t.Fatalf("untampered exchange: %v", err)
			}

			for _, i := range flips(len(mustEncode(t, init))) {
				e := fresh()
				m, err := e.rq.Start()
				if err != nil {
					t.Fatal(err)
				}
				bad, ok := tampered(t, m, i, 0x01)
				if !ok {
					continue
				}
				r, err := e.rs.Consume(bad)
				if err == nil {
					// The responder cannot tell; the requestor can.
					_, err = e.rq.Consume(wireTrip(t, r))
				}
				if !typed(err) {
					t.Fatalf("RekeyInit byte %d: %v", i, err)
				}
				unswitched(e, "RekeyInit", i)
			}
			for _, i := range flips(len(mustEncode(t, reply))) {
				e := fresh()
				m, _ := e.rq.Start()
				r, err := e.rs.Consume(m)
				if err != nil {
					t.Fatal(err)
				}
				bad, ok := tampered(t, r, i, 0x01)
				if !ok {
					continue
				}
				if _, err := e.rq.Consume(bad); !typed(err) {
					t.Fatalf("RekeyReply byte %d: %v", i, err)
				}
				unswitched(e, "RekeyReply", i)
				if _, err := e.rq.Start(); !errors.Is(err, ErrRekeyFailed) {
					t.Fatalf("after a refused reply: %v", err)
				}
			}
			for _, i := range flips(len(mustEncode(t, confirm))) {
				e := fresh()
				m, _ := e.rq.Start()
				r, _ := e.rs.Consume(m)
				cf, err := e.rq.Consume(r)
				if err != nil {
					t.Fatal(err)
				}
				bad, ok := tampered(t, cf, i, 0x01)
				if !ok {
					continue
				}
				if _, err := e.rs.Consume(bad); !typed(err) {
					t.Fatalf("RekeyConfirm byte %d: %v", i, err)
				}
				if e.rsS.Epoch() != 0 {
					t.Fatal("the responder switched on a refused confirmation")
				}
				if _, err := e.rs.Consume(cf); !errors.Is(err, ErrRekeyFailed) {
					t.Fatalf("the genuine confirmation after a refused one: %v", err)
				}
			}
		})
	}
}

func mustEncode(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRekeyReflectedConfirm: each side's confirmation MAC is labelled with
// its role, so neither is accepted in the other's place.
func TestRekeyReflectedConfirm(t *testing.T) {
	c := rekeyModes[0]
	k1, k2 := sessionKeys(t, c.kex, cryptosuite.AEADAES256GCM, c.rq, c.rs)

	// The responder's own MAC, sent back to it as the requestor's.
	e := rekeyEndsFrom(t, cloneEnds(t, k1, k2), c, RekeyPolicy{})
	init, _ := e.rq.Start()
	reply, err := e.rs.Consume(init)
	if err != nil {
		t.Fatal(err)
	}
	r := reply.(*wire.RekeyReply)
	if _, err := e.rs.Consume(&wire.RekeyConfirm{Epoch: r.Epoch, MAC: r.MAC}); !errors.Is(err, ErrRekeyBadConfirm) {
		t.Fatalf("reflected responder MAC: %v", err)
	}

	// A reply carrying the requestor's MAC instead of the responder's.
	e = rekeyEndsFrom(t, cloneEnds(t, k1, k2), c, RekeyPolicy{})
	init, _ = e.rq.Start()
	reply, err = e.rs.Consume(init)
	if err != nil {
		t.Fatal(err)
	}
	r = reply.(*wire.RekeyReply)
	r.MAC = rekeyConfirmMAC(e.rs.pending, RoleRequestor, r.Epoch)
	if _, err := e.rq.Consume(r); !errors.Is(err, ErrRekeyBadConfirm) {
		t.Fatalf("reply with the requestor's MAC: %v", err)
	}

	// The genuine exchange on fresh ends completes.
	e = rekeyEndsFrom(t, cloneEnds(t, k1, k2), c, RekeyPolicy{})
	e.rekey(t)
}

// TestRekeyUnexpected: messages of the wrong role, state or epoch are
// refused with their typed errors, and every refusal is final.
func TestRekeyUnexpected(t *testing.T) {
	c := rekeyModes[0]
	k1, k2 := sessionKeys(t, c.kex, cryptosuite.AEADAES256GCM, c.rq, c.rs)
	mac := bytes.Repeat([]byte{1}, 32)
	share := func() []byte {
		s, err := cryptosuite.KEXs()[0].NewRequestor(cryptosuite.RequestorKEXConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Share()
	}
	for _, tc := range []struct {
		name    string
		prepare func(e *rekeyEnds) // brings the ends to the state under test
		toRq    bool
		m       wire.Message
		want    error
	}{
		{"requestor gets RekeyInit", nil, true, &wire.RekeyInit{Epoch: 1, Share: share()}, ErrRekeyUnexpected},
		{"requestor gets RekeyConfirm", nil, true, &wire.RekeyConfirm{Epoch: 1, MAC: mac}, ErrRekeyUnexpected},
		{"requestor gets RekeyReply unasked", nil, true, &wire.RekeyReply{Epoch: 1, Share: share(), MAC: mac}, ErrRekeyUnexpected},
		{"requestor gets a direct message", nil, true, &wire.DirectMessage{Box: mac}, ErrRekeyUnexpected},
		{"requestor gets RekeyRequest two ahead", nil, true, &wire.RekeyRequest{Epoch: 2}, ErrRekeyEpoch},
		{"responder gets RekeyReply", nil, false, &wire.RekeyReply{Epoch: 1, Share: share(), MAC: mac}, ErrRekeyUnexpected},
		{"responder gets RekeyRequest", nil, false, &wire.RekeyRequest{Epoch: 1}, ErrRekeyUnexpected},
		{"responder gets Ready", nil, false, &wire.Ready{MaxStreams: 1, MaxFrameKiB: 1}, ErrRekeyUnexpected},
		{"responder gets RekeyConfirm unasked", nil, false, &wire.RekeyConfirm{Epoch: 1, MAC: mac}, ErrRekeyUnexpected},
		{"responder gets RekeyInit two ahead", nil, false, &wire.RekeyInit{Epoch: 2, Share: share()}, ErrRekeyEpoch},
		{"responder gets a short share", nil, false, &wire.RekeyInit{Epoch: 1, Share: mac[:31]}, ErrRekeyBadShare},
		{"responder gets a low-order share", nil, false, &wire.RekeyInit{Epoch: 1, Share: make([]byte, 32)}, ErrRekeyBadShare},
		{"responder gets RekeyInit twice", func(e *rekeyEnds) {
			m, _ := e.rq.Start()
			if _, err := e.rs.Consume(m); err != nil {
				t.Fatal(err)
			}
		}, false, &wire.RekeyInit{Epoch: 1, Share: share()}, ErrRekeyUnexpected},
		{"responder gets RekeyConfirm for another epoch", func(e *rekeyEnds) {
			m, _ := e.rq.Start()
			if _, err := e.rs.Consume(m); err != nil {
				t.Fatal(err)
			}
		}, false, &wire.RekeyConfirm{Epoch: 2, MAC: mac}, ErrRekeyEpoch},
		{"requestor gets RekeyReply for another epoch", func(e *rekeyEnds) {
			if _, err := e.rq.Start(); err != nil {
				t.Fatal(err)
			}
		}, true, &wire.RekeyReply{Epoch: 2, Share: share(), MAC: mac}, ErrRekeyEpoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := rekeyEndsFrom(t, cloneEnds(t, k1, k2), c, RekeyPolicy{})
			if tc.prepare != nil {
				tc.prepare(e)
			}
			side := e.rs
			if tc.toRq {
				side = e.rq
			}
			if _, err := side.Consume(tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("Consume: %v, want %v", err, tc.want)
			}
			if _, err := side.Start(); !errors.Is(err, ErrRekeyFailed) {
				t.Fatalf("Start after a refusal: %v", err)
			}
			if _, err := side.Poll(); !errors.Is(err, ErrRekeyFailed) {
				t.Fatalf("Poll after a refusal: %v", err)
			}
			if _, err := side.Consume(&wire.RekeyRequest{Epoch: 1}); !errors.Is(err, ErrRekeyFailed) {
				t.Fatalf("Consume after a refusal: %v", err)
			}
			if e.rqS.Epoch() != 0 || e.rsS.Epoch() != 0 || side.Due() || !side.NextDue().IsZero() {
				t.Fatal("a refused exchange switched a sender or left the policy running")
			}
		})
	}
}

// TestRekeyResponderAsks: the responder asks with RekeyRequest; the
// requestor runs the exchange no sooner than MinInterval after its last
// switch; a request that crosses the requestor's own RekeyInit, or arrives
// after the epoch it asks for, is answered by that exchange.
func TestRekeyResponderAsks(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADA256CBCHS512, RekeyPolicy{MinInterval: 5 * time.Second})
	start := e.clk.now()
	req, err := e.rs.Start()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := req.(*wire.RekeyRequest); !ok || r.Epoch != 1 {
		t.Fatalf("responder starts with %#v", req)
	}
	if again, err := e.rs.Start(); again != nil || err != nil || e.rs.Due() {
		t.Fatalf("second Start while asking: %v, %v", again, err)
	}
	if m, err := e.rq.Consume(wireTrip(t, req)); m != nil || err != nil {
		t.Fatalf("request within MinInterval answered at once: %v, %v", m, err)
	}
	if e.rq.Due() || !e.rq.NextDue().Equal(start.Add(5*time.Second)) {
		t.Fatalf("deferred request: due %v, next %v", e.rq.Due(), e.rq.NextDue())
	}
	e.clk.add(5*time.Second - time.Millisecond)
	if m, _ := e.rq.Poll(); m != nil {
		t.Fatal("Poll before MinInterval started an exchange")
	}
	e.clk.add(time.Millisecond)
	init, err := e.rq.Poll()
	if err != nil || init == nil {
		t.Fatalf("Poll at MinInterval: %v, %v", init, err)
	}
	e.deliver(t, init, false)
	if e.rq.Epoch() != 1 || e.rs.Epoch() != 1 || e.rq.Due() {
		t.Fatal("the deferred request did not complete")
	}

	// Crossing: both start at once.
	e.clk.add(10 * time.Second)
	req, _ = e.rs.Start()
	init, _ = e.rq.Start()
	if m, err := e.rq.Consume(wireTrip(t, req)); m != nil || err != nil {
		t.Fatalf("request crossing our RekeyInit: %v, %v", m, err)
	}
	e.deliver(t, init, false)
	if e.rq.Epoch() != 2 || e.rs.Epoch() != 2 {
		t.Fatal("crossed exchange did not complete")
	}
	for _, ep := range []uint32{1, 2} {
		if m, err := e.rq.Consume(&wire.RekeyRequest{Epoch: ep}); m != nil || err != nil {
			t.Fatalf("stale request for epoch %d: %v, %v", ep, m, err)
		}
	}
	if e.rq.Due() {
		t.Fatal("a stale request made the requestor due")
	}
	// Immediate request: asked at once, within MinInterval, answered later.
	req, _ = e.rs.Start()
	if m, _ := e.rq.Consume(req); m != nil {
		t.Fatal("answered within MinInterval")
	}
	e.clk.add(5 * time.Second)
	init, _ = e.rq.Poll()
	e.deliver(t, init, false)
	if e.rq.Epoch() != 3 {
		t.Fatal("third exchange did not complete")
	}
}

func TestRekeyPolicyMessages(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADAES256GCM, RekeyPolicy{AfterMessages: 3})
	send := func(n int) {
		for i := 0; i < n; i++ {
			mustOpen(t, e.rsR, mustSeal(t, e.rqS, "up"), "up")
			mustOpen(t, e.rqR, mustSeal(t, e.rsS, "down"), "down")
		}
	}
	send(2)
	if m, err := e.rq.Poll(); m != nil || err != nil || e.rq.Due() {
		t.Fatalf("due after 2 of 3 messages: %v, %v", m, err)
	}
	send(1)
	init, err := e.rq.Poll()
	if _, ok := init.(*wire.RekeyInit); !ok || err != nil {
		t.Fatalf("Poll after 3 messages: %v, %v", init, err)
	}
	if m, _ := e.rq.Poll(); m != nil {
		t.Fatal("Poll started a second exchange")
	}
	// The responder reached the count too; its request crosses.
	req, err := e.rs.Poll()
	if _, ok := req.(*wire.RekeyRequest); !ok || err != nil {
		t.Fatalf("responder Poll after 3 messages: %v, %v", req, err)
	}
	if m, err := e.rq.Consume(req); m != nil || err != nil {
		t.Fatal(m, err)
	}
	e.deliver(t, init, false)
	if e.rq.Epoch() != 1 || e.rs.Epoch() != 1 {
		t.Fatal("count-triggered exchange did not complete")
	}
	// The count starts again under the new epoch.
	send(2)
	if e.rq.Due() || e.rs.Due() {
		t.Fatal("due after 2 messages of the new epoch")
	}
	send(1)
	if !e.rq.Due() || !e.rs.Due() {
		t.Fatal("not due after 3 messages of the new epoch")
	}
}

func TestRekeyPolicyTime(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADAES256GCM, RekeyPolicy{AfterTime: 10 * time.Minute})
	start := e.clk.now()
	if !e.rq.NextDue().Equal(start.Add(10*time.Minute)) || !e.rs.NextDue().Equal(start.Add(10*time.Minute)) {
		t.Fatalf("NextDue %v %v", e.rq.NextDue(), e.rs.NextDue())
	}
	e.clk.add(10*time.Minute - time.Second)
	if m, _ := e.rq.Poll(); m != nil || e.rs.Due() {
		t.Fatal("due before AfterTime")
	}
	e.clk.add(time.Second)
	// The responder asks first this time.
	req, err := e.rs.Poll()
	if _, ok := req.(*wire.RekeyRequest); !ok || err != nil {
		t.Fatalf("responder Poll at AfterTime: %v, %v", req, err)
	}
	if !e.rs.NextDue().IsZero() {
		t.Fatal("NextDue while an exchange runs")
	}
	e.deliver(t, req, true)
	if e.rq.Epoch() != 1 {
		t.Fatal("time-triggered exchange did not complete")
	}
	now := e.clk.now()
	if e.rq.Due() || !e.rq.NextDue().Equal(now.Add(10*time.Minute)) {
		t.Fatalf("after the exchange: due %v next %v", e.rq.Due(), e.rq.NextDue())
	}
	e.clk.add(10 * time.Minute)
	if !e.rq.Due() || !e.rs.Due() {
		t.Fatal("not due AfterTime into the new epoch")
	}
}

// TestRekeyHardCap: a sender that reaches its per-epoch limit refuses to
// seal until a rekey gives it a new key.
func TestRekeyHardCap(t *testing.T) {
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADAES256GCM, RekeyPolicy{})
	e.rqS.limit = 2
	mustOpen(t, e.rsR, mustSeal(t, e.rqS, "1"), "1")
	mustOpen(t, e.rsR, mustSeal(t, e.rqS, "2"), "2")
	if _, err := e.rqS.Seal("3"); !errors.Is(err, ErrRekeyRequired) {
		t.Fatalf("Seal past the limit: %v", err)
	}
	e.rekey(t)
	mustOpen(t, e.rsR, mustSeal(t, e.rqS, "3"), "3")
}

func TestNewRekeyErrors(t *testing.T) {
	c := modeCase{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "ed-b"}
	d := newDirectEnds(t, c.kex, cryptosuite.AEADAES256GCM, c.rq, c.rs)
	for name, id := range map[string]*cryptosuite.Identity{"none": nil, "Ed25519": identity(t, "ed-a")} {
		if _, err := NewRekey(d.rqKeys, d.rqS, d.rqR, RekeyConfig{Identity: id}); !errors.Is(err, ErrKEXRefused) {
			t.Errorf("rsa requestor with identity %s: %v", name, err)
		}
	}
	// The responder of an rsa session needs no identity.
	if _, err := NewRekey(d.rsKeys, d.rsS, d.rsR, RekeyConfig{}); err != nil {
		t.Errorf("rsa responder: %v", err)
	}
	other := newDirectEnds(t, cryptosuite.KEXX25519, cryptosuite.AEADAES256GCM, "ed-a", "ed-b")
	for name, f := range map[string]func() (*Rekey, error){
		"sender of another session": func() (*Rekey, error) {
			return NewRekey(d.rsKeys, other.rsS, d.rsR, RekeyConfig{})
		},
		"receiver of the other side": func() (*Rekey, error) {
			return NewRekey(d.rsKeys, d.rsS, d.rqR, RekeyConfig{})
		},
		"no receiver": func() (*Rekey, error) { return NewRekey(d.rsKeys, d.rsS, nil, RekeyConfig{}) },
		"too many messages per epoch": func() (*Rekey, error) {
			return NewRekey(d.rsKeys, d.rsS, d.rsR, RekeyConfig{Policy: RekeyPolicy{AfterMessages: MaxMessagesPerEpoch + 1}})
		},
		"no rekey secret": func() (*Rekey, error) {
			k := *d.rsKeys
			k.RekeySecret = nil
			return NewRekey(&k, d.rsS, d.rsR, RekeyConfig{})
		},
	} {
		if r, err := f(); err == nil || r != nil {
			t.Errorf("%s: %v, %v", name, r, err)
		}
	}
}

// TestRekeyConcurrentTraffic runs both directions' direct streams (ordered
// channels, as yamux streams are) in their own goroutines while the
// control stream rekeys again and again, started by either side. Every
// message arrives once, in order, whichever epoch it was sealed under.
func TestRekeyConcurrentTraffic(t *testing.T) {
	const exchanges = 6
	deadline := time.Now().Add(30 * time.Second)
	e := newRekeyEnds(t, rekeyModes[0], cryptosuite.AEADChaCha20Poly1305, RekeyPolicy{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	halt := sync.OnceFunc(func() { close(stop) })
	defer func() { halt(); wg.Wait() }()
	errs := make(chan error, 4)
	stream := func(s *DirectSender, r *DirectReceiver, name string) {
		ch := make(chan *wire.DirectMessage, 8)
		wg.Add(2)
		go func() { // the writer
			defer wg.Done()
			defer close(ch)
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				m, err := s.Seal(fmt.Sprintf("%s %d", name, i))
				if err != nil {
					errs <- err
					return
				}
				select {
				case ch <- m:
				case <-stop:
					return
				}
			}
		}()
		go func() { // the reader
			defer wg.Done()
			i := 0
			for m := range ch {
				text, err := r.Open(m)
				if err == nil && text != fmt.Sprintf("%s %d", name, i) {
					err = fmt.Errorf("%s: message %d reads %q", name, i, text)
				}
				if err != nil {
					errs <- err
					return
				}
				i++
			}
		}()
	}
	stream(e.rqS, e.rsR, "up")
	stream(e.rsS, e.rqR, "down")

	waitFor := func(what string, cond func() bool) {
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: readers at %d, %d; senders at %d, %d; rekey %d %d", what, e.rsR.Epoch(), e.rqR.Epoch(), e.rqS.Epoch(), e.rsS.Epoch(), e.rq.Epoch(), e.rs.Epoch())
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(time.Millisecond):
			}
		}
	}
	for k := uint32(1); k <= exchanges; k++ {
		first, toRq := wire.Message(nil), false
		var err error
		if k%2 == 0 {
			e.clk.add(DefaultRekeyMinInterval)
			first, err = e.rs.Start()
			toRq = true
		} else {
			first, err = e.rq.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		e.deliver(t, first, toRq)
		if e.rq.Epoch() != k || e.rs.Epoch() != k {
			t.Fatalf("exchange %d did not complete", k)
		}
		// Each reader sees the new epoch before the next exchange, so no
		// message is more than one exchange late.
		waitFor(fmt.Sprintf("both readers at epoch %d", k), func() bool { return e.rsR.Epoch() == k && e.rqR.Epoch() == k })
	}
	halt()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
