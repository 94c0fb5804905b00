package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// Rekey (DESIGN.md §4, last paragraph; docs/PROTOCOL.md, "Rekey"). A fresh
// key agreement in the session's own mode, on the control stream, always
// with the session's requestor on the key agreement's requestor side:
//
//	requestor                              responder
//	                 <- RekeyRequest(e+1)      (only if the responder asks)
//	RekeyInit(e+1, share)  ->
//	                                           derive; hold the new c2s key for receiving
//	                 <- RekeyReply(e+1, share, MAC_responder)
//	check MAC; hold the new s2c key for receiving; send under e+1
//	RekeyConfirm(e+1, MAC_requestor) ->
//	                                           check MAC; send under e+1
//
// The key schedule of epoch n, from epoch n-1's hash H and secret R (for
// n = 1: the handshake's transcript hash and k_rekey):
//
//	H'      = SHA-256(canon(LabelRekey; H, n, init share, reply share))
//	PRK     = HKDF-Extract(salt = H', IKM = shared secret ‖ R)
//	k_c2s   = HKDF-Expand(PRK, "lanpeer/v1 c2s", AEAD key size)
//	k_s2c   = HKDF-Expand(PRK, "lanpeer/v1 s2c", AEAD key size)
//	k_conf  = HKDF-Expand(PRK, "lanpeer/v1 rekey confirm", 32)
//	R'      = HKDF-Expand(PRK, "lanpeer/v1 rekey", 32)
//	MAC_x   = HMAC-SHA256(k_conf, canon(LabelRekeyConfirm; "requestor" or "responder", H', n))
//
// R chains every epoch to the handshake's secret, so whoever can inject a
// share (without TLS) still cannot derive the new keys, and the
// role-labelled MACs prove to each side that the other derived the same
// keys.

// Rekey policy defaults.
const (
	DefaultRekeyAfterMessages = 1 << 20
	DefaultRekeyAfterTime     = time.Hour
	DefaultRekeyMinInterval   = time.Second
)

// Rekey errors. Any of them ends the rekey state machine for good (later
// calls return ErrRekeyFailed): close the session.
var (
	// ErrRekeyUnexpected: a rekey message this side's role never receives,
	// or one that does not fit the exchange's state.
	ErrRekeyUnexpected = errors.New("session: unexpected rekey message")
	// ErrRekeyEpoch: a rekey message for an epoch other than the one being
	// negotiated.
	ErrRekeyEpoch = errors.New("session: rekey message for the wrong epoch")
	// ErrRekeyBadShare: the peer's share is not a valid share of the
	// session's mode (or, in the rsa mode, does not decrypt).
	ErrRekeyBadShare = errors.New("session: bad rekey key share")
	// ErrRekeyBadConfirm: the peer's confirmation MAC does not verify: it
	// did not derive the same keys, or the MAC is the other role's.
	ErrRekeyBadConfirm = errors.New("session: rekey confirmation failed")
	// ErrRekeyFailed: an earlier failure ended rekeying in this session.
	ErrRekeyFailed = errors.New("session: rekeying failed earlier in this session")
	// ErrEpochExhausted: the session has reached the last epoch (2^32-1).
	ErrEpochExhausted = errors.New("session: key epochs used up; open a new session")
)

// RekeyPolicy says when a side starts a rekey. The zero value means the
// defaults.
type RekeyPolicy struct {
	// AfterMessages: rekey once this side has sealed this many direct
	// messages under one epoch (default DefaultRekeyAfterMessages; at most
	// MaxMessagesPerEpoch).
	AfterMessages uint64
	// AfterTime: rekey once this side has sent under one epoch for this
	// long (default DefaultRekeyAfterTime).
	AfterTime time.Duration
	// MinInterval: a requestor honours the responder's RekeyRequest no
	// sooner than this after its last switch, so a peer cannot make it run
	// key agreements (RSA decryptions in the rsa mode) back to back
	// (default DefaultRekeyMinInterval).
	MinInterval time.Duration
}

