package room

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// KeyPackage is a verified key package (DESIGN.md §5): what a peer
// publishes on its sessions so that masters can wrap room keys to it and
// members can verify its messages. Get one only from GenerateKeyPackage,
// VerifyKeyPackage or VerifyStoredKeyPackage; a KeyPackage built by hand
// has no blob and every function refuses it.
type KeyPackage struct {
	// Owner is the peer that signed the key package: the SHA-256 of
	// IdentityKey's SPKI.
	Owner cryptosuite.PeerID
	// IdentityKey is the owner's identity key.
	IdentityKey *cryptosuite.PublicKey
	// HPKEKey is the public key room keys are wrapped to.
	HPKEKey *cryptosuite.HPKEPublicKey
	// SigningKey is the Ed25519 key the owner's room messages are signed
	// with, whatever the identity key's type.
	SigningKey ed25519.PublicKey
	// Created and Expires bound the period in which masters wrap to it.
	Created, Expires time.Time

	blob []byte
	hash [HashSize]byte
}

// Blob returns a copy of the signed blob, as it travels.
func (kp *KeyPackage) Blob() []byte { return bytes.Clone(kp.blob) }

// Hash returns the key package hash: SHA-256 of the blob.
func (kp *KeyPackage) Hash() [HashSize]byte { return kp.hash }

// ValidAt reports whether the key package may be wrapped to at now: not
// expired, and created no later than KeyPackageClockSkew after now.
func (kp *KeyPackage) ValidAt(now time.Time) error {
	if !now.Before(kp.Expires) {
		return fmt.Errorf("%w: %s's key package expired at %s", ErrKeyPackageExpired, kp.Owner.Short(),
			kp.Expires.UTC().Format(time.RFC3339))
	}
	if kp.Created.After(now.Add(KeyPackageClockSkew)) {
		return fmt.Errorf("%w: %s's key package is created at %s", ErrKeyPackageNotYetValid, kp.Owner.Short(),
			kp.Created.UTC().Format(time.RFC3339))
	}
	return nil
}

// usable reports whether kp came from this package's constructors.
func (kp *KeyPackage) usable() bool { return kp != nil && kp.blob != nil }

// VerifyKeyPackage checks a key package blob: framing and size, the owner's
// signature (with the identity key it carries), every field's bound, and
// that it is valid at now. The host runs it on every key package it is
// given; a master runs it before wrapping to one.
func VerifyKeyPackage(blob []byte, now time.Time) (*KeyPackage, error) {
	kp, err := VerifyStoredKeyPackage(blob)
	if err != nil {
		return nil, err
	}
	if err := kp.ValidAt(now); err != nil {
		return nil, err
	}
	return kp, nil
}

// VerifyStoredKeyPackage checks a key package blob as VerifyKeyPackage
// does but ignores its validity period. It is for key packages a commit
// already lists, which keep the history of their epochs verifiable after
// they expire.
func VerifyStoredKeyPackage(blob []byte) (*KeyPackage, error) {
	layout, sig, err := SplitBlob(blob, canon.LabelKeyPackage, MaxKeyPackageBlob)
	if err != nil {
		return nil, err
	}
	// The verifying key is inside the layout; read only that field, check
	// the signature, and parse the rest after.
	r := canon.NewReader(canon.LabelKeyPackage, layout)
	spki := r.Bytes()
	if r.Err() != nil || len(spki) > cryptosuite.MaxSPKI {
		return nil, fmt.Errorf("%w: key package identity key", ErrMalformed)
	}
	ik, err := cryptosuite.ParsePublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: key package identity key: %v", ErrMalformed, err)
	}
	if len(sig) > maxIdentitySig || ik.Verify(canon.LabelKeyPackage, layout, sig) != nil {
		return nil, fmt.Errorf("%w: key package", ErrBadSignature)
	}
	kem := cryptosuite.KEMID(r.Uint16())
	hpkeBytes := r.Bytes()
	signing := r.Fixed(ed25519.PublicKeySize)
	created := r.Uint64()
	expires := r.Uint64()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: key package: %v", ErrMalformed, err)
	}
	hk, err := cryptosuite.ParseHPKEPublicKey(kem, hpkeBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: key package HPKE key: %v", ErrMalformed, err)
	}
	if err := checkLifetime(created, expires); err != nil {
		return nil, err
	}
	return &KeyPackage{
		Owner:       ik.PeerID(),
		IdentityKey: ik,
		HPKEKey:     hk,
		SigningKey:  ed25519.PublicKey(bytes.Clone(signing)),
		Created:     time.UnixMilli(int64(created)),
		Expires:     time.UnixMilli(int64(expires)),
		blob:        bytes.Clone(blob),
		hash:        BlobHash(blob),
	}, nil
}

// checkLifetime bounds a key package's validity period.
func checkLifetime(created, expires uint64) error {
	const maxMillis = uint64(1) << 62 // far past any real date; keeps time.UnixMilli exact
	switch {
	case created > maxMillis || expires > maxMillis:
		return fmt.Errorf("%w: key package time out of range", ErrMalformed)
	case expires <= created:
		return fmt.Errorf("%w: key package expires before it is created", ErrMalformed)
	case expires-created > uint64(MaxKeyPackageLifetime/time.Millisecond):
		return fmt.Errorf("%w: key package valid for longer than %v", ErrMalformed, MaxKeyPackageLifetime)
	}
	return nil
}

// KeyPackageSecrets are the private halves of one key package: the HPKE
// private key that opens room keys wrapped to it and the Ed25519 key that
// signs its owner's messages. They never leave the owner's machine; the
// CLI stores them in the peer's home with MarshalPEM. A KeyPackageSecrets
// is immutable and safe for concurrent use.
type KeyPackageSecrets struct {
	kp   *KeyPackage
	hpke *cryptosuite.HPKEPrivateKey
	sign ed25519.PrivateKey
}

