package session

import (
	"errors"
	"fmt"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

type requestorState uint8

const (
	rqStart requestorState = iota
	rqHelloSent
	rqReplyConsumed
	rqDone
	rqFailed
)

func (s requestorState) String() string {
	switch s {
	case rqStart:
		return "start"
	case rqHelloSent:
		return "hello-sent"
	case rqReplyConsumed:
		return "reply-consumed"
	case rqDone:
		return "done"
	case rqFailed:
		return "failed"
	}
	return fmt.Sprintf("requestorState(%d)", uint8(s))
}

// Requestor is the requestor's side of one handshake: CreateHello,
// ConsumeReply, CreateFinished, in that order. Any failure is final. A
// Requestor is not safe for concurrent use.
type Requestor struct {
	cfg    *Config
	p      Params
	state  requestorState
	suite  *cryptosuite.KEXSuite
	kex    *cryptosuite.RequestorKEX
	offer  []cryptosuite.AEADID
	l1hash [32]byte
	sig1   []byte

	// set by ConsumeReply
	keys    *Keys
	sched   *schedule
	sig2    []byte
	sealed  []byte
	authKey []byte
}

// NewRequestor starts a handshake.
func NewRequestor(cfg *Config, p Params) (*Requestor, error) {
	if cfg.Identity == nil {
		return nil, errors.New("session: no identity")
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	suite, ok := cryptosuite.KEXByID(cfg.kex())
	if !ok {
		return nil, fmt.Errorf("%w: unknown mode %v", ErrKEXRefused, cfg.kex())
	}
	if suite.ID == cryptosuite.KEXRSAOAEPSHA256 && !cfg.AllowRSA {
		return nil, fmt.Errorf("%w: the rsa mode must be enabled explicitly (it has no forward secrecy)", ErrKEXRefused)
	}
	return &Requestor{cfg: cfg, p: p, suite: suite}, nil
}

func (h *Requestor) fail(err error) error {
	h.state = rqFailed
	h.kex = nil
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

// Abort ends a handshake that will not complete: the ephemeral key and any
// derived keys are dropped or zeroed and every later call fails. It does
// nothing once CreateFinished has returned the keys.
func (h *Requestor) Abort() {
	if h.state != rqDone && h.state != rqFailed {
		h.fail(nil)
	}
}

// CreateHello builds flight 1.
func (h *Requestor) CreateHello() (*wire.Hello, error) {
	if h.state != rqStart {
		return nil, h.fail(ErrUnexpectedMessage)
	}
	kex, err := h.suite.NewRequestor(cryptosuite.RequestorKEXConfig{Seed: h.cfg.KEXSeed, Identity: h.cfg.Identity})
	if err != nil {
		if errors.Is(err, cryptosuite.ErrKEXNeedsRSA) {
			return nil, h.fail(fmt.Errorf("%w: %w", ErrKEXRefused, err))
		}
		return nil, h.fail(err)
	}
	nonce, err := randBytes(h.cfg.rand(), NonceSize)
	if err != nil {
		return nil, h.fail(err)
	}
	id := h.cfg.Identity.Public()
	h.offer = h.cfg.aeads()
	m := &wire.Hello{
		Version:     wire.Version,
		IdentityKey: id.SPKI(),
		SigAlg:      uint16(id.Alg()),
		KEX:         uint16(h.suite.ID),
		Share:       kex.Share(),
		AEADs:       wireIDs(h.offer),
		Nonce:       nonce,
		Time:        h.cfg.now().UnixMilli(),
	}
	if !h.p.Expected.IsZero() {
		m.Responder = append([]byte(nil), h.p.Expected[:]...)
	}
	l1 := canon.RequestorHello(requestorFields(m, id.PeerID(), &h.p))
	sig, err := h.cfg.Identity.Sign(canon.LabelRequestorHello, l1)
	if err != nil {
		return nil, h.fail(err)
	}
	m.Sig = sig
	h.kex, h.l1hash, h.sig1 = kex, transcriptHash(l1), sig
	h.state = rqHelloSent
	return m, nil
}

func requestorFields(m *wire.Hello, requestor cryptosuite.PeerID, p *Params) *canon.RequestorHelloFields {
	return &canon.RequestorHelloFields{
		Version:        uint64(m.Version),
		Transport:      p.Transport,
		ChannelBinding: p.ChannelBinding,
		Requestor:      requestor,
		Responder:      m.Responder,
		IdentityKey:    m.IdentityKey,
		SigAlg:         m.SigAlg,
		KEX:            m.KEX,
		Share:          m.Share,
		AEADs:          m.AEADs,
		Nonce:          m.Nonce,
		TimeMillis:     uint64(m.Time),
	}
}

func responderFields(l1hash [32]byte, sig1 []byte, m *wire.HelloReply, responder cryptosuite.PeerID) *canon.ResponderHelloFields {
	return &canon.ResponderHelloFields{
		RequestorHelloHash: l1hash,
		RequestorSig:       sig1,
		SessionID:          m.SessionID,
		Responder:          responder,
		IdentityKey:        m.IdentityKey,
		SigAlg:             m.SigAlg,
		KEX:                m.KEX,
		Share:              m.Share,
		AEAD:               m.AEAD,
		Nonce:              m.Nonce,
		TimeMillis:         uint64(m.Time),
	}
}

// ConsumeReply checks flight 2: the responder's identity against the
// expected peer, its signature over the transcript, the suite choice, and
// the sealed authentication key. Nothing is committed unless every check
// passes.
func (h *Requestor) ConsumeReply(m *wire.HelloReply) error {
	if h.state != rqHelloSent {
		return h.fail(ErrUnexpectedMessage)
	}
	if m.Version != wire.Version {
		return h.fail(ErrVersion)
	}
	if len(m.SessionID) != SessionIDSize || len(m.Nonce) != NonceSize {
		return h.fail(ErrUnexpectedMessage)
	}
	pk, err := parseIdentity(m.IdentityKey, m.SigAlg, h.p.KnownKey)
	if err != nil {
		return h.fail(err)
	}
	if !h.p.Expected.IsZero() && pk.PeerID() != h.p.Expected {
		return h.fail(ErrWrongPeer)
	}
	if pk.PeerID() == h.cfg.Identity.PeerID() {
		return h.fail(ErrReflection)
	}
	if cryptosuite.KEXID(m.KEX) != h.suite.ID {
		return h.fail(ErrKEXRefused)
	}
	aead, ok := cryptosuite.AEADByID(cryptosuite.AEADID(m.AEAD))
	if !ok || !containsAEAD(h.offer, aead.ID) {
		return h.fail(ErrNoCommonSuite)
	}
	if err := checkTime(h.cfg, m.Time); err != nil {
		return h.fail(err)
	}
	l2 := canon.ResponderHello(responderFields(h.l1hash, h.sig1, m, pk.PeerID()))
	if err := pk.Verify(canon.LabelResponderHello, l2, m.Sig); err != nil {
		return h.fail(ErrBadSignature)
	}
	shared, err := h.kex.Finish(m.Share)
	h.kex = nil
	if err != nil {
		return h.fail(fmt.Errorf("%w: %v", ErrBadKeyShare, err))
	}
	th := transcriptHash(l2)
	sched, err := deriveSchedule(shared, th, aead)
	clear(shared)
	if err != nil {
		return h.fail(err)
	}
	h.sched = sched
	a, err := aead.New(sched.seal)
	if err != nil {
		return h.fail(err)
	}
	authKey, err := cryptosuite.OpenPrefixed(a, nil, m.SealedAuthKey, canon.AuthKeySealAAD(th, m.SessionID))
	if err != nil || len(authKey) != AuthKeySize {
		return h.fail(ErrBadAuthKey)
	}
	k := &Keys{Role: RoleRequestor, Peer: pk, KEX: h.suite, AEAD: aead, TranscriptHash: th,
		C2S: append([]byte(nil), sched.c2s...), S2C: append([]byte(nil), sched.s2c...),
		RekeySecret: append([]byte(nil), sched.rekey...)}
	copy(k.SessionID[:], m.SessionID)
	copy(k.AuthKey[:], authKey)
	h.keys, h.sig2, h.sealed, h.authKey = k, m.Sig, m.SealedAuthKey, authKey
	h.state = rqReplyConsumed
	return nil
}

// CreateFinished builds flight 3 and returns the session's keys. The keys
// are usable once the responder has accepted Finished (it answers with its
// first frame or an error).
func (h *Requestor) CreateFinished() (*wire.Finished, *Keys, error) {
	if h.state != rqReplyConsumed {
		return nil, nil, h.fail(ErrUnexpectedMessage)
	}
	mac := finishedMAC(h.sched.finished, h.keys.TranscriptHash, h.sig2, h.sealed, h.authKey)
	clear(h.authKey)
	h.sched.wipe()
	h.state = rqDone
	k := h.keys
	h.keys = nil
	return &wire.Finished{MAC: mac}, k, nil
}

func containsAEAD(ids []cryptosuite.AEADID, id cryptosuite.AEADID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
