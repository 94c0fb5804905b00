package cryptosuite

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// HKDF-SHA256 bounds (RFC 5869 §2.3).
const (
	// HKDFHashSize is SHA-256's output size: the PRK length, and the
	// minimum PRK length HKDFExpand takes.
	HKDFHashSize = sha256.Size
	// MaxHKDFOutput is the most HKDF-Expand can give: 255 blocks.
	MaxHKDFOutput = 255 * HKDFHashSize
)

// ErrHKDFLength is returned for an output length outside 1..MaxHKDFOutput or
// a pseudorandom key shorter than HKDFHashSize.
var ErrHKDFLength = errors.New("cryptosuite: bad HKDF length")

// HKDFExtract is HKDF-Extract with SHA-256 (RFC 5869 §2.2): it returns the
// 32-byte pseudorandom key HMAC-SHA256(salt, secret). An empty salt means
// 32 zero bytes, as the RFC says.
func HKDFExtract(secret, salt []byte) ([]byte, error) {
	return hkdf.Extract(sha256.New, secret, salt)
}

// HKDFExpand is HKDF-Expand with SHA-256 (RFC 5869 §2.3): n bytes of output
// keyed by prk and bound to info. n must be 1 to MaxHKDFOutput and prk at
// least HKDFHashSize bytes (the RFC asks for a PRK of at least HashLen).
func HKDFExpand(prk []byte, info []byte, n int) ([]byte, error) {
	if err := checkHKDFLength(n); err != nil {
		return nil, err
	}
	if len(prk) < HKDFHashSize {
		return nil, fmt.Errorf("%w: pseudorandom key of %d bytes (min %d)", ErrHKDFLength, len(prk), HKDFHashSize)
	}
	return hkdf.Expand(sha256.New, prk, string(info), n)
}

// HKDF is HKDF-Extract then HKDF-Expand with SHA-256: n bytes (1 to
// MaxHKDFOutput) from secret, salt and info.
func HKDF(secret, salt, info []byte, n int) ([]byte, error) {
	if err := checkHKDFLength(n); err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, secret, salt, string(info), n)
}

func checkHKDFLength(n int) error {
	if n < 1 || n > MaxHKDFOutput {
		return fmt.Errorf("%w: output of %d bytes (want 1 to %d)", ErrHKDFLength, n, MaxHKDFOutput)
	}
	return nil
}
