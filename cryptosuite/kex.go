package cryptosuite

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
)

// KEXID is the stable numeric id of a key-agreement mode (2 bytes on the wire
// and in canonical layouts).
type KEXID uint16

// Key-agreement mode ids (DESIGN.md §4).
const (
	KEXX25519         KEXID = 0x0001 // ephemeral X25519 (RFC 7748)
	KEXP256           KEXID = 0x0002 // ephemeral ECDH over P-256, uncompressed points
	KEXX25519MLKEM768 KEXID = 0x0003 // ML-KEM-768 and X25519, as TLS's X25519MLKEM768
	KEXRSAOAEPSHA256  KEXID = 0x0004 // RSA-OAEP(SHA-256) key transport, no forward secrecy
)

// Share and secret sizes. The hybrid layouts follow TLS's X25519MLKEM768
// (draft-ietf-tls-ecdhe-mlkem): the ML-KEM part first, then X25519.
const (
	x25519ShareSize = 32
	p256ShareSize   = 1 + 2*32 // SEC 1 uncompressed point: 0x04 ‖ X ‖ Y
	p256SeedSize    = 32
	x25519SeedSize  = 32

	hybridRequestorShareSize = mlkem.EncapsulationKeySize768 + x25519ShareSize // 1184 + 32
	hybridResponderShareSize = mlkem.CiphertextSize768 + x25519ShareSize       // 1088 + 32
	hybridSecretSize         = mlkem.SharedKeySize + x25519ShareSize           // 32 + 32
	hybridRequestorSeedSize  = mlkem.SeedSize + x25519SeedSize                 // 64 + 32

	// rsaKEXSecretSize is the session secret the responder picks in rsa mode.
	rsaKEXSecretSize = 32
	// rsaMaxShareSize is the largest rsa-mode responder share: an OAEP
	// ciphertext is as long as the modulus, at most RSA-4096's 512 bytes.
	rsaMaxShareSize = 4096 / 8
)

// KEXSuite describes one key-agreement mode. Suites are values from the
// table that KEXs, KEXByID and KEXByCLIName return; the zero value is not
// usable.
type KEXSuite struct {
	ID      KEXID
	Name    string // "x25519", "p256", "x25519-mlkem768", "rsa-oaep-sha256"
	CLIName string // the --kex value: "x25519", "p256", "x25519-mlkem768", "rsa"
	// ForwardSecret is false only for rsa, whose session secret a later
	// compromise of the requestor's identity key reveals.
	ForwardSecret bool
	// RequestorShareSize and ResponderShareSize are the exact sizes of the
	// two shares, so decoders can check a length before parsing anything.
	// For rsa the requestor share is empty and ResponderShareSize is the
	// maximum (RSA-4096); the exact size is the requestor's modulus size.
	RequestorShareSize int
	ResponderShareSize int
	// SharedSize is the length of the shared secret both sides get.
	SharedSize int

	impl kexImpl
}

// kexImpl is the mechanism behind one suite.
type kexImpl interface {
	newRequestor(cfg RequestorKEXConfig) (share []byte, st kexState, err error)
	respond(requestorShare []byte, requestor *PublicKey, cfg ResponderKEXConfig) (responderShare, shared []byte, err error)
}

// kexState is a requestor's private half between Share and Finish.
type kexState interface {
	finish(responderShare []byte) ([]byte, error)
	// wipe drops the private key. crypto/ecdh and crypto/mlkem keep their
	// key bytes inside opaque values that cannot be overwritten from
	// outside, so this releases them to the garbage collector.
	wipe()
}

// kexSuites is in preference order: x25519 first, the default.
var kexSuites = []*KEXSuite{
	{
		ID: KEXX25519, Name: "x25519", CLIName: "x25519", ForwardSecret: true,
		RequestorShareSize: x25519ShareSize, ResponderShareSize: x25519ShareSize, SharedSize: 32,
		impl: ecdhKEX{curve: ecdh.X25519(), shareSize: x25519ShareSize, seedSize: x25519SeedSize},
	},
	{
		ID: KEXP256, Name: "p256", CLIName: "p256", ForwardSecret: true,
		RequestorShareSize: p256ShareSize, ResponderShareSize: p256ShareSize, SharedSize: 32,
		impl: ecdhKEX{curve: ecdh.P256(), shareSize: p256ShareSize, seedSize: p256SeedSize},
	},
	{
		ID: KEXX25519MLKEM768, Name: "x25519-mlkem768", CLIName: "x25519-mlkem768", ForwardSecret: true,
		RequestorShareSize: hybridRequestorShareSize, ResponderShareSize: hybridResponderShareSize, SharedSize: hybridSecretSize,
		impl: hybridKEX{},
	},
	{
		ID: KEXRSAOAEPSHA256, Name: "rsa-oaep-sha256", CLIName: "rsa", ForwardSecret: false,
		RequestorShareSize: 0, ResponderShareSize: rsaMaxShareSize, SharedSize: rsaKEXSecretSize,
		impl: rsaKEX{},
	},
}

