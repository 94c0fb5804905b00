package cryptosuite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/lanpeer/lanpeer/canon"
)

// The room-key wrap (DESIGN.md §5 "The wrap, exactly", §11 "Room-key wrap,
// byte by byte"):
//
//	enc, ctx = HPKE base mode SetupS(pkR, info), KEM as chosen, KDF HKDF-SHA256,
//	           AEAD export-only (0xFFFF)
//	kek      = ctx.Export("lanpeer/v1 room key wrap", 64)
//	wrapped  = IV(16 random) ‖ A256CBC-HS512 seal under kek of the 64-byte
//	           room key, AAD = info → IV(16) ‖ E(80) ‖ T(32)
//
// info is canon.RoomKeyWrapInfo(room, epoch, member, key package hash); the
// export context is the bare ASCII label, with no canon framing. With
// DHKEM(X25519) every step can be done with the openssl 3.0 command line
// (testdata/roomkey_openssl.sh does it in both directions).

// KEMID is the HPKE KEM identifier (RFC 9180 §7.1, draft-ietf-hpke-pq) of a
// key package's HPKE key.
type KEMID uint16

// HPKE KEMs lanpeer uses for key packages.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256), the default: openssl 3.0's
	// command line can unwrap under it.
	KEMX25519 KEMID = 0x0020
	// KEMMLKEM768X25519 is the hybrid post-quantum MLKEM768-X25519 (X-Wing).
	KEMMLKEM768X25519 KEMID = 0x647a
)

// hpkeKEMInfo holds the exact sizes of a KEM's encodings, checked before any
// parsing or HPKE work.
type hpkeKEMInfo struct {
	id      KEMID
	name    string
	kem     hpke.KEM
	pubSize int // SerializePublicKey output
	encSize int // encapsulated key
	skSize  int // SerializePrivateKey output (a seed for MLKEM768X25519)
}

var hpkeKEMTable = []hpkeKEMInfo{
	{id: KEMX25519, name: "x25519", kem: hpke.DHKEM(ecdh.X25519()), pubSize: 32, encSize: 32, skSize: 32},
	{id: KEMMLKEM768X25519, name: "mlkem768-x25519", kem: hpke.MLKEM768X25519(), pubSize: 1184 + 32, encSize: 1088 + 32, skSize: 32},
}

func (k KEMID) params() (*hpkeKEMInfo, bool) {
	for i := range hpkeKEMTable {
		if hpkeKEMTable[i].id == k {
			return &hpkeKEMTable[i], true
		}
	}
	return nil, false
}

// KEMByName looks a KEM up by its name ("x25519", "mlkem768-x25519"), for
// flags.
func KEMByName(name string) (KEMID, bool) {
	for _, p := range hpkeKEMTable {
		if p.name == name {
			return p.id, true
		}
	}
	return 0, false
}

// String returns the KEM's name.
func (k KEMID) String() string {
	if p, ok := k.params(); ok {
		return p.name
	}
	return fmt.Sprintf("KEMID(%#04x)", uint16(k))
}

// PublicKeySize is the exact length of the KEM's public key encoding, or 0
// for an unknown KEM.
func (k KEMID) PublicKeySize() int {
	if p, ok := k.params(); ok {
		return p.pubSize
	}
	return 0
}

// EncSize is the exact length of the KEM's encapsulated key (HPKE enc), or 0
// for an unknown KEM.
func (k KEMID) EncSize() int {
	if p, ok := k.params(); ok {
		return p.encSize
	}
	return 0
}

// Errors of HPKE keys.
var (
	// ErrUnknownKEM is returned for a KEM id lanpeer does not use.
	ErrUnknownKEM = errors.New("cryptosuite: unknown HPKE KEM")
	// ErrBadHPKEKey wraps every refusal of an HPKE key's bytes.
	ErrBadHPKEKey = errors.New("cryptosuite: malformed HPKE key")
)

// HPKEPublicKey is a checked HPKE public key of a key package. The zero
// value is not usable; get one from ParseHPKEPublicKey or
// HPKEPrivateKey.PublicKey.
type HPKEPublicKey struct {
	kem KEMID
	pk  hpke.PublicKey
}

// HPKEPrivateKey is the private half of a key package's HPKE key. The zero
// value is not usable; get one from GenerateHPKEKey or NewHPKEPrivateKey.
type HPKEPrivateKey struct {
	kem KEMID
	sk  hpke.PrivateKey
}

// GenerateHPKEKey makes a new HPKE key pair for kem.
func GenerateHPKEKey(kem KEMID) (*HPKEPrivateKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnknownKEM, kem)
	}
	sk, err := p.kem.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &HPKEPrivateKey{kem: kem, sk: sk}, nil
}

