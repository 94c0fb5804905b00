package cryptosuite

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lanpeer/lanpeer/canon"
)

// PeerID is the SHA-256 of a peer's identity public key in
// SubjectPublicKeyInfo DER form (DESIGN.md §2). Its text form is 64
// lowercase hex characters; curl's --pinnedpubkey sha256//B64 is the same 32
// bytes in base64.
type PeerID [32]byte

// String returns the 64 lowercase hex characters.
func (p PeerID) String() string { return hex.EncodeToString(p[:]) }

// Short returns the first 12 hex characters, for logs and prompts.
func (p PeerID) Short() string { return p.String()[:12] }

// IsZero reports whether p is the zero value (no peer).
func (p PeerID) IsZero() bool { return p == PeerID{} }

// MarshalText implements encoding.TextMarshaler.
func (p PeerID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePeerID's rules.
func (p *PeerID) UnmarshalText(b []byte) error {
	id, err := ParsePeerID(string(b))
	if err != nil {
		return err
	}
	*p = id
	return nil
}

// LogValue implements slog.LogValuer.
func (p PeerID) LogValue() slog.Value { return slog.StringValue(p.String()) }

// ErrBadPeerID is returned when text is not a peer ID.
var ErrBadPeerID = errors.New("cryptosuite: peer ID must be 64 hexadecimal characters (the output of 'lanpeer id')")

// ParsePeerID reads 64 hex characters. Upper case is accepted, since people
// paste; the canonical form printed everywhere is lower case.
func ParsePeerID(s string) (PeerID, error) {
	var p PeerID
	if len(s) != 64 {
		return p, ErrBadPeerID
	}
	if _, err := hex.Decode(p[:], []byte(strings.ToLower(s))); err != nil {
		return PeerID{}, ErrBadPeerID
	}
	return p, nil
}

// PeerIDFromSPKI hashes a SubjectPublicKeyInfo DER encoding. It does not
// check the key; use ParsePublicKey for keys a peer sent.
func PeerIDFromSPKI(spki []byte) PeerID { return sha256.Sum256(spki) }

// KeyType names an identity key type as the CLI spells it.
type KeyType string

// Identity key types. RSA-3072 is the default, as the original design asks
// for RSA; Ed25519 is faster and smaller.
const (
	KeyRSA2048 KeyType = "rsa-2048"
	KeyRSA3072 KeyType = "rsa-3072"
	KeyRSA4096 KeyType = "rsa-4096"
	KeyEd25519 KeyType = "ed25519"

	DefaultKeyType = KeyRSA3072
)

// KeyTypes lists the accepted identity key types, default first.
func KeyTypes() []KeyType { return []KeyType{KeyRSA3072, KeyRSA2048, KeyRSA4096, KeyEd25519} }

// ParseKeyType checks a CLI key type name.
func ParseKeyType(s string) (KeyType, error) {
	for _, k := range KeyTypes() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("cryptosuite: unknown key type %q (want rsa-3072, rsa-2048, rsa-4096 or ed25519)", s)
}

func (k KeyType) rsaBits() int {
	switch k {
	case KeyRSA2048:
		return 2048
	case KeyRSA3072:
		return 3072
	case KeyRSA4096:
		return 4096
	}
	return 0
}

// SigAlg is a signature algorithm id. It always follows from the key type and
// is never chosen by a peer (DESIGN.md §4).
type SigAlg uint16

// Signature algorithms.
const (
	SigRSAPSSSHA256 SigAlg = 0x0001 // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt = 32 bytes
	SigEd25519      SigAlg = 0x0002 // pure Ed25519 (RFC 8032)
)

// String returns the algorithm's name.
func (a SigAlg) String() string {
	switch a {
	case SigRSAPSSSHA256:
		return "rsa-pss-sha256"
	case SigEd25519:
		return "ed25519"
	}
	return fmt.Sprintf("SigAlg(%#04x)", uint16(a))
}

// Errors of identity keys and signatures.
var (
	// ErrBadSignature is the one error of every failed verification.
	ErrBadSignature = errors.New("cryptosuite: signature verification failed")
	// ErrUnsupportedKey wraps every refusal of a public or private key.
	ErrUnsupportedKey = errors.New("cryptosuite: unsupported identity key")
)

// MaxSPKI bounds a SubjectPublicKeyInfo a peer may send: an RSA-4096 SPKI is
// 550 bytes.
const MaxSPKI = 1024

// PublicKey is a checked identity public key. The zero value is not usable.
type PublicKey struct {
	key  crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey
	spki []byte
	id   PeerID
	alg  SigAlg
}

// ParsePublicKey parses a SubjectPublicKeyInfo DER encoding and accepts it
// only if it is an Ed25519 key or an RSA key of 2048, 3072 or 4096 bits with
// e = 65537, and only if re-encoding gives back the same bytes, so that one
// key never has two peer IDs.
func ParsePublicKey(spki []byte) (*PublicKey, error) {
	if len(spki) > MaxSPKI {
		return nil, fmt.Errorf("%w: public key of %d bytes (max %d)", ErrUnsupportedKey, len(spki), MaxSPKI)
	}
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	pk, err := newPublicKey(k)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pk.spki, spki) {
		return nil, fmt.Errorf("%w: non-canonical SubjectPublicKeyInfo encoding", ErrUnsupportedKey)
	}
	return pk, nil
}

