package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// sessionKeys runs a real handshake between the fixture identities rq and
// rs, in mode kex with the AEAD aead, by driving the two state machines in
// turn, and returns the requestor's and the responder's keys.
func sessionKeys(t testing.TB, kex cryptosuite.KEXID, aead cryptosuite.AEADID, rq, rs string) (*Keys, *Keys) {
	t.Helper()
	rqID, rsID := identity(t, rq), identity(t, rs)
	p1, p2 := tlsParams(rsID.PeerID())
	req, err := NewRequestor(&Config{Identity: rqID, KEX: kex, AEADs: []cryptosuite.AEADID{aead}, AllowRSA: true}, p1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewResponder(&Config{Identity: rsID, AllowRSA: true}, p2)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := req.CreateHello()
	if err != nil {
		t.Fatal(err)
	}
	if err := res.ConsumeHello(wireTrip(t, hello).(*wire.Hello)); err != nil {
		t.Fatal(err)
	}
	reply, err := res.CreateReply()
	if err != nil {
		t.Fatal(err)
	}
	if err := req.ConsumeReply(wireTrip(t, reply).(*wire.HelloReply)); err != nil {
		t.Fatal(err)
	}
	fin, k1, err := req.CreateFinished()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := res.ConsumeFinished(wireTrip(t, fin).(*wire.Finished))
	if err != nil {
		t.Fatal(err)
	}
	if k1.AEAD.ID != aead || k1.KEX.ID != kex {
		t.Fatalf("session runs %v/%v, want %v/%v", k1.KEX.ID, k1.AEAD.ID, kex, aead)
	}
	return k1, k2
}

// wireTrip puts m through Encode and Decode, as the streams do.
func wireTrip(t testing.TB, m wire.Message) wire.Message {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatalf("encoding %T: %v", m, err)
	}
	if len(b) > framing.MaxControlFrame {
		t.Fatalf("%T encodes to %d bytes, more than a control frame", m, len(b))
	}
	out, err := wire.Decode(b)
	if err != nil {
		t.Fatalf("decoding %T: %v", m, err)
	}
	return out
}

// directEnds are the direct-message ends of one session: the requestor's
// sender and receiver, the responder's, and the keys they came from.
type directEnds struct {
	rqKeys, rsKeys *Keys
	rqS, rsS       *DirectSender
	rqR, rsR       *DirectReceiver
}

