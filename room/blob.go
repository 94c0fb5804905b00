package room

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// A signed blob is the one form in which every room object travels and is
// stored (docs/PROTOCOL.md §16.1):
//
//	blob = len(layout) ‖ layout ‖ len(sig) ‖ sig        len() = 4 bytes, big-endian
//
// layout is the object's canonical layout (label ‖ 0x00 ‖ fields) and sig
// the signature over canon.SignatureInput(label, layout). Nothing follows
// sig. The blob is self-delimiting, travels unchanged, and an object's hash
// is SHA-256 of the whole blob.

// SplitBlob splits blob into its layout and signature, checking only the
// framing: the blob is at most max bytes, both lengths fit, nothing
// trails, and the layout starts with label and 0x00. Neither part is
// verified; the returned slices alias blob.
func SplitBlob(blob []byte, label string, max int) (layout, sig []byte, err error) {
	if len(blob) > max {
		return nil, nil, fmt.Errorf("%w: %s blob of %d bytes (max %d)", ErrMalformed, label, len(blob), max)
	}
	rest := blob
	field := func() []byte {
		if len(rest) < 4 {
			return nil
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil
		}
		f := rest[4 : 4+n : 4+n]
		rest = rest[4+n:]
		return f
	}
	layout = field()
	if layout == nil {
		return nil, nil, fmt.Errorf("%w: %s blob: layout length", ErrMalformed, label)
	}
	sig = field()
	if sig == nil {
		return nil, nil, fmt.Errorf("%w: %s blob: signature length", ErrMalformed, label)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: %s blob: %d bytes after the signature", ErrMalformed, label, len(rest))
	}
	if len(layout) < len(label)+1 || string(layout[:len(label)]) != label || layout[len(label)] != 0 {
		return nil, nil, fmt.Errorf("%w: blob is not a %s", ErrBadSignature, label)
	}
	return layout, sig, nil
}

// joinBlob frames layout and sig as a signed blob.
func joinBlob(layout, sig []byte) []byte {
	b := make([]byte, 0, 8+len(layout)+len(sig))
	b = binary.BigEndian.AppendUint32(b, uint32(len(layout)))
	b = append(b, layout...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sig)))
	return append(b, sig...)
}

// BlobHash is the hash of an object: SHA-256 of its blob as it travels.
func BlobHash(blob []byte) [HashSize]byte { return sha256.Sum256(blob) }

// signIdentity signs layout under label with an identity key and frames the
// blob.
func signIdentity(id *cryptosuite.Identity, label string, layout []byte) ([]byte, error) {
	sig, err := id.Sign(label, layout)
	if err != nil {
		return nil, fmt.Errorf("room: signing %s: %w", label, err)
	}
	return joinBlob(layout, sig), nil
}

// verifyIdentity splits blob and verifies its signature under label with
// pk. It returns the layout, to be parsed only after this.
func verifyIdentity(blob []byte, label string, max int, pk *cryptosuite.PublicKey) ([]byte, error) {
	layout, sig, err := SplitBlob(blob, label, max)
	if err != nil {
		return nil, err
	}
	if len(sig) > maxIdentitySig {
		return nil, fmt.Errorf("%w: %s signature of %d bytes", ErrBadSignature, label, len(sig))
	}
	if pk.Verify(label, layout, sig) != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadSignature, label)
	}
	return layout, nil
}

// signMessageKey signs layout under label with an Ed25519 message-signing
// key and frames the blob.
func signMessageKey(priv ed25519.PrivateKey, label string, layout []byte) ([]byte, error) {
	in, err := canon.SignatureInput(label, layout)
	if err != nil {
		return nil, err
	}
	return joinBlob(layout, ed25519.Sign(priv, in)), nil
}

// verifyMessageKey checks an Ed25519 signature by a message-signing key
// over canon.SignatureInput(label, layout).
func verifyMessageKey(pub ed25519.PublicKey, label string, layout, sig []byte) error {
	in, err := canon.SignatureInput(label, layout)
	if err != nil || len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(pub, in, sig) {
		return fmt.Errorf("%w: %s", ErrBadSignature, label)
	}
	return nil
}