func newPublicKey(k crypto.PublicKey) (*PublicKey, error) {
	pk := &PublicKey{}
	switch k := k.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048, 3072, 4096:
		default:
			return nil, fmt.Errorf("%w: RSA key of %d bits (want 2048, 3072 or 4096)", ErrUnsupportedKey, k.N.BitLen())
		}
		if k.E != 65537 {
			return nil, fmt.Errorf("%w: RSA public exponent %d (want 65537)", ErrUnsupportedKey, k.E)
		}
		pk.key, pk.alg = k, SigRSAPSSSHA256
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		pk.key, pk.alg = ed25519.PublicKey(bytes.Clone(k)), SigEd25519
	default:
		return nil, fmt.Errorf("%w: %T (want RSA or Ed25519)", ErrUnsupportedKey, k)
	}
	spki, err := x509.MarshalPKIXPublicKey(pk.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	pk.spki = spki
	pk.id = sha256.Sum256(spki)
	return pk, nil
}

// PeerID returns the key's peer ID.
func (pk *PublicKey) PeerID() PeerID { return pk.id }

// SPKI returns a copy of the SubjectPublicKeyInfo DER encoding.
func (pk *PublicKey) SPKI() []byte { return bytes.Clone(pk.spki) }

// Alg returns the signature algorithm the key type implies.
func (pk *PublicKey) Alg() SigAlg { return pk.alg }

// CryptoPublicKey returns the underlying *rsa.PublicKey or ed25519.PublicKey
// (for TLS certificates and RSA-OAEP key transport).
func (pk *PublicKey) CryptoPublicKey() crypto.PublicKey { return pk.key }

// Equal reports whether two keys are the same, in constant time.
// A nil key equals only another nil key.
func (pk *PublicKey) Equal(o *PublicKey) bool {
	if pk == nil || o == nil {
		return pk == o
	}
	return subtle.ConstantTimeCompare(pk.spki, o.spki) == 1
}

// Verify checks sig over canon.SignatureInput(label, layout). Every failure,
// including a layout that does not start with label, is ErrBadSignature.
func (pk *PublicKey) Verify(label string, layout, sig []byte) error {
	if pk == nil {
		return ErrBadSignature
	}
	in, err := canon.SignatureInput(label, layout)
	if err != nil {
		return ErrBadSignature
	}
	return verifyMessage(pk.key, in, sig)
}

// pssOptions fixes RSASSA-PSS to SHA-256 with MGF1-SHA-256 and a salt as long
// as the hash (32 bytes), for signing and verifying alike.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

// verifyMessage checks sig over msg with the algorithm key implies:
// RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) for RSA, pure Ed25519 for
// Ed25519. It applies no key policy (ParsePublicKey does). PublicKey.Verify
// and the Wycheproof vector tests both go through it, so the vectors check
// the code path peers' signatures take. Every failure is ErrBadSignature.
func verifyMessage(key crypto.PublicKey, msg, sig []byte) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		if rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, pssOptions) != nil {
			return ErrBadSignature
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, msg, sig) {
			return ErrBadSignature
		}
	default:
		return ErrBadSignature
	}
	return nil
}

// Identity is a peer's long-term identity key pair.
type Identity struct {
	priv crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
	pub  *PublicKey
}

