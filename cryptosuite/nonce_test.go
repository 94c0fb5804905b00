package cryptosuite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	"math"
	"sync"
	"testing"
	"testing/iotest"
)

// aeadCounterSuites are the suites that take counter nonces.
func aeadCounterSuites() []*AEADSuite {
	var out []*AEADSuite
	for _, s := range AEADs() {
		if !s.RandomIV {
			out = append(out, s)
		}
	}
	return out
}

func TestSealRandomNoncesDiffer(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			seen := make(map[string]bool)
			var prev []byte
			for range 64 {
				msg, err := SealRandom(a, nil, nil, []byte("same text"), nil) // crypto/rand
				if err != nil {
					t.Fatal(err)
				}
				nonce := string(msg[:s.NonceSize])
				if seen[nonce] {
					t.Fatalf("nonce %x drawn twice", nonce)
				}
				seen[nonce] = true
				if bytes.Equal(msg, prev) {
					t.Fatal("the same plaintext sealed twice to the same bytes")
				}
				prev = msg
			}
		})
	}
}

// TestSealRandomTakesNonceFromRand: the nonce is exactly the next
// NonceSize bytes of rand, and the output is nonce ‖ Seal(nonce).
func TestSealRandomTakesNonceFromRand(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			src := aeadPattern(s.NonceSize+5, 0x90)
			r := bytes.NewReader(src)
			pt, aad := []byte("hello"), []byte("aad")
			msg, err := SealRandom(a, r, nil, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Clone(src[:s.NonceSize]), a.Seal(nil, src[:s.NonceSize], pt, aad)...)
			if !bytes.Equal(msg, want) {
				t.Fatalf("SealRandom = %x, want %x", msg, want)
			}
			if r.Len() != 5 {
				t.Fatalf("SealRandom read %d bytes of randomness, want %d", len(src)-r.Len(), s.NonceSize)
			}
		})
	}
}

func TestSealRandomRandFailure(t *testing.T) {
	for _, s := range AEADs() {
		a := aeadNew(t, s)
		short := bytes.NewReader(make([]byte, s.NonceSize-1))
		msg, err := SealRandom(a, short, []byte("dst"), []byte("text"), nil)
		if msg != nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: short randomness: %x, %v; want nil and io.ErrUnexpectedEOF", s.Name, msg, err)
		}
		boom := errors.New("entropy source gone")
		msg, err = SealRandom(a, iotest.ErrReader(boom), nil, []byte("text"), nil)
		if msg != nil || !errors.Is(err, boom) {
			t.Errorf("%s: failing randomness: %x, %v; want nil and the reader's error", s.Name, msg, err)
		}
	}
}