// GenerateKeyPackage makes a key package for id with fresh HPKE (kem: 0 is
// cryptosuite.KEMX25519) and Ed25519 keys, created at now and valid for
// lifetime (0 is DefaultKeyPackageLifetime).
func GenerateKeyPackage(id *cryptosuite.Identity, kem cryptosuite.KEMID, now time.Time, lifetime time.Duration) (*KeyPackageSecrets, error) {
	if kem == 0 {
		kem = cryptosuite.KEMX25519
	}
	if lifetime == 0 {
		lifetime = DefaultKeyPackageLifetime
	}
	if lifetime < time.Millisecond || lifetime > MaxKeyPackageLifetime {
		return nil, fmt.Errorf("room: key package lifetime %v out of range (1ms to %v)", lifetime, MaxKeyPackageLifetime)
	}
	if now.UnixMilli() < 0 {
		return nil, errors.New("room: key package time before 1970")
	}
	hk, err := cryptosuite.GenerateHPKEKey(kem)
	if err != nil {
		return nil, fmt.Errorf("room: %w", err)
	}
	spub, spriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	created := uint64(now.UnixMilli())
	layout := canon.KeyPackage(&canon.KeyPackageFields{
		IdentityKey:   id.Public().SPKI(),
		KEM:           uint16(kem),
		HPKEPublicKey: hk.PublicKeyBytes(),
		SigningKey:    spub,
		CreatedMillis: created,
		ExpiresMillis: created + uint64(lifetime/time.Millisecond),
	})
	blob, err := signIdentity(id, canon.LabelKeyPackage, layout)
	if err != nil {
		return nil, err
	}
	kp, err := VerifyStoredKeyPackage(blob)
	if err != nil {
		return nil, fmt.Errorf("room: new key package does not verify: %w", err)
	}
	return &KeyPackageSecrets{kp: kp, hpke: hk, sign: spriv}, nil
}

// KeyPackage returns the public key package.
func (s *KeyPackageSecrets) KeyPackage() *KeyPackage { return s.kp }

// pemKeyPackageSecrets is the PEM block type of stored secrets.
const pemKeyPackageSecrets = "LANPEER KEY PACKAGE SECRETS"

// MaxKeyPackageSecretsPEM bounds a stored secrets file.
const MaxKeyPackageSecretsPEM = 16 << 10

// MarshalPEM returns the secrets as one PEM block of type "LANPEER KEY
// PACKAGE SECRETS" whose bytes are three fields, each a 4-byte big-endian
// length and its bytes: the key package blob, the HPKE private key
// (cryptosuite.HPKEPrivateKey.Bytes) and the 32-byte Ed25519 seed. The
// output holds private keys: store it readable by its owner only.
func (s *KeyPackageSecrets) MarshalPEM() ([]byte, error) {
	hb, err := s.hpke.Bytes()
	if err != nil {
		return nil, fmt.Errorf("room: %w", err)
	}
	defer clear(hb)
	seed := s.sign.Seed()
	defer clear(seed)
	var b []byte
	for _, f := range [][]byte{s.kp.blob, hb, seed} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	defer clear(b)
	return pem.EncodeToMemory(&pem.Block{Type: pemKeyPackageSecrets, Bytes: b}), nil
}

// ParseKeyPackageSecretsPEM reads what MarshalPEM wrote. It verifies the
// key package (not its expiry: old secrets still open old wrapped keys) and
// that both private keys belong to it.
func ParseKeyPackageSecretsPEM(b []byte) (*KeyPackageSecrets, error) {
	if len(b) > MaxKeyPackageSecretsPEM {
		return nil, fmt.Errorf("%w: key package secrets of %d bytes (max %d)", ErrMalformed, len(b), MaxKeyPackageSecretsPEM)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != pemKeyPackageSecrets || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: want one PEM block %q", ErrMalformed, pemKeyPackageSecrets)
	}
	defer clear(blk.Bytes)
	var fields [3][]byte
	p := blk.Bytes
	for i := range fields {
		if len(p) < 4 || uint64(binary.BigEndian.Uint32(p)) > uint64(len(p)-4) {
			return nil, fmt.Errorf("%w: key package secrets field %d", ErrMalformed, i)
		}
		n := binary.BigEndian.Uint32(p)
		fields[i], p = p[4:4+n], p[4+n:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: key package secrets: trailing bytes", ErrMalformed)
	}
	kp, err := VerifyStoredKeyPackage(fields[0])
	if err != nil {
		return nil, err
	}
	hk, err := cryptosuite.NewHPKEPrivateKey(kp.HPKEKey.KEM(), fields[1])
	if err != nil {
		return nil, fmt.Errorf("%w: key package secrets: %v", ErrMalformed, err)
	}
	if !bytes.Equal(hk.PublicKeyBytes(), kp.HPKEKey.Bytes()) {
		return nil, fmt.Errorf("%w: HPKE private key does not belong to the key package", ErrWrongKeyPackage)
	}
	if len(fields[2]) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: key package secrets: Ed25519 seed of %d bytes", ErrMalformed, len(fields[2]))
	}
	sk := ed25519.NewKeyFromSeed(fields[2])
	if !bytes.Equal(sk.Public().(ed25519.PublicKey), kp.SigningKey) {
		return nil, fmt.Errorf("%w: message-signing key does not belong to the key package", ErrWrongKeyPackage)
	}
	return &KeyPackageSecrets{kp: kp, hpke: hk, sign: sk}, nil
}