func newDirectEnds(t testing.TB, kex cryptosuite.KEXID, aead cryptosuite.AEADID, rq, rs string) *directEnds {
	t.Helper()
	k1, k2 := sessionKeys(t, kex, aead, rq, rs)
	e := &directEnds{rqKeys: k1, rsKeys: k2}
	var err error
	if e.rqS, err = NewDirectSender(k1, nil); err != nil {
		t.Fatal(err)
	}
	if e.rqR, err = NewDirectReceiver(k1); err != nil {
		t.Fatal(err)
	}
	if e.rsS, err = NewDirectSender(k2, nil); err != nil {
		t.Fatal(err)
	}
	if e.rsR, err = NewDirectReceiver(k2); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustSeal(t testing.TB, s *DirectSender, text string) *wire.DirectMessage {
	t.Helper()
	m, err := s.Seal(text)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return wireTrip(t, m).(*wire.DirectMessage)
}

func mustOpen(t testing.TB, r *DirectReceiver, m *wire.DirectMessage, want string) {
	t.Helper()
	got, err := r.Open(m)
	if err != nil {
		t.Fatalf("Open(seq %d, epoch %d): %v", m.Seq, m.Epoch, err)
	}
	if got != want {
		t.Fatalf("Open = %q, want %q", got, want)
	}
}

var aeadIDsUnderTest = []cryptosuite.AEADID{cryptosuite.AEADA256CBCHS512, cryptosuite.AEADAES256GCM, cryptosuite.AEADChaCha20Poly1305}

// boxSize is the size of a text's box under each suite (docs/PROTOCOL.md).
func boxSize(aead cryptosuite.AEADID, n int) int {
	if aead == cryptosuite.AEADA256CBCHS512 {
		return 16 + (n/16+1)*16 + 32
	}
	return 12 + n + 16
}

func TestDirectRoundTrip(t *testing.T) {
	texts := []string{
		"hello", "two\nlines", "tab\tseparated", "é ü ß 日本語 עברית العربية", "👨\u200d👩\u200d👧 family",
		"no-break\u00a0space", "left-to-right mark \u200e", strings.Repeat("x", 15), strings.Repeat("x", 16),
		strings.Repeat("é", MaxDirectTextSize/2), strings.Repeat("y", MaxDirectTextSize),
	}
	for _, aead := range aeadIDsUnderTest {
		t.Run(aead.String(), func(t *testing.T) {
			e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
			for i, text := range texts {
				m := mustSeal(t, e.rqS, text)
				if m.Seq != uint64(i) || m.Epoch != 0 {
					t.Fatalf("requestor message %d: seq %d epoch %d", i, m.Seq, m.Epoch)
				}
				if len(m.Box) != boxSize(aead, len(text)) {
					t.Fatalf("box of %d bytes for a %d-byte text, want %d", len(m.Box), len(text), boxSize(aead, len(text)))
				}
				mustOpen(t, e.rsR, m, text)
				back := mustSeal(t, e.rsS, text)
				if back.Seq != uint64(i) {
					t.Fatalf("responder message %d: seq %d", i, back.Seq)
				}
				mustOpen(t, e.rqR, back, text)
			}
		})
	}
}

// TestDirectNonceIsCounter: under GCM and ChaCha20-Poly1305 the box starts
// with the nonce, direction tag then Seq; under A256CBC-HS512 with a
// random IV, fresh for every message.
func TestDirectNonceIsCounter(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		var ivs [][]byte
		for i := 0; i < 3; i++ {
			rq, rs := mustSeal(t, e.rqS, "same text"), mustSeal(t, e.rsS, "same text")
			if aead == cryptosuite.AEADA256CBCHS512 {
				ivs = append(ivs, rq.Box[:16], rs.Box[:16])
				continue
			}
			want := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, byte(i)}
			if !bytes.Equal(rq.Box[:12], want) {
				t.Fatalf("%v: requestor nonce %x, want %x", aead, rq.Box[:12], want)
			}
			want[3] = 2
			if !bytes.Equal(rs.Box[:12], want) {
				t.Fatalf("%v: responder nonce %x, want %x", aead, rs.Box[:12], want)
			}
		}
		for i := range ivs {
			for j := range ivs[:i] {
				if bytes.Equal(ivs[i], ivs[j]) {
					t.Fatal("A256CBC-HS512 IV repeated")
				}
			}
		}
	}
}

func TestDirectSeqStrict(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		t.Run(aead.String(), func(t *testing.T) {
			e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
			m0, m1, m2 := mustSeal(t, e.rqS, "zero"), mustSeal(t, e.rqS, "one"), mustSeal(t, e.rqS, "two")
			wantSeq := func(m *wire.DirectMessage, want, got uint64) {
				t.Helper()
				_, err := e.rsR.Open(m)
				var se *SeqError
				if !errors.As(err, &se) || !errors.Is(err, ErrDirectSeq) || se.Want != want || se.Got != got {
					t.Fatalf("Open(seq %d) = %v, want a SeqError{Want %d, Got %d}", m.Seq, err, want, got)
				}
			}
			wantSeq(m1, 0, 1) // skipped
			wantSeq(m2, 0, 2)
			mustOpen(t, e.rsR, m0, "zero") // a refusal changed nothing
			wantSeq(m0, 1, 0)              // replayed
			wantSeq(m2, 1, 2)              // reordered
			mustOpen(t, e.rsR, m1, "one")
			wantSeq(m1, 2, 1)
			// Seq is authenticated: a message claiming the expected Seq
			// with another message's box fails to open.
			forged := *m0
			forged.Seq = 2
			if _, err := e.rsR.Open(&forged); !errors.Is(err, ErrDirectOpen) {
				t.Fatalf("box of seq 0 under seq 2: %v, want ErrDirectOpen", err)
			}
			mustOpen(t, e.rsR, m2, "two")
		})
	}
}