// KEXs returns every key-agreement suite in preference order, the default
// (x25519) first.
func KEXs() []*KEXSuite { return append([]*KEXSuite(nil), kexSuites...) }

// KEXByID looks a suite up by id; unknown ids are reported, never a panic.
func KEXByID(id KEXID) (*KEXSuite, bool) {
	for _, s := range kexSuites {
		if s.ID == id {
			return s, true
		}
	}
	return nil, false
}

// KEXByCLIName looks a suite up by its --kex flag value (case-sensitive).
func KEXByCLIName(name string) (*KEXSuite, bool) {
	for _, s := range kexSuites {
		if s.CLIName == name {
			return s, true
		}
	}
	return nil, false
}

// String returns the suite's name.
func (id KEXID) String() string {
	if s, ok := KEXByID(id); ok {
		return s.Name
	}
	return fmt.Sprintf("KEXID(%#04x)", uint16(id))
}

// String returns the suite's name.
func (s *KEXSuite) String() string {
	if s == nil {
		return "KEXSuite(nil)"
	}
	return s.ID.String()
}

// Errors of key agreement.
var (
	// ErrBadKeyShare is wrapped by every refusal of a peer's share: wrong
	// length, a point that is invalid, compressed or not on the curve, an
	// X25519 exchange giving the all-zero secret, a malformed ML-KEM key,
	// or an rsa-mode ciphertext that does not decrypt. Test it with
	// errors.Is.
	ErrBadKeyShare = errors.New("cryptosuite: bad key share")
	// ErrKEXNeedsRSA refuses the rsa key agreement for a requestor whose
	// identity key is not RSA (Ed25519 keys cannot decrypt).
	ErrKEXNeedsRSA = errors.New("cryptosuite: the rsa key agreement needs an RSA requestor identity")
	// ErrKEXFinished is returned by a second Finish: a requestor's private
	// key serves one exchange only.
	ErrKEXFinished = errors.New("cryptosuite: key agreement already finished")
)

// errRSAShare is the one error of every rsa-mode responder share that does
// not decrypt to a session secret, whatever went wrong inside OAEP, so no
// failure can be told from another (DESIGN.md §4). It matches both
// ErrBadKeyShare and ErrDecrypt.
var errRSAShare = fmt.Errorf("%w: %w", ErrBadKeyShare, ErrDecrypt)

func badShare(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadKeyShare}, args...)...)
}

// RequestorKEXConfig configures the requestor's side of a key agreement.
type RequestorKEXConfig struct {
	// Seed is the ephemeral private key, for reproducible tests and golden
	// transcripts only (Go's key generators ignore injected readers). nil
	// means fresh random keys, which is what every real session uses.
	// x25519 and p256: the 32-byte private key (p256: big-endian scalar,
	// 0 < k < n). x25519-mlkem768: the 64-byte ML-KEM-768 seed (d ‖ z)
	// followed by the 32-byte X25519 private key. rsa: must be nil.
	Seed []byte
	// Identity is the requestor's own identity key. Only the rsa mode uses
	// it, and only an RSA key will do; other modes ignore it.
	Identity *Identity
}

// ResponderKEXConfig configures the responder's side of a key agreement.
type ResponderKEXConfig struct {
	// Seed is the responder's ephemeral private key, for tests only; nil
	// means random. x25519 and p256: the 32-byte private key.
	// x25519-mlkem768: the 32-byte X25519 private key (ML-KEM encapsulation
	// takes no seed). rsa: the 32-byte session secret itself (OAEP's own
	// padding stays random).
	Seed []byte
}

// RequestorKEX is the requestor's half of one key agreement: it sends Share
// and, on the responder's answer, Finish gives the shared secret once. It is
// safe for concurrent use; the first Finish consumes it. Make one with
// KEXSuite.NewRequestor; the zero value is not usable.
type RequestorKEX struct {
	suite *KEXSuite
	share []byte

	mu sync.Mutex
	st kexState // nil once finished
}