// RekeyConfig configures one session's rekey state machine.
type RekeyConfig struct {
	// Identity is this side's identity key. Only the requestor of an
	// rsa-mode session uses it: the responder's fresh secret arrives
	// RSA-OAEP-encrypted to it, as in the handshake.
	Identity *cryptosuite.Identity
	Policy   RekeyPolicy
	// Now defaults to time.Now.
	Now func() time.Time
}

type rekeyState uint8

const (
	rkIdle      rekeyState = iota
	rkRequested            // responder: RekeyRequest sent
	rkInitSent             // requestor: RekeyInit sent
	rkReplySent            // responder: RekeyReply sent, waiting for RekeyConfirm
	rkFailed
)

func (s rekeyState) String() string {
	switch s {
	case rkIdle:
		return "idle"
	case rkRequested:
		return "requested"
	case rkInitSent:
		return "init-sent"
	case rkReplySent:
		return "reply-sent"
	case rkFailed:
		return "failed"
	}
	return fmt.Sprintf("rekeyState(%d)", uint8(s))
}

// Rekey is one session's rekey state machine. It does no I/O: the caller
// moves the messages it returns on the session's control stream and hands
// it every rekey message that arrives there. It switches the session's
// DirectSender and DirectReceiver to each new epoch at the moments the
// protocol fixes. Any error it returns is final: close the session. It is
// safe for concurrent use.
//
// Call Poll after each Seal and when NextDue's time comes; it starts an
// exchange when the policy asks for one.
type Rekey struct {
	role     Role
	suite    *cryptosuite.KEXSuite
	aead     *cryptosuite.AEADSuite
	peer     *cryptosuite.PublicKey
	identity *cryptosuite.Identity
	policy   RekeyPolicy
	now      func() time.Time
	sender   *DirectSender
	receiver *DirectReceiver

	mu         sync.Mutex
	state      rekeyState
	epoch      uint32    // this side's last completed epoch: the one it sends under
	hash       [32]byte  // its hash: the transcript hash for epoch 0
	secret     []byte    // its chaining secret R
	epochStart time.Time // when this side began sending under epoch
	peerAsked  bool      // requestor: a RekeyRequest for epoch+1 waits for MinInterval

	kex       *cryptosuite.RequestorKEX // requestor, rkInitSent
	initShare []byte                    // requestor, rkInitSent
	pending   *rekeyKeys                // responder, rkReplySent

	kexSeed []byte // tests only: the ephemeral key-agreement seed (cryptosuite's Seed)
}

// rekeyKeys is one epoch's key schedule. c2s and s2c are handed to the
// sender and receiver, which then own them.
type rekeyKeys struct {
	hash                     [32]byte
	c2s, s2c, confirm, chain []byte
}

func (k *rekeyKeys) wipe() {
	clear(k.c2s)
	clear(k.s2c)
	clear(k.confirm)
	clear(k.chain)
}

const rekeyConfirmKeySize = 32

