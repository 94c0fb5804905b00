// Package room holds the end-to-end cryptographic objects of a lanpeer room
// and the member-side rules that check them (DESIGN.md §5, docs/PROTOCOL.md
// §16). It is pure code: no network, no store. The hosting peer stores and
// forwards these objects; it is trusted neither for confidentiality nor for
// membership, so every rule here is one a member's client applies itself.
//
// # Objects
//
// Five objects travel as signed blobs, unchanged from signer to verifier,
// and are checked before they are parsed (DESIGN.md §11):
//
//   - a key package ([KeyPackage]), signed by its owner's identity key: an
//     HPKE public key to wrap room keys to and an Ed25519 message-signing
//     key, with an expiry;
//   - a commit ([Commit]), signed by the room's master: one epoch of the
//     room, chained to the previous one by hash, with the whole member list;
//   - a wrapped key ([WrappedKey]), signed by the master: one epoch's room
//     key sealed to one member's key package;
//   - a message ([Message]), sealed under the sender's per-sender key and
//     signed with its message-signing key;
//   - a leave request ([LeaveRequest]), signed by the leaving member.
//
// Every blob has the same self-delimiting form (see [SplitBlob]): the
// canonical layout and the signature over it, each behind a 4-byte
// big-endian length. A key package's or commit's hash is the SHA-256 of its
// blob as it travels.
//
// # Member state
//
// [MemberState] is what a member persists per room: the chain of epochs it
// verified, the member list and commit hash of each, and the room keys it
// opened. [MemberState.ApplyCommit] accepts only the master's next commit;
// anything else is a typed error naming what the host did wrong
// ([ErrForgedCommit], [ErrCommitGap], [ErrRollback], [ErrChainBroken]).
// Messages are sealed with [MemberState.SealMessage] and opened with
// [MemberState.OpenMessage] (new messages: the member's head epoch only) or
// [MemberState.OpenHistory] (any epoch the member holds).
//
// The master's client proposes commits with [NewRoom], [MemberState.Invite],
// [MemberState.Remove] and [MemberState.Rotate]; a [Proposal] holds the
// signed commit and one wrapped key per member of the new epoch. Nothing
// changes in the master's own state until it applies its proposal as every
// member does, once the host has accepted it.
//
// # Host
//
// [Host] is the hosting peer's side: the rules it applies, over a
// store.Store, to the objects members and masters hand it (who may do
// what, which commits, wrapped keys and messages it accepts). It
// verifies every object it stores, but a member never believes it alone.
//
// room imports canon, cryptosuite and store (for the Host) only; it never
// imports wire, node or session.
package room
