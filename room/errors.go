package room

import "errors"

// Errors of the room objects. Every refusal matches exactly one of them
// with errors.Is; the wrapping message says which field or rule failed.
// docs/PROTOCOL.md §16.9 says what each means and who is to blame.
var (
	// ErrMalformed is a blob that is not one object of the expected
	// purpose: a length past the end, a field over its bound, an unknown
	// suite or KEM, trailing bytes.
	ErrMalformed = errors.New("room: malformed object")
	// ErrBadSignature is a signature that does not verify under the key
	// it must come from (for the object's purpose: a key package presented
	// as a commit fails here too).
	ErrBadSignature = errors.New("room: signature does not verify")

	// ErrKeyPackageExpired is a key package past its expiry.
	ErrKeyPackageExpired = errors.New("room: key package expired")
	// ErrKeyPackageNotYetValid is a key package created in the future
	// (beyond KeyPackageClockSkew).
	ErrKeyPackageNotYetValid = errors.New("room: key package not yet valid")
	// ErrWrongKeyPackage is a key package other than the one an object
	// names: not the one a commit lists for the member, not the signer's
	// own, or not owned by the sender a message claims.
	ErrWrongKeyPackage = errors.New("room: wrong key package")

	// ErrForgedCommit is a commit the room's master did not sign: the host
	// (or anyone else) made it up.
	ErrForgedCommit = errors.New("room: commit not signed by the room's master")
	// ErrCommitGap is a commit more than one epoch past the verified head:
	// the host dropped the commits in between.
	ErrCommitGap = errors.New("room: commit skips epochs (the host dropped commits)")
	// ErrRollback is a commit for an epoch at or below the verified head
	// that is not the head itself: the host rolled the room back or forked
	// it.
	ErrRollback = errors.New("room: commit for an epoch already passed (the host rolled the room back)")
	// ErrChainBroken is a commit for the next epoch that does not carry the
	// verified head's hash, or a message naming a commit hash that is not
	// the one the member verified for that epoch.
	ErrChainBroken = errors.New("room: commit hash does not chain to the verified commits")
	// ErrCommitKnown is the verified head presented again; nothing changes.
	ErrCommitKnown = errors.New("room: commit already applied")
	// ErrBadCommit is a master-signed commit that breaks the room's rules:
	// a member list that does not match its operation, a changed name,
	// suite or master, a master missing from the list.
	ErrBadCommit = errors.New("room: commit breaks the room's rules")
	// ErrWrongRoom is an object of another room.
	ErrWrongRoom = errors.New("room: object belongs to another room")

	// ErrNotMember is a peer that is not a member of the epoch concerned:
	// a sender, the state's own peer, a peer to remove.
	ErrNotMember = errors.New("room: not a member of the epoch")
	// ErrAlreadyMember is an invitee that is already a member.
	ErrAlreadyMember = errors.New("room: already a member")
	// ErrTooManyMembers is a member list over Limits.MaxMembers.
	ErrTooManyMembers = errors.New("room: too many members")
	// ErrNotMaster is a master-only operation asked of anyone else.
	ErrNotMaster = errors.New("room: only the room's master may do this")
	// ErrMasterCannotLeave is a leave or remove of the master: the master
	// deletes the room instead.
	ErrMasterCannotLeave = errors.New("room: the master cannot leave its room; delete the room instead")
	// ErrMissingKeyPackage is a member of a new epoch for whom the master
	// was given no valid key package to wrap the room key to.
	ErrMissingKeyPackage = errors.New("room: no valid key package for a member")
	// ErrStaleLeave is a leave request signed before the member's latest
	// joining, or for an epoch the room has not reached.
	ErrStaleLeave = errors.New("room: leave request does not fit the member's current membership")

	// ErrStaleEpoch is a new message under an epoch older than the
	// member's verified head: the host accepted a send it must refuse.
	ErrStaleEpoch = errors.New("room: new message under an epoch older than the verified head")
	// ErrUnknownEpoch is an epoch the member has not verified: later than
	// its head (apply the commits first) or earlier than it remembers.
	ErrUnknownEpoch = errors.New("room: epoch not in the member's verified chain")
	// ErrNoEpochKey is an epoch whose room key the member does not hold:
	// its wrapped key is not opened yet, or the member was not in it.
	ErrNoEpochKey = errors.New("room: room key of the epoch not held")
	// ErrKeyConflict is a master-signed wrapped key that opens to another
	// room key than the one already held for its epoch.
	ErrKeyConflict = errors.New("room: two different room keys for one epoch")
	// ErrWrongRecipient is a wrapped key addressed to another member.
	ErrWrongRecipient = errors.New("room: wrapped key addressed to another member")
	// ErrOpen is sealed data that does not open: a wrapped key or a
	// message box that fails authentication under the key it names.
	ErrOpen = errors.New("room: sealed data does not open")
	// ErrBadText is a message text or room name that breaks the text rule
	// or its size bound.
	ErrBadText = errors.New("room: text not allowed")
)
