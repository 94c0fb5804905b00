package store

import (
	"context"
	"time"
)

// Store is everything a host keeps: key packages, rooms with their members
// and commits, wrapped room keys, messages and directory records. Every
// method takes a context; a store whose backend is down returns an error
// wrapping ErrUnavailable. Values passed in and returned are copies: the
// store keeps no reference to a caller's slices, and a caller changing a
// returned blob changes nothing stored. Implementations are safe for
// concurrent use.
//
// The conformance suite in store/storetest states every rule below as a
// test; an implementation passes it.
type Store interface {
	KeyPackages
	Rooms
	WrappedKeys
	Messages
	Directory

	// Close releases the store. It is idempotent; afterwards every other
	// method returns ErrClosed.
	Close() error
}

// KeyPackages stores peers' key packages (DESIGN.md §5).
//
// Expiry is decided by the caller's clock, passed as now: a key package
// has expired once now reaches Expires (to the millisecond, see Expired).
type KeyPackages interface {
	// PutKeyPackage stores a verified key package under its hash. Putting
	// a stored key package again succeeds and changes nothing; the same
	// hash with other contents is ErrConflict. A key package already
	// expired at now is ErrStale. An owner with MaxKeyPackagesPerOwner
	// unexpired key packages gets ErrFull for a new one.
	PutKeyPackage(ctx context.Context, kp KeyPackage, now time.Time) error

	// GetKeyPackage returns the key package with this hash, expired or
	// not, as long as it is stored (an expired key package that a stored
	// message names stays stored, so history stays verifiable), or
	// ErrNotFound.
	GetKeyPackage(ctx context.Context, hash [32]byte) (KeyPackage, error)

	// LatestKeyPackage returns owner's unexpired key package with the
	// latest expiry (of equal expiries, the one whose hash is greater
	// byte-wise), or ErrNotFound when owner has none unexpired at now.
	LatestKeyPackage(ctx context.Context, owner PeerID, now time.Time) (KeyPackage, error)

	// SweepKeyPackages deletes the key packages expired at now that no
	// stored message and no current member names, and returns how many
	// it deleted. Callers pass a now a little behind their clock (a
	// minute), so that a message the host accepted just before its key
	// package expired is stored before the key package can go.
	SweepKeyPackages(ctx context.Context, now time.Time) (int, error)
}

// Rooms stores rooms, their members and their commit chain.
//
// A room's state changes only by commits: CreateRoom stores the first,
// ApplyCommit each next one, as a compare-and-set on the room's epoch. A
// store without transactions makes a commit's unique (room, epoch) the
// point where concurrent commits are decided; see the package
// documentation.
type Rooms interface {
	// CreateRoom stores a new room, its create commit (at r.Epoch, hash
	// r.Head) and its first member list, which has exactly one master,
	// r.Master (CheckRoom states every rule). A room with r.ID that was
	// created by the same commit (same create hash) makes this an
	// idempotent retry: it succeeds and changes nothing. Any other room
	// with r.ID is ErrExists.
	CreateRoom(ctx context.Context, r Room, create Commit, members []Member) error

	// ApplyCommit moves the room from fromEpoch to c.Epoch, which must be
	// fromEpoch+1: it stores c, makes c.Hash the room's head and members
	// its member list, in that order given. It succeeds only while the
	// room's epoch is fromEpoch: otherwise another commit won and it is
	// ErrConflict, except that re-applying the commit that is stored at
	// c.Epoch (same hash) succeeds and changes nothing. The master never
	// changes. A peer that stays a member keeps its acknowledged epoch
	// (the greater of the stored one and the one given) and its leave
	// request; a peer that is not in members loses both. It returns the
	// room as it is afterwards.
	ApplyCommit(ctx context.Context, room RoomID, fromEpoch uint64, c Commit, members []Member) (Room, error)

	// RecordLeave stores a member's signed leave request (DESIGN.md §5).
	// The host applies a leave at once: from then on it treats the member
	// as gone (Member.Leave is set), and the master's client turns the
	// request into a remove commit, whose ApplyCommit drops the member
	// and its request. Until then the member stays in the member list so
	// that the list keeps matching the latest commit. The master cannot
	// leave (ErrInvalid); a peer that is not a member is ErrNotFound. A
	// member that has already left keeps its first request and the call
	// succeeds.
	RecordLeave(ctx context.Context, room RoomID, peer PeerID, request []byte) error

	// AckEpoch records that peer holds the room key of epoch. It is
	// monotonic: an epoch at or below the acknowledged one changes
	// nothing and succeeds. An epoch beyond the room's current one is
	// ErrInvalid; a peer that is not a member is ErrNotFound.
	AckEpoch(ctx context.Context, room RoomID, peer PeerID, epoch uint64) error

	// DeleteRoom deletes the room and everything of it: members, commits,
	// wrapped keys, messages. A room that does not exist (also one already
	// deleted) is ErrNotFound, which a retrying caller may take as done.
	DeleteRoom(ctx context.Context, room RoomID) error

	// GetRoom returns the room's current state, or ErrNotFound.
	GetRoom(ctx context.Context, room RoomID) (Room, error)

	// ListRooms returns the rooms peer is a member of (also those it has
	// asked to leave and not yet been removed from), in byte order of
	// their ids, starting after the id after (the zero id starts at the
	// beginning), at most limit (CheckLimit) of them. A peer in no room
	// gets an empty list.
	ListRooms(ctx context.Context, peer PeerID, after RoomID, limit int) ([]Room, error)

	// Members returns the room's current member list in the order the
	// latest commit gave it, or ErrNotFound for no such room.
	Members(ctx context.Context, room RoomID) ([]Member, error)

	// GetMember returns one member of the room, or ErrNotFound when the
	// room does not exist or peer is not a member.
	GetMember(ctx context.Context, room RoomID, peer PeerID) (Member, error)

	// GetCommit returns the room's commit that started epoch, or
	// ErrNotFound.
	GetCommit(ctx context.Context, room RoomID, epoch uint64) (Commit, error)

	// ListCommits returns the room's commits with epochs after
	// afterEpoch, in epoch order, at most limit (CheckLimit) of them, or
	// ErrNotFound for no such room.
	ListCommits(ctx context.Context, room RoomID, afterEpoch uint64, limit int) ([]Commit, error)
}

