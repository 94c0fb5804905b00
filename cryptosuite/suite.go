// Package cryptosuite holds lanpeer's cryptographic constructions as typed
// values with stable numeric ids: AEADs, key agreements, identity keys and
// signatures, HKDF, and the room-key wrap. Names exist for logs and flags
// only; code looks suites up by id and never switches on strings.
//
// Every construction is checked against published test vectors in
// testdata/ (see testdata/README.md). cryptosuite imports only canon of
// lanpeer; it knows no protocol messages.
package cryptosuite

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEADID is the stable numeric id of an AEAD suite (2 bytes on the wire and
// in canonical layouts).
type AEADID uint16

// AEAD suite ids.
const (
	AEADA256CBCHS512     AEADID = 0x0001 // RFC 7518 §5.2.5, the original design's CBC AES
	AEADAES256GCM        AEADID = 0x0002
	AEADChaCha20Poly1305 AEADID = 0x0003
)

// AEADSuite describes one AEAD.
type AEADSuite struct {
	ID        AEADID
	Name      string // "A256CBC-HS512", "AES-256-GCM", "ChaCha20-Poly1305"
	KeySize   int
	NonceSize int // the IV for A256CBC-HS512
	// RandomIV is true for CBC: its IV is always fresh random bytes,
	// never a counter (DESIGN.md §5).
	RandomIV bool
	// New returns the AEAD for a key of exactly KeySize bytes (anything
	// else is an error). Its Open reports every failure, a nonce of the
	// wrong size included, as ErrDecrypt; its Seal panics on a nonce of the
	// wrong size, as crypto/cipher's do. Nonces come from SealRandom,
	// CounterNonce or SenderSealer, never from the caller's own scheme.
	New func(key []byte) (cipher.AEAD, error)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("cryptosuite: AES-256-GCM key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return checkedAEAD{g}, nil
}

func newChaCha20Poly1305(key []byte) (cipher.AEAD, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, errors.New("cryptosuite: ChaCha20-Poly1305 key must be 32 bytes")
	}
	c, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return checkedAEAD{c}, nil
}

// checkedAEAD gives a library AEAD the Open contract of every lanpeer
// suite: a nonce of the wrong size (which would make crypto/cipher and
// x/crypto panic) and every authentication failure (which they report with
// their own error values) are ErrDecrypt. Seal is unchanged: a nonce of the
// wrong size there is a programming error and panics.
type checkedAEAD struct{ cipher.AEAD }

func (a checkedAEAD) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != a.NonceSize() {
		return nil, ErrDecrypt
	}
	out, err := a.AEAD.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// aeadSuites is in preference order: A256CBC-HS512 first by default, as the
// original design asks and as openssl's command line can do.
var aeadSuites = []*AEADSuite{
	{ID: AEADA256CBCHS512, Name: "A256CBC-HS512", KeySize: cbcHMACKeySize, NonceSize: cbcIVSize, RandomIV: true, New: newCBCHMAC},
	{ID: AEADAES256GCM, Name: "AES-256-GCM", KeySize: 32, NonceSize: 12, New: newAESGCM},
	{ID: AEADChaCha20Poly1305, Name: "ChaCha20-Poly1305", KeySize: chacha20poly1305.KeySize, NonceSize: chacha20poly1305.NonceSize, New: newChaCha20Poly1305},
}

// AEADs returns every AEAD suite in preference order.
func AEADs() []*AEADSuite { return append([]*AEADSuite(nil), aeadSuites...) }

// AEADByID looks a suite up by id; unknown ids are reported, never a panic.
func AEADByID(id AEADID) (*AEADSuite, bool) {
	for _, s := range aeadSuites {
		if s.ID == id {
			return s, true
		}
	}
	return nil, false
}

// AEADByName looks a suite up by name (case-sensitive, as listed), for
// flags.
func AEADByName(name string) (*AEADSuite, bool) {
	for _, s := range aeadSuites {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// String returns the suite's name.
func (id AEADID) String() string {
	if s, ok := AEADByID(id); ok {
		return s.Name
	}
	return fmt.Sprintf("AEADID(%#04x)", uint16(id))
}

// ErrNoCommonSuite is returned when negotiation finds nothing both sides
// accept.
var ErrNoCommonSuite = errors.New("cryptosuite: no AEAD suite in common")

// NegotiateAEAD picks the first of local's suites (in local's order) that
// remote also offered. Ids neither side knows are ignored.
func NegotiateAEAD(local, remote []AEADID) (*AEADSuite, error) {
	for _, l := range local {
		s, ok := AEADByID(l)
		if !ok {
			continue
		}
		for _, r := range remote {
			if r == l {
				return s, nil
			}
		}
	}
	return nil, ErrNoCommonSuite
}
