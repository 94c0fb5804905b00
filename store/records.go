package store

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// PeerID names a peer: the SHA-256 of its identity public key.
type PeerID = cryptosuite.PeerID

// RoomID is a room's 16 random bytes, chosen by its creator. The zero value
// names no room and is never stored.
type RoomID [16]byte

// String returns the 32 lowercase hex characters.
func (id RoomID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (no room).
func (id RoomID) IsZero() bool { return id == RoomID{} }

// LogValue implements slog.LogValuer.
func (id RoomID) LogValue() slog.Value { return slog.StringValue(id.String()) }

// MessageID is the 16 bytes a sender chooses for a message so that a
// retried send is stored once. The zero value is never stored.
type MessageID [16]byte

// String returns the 32 lowercase hex characters.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value.
func (id MessageID) IsZero() bool { return id == MessageID{} }

// Role is a member's role in a room (DESIGN.md §5). The zero value is no
// role and is never stored.
type Role uint8

// Roles. Their numbers are stored by persistent stores; never renumber.
const (
	// RoleMember reads and posts.
	RoleMember Role = 1
	// RoleMaster reads, posts, invites, removes and rotates. A room has
	// exactly one, the peer that created it.
	RoleMaster Role = 2
)

// String returns "member", "master" or "Role(N)".
func (r Role) String() string {
	switch r {
	case RoleMember:
		return "member"
	case RoleMaster:
		return "master"
	default:
		return fmt.Sprintf("Role(%d)", uint8(r))
	}
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r == RoleMember || r == RoleMaster }

// KeyPackage is a peer's published key package (DESIGN.md §5): the signed
// blob as it travelled, which the store never parses, and the fields the
// host indexes it by. The host verified the blob before putting it.
type KeyPackage struct {
	// Hash is the SHA-256 of Blob (DESIGN.md §11), the key package's name.
	Hash [32]byte
	// Owner is the peer whose identity key signed the key package.
	Owner PeerID
	// Blob is the signed key package, opaque to the store.
	Blob []byte
	// Expires is when the key package stops being offered; kept to the
	// millisecond.
	Expires time.Time
}

// Room is a room's current state on its host.
type Room struct {
	// ID is the room's 16 random bytes.
	ID RoomID
	// Master is the peer that created the room; it never changes.
	Master PeerID
	// Suite is the room's AEAD suite id, opaque to the store.
	Suite uint16
	// Name is the room's name: valid UTF-8, at most MaxRoomNameSize bytes.
	Name string
	// Epoch is the epoch of the latest applied commit.
	Epoch uint64
	// Head is the hash of the latest applied commit.
	Head [32]byte
	// Created is when the room was created; kept to the millisecond.
	Created time.Time
}

// Member is one member of a room at the room's current epoch.
type Member struct {
	// Peer is the member.
	Peer PeerID
	// Role is RoleMaster for the room's master, RoleMember otherwise.
	Role Role
	// KeyPackageHash names the key package the member's room key for the
	// current epoch is wrapped to.
	KeyPackageHash [32]byte
	// AckedEpoch is the highest epoch whose room key the member
	// acknowledged (AckEpoch), so "why can't they read this" has an
	// answer. It only grows while the peer stays a member.
	AckedEpoch uint64
	// Leave is the member's signed leave request once RecordLeave stored
	// it, nil before. The host treats a member with a leave request as
	// gone; the master's client turns the request into a remove commit.
	// Set only by RecordLeave: CreateRoom and ApplyCommit ignore it.
	Leave []byte
}

// Commit is one signed membership commit (create, invite, remove, rotate):
// the blob as it travelled, opaque to the store, under the epoch it starts.
type Commit struct {
	// Room is the room the commit belongs to.
	Room RoomID
	// Epoch is the epoch the commit starts.
	Epoch uint64
	// Hash is the SHA-256 of Blob (DESIGN.md §11).
	Hash [32]byte
	// Blob is the signed commit.
	Blob []byte
}

// WrappedKey is a room key for one epoch, wrapped by the master for one
// member's key package and signed (DESIGN.md §5), opaque to the store.
type WrappedKey struct {
	// Room is the room.
	Room RoomID
	// Epoch is the epoch whose key is wrapped.
	Epoch uint64
	// Member is the peer the key is wrapped for.
	Member PeerID
	// Blob is the signed wrapped key.
	Blob []byte
}

// Message is one stored room message. The host sees its header fields and
// ciphertext; the plaintext is inside Blob, sealed by the sender.
type Message struct {
	// Room is the room the message was posted to.
	Room RoomID
	// Seq is the message's number in the room: 1 for the first, then one
	// more per message, with no gaps. Assigned by AppendMessage; ignored
	// on input.
	Seq uint64
	// ID is the sender's id for the message; a retried send reuses it.
	ID MessageID
	// Sender is the peer that posted the message.
	Sender PeerID
	// Epoch is the epoch whose key sealed the message.
	Epoch uint64
	// KeyPackageHash names the key package whose message-signing key
	// signed the message; the store keeps that key package as long as it
	// keeps the message.
	KeyPackageHash [32]byte
	// Blob is the signed, encrypted message as it travelled.
	Blob []byte
	// Stored is when the host accepted the message, set by the caller;
	// kept to the millisecond.
	Stored time.Time
}

// Span is the range of sequence numbers a room's history holds.
type Span struct {
	// First is the sequence number of the oldest message kept, 0 when
	// none is kept.
	First uint64
	// Last is the sequence number of the latest message ever appended,
	// 0 when none was.
	Last uint64
}

// DirectoryRecord is a peer's signed, expiring directory record (DESIGN.md
// §8), opaque to the store.
type DirectoryRecord struct {
	// Peer is the peer the record describes and that signed it.
	Peer PeerID
	// Blob is the signed record.
	Blob []byte
	// Issued is when the peer issued the record; a record replaces a
	// stored one only if it was issued later. Kept to the millisecond.
	Issued time.Time
	// Expires is when the record stops being served; kept to the
	// millisecond.
	Expires time.Time
}

// Millis returns t cut to the millisecond (floor) in UTC: the precision every
// store keeps times at (DESIGN.md §11 carries times as Unix milliseconds;
// BSON dates hold milliseconds).
func Millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// Expired reports whether something expiring at expires has expired at now,
// both taken to the millisecond: at the instant of expiry it has.
func Expired(expires, now time.Time) bool { return Millis(now).Compare(Millis(expires)) >= 0 }
