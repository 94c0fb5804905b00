package session

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// Direct messages (DESIGN.md §5; docs/PROTOCOL.md, "Direct messages").
//
// Each side sends on its own direct stream, under the session key of its
// direction (Keys.C2S from the requestor, Keys.S2C from the responder),
// with a sequence number Seq that starts at 0 and grows by one per
// message, across rekeys. yamux never reorders one stream, so the receiver
// accepts only the next Seq. The seal:
//
//	AAD = canon(LabelDirectMessageAAD; session id, direction tag, Seq, epoch)
//	AES-256-GCM, ChaCha20-Poly1305: Box = (direction tag ‖ Seq as 8 bytes) ‖ ciphertext ‖ 16-byte tag
//	A256CBC-HS512:                  Box = random 16-byte IV ‖ ciphertext ‖ 32-byte tag
//
// The direction tag is cryptosuite's: 1 for requestor to responder, 2
// back.

const (
	// MaxDirectTextSize bounds a direct message's text, in bytes of UTF-8.
	MaxDirectTextSize = wire.MaxDirectTextSize

	// MaxMessagesPerEpoch is the most direct messages one direction seals
	// under one epoch's key. A sender refuses to seal more
	// (ErrRekeyRequired) and a receiver to open more; the rekey policy
	// asks for a new epoch long before. It is the bound DESIGN.md §5 puts
	// on random nonces (A256CBC-HS512's IVs are random), applied to every
	// suite so the rule stays one rule.
	MaxMessagesPerEpoch = 1 << 32

	// maxHeldEpochs bounds the receive keys a DirectReceiver holds: the
	// current epoch's and up to two newer ones whose first message has not
	// arrived yet.
	maxHeldEpochs = 3
)

// Direct-message errors. A receiver that refuses a message with one of
// them closes the direct stream. Their detail holds numbers (and, for a
// refused text, one code point), never the peer's bytes.
var (
	// ErrDirectText: a text that is empty, longer than MaxDirectTextSize,
	// not UTF-8, or holds a character CheckDirectText refuses.
	ErrDirectText = errors.New("session: direct message text not allowed")
	// ErrDirectSeq is what every *SeqError matches.
	ErrDirectSeq = errors.New("session: direct message out of sequence")
	// ErrDirectEpoch is what every *EpochError matches.
	ErrDirectEpoch = errors.New("session: direct message under an epoch whose key is not held")
	// ErrDirectOpen: the box does not authenticate under the key of its
	// epoch and direction (tampered, reflected, or sealed under another
	// key).
	ErrDirectOpen = errors.New("session: direct message does not authenticate")
	// ErrSeqExhausted: the direction has used every Seq up to wire.MaxSeq;
	// only a new session can send more.
	ErrSeqExhausted = errors.New("session: direct-message sequence numbers used up; open a new session")
	// ErrRekeyRequired: the epoch's key has sealed (or, on a receiver,
	// opened) MaxMessagesPerEpoch messages; a rekey must come first.
	ErrRekeyRequired = errors.New("session: too many direct messages under one key; rekey first")
)

// SeqError reports a direct message whose Seq is not the next one: a
// replay or reorder (Got < Want) or a gap (Got > Want). It matches
// ErrDirectSeq.
type SeqError struct {
	Want, Got uint64
}

func (e *SeqError) Error() string {
	return fmt.Sprintf("session: direct message out of sequence: seq %d, expected %d", e.Got, e.Want)
}

// Unwrap returns ErrDirectSeq.
func (e *SeqError) Unwrap() error { return ErrDirectSeq }

// EpochError reports a direct message under an epoch whose key the
// receiver does not hold: one already retired (and zeroed) or one no rekey
// has created. It matches ErrDirectEpoch.
type EpochError struct {
	Got            uint32 // the message's epoch
	Oldest, Newest uint32 // the epochs whose keys are held
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("session: direct message under epoch %d; keys held for epochs %d to %d", e.Got, e.Oldest, e.Newest)
}

// Unwrap returns ErrDirectEpoch.
func (e *EpochError) Unwrap() error { return ErrDirectEpoch }