// TestDirectReflection: a message sent back to its sender, or moved to
// another session, does not open.
func TestDirectReflection(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		other := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		m := mustSeal(t, e.rqS, "to the responder")
		if _, err := e.rqR.Open(m); !errors.Is(err, ErrDirectOpen) {
			t.Fatalf("%v: requestor opened its own message: %v", aead, err)
		}
		back := mustSeal(t, e.rsS, "to the requestor")
		if _, err := e.rsR.Open(back); !errors.Is(err, ErrDirectOpen) {
			t.Fatalf("%v: responder opened its own message: %v", aead, err)
		}
		if _, err := other.rsR.Open(m); !errors.Is(err, ErrDirectOpen) {
			t.Fatalf("%v: another session opened the message: %v", aead, err)
		}
		mustOpen(t, e.rsR, m, "to the responder")
		mustOpen(t, e.rqR, back, "to the requestor")
	}
}

// TestDirectTamper flips every byte of an encoded direct message, three
// ways: each result is refused by Decode or by Open, and the receiver
// still opens the original afterwards.
func TestDirectTamper(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		t.Run(aead.String(), func(t *testing.T) {
			e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
			orig := mustSeal(t, e.rqS, "tamper with me")
			b, err := wire.Encode(orig)
			if err != nil {
				t.Fatal(err)
			}
			decodeRefused, openRefused := 0, 0
			for i := range b {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					c := bytes.Clone(b)
					c[i] ^= mask
					m, err := wire.Decode(c)
					if err != nil {
						decodeRefused++
						continue
					}
					text, err := e.rsR.Open(m.(*wire.DirectMessage))
					if err == nil {
						t.Fatalf("byte %d ^ %#02x: opened as %q", i, mask, text)
					}
					if !errors.Is(err, ErrDirectOpen) && !errors.Is(err, ErrDirectSeq) && !errors.Is(err, ErrDirectEpoch) {
						t.Fatalf("byte %d ^ %#02x: %v", i, mask, err)
					}
					openRefused++
				}
			}
			if openRefused < len(orig.Box)*3 {
				t.Fatalf("only %d of %d tampered messages reached Open", openRefused, decodeRefused+openRefused)
			}
			mustOpen(t, e.rsR, orig, "tamper with me")
		})
	}
}