// GenerateIdentity makes a new identity key of type kt.
func GenerateIdentity(kt KeyType) (*Identity, error) {
	var priv crypto.Signer
	switch {
	case kt == KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		priv = k
	case kt.rsaBits() != 0:
		k, err := rsa.GenerateKey(rand.Reader, kt.rsaBits())
		if err != nil {
			return nil, err
		}
		priv = k
	default:
		return nil, fmt.Errorf("%w: key type %q", ErrUnsupportedKey, kt)
	}
	return newIdentity(priv)
}

func newIdentity(priv crypto.Signer) (*Identity, error) {
	pub, err := newPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	if k, ok := priv.(*rsa.PrivateKey); ok {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
	}
	return &Identity{priv: priv, pub: pub}, nil
}

// MaxIdentityPEM bounds an identity file: an RSA-4096 PKCS#8 PEM is about
// 3.3 KB.
const MaxIdentityPEM = 16 << 10

// pemPrivateKey is the PKCS#8 PEM block type, which `openssl pkey` reads.
const pemPrivateKey = "PRIVATE KEY"

// ParseIdentityPEM reads a PKCS#8 PEM private key ("PRIVATE KEY" block) of an
// accepted type. Anything before or after the one block is refused, so a
// file holding two keys is never half-read.
func ParseIdentityPEM(b []byte) (*Identity, error) {
	if len(b) > MaxIdentityPEM {
		return nil, fmt.Errorf("%w: identity file of %d bytes (max %d)", ErrUnsupportedKey, len(b), MaxIdentityPEM)
	}
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrUnsupportedKey)
	}
	if blk.Type != pemPrivateKey {
		return nil, fmt.Errorf("%w: PEM block %q (want %q, PKCS#8)", ErrUnsupportedKey, blk.Type, pemPrivateKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", ErrUnsupportedKey)
	}
	// x509.ParsePKCS8PrivateKey ignores bytes after the DER structure;
	// refuse them, as data after the PEM block is refused.
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(blk.Bytes, &outer); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: malformed or trailing data in the PKCS#8 DER", ErrUnsupportedKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k)
	}
	switch s.(type) {
	case *rsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: %T (want RSA or Ed25519)", ErrUnsupportedKey, k)
	}
	return newIdentity(s)
}

// MarshalPEM returns the private key as PKCS#8 PEM.
func (id *Identity) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// Public returns the identity's public key.
func (id *Identity) Public() *PublicKey { return id.pub }

// PeerID returns the identity's peer ID.
func (id *Identity) PeerID() PeerID { return id.pub.id }

// KeyType reports the identity's key type.
func (id *Identity) KeyType() KeyType {
	if k, ok := id.priv.(*rsa.PrivateKey); ok {
		return KeyType(fmt.Sprintf("rsa-%d", k.N.BitLen()))
	}
	return KeyEd25519
}

// Signer returns the private key as a crypto.Signer (for the TLS
// certificate).
func (id *Identity) Signer() crypto.Signer { return id.priv }

// Sign signs canon.SignatureInput(label, layout): RSA-PSS with SHA-256 and a
// 32-byte salt for RSA keys, pure Ed25519 for Ed25519 keys.
func (id *Identity) Sign(label string, layout []byte) ([]byte, error) {
	in, err := canon.SignatureInput(label, layout)
	if err != nil {
		return nil, err
	}
	return signMessage(id.priv, in)
}

// signMessage signs msg with the algorithm the key implies; verifyMessage is
// its inverse.
func signMessage(priv crypto.Signer, msg []byte) ([]byte, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		h := sha256.Sum256(msg)
		return rsa.SignPSS(rand.Reader, k, crypto.SHA256, h[:], pssOptions)
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	}
	return nil, ErrUnsupportedKey
}

// DecryptOAEP decrypts an RSA-OAEP(SHA-256) ciphertext addressed to this
// identity (the rsa key-transport mode). Every failure is ErrDecrypt.
func (id *Identity) DecryptOAEP(ciphertext, label []byte) ([]byte, error) {
	k, ok := id.priv.(*rsa.PrivateKey)
	if !ok {
		return nil, ErrDecrypt
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, k, ciphertext, label)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// ErrDecrypt is the one error of every failed decryption or open, whatever
// went wrong (padding, tag, length), so no failure can be told from another.
var ErrDecrypt = errors.New("cryptosuite: message authentication failed")