// CheckDirectText reports whether text may travel as a direct message:
// 1 to MaxDirectTextSize bytes of valid UTF-8 without any of the
// characters that could forge output on the receiving side: C0 controls
// other than tab and line feed (carriage return and escape included), DEL,
// C1 controls, the line and paragraph separators U+2028 and U+2029, and
// the bidirectional embedding, override and isolate controls U+202A to
// U+202E and U+2066 to U+2069. Everything else is allowed, so that any
// script and emoji sequence (which need U+200D) travels; the rule is a
// fixed list, so peers built with different Unicode tables agree on it.
// A receiver printing a text on one line must still escape tab and line
// feed. The error matches ErrDirectText.
func CheckDirectText(text string) error {
	switch {
	case len(text) == 0:
		return fmt.Errorf("%w: empty", ErrDirectText)
	case len(text) > MaxDirectTextSize:
		return fmt.Errorf("%w: %d bytes, max %d", ErrDirectText, len(text), MaxDirectTextSize)
	}
	for i := 0; i < len(text); {
		// Printable ASCII, the common case, eight bytes at a time.
		if i+8 <= len(text) && plainASCII8(binary.LittleEndian.Uint64([]byte(text[i:i+8]))) {
			i += 8
			continue
		}
		if c := text[i]; c < utf8.RuneSelf {
			if asciiForbidden[c] {
				return fmt.Errorf("%w: character %U at byte %d", ErrDirectText, rune(c), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w: not valid UTF-8 at byte %d", ErrDirectText, i)
		}
		if forbiddenInText(r) {
			return fmt.Errorf("%w: character %U at byte %d", ErrDirectText, r, i)
		}
		i += size
	}
	return nil
}

// plainASCII8 reports whether all eight bytes of w are in 0x20..0x7e.
func plainASCII8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below20 := (w - 0x20*ones) & ^w & highs // some byte < 0x20 (exact as a whole)
	above7e := (w | (w + ones)) & highs     // some byte >= 0x7f (0xff sets its own high bit)
	return below20|above7e == 0
}

// asciiForbidden marks the C0 controls but tab and line feed, and DEL.
var asciiForbidden = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = forbiddenInText(rune(c))
	}
	return t
}()