// NewRequestor makes the requestor's ephemeral key (from cfg.Seed when given)
// for one key agreement.
func (s *KEXSuite) NewRequestor(cfg RequestorKEXConfig) (*RequestorKEX, error) {
	if s == nil || s.impl == nil {
		return nil, errors.New("cryptosuite: unknown key agreement suite")
	}
	share, st, err := s.impl.newRequestor(cfg)
	if err != nil {
		return nil, err
	}
	return &RequestorKEX{suite: s, share: share, st: st}, nil
}

// Suite returns the suite this exchange runs.
func (r *RequestorKEX) Suite() *KEXSuite { return r.suite }

// Share returns a copy of the requestor's share: the X25519 public key (32
// bytes), the uncompressed P-256 point (65 bytes), the ML-KEM-768
// encapsulation key followed by the X25519 public key (1184 + 32 bytes), or
// nothing for rsa.
func (r *RequestorKEX) Share() []byte { return append([]byte{}, r.share...) }

// Finish takes the responder's share and returns the shared secret. It runs
// once: the private key is dropped whatever the outcome, and a second call
// returns ErrKEXFinished. Every refusal of the share wraps ErrBadKeyShare.
func (r *RequestorKEX) Finish(responderShare []byte) (shared []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	if st == nil {
		return nil, ErrKEXFinished
	}
	r.st = nil
	defer st.wipe()
	return st.finish(responderShare)
}

// Respond runs the responder's side: it checks the requestor's share, makes
// its own ephemeral key (or, for rsa, the session secret) and returns its
// share for the requestor and the shared secret. requestor is the
// requestor's verified identity key; only rsa uses it, and refuses with
// ErrKEXNeedsRSA unless it is an RSA key. Every refusal of the share wraps
// ErrBadKeyShare.
func (s *KEXSuite) Respond(requestorShare []byte, requestor *PublicKey, cfg ResponderKEXConfig) (responderShare, shared []byte, err error) {
	if s == nil || s.impl == nil {
		return nil, nil, errors.New("cryptosuite: unknown key agreement suite")
	}
	return s.impl.respond(requestorShare, requestor, cfg)
}

// ecdhKEX is ephemeral-ephemeral Diffie-Hellman over one crypto/ecdh curve.
type ecdhKEX struct {
	curve     ecdh.Curve
	shareSize int
	seedSize  int
}

func (k ecdhKEX) privateKey(seed []byte) (*ecdh.PrivateKey, error) {
	if seed == nil {
		return k.curve.GenerateKey(rand.Reader)
	}
	if len(seed) != k.seedSize {
		return nil, fmt.Errorf("cryptosuite: %v seed of %d bytes (want %d)", k.curve, len(seed), k.seedSize)
	}
	priv, err := k.curve.NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("cryptosuite: %v seed: %v", k.curve, err)
	}
	return priv, nil
}

// publicKey checks a peer's share: exact length first (which also refuses
// compressed P-256 points), then crypto/ecdh's own decoding, which refuses
// points off the curve, the point at infinity and non-0x04 encodings.
func (k ecdhKEX) publicKey(share []byte) (*ecdh.PublicKey, error) {
	if len(share) != k.shareSize {
		return nil, badShare("%v share of %d bytes (want %d)", k.curve, len(share), k.shareSize)
	}
	pub, err := k.curve.NewPublicKey(share)
	if err != nil {
		return nil, badShare("%v: %v", k.curve, err)
	}
	return pub, nil
}