// NewRekey returns the rekey state machine of the session keys come from,
// switching s and r (made from the same keys). It takes over
// keys.RekeySecret and zeroes it once the first rekey replaces it.
func NewRekey(keys *Keys, s *DirectSender, r *DirectReceiver, cfg RekeyConfig) (*Rekey, error) {
	sendDir, recvDir, _, _, err := directions(keys)
	if err != nil {
		return nil, err
	}
	if keys.KEX == nil || keys.Peer == nil || len(keys.RekeySecret) != rekeySecretSize {
		return nil, errors.New("session: rekey needs the keys of a completed handshake")
	}
	if s == nil || r == nil || s.sid != keys.SessionID || r.sid != keys.SessionID || s.dir != sendDir || r.dir != recvDir {
		return nil, errors.New("session: rekey needs the direct sender and receiver of the same session and side")
	}
	if keys.Role == RoleRequestor && keys.KEX.ID == cryptosuite.KEXRSAOAEPSHA256 &&
		(cfg.Identity == nil || cfg.Identity.Public().Alg() != cryptosuite.SigRSAPSSSHA256) {
		return nil, fmt.Errorf("%w: the rsa mode's rekey needs the requestor's RSA identity", ErrKEXRefused)
	}
	p := cfg.Policy
	if p.AfterMessages == 0 {
		p.AfterMessages = DefaultRekeyAfterMessages
	}
	if p.AfterMessages > MaxMessagesPerEpoch {
		return nil, fmt.Errorf("session: rekey after %d messages exceeds the limit of %d per epoch", p.AfterMessages, uint64(MaxMessagesPerEpoch))
	}
	if p.AfterTime <= 0 {
		p.AfterTime = DefaultRekeyAfterTime
	}
	if p.MinInterval <= 0 {
		p.MinInterval = DefaultRekeyMinInterval
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Rekey{
		role: keys.Role, suite: keys.KEX, aead: keys.AEAD, peer: keys.Peer, identity: cfg.Identity,
		policy: p, now: now, sender: s, receiver: r,
		hash: keys.TranscriptHash, secret: keys.RekeySecret, epochStart: now(),
	}, nil
}

// Epoch returns the epoch of this side's last completed exchange (0 before
// any), which is the epoch its DirectSender seals under.
func (k *Rekey) Epoch() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.epoch
}

// Due reports whether the policy asks this side to start an exchange now:
// none is running, and this side has sealed AfterMessages messages or sent
// for AfterTime under the current epoch, or (on the requestor) the
// responder asked and MinInterval has passed.
func (k *Rekey) Due() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dueLocked()
}

func (k *Rekey) dueLocked() bool {
	if k.state != rkIdle || k.epoch == math.MaxUint32 {
		return false
	}
	age := k.now().Sub(k.epochStart)
	return k.sender.sentInEpoch() >= k.policy.AfterMessages || age >= k.policy.AfterTime ||
		(k.peerAsked && age >= k.policy.MinInterval)
}

// NextDue returns when the time policy (or a deferred RekeyRequest) makes
// Due true, for the caller's timer; the message count is checked by Poll.
// It returns the zero time while an exchange runs or after a failure.
func (k *Rekey) NextDue() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != rkIdle {
		return time.Time{}
	}
	t := k.epochStart.Add(k.policy.AfterTime)
	if m := k.epochStart.Add(k.policy.MinInterval); k.peerAsked && m.Before(t) {
		t = m
	}
	return t
}

// Poll starts an exchange if Due, returning its first message (as Start);
// otherwise it returns nil.
func (k *Rekey) Poll() (wire.Message, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state == rkFailed {
		return nil, ErrRekeyFailed
	}
	if !k.dueLocked() {
		return nil, nil
	}
	return k.startLocked()
}

// Start begins an exchange now, whatever the policy: a *wire.RekeyInit on
// the requestor, a *wire.RekeyRequest on the responder. While an exchange
// runs it returns nil.
func (k *Rekey) Start() (wire.Message, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.startLocked()
}

func (k *Rekey) startLocked() (wire.Message, error) {
	switch k.state {
	case rkFailed:
		return nil, ErrRekeyFailed
	case rkIdle:
	default:
		return nil, nil
	}
	if k.epoch == math.MaxUint32 {
		return nil, ErrEpochExhausted
	}
	next := k.epoch + 1
	if k.role == RoleResponder {
		k.state = rkRequested
		return &wire.RekeyRequest{Epoch: next}, nil
	}
	kex, err := k.suite.NewRequestor(cryptosuite.RequestorKEXConfig{Identity: k.identity, Seed: k.kexSeed})
	if err != nil {
		return nil, k.fail(err)
	}
	k.kex, k.initShare = kex, kex.Share()
	k.state = rkInitSent
	return &wire.RekeyInit{Epoch: next, Share: k.initShare}, nil
}

