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
	New      func(key []byte) (cipher.AEAD, error)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("cryptosuite: AES-256-GCM key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// aeadSuites is in preference order: A256CBC-HS512 first by default, as the
// original design asks and as openssl's command line can do.
var aeadSuites = []*AEADSuite{
	{ID: AEADA256CBCHS512, Name: "A256CBC-HS512", KeySize: cbcHMACKeySize, NonceSize: cbcIVSize, RandomIV: true, New: newCBCHMAC},
	{ID: AEADAES256GCM, Name: "AES-256-GCM", KeySize: 32, NonceSize: 12, New: newAESGCM},
	{ID: AEADChaCha20Poly1305, Name: "ChaCha20-Poly1305", KeySize: chacha20poly1305.KeySize, NonceSize: chacha20poly1305.NonceSize, New: chacha20poly1305.New},
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