// TestOpenPrefixedMapsErrors: OpenPrefixed gives ErrDecrypt for inputs
// too short to hold a nonce, and for an AEAD that reports failures with its
// own error value (here crypto/cipher's GCM, not wrapped by our suite).
func TestOpenPrefixedMapsErrors(t *testing.T) {
	b, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SealRandom(g, aeadTestRand(4), nil, []byte("text"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenPrefixed(g, nil, msg, nil); err != nil || string(got) != "text" {
		t.Fatalf("OpenPrefixed = %q, %v", got, err)
	}
	msg[len(msg)-1] ^= 1
	_, err = OpenPrefixed(g, nil, msg, nil)
	aeadIsDecrypt(t, err, "library AEAD, bad tag")
	for l := range g.NonceSize() + 1 {
		_, err := OpenPrefixed(g, nil, msg[:l], nil)
		aeadIsDecrypt(t, err, "input shorter than nonce")
	}
}

func TestCounterNonceLayout(t *testing.T) {
	if DirectionRequestorToResponder == DirectionResponderToRequestor {
		t.Fatal("both directions have the same tag")
	}
	for _, tc := range []struct {
		dir Direction
		tag []byte
	}{
		{DirectionRequestorToResponder, []byte{0, 0, 0, 1}},
		{DirectionResponderToRequestor, []byte{0, 0, 0, 2}},
	} {
		c := NewCounterNonce(tc.dir)
		for ctr := range uint64(3) {
			nonce, err := c.Next()
			if err != nil {
				t.Fatal(err)
			}
			want := append(bytes.Clone(tc.tag), 0, 0, 0, 0, 0, 0, 0, byte(ctr))
			if !bytes.Equal(nonce[:], want) {
				t.Fatalf("%v nonce %d = %x, want %x", tc.dir, ctr, nonce, want)
			}
		}
	}
	c := NewCounterNonce(DirectionRequestorToResponder)
	c.next = 0x0102030405060708
	nonce, _ := c.Next()
	if want := []byte{0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}; !bytes.Equal(nonce[:], want) {
		t.Fatalf("counter not big-endian: %x, want %x", nonce, want)
	}

	for _, s := range aeadCounterSuites() {
		a := aeadNew(t, s)
		c := NewCounterNonce(DirectionResponderToRequestor)
		for ctr := range byte(2) {
			msg, err := c.SealNext(a, []byte("dst"), []byte("text"), []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			nonce := []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, ctr}
			want := append(append([]byte("dst"), nonce...), a.Seal(nil, nonce, []byte("text"), []byte("aad"))...)
			if !bytes.Equal(msg, want) {
				t.Fatalf("%s: SealNext = %x, want dst ‖ nonce ‖ ciphertext %x", s.Name, msg, want)
			}
		}
	}
}

func TestCounterNonceRefusesWrap(t *testing.T) {
	c := NewCounterNonce(DirectionRequestorToResponder)
	c.next = math.MaxUint64 - 2
	for _, want := range []uint64{math.MaxUint64 - 2, math.MaxUint64 - 1} {
		nonce, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		var exp [DirectNonceSize]byte
		putDirectNonce(&exp, DirectionRequestorToResponder, want)
		if nonce != exp {
			t.Fatalf("nonce %x, want %x", nonce, exp)
		}
	}
	for range 3 {
		if nonce, err := c.Next(); err != ErrNonceExhausted || nonce != [DirectNonceSize]byte{} {
			t.Fatalf("past the last counter: %x, %v; want ErrNonceExhausted", nonce, err)
		}
	}
	for _, s := range aeadCounterSuites() {
		msg, err := c.SealNext(aeadNew(t, s), nil, []byte("text"), nil)
		if msg != nil || !errors.Is(err, ErrNonceExhausted) {
			t.Fatalf("%s: SealNext after exhaustion = %x, %v", s.Name, msg, err)
		}
	}
}

func TestCounterNonceRefusesCBC(t *testing.T) {
	s, _ := AEADByID(AEADA256CBCHS512)
	a := aeadNew(t, s)
	c := NewCounterNonce(DirectionRequestorToResponder)
	if msg, err := c.SealNext(a, nil, []byte("text"), nil); msg != nil || err != ErrCounterNonceAEAD {
		t.Fatalf("SealNext with A256CBC-HS512 = %x, %v; want ErrCounterNonceAEAD", msg, err)
	}
	if nonce, _ := c.Next(); nonce[DirectNonceSize-1] != 0 {
		t.Fatal("the refused SealNext consumed a counter value")
	}
	r := NewCounterReceiver(DirectionRequestorToResponder)
	if _, err := r.OpenNext(a, nil, make([]byte, 64), nil); err != ErrCounterNonceAEAD {
		t.Fatalf("OpenNext with A256CBC-HS512: %v; want ErrCounterNonceAEAD", err)
	}
}

func TestCounterBadDirectionPanics(t *testing.T) {
	for _, f := range []func(){
		func() { NewCounterNonce(0) },
		func() { NewCounterNonce(3) },
		func() { NewCounterReceiver(0) },
		func() { new(CounterNonce).Next() },
		func() { new(CounterReceiver).OpenNext(nil, nil, nil, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic for a counter without a valid direction")
				}
			}()
			f()
		}()
	}
}

// aeadWantOrder asserts err is a *NonceOrderError with the given fields.
func aeadWantOrder(t *testing.T, err error, want NonceOrderError) {
	t.Helper()
	var oe *NonceOrderError
	if !errors.As(err, &oe) || !errors.Is(err, ErrUnexpectedNonce) || *oe != want {
		t.Fatalf("got %v, want *NonceOrderError %+v", err, want)
	}
}

// TestCounterReceiverStrict: only the next counter opens; a replay, a gap,
// the other direction's tag, a forgery and a short input are refused, and
// none of them moves the counter.
func TestCounterReceiverStrict(t *testing.T) {
	for _, s := range aeadCounterSuites() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			aad := []byte("lanpeer/v1 direct message aad")
			send := NewCounterNonce(DirectionRequestorToResponder)
			var msgs [][]byte
			for i := range 5 {
				m, err := send.SealNext(a, nil, []byte{'m', byte('0' + i)}, aad)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			r := NewCounterReceiver(DirectionRequestorToResponder)
			open := func(i int) {
				t.Helper()
				got, err := r.OpenNext(a, nil, msgs[i], aad)
				if err != nil || !bytes.Equal(got, []byte{'m', byte('0' + i)}) {
					t.Fatalf("message %d: %q, %v", i, got, err)
				}
			}
			open(0)
			_, err := r.OpenNext(a, nil, msgs[0], aad)
			aeadWantOrder(t, err, NonceOrderError{Want: 1, Got: 0})
			_, err = r.OpenNext(a, nil, msgs[2], aad)
			aeadWantOrder(t, err, NonceOrderError{Want: 1, Got: 2})
			open(1)
			open(2)

			forged := bytes.Clone(msgs[3])
			forged[len(forged)-1] ^= 1
			_, err = r.OpenNext(a, nil, forged, aad)
			aeadIsDecrypt(t, err, "forged message with the right counter")
			_, err = r.OpenNext(a, nil, msgs[3][:DirectNonceSize-1], aad)
			aeadIsDecrypt(t, err, "input shorter than a nonce")

			// The responder's counter 3 under the same key: right counter,
			// wrong direction.
			back := NewCounterNonce(DirectionResponderToRequestor)
			back.next = 3
			reflected, err := back.SealNext(a, nil, []byte("m3"), aad)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.OpenNext(a, nil, reflected, aad)
			aeadWantOrder(t, err, NonceOrderError{Want: 3, Got: 3, WrongDirection: true})

			open(3) // nothing above moved the counter
			open(4)
			_, err = r.OpenNext(a, nil, msgs[4], aad)
			aeadWantOrder(t, err, NonceOrderError{Want: 5, Got: 4})
		})
	}
}