// WrappedKeys stores room keys wrapped for members, one per member per
// epoch.
type WrappedKeys interface {
	// PutWrappedKey stores wk. The room must exist and have a commit at
	// wk.Epoch (ErrNotFound otherwise). Putting the same wrapped key again
	// succeeds and changes nothing; a different one for the same room,
	// epoch and member is ErrConflict. The store does not check that
	// wk.Member is a member: that is the host's rule.
	PutWrappedKey(ctx context.Context, wk WrappedKey) error

	// GetWrappedKey returns the key wrapped for member at epoch, or
	// ErrNotFound.
	GetWrappedKey(ctx context.Context, room RoomID, epoch uint64, member PeerID) (WrappedKey, error)
}

// Messages stores room messages under dense per-room sequence numbers.
type Messages interface {
	// AppendMessage stores m under the room's next sequence number (1 for
	// the first message, then one more each time, no gaps and no
	// duplicates however many append at once) and returns it as stored.
	//
	// It is idempotent by (room, sender, message id): if m.Sender already
	// stored a message with m.ID in the room, it returns that message
	// (with its sequence number, epoch and blob, which may differ from
	// m's: a retry is re-encrypted) and stores nothing. The same id from
	// another sender is ErrConflict.
	//
	// A new message must be under the room's current epoch: an older one
	// is ErrStale (the sender fetches the new key and retries with the
	// same id), a later one ErrInvalid. The room must exist (ErrNotFound).
	// The store does not check that the sender is a member, nor that the
	// key package exists: those are the host's rules.
	//
	// A store with bounded history (HistoryLimiter) drops the room's
	// oldest messages beyond its bound; idempotency by message id holds
	// for the messages it keeps.
	AppendMessage(ctx context.Context, m Message) (Message, error)

	// ReadMessages returns the room's messages with sequence numbers after
	// after, in order, at most limit (CheckLimit) of them; an empty list
	// when after is the last sequence number. A cursor past the last
	// sequence number is ErrInvalid (it cannot come from this room). When
	// messages after the cursor are no longer kept, it returns no messages
	// and a *HistoryTrimmedError naming the oldest kept: the caller reads
	// on from there, so a gap is never silent. No such room is ErrNotFound.
	ReadMessages(ctx context.Context, room RoomID, after uint64, limit int) ([]Message, error)

	// MessageSpan returns the range of sequence numbers the room's history
	// holds, or ErrNotFound for no such room. A poller compares Last with
	// its cursor to learn of new messages cheaply.
	MessageSpan(ctx context.Context, room RoomID) (Span, error)
}

// Directory stores peers' signed, expiring directory records (DESIGN.md
// §8), one per peer. Expiry is decided by the caller's clock, passed as now.
type Directory interface {
	// PutDirectoryRecord stores rec unless the stored record for rec.Peer
	// was issued at the same time or later (ErrStale); the identical
	// record again succeeds and changes nothing. A record already expired
	// at now is ErrStale.
	PutDirectoryRecord(ctx context.Context, rec DirectoryRecord, now time.Time) error

	// GetDirectoryRecord returns peer's record if it is unexpired at now,
	// else ErrNotFound.
	GetDirectoryRecord(ctx context.Context, peer PeerID, now time.Time) (DirectoryRecord, error)

	// SweepDirectory deletes the records expired at now and returns how
	// many it deleted.
	SweepDirectory(ctx context.Context, now time.Time) (int, error)
}

// HistoryLimiter is implemented by a store that keeps at most
// HistoryPerRoom messages per room and drops the oldest beyond that (the
// memory store). A store that does not implement it keeps every message
// until its room is deleted.
type HistoryLimiter interface {
	HistoryPerRoom() int
}