func forbiddenInText(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

// directions returns the sending and receiving direction of keys' side
// and the keys for each.
func directions(keys *Keys) (send, recv cryptosuite.Direction, sendKey, recvKey []byte, err error) {
	if keys == nil || keys.AEAD == nil {
		return 0, 0, nil, nil, errors.New("session: direct messages need the keys of a completed handshake")
	}
	switch keys.Role {
	case RoleRequestor:
		return cryptosuite.DirectionRequestorToResponder, cryptosuite.DirectionResponderToRequestor, keys.C2S, keys.S2C, nil
	case RoleResponder:
		return cryptosuite.DirectionResponderToRequestor, cryptosuite.DirectionRequestorToResponder, keys.S2C, keys.C2S, nil
	}
	return 0, 0, nil, nil, fmt.Errorf("session: unknown role %d", keys.Role)
}

// DirectSender seals this side's direct messages. It is safe for concurrent
// use, but the receiver accepts messages only in Seq order: write each
// message to the direct stream in the order Seal returned them (seal and
// write under one lock, or from one goroutine).
//
// It takes over the key of its direction in the Keys it was made from
// (Keys.C2S on the requestor, Keys.S2C on the responder) and zeroes it
// when a rekey switches it to a new epoch.
type DirectSender struct {
	sid   [SessionIDSize]byte
	dir   cryptosuite.Direction
	suite *cryptosuite.AEADSuite
	rand  io.Reader

	mu    sync.Mutex
	ctr   *cryptosuite.CounterNonce // nil for random-IV suites
	epoch uint32
	key   []byte
	aead  cipher.AEAD
	seq   uint64 // the next message's
	sent  uint64 // sealed under epoch
	limit uint64 // MaxMessagesPerEpoch; lowered by tests
}

// NewDirectSender returns the sender for keys' side of the session,
// starting at Seq 0 under epoch 0 (the handshake's keys). rand supplies
// A256CBC-HS512's IVs; nil means crypto/rand.
func NewDirectSender(keys *Keys, rand io.Reader) (*DirectSender, error) {
	dir, _, key, _, err := directions(keys)
	if err != nil {
		return nil, err
	}
	a, err := keys.AEAD.New(key)
	if err != nil {
		return nil, fmt.Errorf("session: direct-message key: %w", err)
	}
	s := &DirectSender{sid: keys.SessionID, dir: dir, suite: keys.AEAD, rand: rand,
		key: key, aead: a, limit: MaxMessagesPerEpoch}
	if !keys.AEAD.RandomIV {
		s.ctr = cryptosuite.NewCounterNonce(dir)
	}
	return s, nil
}

// Seal seals text (which must pass CheckDirectText) as the next direct
// message. It returns ErrSeqExhausted once Seq has reached wire.MaxSeq,
// ErrRekeyRequired once the epoch's key has sealed MaxMessagesPerEpoch
// messages, and an error wrapping ErrDirectText for a text that may not
// travel. A failed Seal consumes no Seq.
func (s *DirectSender) Seal(text string) (*wire.DirectMessage, error) {
	if err := CheckDirectText(text); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq > wire.MaxSeq {
		return nil, ErrSeqExhausted
	}
	if s.sent >= s.limit {
		return nil, ErrRekeyRequired
	}
	aad := canon.DirectMessageAAD(s.sid, uint32(s.dir), s.seq, s.epoch)
	var (
		box []byte
		err error
	)
	if s.ctr != nil {
		box, err = s.ctr.SealNext(s.aead, nil, []byte(text), aad)
		// The counter nonce and Seq advance together, one per message.
		if err == nil && binary.BigEndian.Uint64(box[4:cryptosuite.DirectNonceSize]) != s.seq {
			panic("session: direct-message nonce counter out of step with Seq")
		}
	} else {
		box, err = cryptosuite.SealRandom(s.aead, s.rand, nil, []byte(text), aad)
	}
	if err != nil {
		return nil, fmt.Errorf("session: sealing a direct message: %w", err)
	}
	m := &wire.DirectMessage{Seq: s.seq, Epoch: s.epoch, Box: box}
	s.seq++
	s.sent++
	return m, nil
}

// Epoch returns the epoch the next message is sealed under.
func (s *DirectSender) Epoch() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// sentInEpoch returns how many messages were sealed under the current
// epoch.
func (s *DirectSender) sentInEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// switchEpoch makes key (owned from now on) the sending key of epoch, the
// current epoch plus one, and zeroes the old key. The AEAD built on the
// old key keeps its own expanded key schedule, which Go gives no way to
// overwrite; it is dropped.
func (s *DirectSender) switchEpoch(epoch uint32, key []byte) error {
	a, err := s.suite.New(key)
	if err != nil {
		return fmt.Errorf("session: direct-message key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch != s.epoch+1 {
		return fmt.Errorf("session: sender switching from epoch %d to %d", s.epoch, epoch)
	}
	clear(s.key)
	s.key, s.aead, s.epoch, s.sent = key, a, epoch, 0
	return nil
}

type epochKey struct {
	epoch uint32
	key   []byte
	aead  cipher.AEAD
}

// DirectReceiver opens the peer's direct messages. It accepts only the next
// Seq, under an epoch whose key it holds: the current one, or a newer one
// a rekey has installed. The first message under a newer epoch retires
// (zeroes) every older key. A message that fails any check changes
// nothing; close the stream then, and accept no other direct stream from
// the peer in this session. It is safe for concurrent use.
//
// It takes over the key of the peer's direction in the Keys it was made
// from (Keys.S2C on the requestor, Keys.C2S on the responder).
type DirectReceiver struct {
	sid   [SessionIDSize]byte
	dir   cryptosuite.Direction
	suite *cryptosuite.AEADSuite

	mu    sync.Mutex
	ctr   *cryptosuite.CounterReceiver // nil for random-IV suites
	next  uint64                       // the Seq expected next
	keys  []epochKey                   // ascending epochs; keys[0] is the current one
	recv  uint64                       // opened under keys[0]
	limit uint64                       // MaxMessagesPerEpoch; lowered by tests
}

// NewDirectReceiver returns the receiver of the peer's direct messages,
// expecting Seq 0 under epoch 0 (the handshake's keys).
func NewDirectReceiver(keys *Keys) (*DirectReceiver, error) {
	_, dir, _, key, err := directions(keys)
	if err != nil {
		return nil, err
	}
	a, err := keys.AEAD.New(key)
	if err != nil {
		return nil, fmt.Errorf("session: direct-message key: %w", err)
	}
	r := &DirectReceiver{sid: keys.SessionID, dir: dir, suite: keys.AEAD,
		keys: []epochKey{{epoch: 0, key: key, aead: a}}, limit: MaxMessagesPerEpoch}
	if !keys.AEAD.RandomIV {
		r.ctr = cryptosuite.NewCounterReceiver(dir)
	}
	return r, nil
}

// Open checks and opens m and returns its text. In order: a Seq other
// than the next one is a *SeqError; an epoch whose key is not held is an
// *EpochError; a key that has opened MaxMessagesPerEpoch messages gives
// ErrRekeyRequired; a box that does not authenticate (any byte changed, a
// message of the other direction, another session's or epoch's key) is
// ErrDirectOpen. Up to here a failure changes nothing. A message that
// opens consumes its Seq even if its text then fails CheckDirectText
// (ErrDirectText): the peer sealed a text it must not send.
func (r *DirectReceiver) Open(m *wire.DirectMessage) (string, error) {
	if m == nil {
		return "", errors.New("session: nil direct message")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Seq != r.next {
		return "", &SeqError{Want: r.next, Got: m.Seq}
	}
	i := -1
	for j := range r.keys {
		if r.keys[j].epoch == m.Epoch {
			i = j
			break
		}
	}
	if i < 0 {
		return "", &EpochError{Got: m.Epoch, Oldest: r.keys[0].epoch, Newest: r.keys[len(r.keys)-1].epoch}
	}
	if i == 0 && r.recv >= r.limit {
		return "", ErrRekeyRequired
	}
	aad := canon.DirectMessageAAD(r.sid, uint32(r.dir), m.Seq, m.Epoch)
	var (
		plain []byte
		err   error
	)
	if r.ctr != nil {
		plain, err = r.ctr.OpenNext(r.keys[i].aead, nil, m.Box, aad)
	} else {
		plain, err = cryptosuite.OpenPrefixed(r.keys[i].aead, nil, m.Box, aad)
	}
	if err != nil {
		return "", ErrDirectOpen
	}
	if i > 0 {
		// The peer has switched: nothing under an older epoch can follow
		// on this stream.
		r.retire(i)
	}
	r.next++
	r.recv++
	text := string(plain)
	clear(plain)
	if err := CheckDirectText(text); err != nil {
		return "", err
	}
	return text, nil
}

// retire zeroes and drops the n oldest keys. The caller holds r.mu.
func (r *DirectReceiver) retire(n int) {
	for j := 0; j < n; j++ {
		clear(r.keys[j].key)
		r.keys[j] = epochKey{}
	}
	r.keys = r.keys[n:]
	r.recv = 0
}

// Epoch returns the epoch of the newest message received, or the epoch
// the receiver started with.
func (r *DirectReceiver) Epoch() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[0].epoch
}

// install makes key (owned from now on) the receive key of epoch, one more
// than the newest held. When that makes more than maxHeldEpochs keys, the
// oldest is retired: a message that late (two completed rekeys behind) is
// refused.
func (r *DirectReceiver) install(epoch uint32, key []byte) error {
	a, err := r.suite.New(key)
	if err != nil {
		return fmt.Errorf("session: direct-message key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if newest := r.keys[len(r.keys)-1].epoch; epoch != newest+1 {
		return fmt.Errorf("session: receiver installing epoch %d after %d", epoch, newest)
	}
	r.keys = append(r.keys, epochKey{epoch: epoch, key: key, aead: a})
	if len(r.keys) > maxHeldEpochs {
		r.retire(len(r.keys) - maxHeldEpochs)
	}
	return nil
}
