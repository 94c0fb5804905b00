package session

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

type responderState uint8

const (
	rsStart responderState = iota
	rsHelloConsumed
	rsReplySent
	rsDone
	rsFailed
)

func (s responderState) String() string {
	switch s {
	case rsStart:
		return "start"
	case rsHelloConsumed:
		return "hello-consumed"
	case rsReplySent:
		return "reply-sent"
	case rsDone:
		return "done"
	case rsFailed:
		return "failed"
	}
	return fmt.Sprintf("responderState(%d)", uint8(s))
}

// Responder is the responder's side of one handshake: ConsumeHello,
// CreateReply, ConsumeFinished, in that order. It holds only pending state
// until a valid Finished arrives. Any failure is final. A Responder is not
// safe for concurrent use.
type Responder struct {
	cfg   *Config
	p     Params
	state responderState

	// set by ConsumeHello
	hello *wire.Hello
	peer  *cryptosuite.PublicKey
	suite *cryptosuite.KEXSuite
	aead  *cryptosuite.AEADSuite
	l1h   [32]byte

	// set by CreateReply
	keys    *Keys
	sched   *schedule
	sig2    []byte
	sealed  []byte
	authKey []byte
}

// NewResponder starts the responder's side of a handshake.
func NewResponder(cfg *Config, p Params) (*Responder, error) {
	if cfg.Identity == nil {
		return nil, errors.New("session: no identity")
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &Responder{cfg: cfg, p: p}, nil
}

func (h *Responder) fail(err error) error {
	h.state = rsFailed
	if h.sched != nil {
		h.sched.wipe()
	}
	clear(h.authKey)
	if h.keys != nil {
		h.keys.Wipe()
		h.keys = nil
	}
	return err
}

// Abort ends a handshake that will not complete (the connection failed,
// a deadline passed, Finished never came): the pending keys are zeroed and
// every later call fails. It does nothing once ConsumeFinished has
// returned the keys.
func (h *Responder) Abort() {
	if h.state != rsDone && h.state != rsFailed {
		h.fail(nil)
	}
}

// ConsumeHello checks flight 1, cheapest checks first and the signature
// before anything is remembered: version, addressee, reflection, clock,
// mode and share size, suites, signature, policy, and last the replay
// cache.
func (h *Responder) ConsumeHello(m *wire.Hello) error {
	if h.state != rsStart {
		return h.fail(ErrUnexpectedMessage)
	}
	if m.Version != wire.Version {
		return h.fail(ErrVersion)
	}
	if len(m.Nonce) != NonceSize {
		return h.fail(ErrUnexpectedMessage)
	}
	self := h.cfg.Identity.PeerID()
	pk, err := parseIdentity(m.IdentityKey, m.SigAlg, h.p.KnownKey)
	if err != nil {
		return h.fail(err)
	}
	if pk.PeerID() == self {
		// Checked before the addressee, so that this peer's own hello
		// sent back to it is named for what it is.
		return h.fail(ErrReflection)
	}
	if len(m.Responder) != 0 && !sameBytes(m.Responder, self[:]) {
		// The requestor means another peer: answering would create an
		// unknown key-share.
		return h.fail(ErrWrongPeer)
	}
	if !h.p.Expected.IsZero() && pk.PeerID() != h.p.Expected {
		// The identity the requestor proved in TLS is not the one it
		// signs the handshake with.
		return h.fail(ErrWrongPeer)
	}
	if err := checkTime(h.cfg, m.Time); err != nil {
		return h.fail(err)
	}
	if h.cfg.Replay != nil && h.cfg.Replay.seenAt(m.Nonce, h.cfg.now()) {
		// A replay costs a lookup, not a signature verification.
		return h.fail(ErrReplay)
	}
	suite, ok := cryptosuite.KEXByID(cryptosuite.KEXID(m.KEX))
	if !ok {
		return h.fail(ErrKEXRefused)
	}
	if suite.ID == cryptosuite.KEXRSAOAEPSHA256 {
		if !h.cfg.AllowRSA {
			return h.fail(fmt.Errorf("%w: the rsa mode is not enabled here", ErrKEXRefused))
		}
		if pk.Alg() != cryptosuite.SigRSAPSSSHA256 {
			return h.fail(fmt.Errorf("%w: %v", ErrKEXRefused, cryptosuite.ErrKEXNeedsRSA))
		}
	}
	if len(m.Share) != suite.RequestorShareSize {
		return h.fail(ErrBadKeyShare)
	}
	aead, err := cryptosuite.NegotiateAEAD(h.cfg.aeads(), aeadIDs(m.AEADs))
	if err != nil {
		return h.fail(ErrNoCommonSuite)
	}
	l1 := canon.RequestorHello(requestorFields(m, pk.PeerID(), &h.p))
	if err := pk.Verify(canon.LabelRequestorHello, l1, m.Sig); err != nil {
		return h.fail(ErrBadSignature)
	}
	if h.cfg.Policy != nil {
		if err := h.cfg.Policy(pk); err != nil {
			if errors.Is(err, ErrBusy) { // a capacity limit, not a judgement of the peer
				return h.fail(err)
			}
			return h.fail(fmt.Errorf("%w: %w", ErrPolicy, err))
		}
	}
	if h.cfg.Replay != nil {
		// Remembered until the hello's timestamp leaves the skew window,
		// however long that is.
		now := h.cfg.now()
		until := time.UnixMilli(m.Time).Add(h.cfg.skew() + time.Millisecond)
		if err := h.cfg.Replay.add(m.Nonce, now, until); err != nil {
			return h.fail(err)
		}
	}
	h.hello, h.peer, h.suite, h.aead, h.l1h = m, pk, suite, aead, transcriptHash(l1)
	h.state = rsHelloConsumed
	return nil
}

// CreateReply builds flight 2: a session id, the responder's share, the
// key schedule, the sealed authentication key and the signature.
func (h *Responder) CreateReply() (*wire.HelloReply, error) {
	if h.state != rsHelloConsumed {
		return nil, h.fail(ErrUnexpectedMessage)
	}
	r := h.cfg.rand()
	sid, err := randBytes(r, SessionIDSize)
	if err != nil {
		return nil, h.fail(err)
	}
	nonce, err := randBytes(r, NonceSize)
	if err != nil {
		return nil, h.fail(err)
	}
	authKey, err := randBytes(r, AuthKeySize)
	if err != nil {
		return nil, h.fail(err)
	}
	h.authKey = authKey
	share, shared, err := h.suite.Respond(h.hello.Share, h.peer, cryptosuite.ResponderKEXConfig{Seed: h.cfg.KEXSeed})
	if err != nil {
		return nil, h.fail(fmt.Errorf("%w: %v", ErrBadKeyShare, err))
	}
	id := h.cfg.Identity.Public()
	m := &wire.HelloReply{
		Version:     wire.Version,
		SessionID:   sid,
		IdentityKey: id.SPKI(),
		SigAlg:      uint16(id.Alg()),
		KEX:         uint16(h.suite.ID),
		Share:       share,
		AEAD:        uint16(h.aead.ID),
		Nonce:       nonce,
		Time:        h.cfg.now().UnixMilli(),
	}
	l2 := canon.ResponderHello(responderFields(h.l1h, h.hello.Sig, m, id.PeerID()))
	th := transcriptHash(l2)
	sched, err := deriveSchedule(shared, th, h.aead)
	clear(shared)
	if err != nil {
		return nil, h.fail(err)
	}
	h.sched = sched
	a, err := h.aead.New(sched.seal)
	if err != nil {
		return nil, h.fail(err)
	}
	m.SealedAuthKey, err = cryptosuite.SealRandom(a, r, nil, authKey, canon.AuthKeySealAAD(th, sid))
	if err != nil {
		return nil, h.fail(err)
	}
	if m.Sig, err = h.cfg.Identity.Sign(canon.LabelResponderHello, l2); err != nil {
		return nil, h.fail(err)
	}
	k := &Keys{Role: RoleResponder, Peer: h.peer, KEX: h.suite, AEAD: h.aead, TranscriptHash: th,
		C2S: append([]byte(nil), sched.c2s...), S2C: append([]byte(nil), sched.s2c...),
		RekeySecret: append([]byte(nil), sched.rekey...)}
	copy(k.SessionID[:], sid)
	copy(k.AuthKey[:], authKey)
	h.keys, h.sig2, h.sealed = k, m.Sig, m.SealedAuthKey
	h.state = rsReplySent
	return m, nil
}

// ConsumeFinished checks the requestor's key confirmation and only then
// returns the session's keys.
func (h *Responder) ConsumeFinished(m *wire.Finished) (*Keys, error) {
	if h.state != rsReplySent {
		return nil, h.fail(ErrUnexpectedMessage)
	}
	want := finishedMAC(h.sched.finished, h.keys.TranscriptHash, h.sig2, h.sealed, h.authKey)
	if !hmac.Equal(want, m.MAC) {
		return nil, h.fail(ErrBadFinished)
	}
	h.sched.wipe()
	clear(h.authKey)
	h.state = rsDone
	k := h.keys
	h.keys = nil
	return k, nil
}

// Peer returns the requestor's verified identity once ConsumeHello has
// succeeded (for limits keyed by identity before the session completes).
func (h *Responder) Peer() *cryptosuite.PublicKey { return h.peer }