// Consume handles a rekey message from the peer and returns the message to
// send back, or nil when there is none.
func (k *Rekey) Consume(m wire.Message) (wire.Message, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state == rkFailed {
		return nil, ErrRekeyFailed
	}
	switch m := m.(type) {
	case *wire.RekeyRequest:
		if k.role == RoleRequestor {
			return k.consumeRequest(m)
		}
	case *wire.RekeyInit:
		if k.role == RoleResponder {
			return k.consumeInit(m)
		}
	case *wire.RekeyReply:
		if k.role == RoleRequestor {
			return k.consumeReply(m)
		}
	case *wire.RekeyConfirm:
		if k.role == RoleResponder {
			return nil, k.consumeConfirm(m)
		}
	}
	return nil, k.fail(ErrRekeyUnexpected)
}

// consumeRequest: the responder asks for epoch m.Epoch.
func (k *Rekey) consumeRequest(m *wire.RekeyRequest) (wire.Message, error) {
	switch {
	case m.Epoch <= k.epoch:
		// It crossed an exchange that has reached that epoch since.
		return nil, nil
	case m.Epoch != k.epoch+1:
		return nil, k.fail(ErrRekeyEpoch)
	case k.state == rkInitSent:
		return nil, nil // ours is running: it answers the request
	}
	k.peerAsked = true
	if k.now().Sub(k.epochStart) < k.policy.MinInterval {
		return nil, nil // Poll starts it once MinInterval has passed
	}
	return k.startLocked()
}

// consumeInit: the requestor's share for epoch m.Epoch.
func (k *Rekey) consumeInit(m *wire.RekeyInit) (wire.Message, error) {
	if k.state != rkIdle && k.state != rkRequested {
		return nil, k.fail(ErrRekeyUnexpected)
	}
	if m.Epoch != k.epoch+1 {
		return nil, k.fail(ErrRekeyEpoch)
	}
	if len(m.Share) != k.suite.RequestorShareSize {
		return nil, k.fail(ErrRekeyBadShare)
	}
	share, shared, err := k.suite.Respond(m.Share, k.peer, cryptosuite.ResponderKEXConfig{Seed: k.kexSeed})
	if err != nil {
		return nil, k.fail(fmt.Errorf("%w: %v", ErrRekeyBadShare, err))
	}
	nk, err := k.derive(shared, m.Epoch, m.Share, share)
	clear(shared)
	if err != nil {
		return nil, k.fail(err)
	}
	mac := rekeyConfirmMAC(nk, RoleResponder, m.Epoch)
	// The requestor sends under the new epoch as soon as it has checked
	// the reply: hold its key before the reply leaves.
	if err := k.receiver.install(m.Epoch, nk.c2s); err != nil {
		nk.wipe()
		return nil, k.fail(err)
	}
	nk.c2s = nil // the receiver's now
	k.pending = nk
	k.state = rkReplySent
	return &wire.RekeyReply{Epoch: m.Epoch, Share: share, MAC: mac}, nil
}

// consumeReply: the responder's share and confirmation. Nothing is
// committed unless the MAC verifies.
func (k *Rekey) consumeReply(m *wire.RekeyReply) (wire.Message, error) {
	if k.state != rkInitSent {
		return nil, k.fail(ErrRekeyUnexpected)
	}
	if m.Epoch != k.epoch+1 {
		return nil, k.fail(ErrRekeyEpoch)
	}
	shared, err := k.kex.Finish(m.Share)
	k.kex = nil
	if err != nil {
		return nil, k.fail(fmt.Errorf("%w: %v", ErrRekeyBadShare, err))
	}
	nk, err := k.derive(shared, m.Epoch, k.initShare, m.Share)
	clear(shared)
	if err != nil {
		return nil, k.fail(err)
	}
	if !hmac.Equal(rekeyConfirmMAC(nk, RoleResponder, m.Epoch), m.MAC) {
		nk.wipe()
		return nil, k.fail(ErrRekeyBadConfirm)
	}
	mac := rekeyConfirmMAC(nk, RoleRequestor, m.Epoch)
	// The responder switches once it has our confirmation: hold its new
	// key first, then send under ours.
	if err := k.receiver.install(m.Epoch, nk.s2c); err != nil {
		nk.wipe()
		return nil, k.fail(err)
	}
	nk.s2c = nil
	if err := k.sender.switchEpoch(m.Epoch, nk.c2s); err != nil {
		nk.wipe()
		return nil, k.fail(err)
	}
	nk.c2s = nil
	k.commit(nk, m.Epoch)
	return &wire.RekeyConfirm{Epoch: m.Epoch, MAC: mac}, nil
}