func TestCheckDirectText(t *testing.T) {
	for _, ok := range []string{
		"a", "hello world", "line\nbreak", "\n", "tab\t", "é", "日本語", "ضمير", "👍🏽", "👨\u200d👩\u200d👧",
		"a\u00a0b", "\u200e\u200f", "\ufeff", "\U0010fffd", strings.Repeat("z", MaxDirectTextSize),
	} {
		if err := CheckDirectText(ok); err != nil {
			t.Errorf("CheckDirectText(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", strings.Repeat("z", MaxDirectTextSize+1), strings.Repeat("é", MaxDirectTextSize/2) + "z",
		"bad \xff byte", "\xc3", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
		"carriage\rreturn", "\x1b[31mred", "nul\x00", "bell\a", "del\x7f", "c1\u0085", "c1\u009b",
		"line\u2028separator", "para\u2029separator", "abc\u202edef", "\u202a", "\u2066isolate\u2069",
	} {
		if err := CheckDirectText(bad); !errors.Is(err, ErrDirectText) {
			t.Errorf("CheckDirectText(%q) = %v, want ErrDirectText", bad, err)
		}
	}
}

// TestCheckDirectTextFastPath: the eight-bytes-at-a-time check agrees
// with the rule character by character, for every byte value at every
// position of a word, and for random texts mixing ASCII, controls and
// multi-byte characters at every alignment.
func TestCheckDirectTextFastPath(t *testing.T) {
	for b := 0; b < 256; b++ {
		for pos := 0; pos < 8; pos++ {
			w := []byte("aaaaaaaa")
			w[pos] = byte(b)
			want := b >= 0x20 && b <= 0x7e
			if got := plainASCII8(binary.LittleEndian.Uint64(w)); got != want {
				t.Fatalf("plainASCII8 with %#02x at %d = %v", b, pos, got)
			}
		}
	}
	reference := func(text string) bool {
		if len(text) == 0 || len(text) > MaxDirectTextSize || !utf8.ValidString(text) {
			return false
		}
		for _, r := range text {
			if forbiddenInText(r) {
				return false
			}
		}
		return true
	}
	pieces := []string{"a", "Z", " ", "~", "\t", "\n", "\r", "\x1f", "\x7f", "\x00", "é", "\u0085", "\u2028", "\u202e",
		"\u2069", "€", "👍", "\xff", "\xc3", "\xed\xa0\x80", "\u200d", "\ufffd"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var sb strings.Builder
		for n := rng.IntN(40); n >= 0; n-- {
			if rng.IntN(4) == 0 {
				sb.WriteString(pieces[rng.IntN(len(pieces))])
			} else {
				sb.WriteString("plain ascii text"[:1+rng.IntN(16)])
			}
		}
		text := sb.String()
		if got, want := CheckDirectText(text) == nil, reference(text); got != want {
			t.Fatalf("CheckDirectText(%q) accepts: %v, the rule says %v", text, got, want)
		}
	}
}

// TestDirectTextRefused: a sender refuses a text that may not travel
// without consuming a Seq; a receiver refuses one that a peer sealed
// anyway, and consumes its Seq.
func TestDirectTextRefused(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		for _, bad := range []string{"", "esc\x1b", strings.Repeat("x", MaxDirectTextSize+1)} {
			if m, err := e.rqS.Seal(bad); !errors.Is(err, ErrDirectText) || m != nil {
				t.Fatalf("Seal(%.20q) = %v, %v", bad, m, err)
			}
		}
		// What a misbehaving peer could seal: the largest text a GCM box
		// of MaxBoxSize holds is over the limit.
		bad := []string{"esc\x1b[2J", "cr\r", strings.Repeat("x", MaxDirectTextSize+1)}
		for i, text := range bad {
			m := sealUnchecked(t, e.rqKeys, e.rqS, text)
			if m.Seq != uint64(i) {
				t.Fatalf("seq %d, want %d: refused Seals consumed sequence numbers", m.Seq, i)
			}
			if _, err := e.rsR.Open(wireTrip(t, m).(*wire.DirectMessage)); !errors.Is(err, ErrDirectText) {
				t.Fatalf("%v: Open of a sealed %.20q = %v, want ErrDirectText", aead, text, err)
			}
		}
		mustOpen(t, e.rsR, mustSeal(t, e.rqS, "fine"), "fine")
	}
}

// sealUnchecked seals text as s would, without CheckDirectText, as a
// misbehaving peer could.
func sealUnchecked(t testing.TB, keys *Keys, s *DirectSender, text string) *wire.DirectMessage {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	aad := canon.DirectMessageAAD(keys.SessionID, uint32(s.dir), s.seq, s.epoch)
	var (
		box []byte
		err error
	)
	if s.ctr != nil {
		box, err = s.ctr.SealNext(s.aead, nil, []byte(text), aad)
	} else {
		box, err = cryptosuite.SealRandom(s.aead, nil, nil, []byte(text), aad)
	}
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.DirectMessage{Seq: s.seq, Epoch: s.epoch, Box: box}
	s.seq++
	s.sent++
	return m
}

// TestDirectFitsFrame: the largest text, in every suite, seals to a box
// within wire.MaxBoxSize (exactly, under A256CBC-HS512) and a frame within
// the control stream's maximum.
func TestDirectFitsFrame(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		m, err := e.rqS.Seal(strings.Repeat("€", MaxDirectTextSize/3) + "a")
		if err != nil {
			t.Fatal(err)
		}
		if aead == cryptosuite.AEADA256CBCHS512 && len(m.Box) != wire.MaxBoxSize {
			t.Fatalf("%v: box of the largest text is %d bytes, want %d", aead, len(m.Box), wire.MaxBoxSize)
		}
		m.Seq, m.Epoch = wire.MaxSeq, 1<<32-1 // the longest integer encodings
		b, err := wire.Encode(m)
		if err != nil || len(b) > framing.MaxControlFrame {
			t.Fatalf("%v: %d bytes, %v", aead, len(b), err)
		}
	}
}

