package store

import (
	"math"
	"unicode/utf8"
)

// Bounds every store enforces, whatever its backend, so that the host
// behaves the same on each. Values over them are refused with a
// *TooLargeError (sizes, list lengths) or ErrFull (counts) before anything
// is written. They are ceilings for the store's own safety; the host's
// policy (room size flags, frame sizes) is usually tighter.
const (
	// MaxRoomNameSize is the longest room name, in bytes of UTF-8.
	MaxRoomNameSize = 256

	// MaxKeyPackageSize bounds a key package blob. The largest key
	// package (an MLKEM768X25519 HPKE key, an Ed25519 signing key, an
	// RSA-4096 identity key and signature, an expiry) is about 2.5 KiB.
	MaxKeyPackageSize = 16 << 10

	// MaxCommitSize bounds a commit blob. A commit may list every member
	// of a large room.
	MaxCommitSize = 1 << 20

	// MaxMembers bounds a room's member list. Rooms hold 1,000 members by
	// default (DESIGN.md §5; a flag raises that); this is the ceiling.
	MaxMembers = 10000

	// MaxWrappedKeySize bounds a wrapped key blob (an MLKEM768X25519 enc
	// of 1,120 bytes, the 128-byte sealed key, an Ed25519 signature and
	// the context fields fit with room to spare).
	MaxWrappedKeySize = 8 << 10

	// MaxMessageSize bounds a room message blob: a message travels in one
	// control frame (64 KiB) and is stored as it travelled.
	MaxMessageSize = 64 << 10

	// MaxLeaveRequestSize bounds a signed leave request blob.
	MaxLeaveRequestSize = 4 << 10

	// MaxDirectoryRecordSize bounds a directory record blob.
	MaxDirectoryRecordSize = 16 << 10

	// MaxKeyPackagesPerOwner bounds the unexpired key packages one peer
	// has stored: a peer reuses its key package until it expires
	// (DESIGN.md §5), so a peer over this bound is misbehaving, and
	// without it one peer could fill the store. A put over it is ErrFull.
	MaxKeyPackagesPerOwner = 32

	// MaxListLimit is the largest limit a listing method accepts
	// (ReadMessages, ListCommits, ListRooms).
	MaxListLimit = 1000
)

// The Check functions hold the static rules of each record: what can be
// decided from the value alone. Implementations call them first, so that
// every store refuses the same values with the same errors; the rules that
// depend on stored state (epochs, idempotency, expiry) are each method's.

// CheckKeyPackage checks a key package for PutKeyPackage.
func CheckKeyPackage(kp KeyPackage) error {
	if kp.Hash == [32]byte{} {
		return invalid("key package hash is zero")
	}
	if kp.Owner.IsZero() {
		return invalid("key package owner is zero")
	}
	if kp.Expires.IsZero() {
		return invalid("key package has no expiry")
	}
	return checkBlob("key package blob", kp.Blob, MaxKeyPackageSize)
}

// CheckRoom checks CreateRoom's arguments: the room, its create commit and
// its first member list.
func CheckRoom(r Room, create Commit, members []Member) error {
	if r.ID.IsZero() {
		return invalid("room id is zero")
	}
	if r.Master.IsZero() {
		return invalid("room master is zero")
	}
	if !utf8.ValidString(r.Name) {
		return invalid("room name is not valid UTF-8")
	}
	if len(r.Name) > MaxRoomNameSize {
		return &TooLargeError{What: "room name", Size: len(r.Name), Max: MaxRoomNameSize}
	}
	if r.Created.IsZero() {
		return invalid("room has no creation time")
	}
	if create.Room != r.ID || create.Epoch != r.Epoch || create.Hash != r.Head {
		return invalid("create commit does not match the room's id, epoch and head")
	}
	if err := checkCommitBody(create); err != nil {
		return err
	}
	return CheckMembers(r.Master, r.Epoch, members)
}

// CheckCommit checks ApplyCommit's commit: it belongs to room and starts
// the epoch after fromEpoch.
func CheckCommit(room RoomID, fromEpoch uint64, c Commit) error {
	if room.IsZero() {
		return invalid("room id is zero")
	}
	if c.Room != room {
		return invalid("commit belongs to room %s, not %s", c.Room, room)
	}
	if fromEpoch == math.MaxUint64 || c.Epoch != fromEpoch+1 {
		return invalid("commit starts epoch %d, not the epoch after %d", c.Epoch, fromEpoch)
	}
	return checkCommitBody(c)
}