// NewHPKEPrivateKey rebuilds a private key from its serialized form (what
// Bytes returns): for KEMX25519 the 32-byte X25519 private key, for
// KEMMLKEM768X25519 the 32-byte seed from which the ML-KEM-768 and X25519
// keys are expanded. It serves stored keys and fixed test keys alike.
func NewHPKEPrivateKey(kem KEMID, b []byte) (*HPKEPrivateKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnknownKEM, kem)
	}
	if len(b) != p.skSize {
		return nil, fmt.Errorf("%w: %v private key of %d bytes (want %d)", ErrBadHPKEKey, kem, len(b), p.skSize)
	}
	sk, err := p.kem.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHPKEKey, err)
	}
	return &HPKEPrivateKey{kem: kem, sk: sk}, nil
}

// KEM returns the key's KEM.
func (k *HPKEPrivateKey) KEM() KEMID { return k.kem }

// Bytes returns the serialized private key, which NewHPKEPrivateKey reads
// back. For X25519 it is the clamped scalar (RFC 9180 §7.1.2), which may
// differ from the bytes the key was made from.
func (k *HPKEPrivateKey) Bytes() ([]byte, error) { return k.sk.Bytes() }

// PublicKey returns the public half.
func (k *HPKEPrivateKey) PublicKey() *HPKEPublicKey {
	return &HPKEPublicKey{kem: k.kem, pk: k.sk.PublicKey()}
}

// PublicKeyBytes returns the public key as it goes into a key package
// (SerializePublicKey: 32 raw bytes for X25519, 1216 for MLKEM768X25519).
func (k *HPKEPrivateKey) PublicKeyBytes() []byte { return k.sk.PublicKey().Bytes() }

// ParseHPKEPublicKey reads a key package's HPKE public key. The length is
// checked exactly before anything is parsed. An X25519 point of low order
// (alone, or as the X25519 half of the hybrid key) is refused here: every
// wrap to it would fail, since each sender's shared secret would be zero.
func ParseHPKEPublicKey(kem KEMID, b []byte) (*HPKEPublicKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnknownKEM, kem)
	}
	if len(b) != p.pubSize {
		return nil, fmt.Errorf("%w: %v public key of %d bytes (want %d)", ErrBadHPKEKey, kem, len(b), p.pubSize)
	}
	// Both encodings end in the 32-byte X25519 public key.
	if x25519LowOrder(b[len(b)-32:]) {
		return nil, fmt.Errorf("%w: %v public key has an X25519 point of low order", ErrBadHPKEKey, kem)
	}
	pk, err := p.kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHPKEKey, err)
	}
	return &HPKEPublicKey{kem: kem, pk: pk}, nil
}

// KEM returns the key's KEM.
func (k *HPKEPublicKey) KEM() KEMID { return k.kem }

// Bytes returns the serialized public key.
func (k *HPKEPublicKey) Bytes() []byte { return k.pk.Bytes() }

// lowOrderProbe is a fixed X25519 private key. Clamping makes every X25519
// scalar a multiple of the cofactor, so a point whose product with this key
// is zero gives zero with any sender's key: it has low order.
var lowOrderProbe = func() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		panic(err)
	}
	return k
}()

// x25519LowOrder reports whether b (32 bytes) is an X25519 public key whose
// shared secret is all zeros; crypto/ecdh refuses exactly those.
func x25519LowOrder(b []byte) bool {
	p, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return true
	}
	_, err = lowOrderProbe.ECDH(p)
	return err != nil
}

// RoomKeySize is the size of a room key: A256CBC-HS512 takes 64 bytes, and
// every per-sender key is derived from it.
const RoomKeySize = 64

// RoomKey is the secret of one room epoch.
type RoomKey [RoomKeySize]byte

// GenerateRoomKey returns a fresh random room key.
func GenerateRoomKey() *RoomKey {
	k := new(RoomKey)
	rand.Read(k[:]) // never fails (crypto/rand since Go 1.24)
	return k
}

// WrappedRoomKeySize is the exact length of a wrapped room key: IV(16) ‖
// E(80: the 64-byte key and a full padding block) ‖ T(32).
const WrappedRoomKeySize = cbcIVSize + RoomKeySize + 16 + cbcTagSize

// roomKeyWrapInfoSize is the length of canon.RoomKeyWrapInfo's output.
var roomKeyWrapInfoSize = len(canon.RoomKeyWrapInfo([16]byte{}, 0, [32]byte{}, [32]byte{}))

// kekSize is the length of the exported key-encryption key (A256CBC-HS512).
const kekSize = cbcHMACKeySize