func TestCounterReceiverExhausted(t *testing.T) {
	for _, s := range aeadCounterSuites() {
		a := aeadNew(t, s)
		send := NewCounterNonce(DirectionResponderToRequestor)
		send.next = math.MaxUint64 - 1
		last, err := send.SealNext(a, nil, []byte("last"), nil)
		if err != nil {
			t.Fatal(err)
		}
		r := NewCounterReceiver(DirectionResponderToRequestor)
		r.next = math.MaxUint64 - 1
		if got, err := r.OpenNext(a, nil, last, nil); err != nil || string(got) != "last" {
			t.Fatalf("%s: last counter: %q, %v", s.Name, got, err)
		}
		// A forger can compute counter 2^64-1 too; the receiver refuses it.
		var nonce [DirectNonceSize]byte
		putDirectNonce(&nonce, DirectionResponderToRequestor, math.MaxUint64)
		beyond := append(nonce[:], a.Seal(nil, nonce[:], []byte("x"), nil)...)
		if _, err := r.OpenNext(a, nil, beyond, nil); err != ErrNonceExhausted {
			t.Fatalf("%s: past the last counter: %v; want ErrNonceExhausted", s.Name, err)
		}
	}
}

// TestCounterNonceConcurrent: concurrent callers never share a counter.
func TestCounterNonceConcurrent(t *testing.T) {
	c := NewCounterNonce(DirectionRequestorToResponder)
	const workers, each = 8, 500
	got := make(chan [DirectNonceSize]byte, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := c.Next()
				if err != nil {
					t.Error(err)
					return
				}
				got <- n
			}
		})
	}
	wg.Wait()
	close(got)
	seen := make(map[[DirectNonceSize]byte]bool)
	for n := range got {
		if seen[n] {
			t.Fatalf("nonce %x handed out twice", n)
		}
		seen[n] = true
	}
	if len(seen) != workers*each || c.next != workers*each {
		t.Fatalf("%d distinct nonces, counter at %d; want %d", len(seen), c.next, workers*each)
	}
}