// TestDirectLimits: Seq stops at wire.MaxSeq for good; one epoch's key
// seals and opens at most its limit.
func TestDirectLimits(t *testing.T) {
	e := newDirectEnds(t, cryptosuite.KEXX25519, cryptosuite.AEADA256CBCHS512, "ed-a", "ed-b")
	e.rqS.seq, e.rsR.next = wire.MaxSeq, wire.MaxSeq
	m := mustSeal(t, e.rqS, "last")
	if m.Seq != wire.MaxSeq {
		t.Fatalf("seq %d", m.Seq)
	}
	mustOpen(t, e.rsR, m, "last")
	for i := 0; i < 2; i++ {
		if _, err := e.rqS.Seal("one more"); !errors.Is(err, ErrSeqExhausted) {
			t.Fatalf("Seal past MaxSeq: %v", err)
		}
	}

	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		e.rqS.limit, e.rsR.limit = 3, 2
		var ms []*wire.DirectMessage
		for i := 0; i < 3; i++ {
			ms = append(ms, mustSeal(t, e.rqS, fmt.Sprint(i)))
		}
		if _, err := e.rqS.Seal("4th"); !errors.Is(err, ErrRekeyRequired) {
			t.Fatalf("%v: 4th Seal under a key limited to 3: %v", aead, err)
		}
		mustOpen(t, e.rsR, ms[0], "0")
		mustOpen(t, e.rsR, ms[1], "1")
		if _, err := e.rsR.Open(ms[2]); !errors.Is(err, ErrRekeyRequired) {
			t.Fatalf("%v: 3rd Open under a key limited to 2: %v", aead, err)
		}
	}
}

// TestDirectConcurrentSeal: goroutines sealing at once get distinct,
// consecutive Seqs, and every message opens in Seq order.
func TestDirectConcurrentSeal(t *testing.T) {
	for _, aead := range aeadIDsUnderTest {
		e := newDirectEnds(t, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
		const workers, each = 4, 50
		out := make(chan *wire.DirectMessage, workers*each)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					m, err := e.rqS.Seal(fmt.Sprintf("w%d-%d", w, i))
					if err != nil {
						t.Error(err)
						return
					}
					out <- m
				}
			}()
		}
		wg.Wait()
		close(out)
		var ms []*wire.DirectMessage
		for m := range out {
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].Seq < ms[j].Seq })
		seen := map[string]bool{}
		for i, m := range ms {
			if m.Seq != uint64(i) {
				t.Fatalf("%v: message %d has seq %d", aead, i, m.Seq)
			}
			text, err := e.rsR.Open(m)
			if err != nil {
				t.Fatalf("%v: seq %d: %v", aead, m.Seq, err)
			}
			seen[text] = true
		}
		if len(seen) != workers*each {
			t.Fatalf("%v: %d distinct texts, want %d", aead, len(seen), workers*each)
		}
	}
}

func TestDirectConstructorErrors(t *testing.T) {
	if _, err := NewDirectSender(nil, nil); err == nil {
		t.Fatal("sender from nil keys")
	}
	if _, err := NewDirectReceiver(&Keys{}); err == nil {
		t.Fatal("receiver from empty keys")
	}
	k1, _ := sessionKeys(t, cryptosuite.KEXX25519, cryptosuite.AEADAES256GCM, "ed-a", "ed-b")
	k1.C2S = k1.C2S[:16]
	if _, err := NewDirectSender(k1, nil); err == nil {
		t.Fatal("sender from a short key")
	}
	k1.Role = 7
	if _, err := NewDirectReceiver(k1); err == nil {
		t.Fatal("receiver for an unknown role")
	}
}

func TestDirectErrorCodes(t *testing.T) {
	for err, want := range map[error]wire.ErrorCode{
		&SeqError{Want: 1, Got: 0}:         wire.CodeProtocol,
		&EpochError{Got: 4}:                wire.CodeConflict,
		ErrDirectOpen:                      wire.CodeBadSignature,
		fmt.Errorf("%w: x", ErrDirectText): wire.CodeProtocol,
		ErrRekeyRequired:                   wire.CodeProtocol,
		ErrRekeyBadConfirm:                 wire.CodeBadSignature,
		ErrRekeyBadShare:                   wire.CodeBadSignature,
		ErrRekeyEpoch:                      wire.CodeConflict,
		ErrRekeyUnexpected:                 wire.CodeProtocol,
	} {
		if got := Code(err); got != want {
			t.Errorf("Code(%v) = %v, want %v", err, got, want)
		}
	}
	if got := (&SeqError{Want: 3, Got: 9}).Error(); got != "session: direct message out of sequence: seq 9, expected 3" {
		t.Error(got)
	}
}

func BenchmarkDirect(b *testing.B) {
	for _, aead := range aeadIDsUnderTest {
		for _, size := range []int{256, 4096} {
			b.Run(fmt.Sprintf("%v/%dB", aead, size), func(b *testing.B) {
				e := newDirectEnds(b, cryptosuite.KEXX25519, aead, "ed-a", "ed-b")
				text := strings.Repeat("m", size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					m, err := e.rqS.Seal(text)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.rsR.Open(m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