// consumeConfirm: the requestor's confirmation; the responder switches.
func (k *Rekey) consumeConfirm(m *wire.RekeyConfirm) error {
	if k.state != rkReplySent {
		return k.fail(ErrRekeyUnexpected)
	}
	if m.Epoch != k.epoch+1 {
		return k.fail(ErrRekeyEpoch)
	}
	nk := k.pending
	if !hmac.Equal(rekeyConfirmMAC(nk, RoleRequestor, m.Epoch), m.MAC) {
		return k.fail(ErrRekeyBadConfirm)
	}
	if err := k.sender.switchEpoch(m.Epoch, nk.s2c); err != nil {
		return k.fail(err)
	}
	nk.s2c = nil
	k.commit(nk, m.Epoch)
	return nil
}

// commit makes nk's epoch the current one and zeroes what the previous
// epoch left here.
func (k *Rekey) commit(nk *rekeyKeys, epoch uint32) {
	clear(k.secret)
	k.secret, nk.chain = nk.chain, nil
	k.hash = nk.hash
	k.epoch = epoch
	nk.wipe()
	k.pending, k.initShare = nil, nil
	k.peerAsked = false
	k.epochStart = k.now()
	k.state = rkIdle
}

func (k *Rekey) fail(err error) error {
	k.state = rkFailed
	k.kex = nil
	if k.pending != nil {
		k.pending.wipe()
		k.pending = nil
	}
	clear(k.secret)
	return err
}

// derive runs the key schedule of epoch from the current epoch's hash and
// secret.
func (k *Rekey) derive(shared []byte, epoch uint32, initShare, replyShare []byte) (*rekeyKeys, error) {
	nk := &rekeyKeys{hash: sha256.Sum256(canon.Rekey(k.hash, epoch, initShare, replyShare))}
	ikm := make([]byte, 0, len(shared)+len(k.secret))
	ikm = append(append(ikm, shared...), k.secret...)
	prk, err := cryptosuite.HKDFExtract(ikm, nk.hash[:])
	clear(ikm)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	for _, o := range []struct {
		dst   *[]byte
		label string
		n     int
	}{
		{&nk.c2s, canon.LabelC2S, k.aead.KeySize},
		{&nk.s2c, canon.LabelS2C, k.aead.KeySize},
		{&nk.confirm, canon.LabelRekeyConfirm, rekeyConfirmKeySize},
		{&nk.chain, canon.LabelRekey, rekeySecretSize},
	} {
		if *o.dst, err = cryptosuite.HKDFExpand(prk, []byte(o.label), o.n); err != nil {
			nk.wipe()
			return nil, err
		}
	}
	return nk, nil
}

// rekeyConfirmMAC is the confirmation MAC of role for epoch.
func rekeyConfirmMAC(nk *rekeyKeys, role Role, epoch uint32) []byte {
	name := "requestor"
	if role == RoleResponder {
		name = "responder"
	}
	m := hmac.New(sha256.New, nk.confirm)
	m.Write(canon.RekeyConfirm(name, nk.hash, epoch))
	return m.Sum(nil)
}