func (k ecdhKEX) newRequestor(cfg RequestorKEXConfig) ([]byte, kexState, error) {
	priv, err := k.privateKey(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	return priv.PublicKey().Bytes(), &ecdhState{kex: k, priv: priv}, nil
}

func (k ecdhKEX) respond(requestorShare []byte, _ *PublicKey, cfg ResponderKEXConfig) ([]byte, []byte, error) {
	pub, err := k.publicKey(requestorShare)
	if err != nil {
		return nil, nil, err
	}
	priv, err := k.privateKey(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	shared, err := ecdhShared(priv, pub)
	if err != nil {
		return nil, nil, err
	}
	return priv.PublicKey().Bytes(), shared, nil
}

// allZero32 is the X25519 output that a low-order peer point forces.
var allZero32 [32]byte

// ecdhShared runs the exchange. crypto/ecdh already refuses the all-zero
// X25519 output (RFC 7748 §6.1); the explicit check keeps that guarantee
// here, whatever the library does.
func ecdhShared(priv *ecdh.PrivateKey, pub *ecdh.PublicKey) ([]byte, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, badShare("%v", err)
	}
	if priv.Curve() == ecdh.X25519() && subtle.ConstantTimeCompare(shared, allZero32[:]) == 1 {
		return nil, badShare("x25519 exchange gave the all-zero secret")
	}
	return shared, nil
}

type ecdhState struct {
	kex  ecdhKEX
	priv *ecdh.PrivateKey
}

func (s *ecdhState) finish(responderShare []byte) ([]byte, error) {
	pub, err := s.kex.publicKey(responderShare)
	if err != nil {
		return nil, err
	}
	return ecdhShared(s.priv, pub)
}

func (s *ecdhState) wipe() { s.priv = nil }

// mlkemEncapsulate is ML-KEM-768 encapsulation. crypto/mlkem's Encapsulate
// takes no randomness, so known-answer tests replace this variable with
// crypto/mlkem/mlkemtest.Encapsulate768 (those tests do not run in parallel).
var mlkemEncapsulate = func(ek *mlkem.EncapsulationKey768) (sharedKey, ciphertext []byte, err error) {
	sharedKey, ciphertext = ek.Encapsulate()
	return sharedKey, ciphertext, nil
}

// hybridKEX is X25519MLKEM768 exactly as TLS 1.3 uses it: requestor share =
// ek ‖ X25519 public, responder share = ciphertext ‖ X25519 public, shared
// secret = ML-KEM secret ‖ X25519 secret, with no combiner of our own (the
// session's transcript-salted HKDF consumes the 64 bytes).
type hybridKEX struct{}

var x25519KEX = ecdhKEX{curve: ecdh.X25519(), shareSize: x25519ShareSize, seedSize: x25519SeedSize}

func (hybridKEX) newRequestor(cfg RequestorKEXConfig) ([]byte, kexState, error) {
	var (
		dk    *mlkem.DecapsulationKey768
		xSeed []byte // nil: a random X25519 key
		err   error
	)
	if cfg.Seed == nil {
		dk, err = mlkem.GenerateKey768()
	} else {
		if len(cfg.Seed) != hybridRequestorSeedSize {
			return nil, nil, fmt.Errorf("cryptosuite: x25519-mlkem768 seed of %d bytes (want %d)", len(cfg.Seed), hybridRequestorSeedSize)
		}
		dk, err = mlkem.NewDecapsulationKey768(cfg.Seed[:mlkem.SeedSize])
		xSeed = cfg.Seed[mlkem.SeedSize:]
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cryptosuite: ML-KEM-768 key: %v", err)
	}
	x, err := x25519KEX.privateKey(xSeed)
	if err != nil {
		return nil, nil, err
	}
	share := make([]byte, 0, hybridRequestorShareSize)
	share = append(share, dk.EncapsulationKey().Bytes()...)
	share = append(share, x.PublicKey().Bytes()...)
	return share, &hybridState{dk: dk, x: x}, nil
}

func (hybridKEX) respond(requestorShare []byte, _ *PublicKey, cfg ResponderKEXConfig) ([]byte, []byte, error) {
	if len(requestorShare) != hybridRequestorShareSize {
		return nil, nil, badShare("x25519-mlkem768 share of %d bytes (want %d)", len(requestorShare), hybridRequestorShareSize)
	}
	// NewEncapsulationKey768 refuses an encoding whose coefficients are
	// not reduced mod q (FIPS 203 §7.2 modulus check).
	ek, err := mlkem.NewEncapsulationKey768(requestorShare[:mlkem.EncapsulationKeySize768])
	if err != nil {
		return nil, nil, badShare("ML-KEM-768 encapsulation key: %v", err)
	}
	xPub, err := x25519KEX.publicKey(requestorShare[mlkem.EncapsulationKeySize768:])
	if err != nil {
		return nil, nil, err
	}
	x, err := x25519KEX.privateKey(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	xShared, err := ecdhShared(x, xPub)
	if err != nil {
		return nil, nil, err
	}
	mShared, ct, err := mlkemEncapsulate(ek)
	if err != nil {
		return nil, nil, fmt.Errorf("cryptosuite: ML-KEM-768 encapsulation: %v", err)
	}
	resp := make([]byte, 0, hybridResponderShareSize)
	resp = append(resp, ct...)
	resp = append(resp, x.PublicKey().Bytes()...)
	return resp, hybridSecret(mShared, xShared), nil
}

// hybridSecret is ML-KEM secret ‖ X25519 secret; it clears its inputs.
func hybridSecret(mShared, xShared []byte) []byte {
	out := make([]byte, 0, hybridSecretSize)
	out = append(out, mShared...)
	out = append(out, xShared...)
	clear(mShared)
	clear(xShared)
	return out
}

type hybridState struct {
	dk *mlkem.DecapsulationKey768
	x  *ecdh.PrivateKey
}

func (s *hybridState) finish(responderShare []byte) ([]byte, error) {
	if len(responderShare) != hybridResponderShareSize {
		return nil, badShare("x25519-mlkem768 share of %d bytes (want %d)", len(responderShare), hybridResponderShareSize)
	}
	xPub, err := x25519KEX.publicKey(responderShare[mlkem.CiphertextSize768:])
	if err != nil {
		return nil, err
	}
	xShared, err := ecdhShared(s.x, xPub)
	if err != nil {
		return nil, err
	}
	// Decapsulate fails only on a wrong length (checked above); a
	// tampered ciphertext gives an unrelated secret (implicit rejection),
	// which key confirmation then catches.
	mShared, err := s.dk.Decapsulate(responderShare[:mlkem.CiphertextSize768])
	if err != nil {
		clear(xShared)
		return nil, badShare("ML-KEM-768 ciphertext: %v", err)
	}
	return hybridSecret(mShared, xShared), nil
}

func (s *hybridState) wipe() { s.dk, s.x = nil, nil }

// rsaKEX is the key-transport mode of the original design: the responder
// picks the session secret and encrypts it to the requestor's RSA identity
// key with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label). It has no forward
// secrecy.
type rsaKEX struct{}

func (rsaKEX) newRequestor(cfg RequestorKEXConfig) ([]byte, kexState, error) {
	if cfg.Identity == nil {
		return nil, nil, fmt.Errorf("%w: no identity given", ErrKEXNeedsRSA)
	}
	if _, ok := cfg.Identity.priv.(*rsa.PrivateKey); !ok {
		return nil, nil, fmt.Errorf("%w: identity key is %s", ErrKEXNeedsRSA, cfg.Identity.KeyType())
	}
	if cfg.Seed != nil {
		return nil, nil, errors.New("cryptosuite: rsa key agreement takes no requestor seed")
	}
	return []byte{}, &rsaState{id: cfg.Identity}, nil
}

func (rsaKEX) respond(requestorShare []byte, requestor *PublicKey, cfg ResponderKEXConfig) ([]byte, []byte, error) {
	if requestor == nil {
		return nil, nil, fmt.Errorf("%w: no requestor key", ErrKEXNeedsRSA)
	}
	pub, ok := requestor.key.(*rsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("%w: requestor key signs with %s", ErrKEXNeedsRSA, requestor.alg)
	}
	if len(requestorShare) != 0 {
		return nil, nil, badShare("rsa requestor share of %d bytes (want none)", len(requestorShare))
	}
	secret := make([]byte, rsaKEXSecretSize)
	switch {
	case cfg.Seed == nil:
		rand.Read(secret)
	case len(cfg.Seed) == rsaKEXSecretSize:
		copy(secret, cfg.Seed)
	default:
		return nil, nil, fmt.Errorf("cryptosuite: rsa seed of %d bytes (want %d)", len(cfg.Seed), rsaKEXSecretSize)
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, secret, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("cryptosuite: rsa-oaep encryption: %v", err)
	}
	return ct, secret, nil
}

type rsaState struct {
	id *Identity
}

func (s *rsaState) finish(responderShare []byte) ([]byte, error) {
	// The length is public (the modulus size), so refusing it with detail
	// reveals nothing; everything after is one error value.
	if want := s.id.priv.(*rsa.PrivateKey).Size(); len(responderShare) != want {
		return nil, badShare("rsa share of %d bytes (want %d)", len(responderShare), want)
	}
	secret, err := s.id.DecryptOAEP(responderShare, nil)
	if err != nil || len(secret) != rsaKEXSecretSize {
		clear(secret)
		return nil, errRSAShare
	}
	return secret, nil
}

func (s *rsaState) wipe() { s.id = nil }
