package room

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Protocol sizes and bounds (docs/PROTOCOL.md §16.10).
const (
	// RoomIDSize is the size of a room id: 16 random bytes.
	RoomIDSize = 16
	// MessageIDSize is the size of a client-chosen message id.
	MessageIDSize = 16
	// HashSize is the size of a key package or commit hash (SHA-256).
	HashSize = 32

	// MaxNameSize bounds a room name, bytes of UTF-8.
	MaxNameSize = 128
	// MaxTextSize bounds a room message's text, bytes of UTF-8 (the same
	// bound as a direct message's).
	MaxTextSize = 16384
	// MaxBoxSize bounds a room message's sealed box: the largest text
	// sealed with A256CBC-HS512 (IV, padded text, tag).
	MaxBoxSize = 16 + MaxTextSize + 16 + 32

	// DefaultMaxMembers is how many members a room holds unless Limits
	// raise it (DESIGN.md §5).
	DefaultMaxMembers = 1000
	// MaxMembersCeiling is the most any Limits may allow.
	MaxMembersCeiling = 100000
	// DefaultMaxEpochs is how many epochs a MemberState remembers (commit
	// hash, members, room key) before it forgets the oldest.
	DefaultMaxEpochs = 256
	// MaxEpochsCeiling is the most epochs any Limits may keep.
	MaxEpochsCeiling = 65536

	// DefaultKeyPackageLifetime is how long a new key package is valid.
	DefaultKeyPackageLifetime = 30 * 24 * time.Hour
	// MaxKeyPackageLifetime bounds a key package's validity period.
	MaxKeyPackageLifetime = 366 * 24 * time.Hour
	// KeyPackageClockSkew is how far in the future a key package's creation
	// time may lie and still be accepted.
	KeyPackageClockSkew = 5 * time.Minute
)

// Signature sizes.
const (
	// maxIdentitySig is the largest identity-key signature: RSA-4096 PSS.
	maxIdentitySig = 512
	// messageSigSize is an Ed25519 signature.
	messageSigSize = ed25519.SignatureSize
)

// Blob size bounds, checked before a blob is split: the largest layout of
// each purpose and its signature, each behind a 4-byte length. They follow
// from the field bounds above.
const (
	blobOverhead = 4 + 4

	maxKeyPackageLayout = len(canon.LabelKeyPackage) + 1 + (4 + cryptosuite.MaxSPKI) + (4 + 2) + (4 + maxHPKEPublicKey) +
		(4 + ed25519.PublicKeySize) + 2*(4+8)
	// MaxKeyPackageBlob bounds a key package blob.
	MaxKeyPackageBlob = blobOverhead + maxKeyPackageLayout + maxIdentitySig

	maxWrappedKeyLayout = len(canon.LabelWrappedKey) + 1 + (4 + RoomIDSize) + (4 + 8) + 2*(4+HashSize) +
		(4 + maxHPKEEnc) + (4 + cryptosuite.WrappedRoomKeySize)
	// MaxWrappedKeyBlob bounds a wrapped key blob.
	MaxWrappedKeyBlob = blobOverhead + maxWrappedKeyLayout + maxIdentitySig

	maxMessageLayout = len(canon.LabelRoomMessage) + 1 + (4 + RoomIDSize) + (4 + 8) + (4 + HashSize) + (4 + HashSize) +
		(4 + MessageIDSize) + (4 + HashSize) + (4 + MaxBoxSize)
	// MaxMessageBlob bounds a room message blob.
	MaxMessageBlob = blobOverhead + maxMessageLayout + messageSigSize

	maxLeaveLayout = len(canon.LabelRoomLeave) + 1 + (4 + RoomIDSize) + (4 + HashSize) + 2*(4+8)
	// MaxLeaveBlob bounds a leave request blob.
	MaxLeaveBlob = blobOverhead + maxLeaveLayout + maxIdentitySig

	// commitFixedLayout is a commit layout without its member elements.
	commitFixedLayout = len(canon.LabelRoomCommit) + 1 + (4 + RoomIDSize) + (4 + 8) + (4 + HashSize) + (4 + 2) +
		(4 + MaxNameSize) + (4 + 2) + (4 + HashSize) + 4 + (4 + 8)
	// commitMemberSize is one member element: its length and 64 bytes.
	commitMemberSize = 4 + 2*HashSize
)

// maxHPKEPublicKey and maxHPKEEnc are the largest HPKE encodings of the
// KEMs lanpeer uses (MLKEM768X25519); a test keeps them in step with
// cryptosuite.
const (
	maxHPKEPublicKey = 1216
	maxHPKEEnc       = 1120
)

// MaxCommitBlob bounds a commit blob for a room of up to maxMembers
// members.
func MaxCommitBlob(maxMembers int) int {
	return blobOverhead + commitFixedLayout + commitMemberSize*maxMembers + maxIdentitySig
}

// Limits are the configurable bounds of rooms. The zero value of a field
// means its default; a nil *Limits means all defaults.
type Limits struct {
	// MaxMembers is the most members a room may hold, master included
	// (default DefaultMaxMembers, at most MaxMembersCeiling). A commit
	// listing more is refused.
	MaxMembers int
	// MaxEpochs is how many epochs a MemberState keeps (default
	// DefaultMaxEpochs, at most MaxEpochsCeiling); past it the oldest
	// epoch, and its room key, are forgotten.
	MaxEpochs int
}

// resolve returns l with defaults filled in, or an error for a value out of
// range.
func (l *Limits) resolve() (Limits, error) {
	var r Limits
	if l != nil {
		r = *l
	}
	if r.MaxMembers == 0 {
		r.MaxMembers = DefaultMaxMembers
	}
	if r.MaxEpochs == 0 {
		r.MaxEpochs = DefaultMaxEpochs
	}
	if r.MaxMembers < 1 || r.MaxMembers > MaxMembersCeiling {
		return r, fmt.Errorf("room: MaxMembers %d out of range 1..%d", r.MaxMembers, MaxMembersCeiling)
	}
	if r.MaxEpochs < 1 || r.MaxEpochs > MaxEpochsCeiling {
		return r, fmt.Errorf("room: MaxEpochs %d out of range 1..%d", r.MaxEpochs, MaxEpochsCeiling)
	}
	return r, nil
}