// Hooks for tests: the counted entry points into HPKE, so a test can show
// that a wrong length never reaches them.
var (
	hpkeNewSender    = hpke.NewSender
	hpkeNewRecipient = hpke.NewRecipient
)

// validWrapInfo reports whether info is a room-key wrap layout (label, room,
// epoch, member, key package hash), so no other bytes can be passed as info.
func validWrapInfo(info []byte) bool {
	if len(info) != roomKeyWrapInfoSize {
		return false
	}
	r := canon.NewReader(canon.LabelRoomKeyWrap, info)
	r.Fixed(16)
	r.Uint64()
	r.Fixed(32)
	r.Fixed(32)
	return r.Done() == nil
}

var errWrapInfo = errors.New("cryptosuite: room key wrap info is not a canon.RoomKeyWrapInfo layout")

// WrapRoomKey seals key to a member's key-package HPKE key. info must be
// canon.RoomKeyWrapInfo(room, epoch, member, key package hash); it is both
// the HPKE info and the AAD of the seal. It returns the HPKE encapsulated
// key (32 bytes for X25519, 1120 for MLKEM768X25519) and the wrapped key
// (exactly WrappedRoomKeySize bytes).
func WrapRoomKey(pk *HPKEPublicKey, info []byte, key *RoomKey) (enc, wrapped []byte, err error) {
	if pk == nil || pk.pk == nil || key == nil {
		return nil, nil, errors.New("cryptosuite: nil key in WrapRoomKey")
	}
	if !validWrapInfo(info) {
		return nil, nil, errWrapInfo
	}
	enc, ctx, err := hpkeNewSender(pk.pk, hpke.HKDFSHA256(), hpke.ExportOnly(), info)
	if err != nil {
		return nil, nil, fmt.Errorf("cryptosuite: room key wrap: %w", err)
	}
	kek, err := ctx.Export(canon.LabelRoomKeyWrap, kekSize)
	if err != nil {
		return nil, nil, fmt.Errorf("cryptosuite: room key wrap: %w", err)
	}
	defer clear(kek)
	aead, err := newCBCHMAC(kek)
	if err != nil {
		return nil, nil, err
	}
	wrapped = make([]byte, cbcIVSize, WrappedRoomKeySize)
	rand.Read(wrapped) // the IV; never fails
	wrapped = aead.Seal(wrapped, wrapped[:cbcIVSize], key[:], info)
	if len(wrapped) != WrappedRoomKeySize {
		panic("cryptosuite: wrapped room key has the wrong length")
	}
	return enc, wrapped, nil
}

// UnwrapRoomKey opens a wrapped room key with the member's key-package HPKE
// private key. enc and wrapped must have their exact lengths, which are
// checked before any HPKE work; info must be the same
// canon.RoomKeyWrapInfo the master used. Every failure is ErrDecrypt.
func UnwrapRoomKey(sk *HPKEPrivateKey, enc, info, wrapped []byte) (*RoomKey, error) {
	if sk == nil || sk.sk == nil || len(enc) != sk.kem.EncSize() || len(wrapped) != WrappedRoomKeySize || !validWrapInfo(info) {
		return nil, ErrDecrypt
	}
	ctx, err := hpkeNewRecipient(enc, sk.sk, hpke.HKDFSHA256(), hpke.ExportOnly(), info)
	if err != nil {
		return nil, ErrDecrypt
	}
	kek, err := ctx.Export(canon.LabelRoomKeyWrap, kekSize)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(kek)
	aead, err := newCBCHMAC(kek)
	if err != nil {
		return nil, ErrDecrypt
	}
	var buf [RoomKeySize + 16]byte
	defer clear(buf[:])
	pt, err := aead.Open(buf[:0], wrapped[:cbcIVSize], wrapped[cbcIVSize:], info)
	if err != nil || len(pt) != RoomKeySize {
		return nil, ErrDecrypt
	}
	key := new(RoomKey)
	copy(key[:], pt)
	return key, nil
}

// SenderKey derives a sender's message key for one room epoch:
// HKDF-SHA256(room key, empty salt, info = canon.SenderKeyInfo(room, epoch,
// sender)), s.KeySize bytes. Each sender thus seals under its own key, so
// members cannot forge each other and nonce spaces never collide.
func SenderKey(key *RoomKey, room [16]byte, epoch uint64, sender PeerID, s *AEADSuite) ([]byte, error) {
	if key == nil || s == nil {
		return nil, errors.New("cryptosuite: nil argument to SenderKey")
	}
	if s.KeySize <= 0 {
		return nil, fmt.Errorf("cryptosuite: suite %v key size %d out of range", s.ID, s.KeySize)
	}
	return hkdf.Key(sha256.New, key[:], nil, string(canon.SenderKeyInfo(room, epoch, sender)), s.KeySize)
}