// TestSenderSealerCap lowers the per-key cap to 3: three seals open, the
// fourth is ErrSenderKeyExhausted, for every suite.
func TestSenderSealerCap(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			key := aeadPattern(s.KeySize, 0x70)
			ss, err := NewSenderSealer(s, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ss.Suite() != s || ss.Remaining() != MaxSealsPerSenderKey || MaxSealsPerSenderKey != 1<<32 {
				t.Fatalf("fresh sealer: suite %v, remaining %d", ss.Suite(), ss.Remaining())
			}
			ss.limit = 3
			open, err := s.New(key)
			if err != nil {
				t.Fatal(err)
			}
			nonces := make(map[string]bool)
			for i := range 3 {
				msg, err := ss.Seal([]byte("hdr"), []byte("same text"), []byte("aad"))
				if err != nil {
					t.Fatalf("seal %d: %v", i, err)
				}
				if got, err := OpenPrefixed(open, nil, msg[3:], []byte("aad")); err != nil || string(got) != "same text" {
					t.Fatalf("seal %d opens to %q, %v", i, got, err)
				}
				nonces[string(msg[3:3+s.NonceSize])] = true
				if ss.Remaining() != uint64(2-i) {
					t.Fatalf("after %d seals Remaining = %d", i+1, ss.Remaining())
				}
			}
			if len(nonces) != 3 {
				t.Fatalf("3 seals used %d distinct nonces (IVs)", len(nonces))
			}
			for range 2 {
				if msg, err := ss.Seal(nil, []byte("more"), nil); msg != nil || err != ErrSenderKeyExhausted {
					t.Fatalf("seal past the cap = %x, %v; want ErrSenderKeyExhausted", msg, err)
				}
			}
		})
	}
}

func TestSenderSealerConcurrentCap(t *testing.T) {
	s, _ := AEADByID(AEADChaCha20Poly1305)
	ss, err := NewSenderSealer(s, aeadPattern(s.KeySize, 1), aeadTestRandLocked(5))
	if err != nil {
		t.Fatal(err)
	}
	ss.limit = 50
	var mu sync.Mutex
	ok, refused := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				_, err := ss.Seal(nil, []byte("x"), nil)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case err == ErrSenderKeyExhausted:
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 50 || refused != 8*20-50 {
		t.Fatalf("%d seals, %d refused; want exactly 50 seals", ok, refused)
	}
}

func TestSenderSealerBadKeyAndRand(t *testing.T) {
	for _, s := range AEADs() {
		if ss, err := NewSenderSealer(s, make([]byte, s.KeySize-1), nil); err == nil || ss != nil {
			t.Errorf("%s: NewSenderSealer accepted a short key", s.Name)
		}
		ss, err := NewSenderSealer(s, make([]byte, s.KeySize), iotest.ErrReader(io.ErrClosedPipe))
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := ss.Seal(nil, []byte("x"), nil); msg != nil || !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s: Seal with failing randomness = %x, %v", s.Name, msg, err)
		}
	}
}

// aeadTestRandLocked is aeadTestRand made safe for concurrent readers.
func aeadTestRandLocked(seed byte) io.Reader {
	return &aeadLockedReader{r: aeadTestRand(seed)}
}

type aeadLockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *aeadLockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
