package cryptosuite

import (
	"crypto/cipher"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// Nonce and IV rules, DESIGN.md §5. Every sealed message travels as
// nonce ‖ ciphertext, whichever rule made the nonce:
//
//   - A256CBC-HS512 always takes a fresh random 16-byte IV, never a counter
//     (SealRandom, SenderSealer; CounterNonce refuses it).
//   - Direct messages under AES-256-GCM or ChaCha20-Poly1305: the 12-byte
//     nonce is a 4-byte direction tag followed by an 8-byte big-endian
//     counter that starts at 0 and never wraps (CounterNonce on the sending
//     side, CounterReceiver on the receiving side, which accepts only the
//     next counter: yamux never reorders one stream).
//   - Room messages under AES-256-GCM or ChaCha20-Poly1305: a random 12-byte
//     nonce, and one sender key seals at most MaxSealsPerSenderKey messages
//     (SenderSealer), after which the sender asks for a rotation.

// DirectNonceSize is the size of a direct-message nonce: a 4-byte direction
// tag and an 8-byte counter.
const DirectNonceSize = 12

// MaxSealsPerSenderKey is how many room messages one sender key may seal.
// With random 96-bit nonces it keeps the chance of a repeated nonce below
// 2^-33 (NIST SP 800-38D §8.3); SenderSealer applies it to every suite so
// the rule stays one rule.
const MaxSealsPerSenderKey = 1 << 32

// Direction is the 4-byte tag that starts a direct-message nonce. The two
// ends of a session use different tags, so even under one key their nonces
// could never collide.
type Direction uint32

// Direction tags. Zero is not a direction, so a nonce of all zeros is never
// valid.
const (
	// DirectionRequestorToResponder tags messages the requestor (the peer
	// that dialled) sends: nonce bytes 00 00 00 01 ‖ counter.
	DirectionRequestorToResponder Direction = 0x00000001
	// DirectionResponderToRequestor tags messages the responder (the serving
	// peer) sends: nonce bytes 00 00 00 02 ‖ counter.
	DirectionResponderToRequestor Direction = 0x00000002
)

func (d Direction) valid() bool {
	return d == DirectionRequestorToResponder || d == DirectionResponderToRequestor
}

// String names the direction for logs.
func (d Direction) String() string {
	switch d {
	case DirectionRequestorToResponder:
		return "requestor->responder"
	case DirectionResponderToRequestor:
		return "responder->requestor"
	}
	return fmt.Sprintf("Direction(%#08x)", uint32(d))
}

// ErrNonceExhausted is returned once a direction's counter has used every
// value it may take; the session must rekey before it sends (or accepts)
// another direct message.
var ErrNonceExhausted = errors.New("cryptosuite: direct-message nonce counter exhausted; rekey the session")

// ErrUnexpectedNonce is what every *NonceOrderError matches with errors.Is.
var ErrUnexpectedNonce = errors.New("cryptosuite: direct-message nonce is not the next one expected")

// ErrSenderKeyExhausted is returned by SenderSealer once its key has sealed
// its maximum number of messages: ask the room's master for a rotation and
// seal under the new epoch's key.
var ErrSenderKeyExhausted = errors.New("cryptosuite: sender key has sealed its maximum number of messages; ask for a room key rotation")

// ErrCounterNonceAEAD is returned when a counter nonce is asked of an AEAD
// whose nonce is not DirectNonceSize bytes, A256CBC-HS512 among them: its IV
// is always random, never a counter.
var ErrCounterNonceAEAD = errors.New("cryptosuite: counter nonces need a 12-byte-nonce AEAD; A256CBC-HS512 always takes a random IV")

// NonceOrderError reports a direct message whose nonce is not the one the
// receiver expects next: a replay, a skipped or reordered message, or a
// message tagged for the other direction. It matches ErrUnexpectedNonce.
type NonceOrderError struct {
	Want           uint64 // the counter expected next
	Got            uint64 // the counter the message carried
	WrongDirection bool   // the direction tag was not the receiver's
}

func (e *NonceOrderError) Error() string {
	if e.WrongDirection {
		return "cryptosuite: direct-message nonce carries the other direction's tag"
	}
	return fmt.Sprintf("cryptosuite: direct-message nonce counter %d, expected %d", e.Got, e.Want)
}

// Unwrap returns ErrUnexpectedNonce.
func (e *NonceOrderError) Unwrap() error { return ErrUnexpectedNonce }

// SealRandom seals plaintext under a fresh random nonce of a.NonceSize()
// bytes read from rand (crypto/rand.Reader when rand is nil) and returns
// dst ‖ nonce ‖ ciphertext. It is the only way lanpeer seals with
// A256CBC-HS512 and the way room messages are sealed. dst must not overlap
// plaintext. A failing rand is an error and nothing is sealed.
func SealRandom(a cipher.AEAD, rand io.Reader, dst, plaintext, aad []byte) ([]byte, error) {
	if rand == nil {
		rand = crand.Reader
	}
	n := a.NonceSize()
	// The nonce goes straight into the output; Seal writes after it.
	ret, out := sliceForAppend(dst, n+len(plaintext)+a.Overhead())
	if _, err := io.ReadFull(rand, out[:n]); err != nil {
		return nil, fmt.Errorf("cryptosuite: reading a random nonce: %w", err)
	}
	return a.Seal(ret[:len(dst)+n], out[:n], plaintext, aad), nil
}

// OpenPrefixed opens nonce ‖ ciphertext as SealRandom, CounterNonce.SealNext
// and SenderSealer.Seal make it, and appends the plaintext to dst. Every
// failure, an input too short to hold a nonce included, is ErrDecrypt. dst
// must not overlap in. It does not check a counter nonce's order; direct
// messages are opened with CounterReceiver.OpenNext.
func OpenPrefixed(a cipher.AEAD, dst, in, aad []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(in) < n {
		return nil, ErrDecrypt
	}
	out, err := a.Open(dst, in[:n], in[n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// CounterNonce makes the nonces of one direction of a session's direct
// messages: the direction tag, then the counter 0, 1, 2, ... as 8 bytes
// big-endian. The counter never wraps: the value 2^64-1 is never used, and
// asking past it is ErrNonceExhausted. Use NewCounterNonce; the zero value
// is not usable. It is safe for concurrent use, but a strict receiver needs
// the messages on the stream in the order their nonces were made, so one
// goroutine should seal and write each stream.
type CounterNonce struct {
	dir  Direction
	mu   sync.Mutex
	next uint64
}

// NewCounterNonce returns the sender-side counter for dir, starting at 0.
// It panics on a direction that is not one of the Direction constants.
func NewCounterNonce(dir Direction) *CounterNonce {
	if !dir.valid() {
		panic("cryptosuite: NewCounterNonce with an unknown direction")
	}
	return &CounterNonce{dir: dir}
}

// Next returns the next nonce and consumes its counter value, or
// ErrNonceExhausted. It is for callers that seal with a 12-byte-nonce AEAD
// themselves; SealNext does both steps.
func (c *CounterNonce) Next() ([DirectNonceSize]byte, error) {
	var nonce [DirectNonceSize]byte
	if !c.dir.valid() {
		panic("cryptosuite: CounterNonce used without NewCounterNonce")
	}
	c.mu.Lock()
	ctr := c.next
	if ctr == math.MaxUint64 {
		c.mu.Unlock()
		return nonce, ErrNonceExhausted
	}
	c.next++
	c.mu.Unlock()
	putDirectNonce(&nonce, c.dir, ctr)
	return nonce, nil
}

// SealNext seals plaintext under the next nonce and returns
// dst ‖ nonce ‖ ciphertext. a must take 12-byte nonces (AES-256-GCM,
// ChaCha20-Poly1305); anything else is ErrCounterNonceAEAD and consumes no
// counter value. dst must not overlap plaintext.
func (c *CounterNonce) SealNext(a cipher.AEAD, dst, plaintext, aad []byte) ([]byte, error) {
	if a.NonceSize() != DirectNonceSize {
		return nil, ErrCounterNonceAEAD
	}
	nonce, err := c.Next()
	if err != nil {
		return nil, err
	}
	ret, out := sliceForAppend(dst, DirectNonceSize+len(plaintext)+a.Overhead())
	copy(out, nonce[:])
	return a.Seal(ret[:len(dst)+DirectNonceSize], nonce[:], plaintext, aad), nil
}

func putDirectNonce(nonce *[DirectNonceSize]byte, dir Direction, ctr uint64) {
	binary.BigEndian.PutUint32(nonce[:4], uint32(dir))
	binary.BigEndian.PutUint64(nonce[4:], ctr)
}

// CounterReceiver is the receiving side of one direction of a session's
// direct messages. It is strict: it accepts only the next counter, because
// yamux may interleave streams but never reorders one, so anything else (a
// replay, a gap, the other direction's tag) is an attack or a bug and is a
// *NonceOrderError. The counter advances only when a message opens. Use
// NewCounterReceiver; it is safe for concurrent use.
type CounterReceiver struct {
	dir  Direction
	mu   sync.Mutex
	next uint64
}

// NewCounterReceiver returns the receiver for messages tagged dir (the
// peer's sending direction), expecting counter 0 first. It panics on a
// direction that is not one of the Direction constants.
func NewCounterReceiver(dir Direction) *CounterReceiver {
	if !dir.valid() {
		panic("cryptosuite: NewCounterReceiver with an unknown direction")
	}
	return &CounterReceiver{dir: dir}
}

// OpenNext opens nonce ‖ ciphertext as CounterNonce.SealNext makes it and
// appends the plaintext to dst. In order: a with a nonce size other than 12
// is ErrCounterNonceAEAD; input too short for a nonce is ErrDecrypt; a
// nonce that is not the next expected one is a *NonceOrderError; once the
// counter is used up every message is ErrNonceExhausted; a message that
// fails to authenticate is ErrDecrypt. Only a message that opens advances
// the counter. dst must not overlap in.
func (r *CounterReceiver) OpenNext(a cipher.AEAD, dst, in, aad []byte) ([]byte, error) {
	if !r.dir.valid() {
		panic("cryptosuite: CounterReceiver used without NewCounterReceiver")
	}
	if a.NonceSize() != DirectNonceSize {
		return nil, ErrCounterNonceAEAD
	}
	if len(in) < DirectNonceSize {
		return nil, ErrDecrypt
	}
	dir := Direction(binary.BigEndian.Uint32(in[:4]))
	ctr := binary.BigEndian.Uint64(in[4:DirectNonceSize])
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	if dir != r.dir || ctr != r.next {
		return nil, &NonceOrderError{Want: r.next, Got: ctr, WrongDirection: dir != r.dir}
	}
	out, err := a.Open(dst, in[:DirectNonceSize], in[DirectNonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	r.next++
	return out, nil
}

// SenderSealer seals one sender's room messages under its per-sender key
// (DESIGN.md §5): a random nonce (or IV, for A256CBC-HS512) per message,
// and at most MaxSealsPerSenderKey messages per key, after which Seal
// returns ErrSenderKeyExhausted and the sender must ask for a rotation.
// It is safe for concurrent use.
type SenderSealer struct {
	suite *AEADSuite
	aead  cipher.AEAD
	rand  io.Reader
	limit uint64 // MaxSealsPerSenderKey; lowered only by tests

	mu     sync.Mutex
	sealed uint64
}

// NewSenderSealer builds the suite's AEAD under key (KeySize bytes) and
// returns a sealer that reads its nonces from rand (crypto/rand.Reader when
// rand is nil).
func NewSenderSealer(suite *AEADSuite, key []byte, rand io.Reader) (*SenderSealer, error) {
	a, err := suite.New(key)
	if err != nil {
		return nil, err
	}
	if rand == nil {
		rand = crand.Reader
	}
	return &SenderSealer{suite: suite, aead: a, rand: rand, limit: MaxSealsPerSenderKey}, nil
}

// Suite returns the sealer's AEAD suite.
func (s *SenderSealer) Suite() *AEADSuite { return s.suite }

// Remaining returns how many more messages this key may seal.
func (s *SenderSealer) Remaining() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit - s.sealed
}

// Seal seals plaintext under a fresh random nonce and returns
// dst ‖ nonce ‖ ciphertext, to be opened with OpenPrefixed; or
// ErrSenderKeyExhausted once the key's quota is used. A seal whose random
// read fails still counts against the quota. dst must not overlap plaintext.
func (s *SenderSealer) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	s.mu.Lock()
	if s.sealed >= s.limit {
		s.mu.Unlock()
		return nil, ErrSenderKeyExhausted
	}
	s.sealed++
	s.mu.Unlock()
	return SealRandom(s.aead, s.rand, dst, plaintext, aad)
}