func checkCommitBody(c Commit) error {
	if c.Hash == [32]byte{} {
		return invalid("commit hash is zero")
	}
	return checkBlob("commit blob", c.Blob, MaxCommitSize)
}

// CheckMembers checks a member list for a room whose master is master, at
// epoch: between one and MaxMembers members, each with a peer, a role and a
// key package hash, no peer twice, exactly one master and it is master, and
// no acknowledged epoch beyond epoch.
func CheckMembers(master PeerID, epoch uint64, members []Member) error {
	if len(members) == 0 {
		return invalid("member list is empty")
	}
	if len(members) > MaxMembers {
		return &TooLargeError{What: "member list", Size: len(members), Max: MaxMembers}
	}
	seen := make(map[PeerID]struct{}, len(members))
	masters := 0
	for _, m := range members {
		if m.Peer.IsZero() {
			return invalid("member peer is zero")
		}
		if !m.Role.Valid() {
			return invalid("member %s has unknown role %v", m.Peer.Short(), m.Role)
		}
		if m.KeyPackageHash == [32]byte{} {
			return invalid("member %s has no key package hash", m.Peer.Short())
		}
		if m.AckedEpoch > epoch {
			return invalid("member %s acknowledged epoch %d, beyond epoch %d", m.Peer.Short(), m.AckedEpoch, epoch)
		}
		if _, dup := seen[m.Peer]; dup {
			return invalid("member %s is listed twice", m.Peer.Short())
		}
		seen[m.Peer] = struct{}{}
		if m.Role == RoleMaster {
			masters++
			if m.Peer != master {
				return invalid("member %s has the master role, but the room's master is %s", m.Peer.Short(), master.Short())
			}
		}
	}
	if masters != 1 {
		return invalid("member list has %d masters, not 1", masters)
	}
	return nil
}

// CheckWrappedKey checks a wrapped key for PutWrappedKey.
func CheckWrappedKey(wk WrappedKey) error {
	if wk.Room.IsZero() {
		return invalid("room id is zero")
	}
	if wk.Member.IsZero() {
		return invalid("wrapped key member is zero")
	}
	return checkBlob("wrapped key blob", wk.Blob, MaxWrappedKeySize)
}

// CheckMessage checks a message for AppendMessage (Seq is ignored).
func CheckMessage(m Message) error {
	if m.Room.IsZero() {
		return invalid("room id is zero")
	}
	if m.ID.IsZero() {
		return invalid("message id is zero")
	}
	if m.Sender.IsZero() {
		return invalid("message sender is zero")
	}
	if m.KeyPackageHash == [32]byte{} {
		return invalid("message names no key package")
	}
	if m.Stored.IsZero() {
		return invalid("message has no stored time")
	}
	return checkBlob("message blob", m.Blob, MaxMessageSize)
}

// CheckLeave checks a leave request blob for RecordLeave.
func CheckLeave(room RoomID, peer PeerID, request []byte) error {
	if room.IsZero() {
		return invalid("room id is zero")
	}
	if peer.IsZero() {
		return invalid("leaving peer is zero")
	}
	return checkBlob("leave request blob", request, MaxLeaveRequestSize)
}

// CheckDirectoryRecord checks a directory record for PutDirectoryRecord:
// it expires after it was issued (to the millisecond).
func CheckDirectoryRecord(rec DirectoryRecord) error {
	if rec.Peer.IsZero() {
		return invalid("directory record peer is zero")
	}
	if rec.Issued.IsZero() || rec.Expires.IsZero() {
		return invalid("directory record needs both issue and expiry times")
	}
	if !Millis(rec.Expires).After(Millis(rec.Issued)) {
		return invalid("directory record expires before it was issued")
	}
	return checkBlob("directory record blob", rec.Blob, MaxDirectoryRecordSize)
}

// CheckLimit checks a listing limit: 1 to MaxListLimit.
func CheckLimit(limit int) error {
	if limit < 1 {
		return invalid("limit %d is below 1", limit)
	}
	if limit > MaxListLimit {
		return &TooLargeError{What: "limit", Size: limit, Max: MaxListLimit}
	}
	return nil
}

func checkBlob(what string, b []byte, maxSize int) error {
	if len(b) == 0 {
		return invalid("%s is empty", what)
	}
	if len(b) > maxSize {
		return &TooLargeError{What: what, Size: len(b), Max: maxSize}
	}
	return nil
}
