// Package store defines what a lanpeer host keeps and the rules every
// backend follows (DESIGN.md §9): the [Store] interface, its record types,
// its bounds and its errors. store/memory is the default, volatile backend;
// store/storetest is the conformance suite every backend passes.
//
// The store imports nothing of lanpeer above cryptosuite: it keeps domain
// values and serves them, it never calls up.
//
// # What is stored
//
// Every signed object travels as a blob and is stored as it travelled: key
// packages, commits, wrapped keys, messages, leave requests and directory
// records. The store never parses a blob; beside each it keeps the few
// fields the host indexes it by (ids, owner, epoch, sequence number,
// expiry), which the host took from the blob after verifying it. A room
// message's blob is ciphertext sealed by its sender: the host, and so the
// store, sees who sent what to which room under which epoch and when, and
// how long it is, but never the text.
//
// # Rules every backend follows
//
//   - Bounds: every blob, name and list has a maximum (the Max* constants)
//     and the Check functions hold every rule that needs no stored state.
//     A value over a bound is a [*TooLargeError]; a count bound is
//     [ErrFull]; nothing is written in either case.
//   - Idempotency: every write a client may retry can be retried. An
//     identical retry succeeds and changes nothing (PutKeyPackage,
//     CreateRoom, ApplyCommit, RecordLeave, AckEpoch, PutWrappedKey,
//     AppendMessage by (room, sender, message id), PutDirectoryRecord);
//     a different write under the same identity is [ErrConflict] (or
//     [ErrExists], [ErrStale] where the method says so), never silently
//     merged.
//   - Time: expiry is decided in code from the caller's now, never by the
//     backend (FerretDB has no TTL indexes); times are kept to the
//     millisecond ([Millis]).
//   - Copies: nothing returned aliases what is stored.
//
// # Atomicity
//
// In store/memory each method is atomic and the methods are linearizable:
// each runs under its room's lock (or the key-package or directory lock).
//
// A store on a database without multi-document transactions, without an
// atomic $inc or findOneAndUpdate, without change streams and without TTL
// indexes (FerretDB, ENVIRONMENT.md) can still follow every rule: each rule
// that concurrent writers contend for (sequence numbers, message ids, the
// commit that starts an epoch, one wrapped key per member and epoch) is
// decided by one insert into a unique index, and the rest need no more than
// a filtered write:
//
//   - AppendMessage: unique indexes on (room, seq) and (room, message id).
//     Look the message id up first (a retry returns the stored message;
//     another sender is ErrConflict); check the room's epoch; read the
//     room's highest seq and insert at seq+1. On a duplicate-key error,
//     look the message id up again, never reading the error text: if it is
//     now stored, a concurrent retry won (same sender: return it; another
//     sender: ErrConflict); if not, the seq was taken: read the highest
//     seq again and retry, a bounded number of times. The acknowledgement
//     is the insert's, so nothing acknowledged is lost.
//   - ApplyCommit: a unique index on the commits' (room, epoch) is the
//     compare-and-set. Insert the commit with the new member list inside
//     the commit's document; the insert that succeeds won, a duplicate key
//     is ErrConflict unless the stored commit has the same hash. Then
//     update the room document (head, epoch) with a filter on the old
//     epoch. If a process dies between the two writes, the commit log is
//     ahead of the room document; readers take the room's state from its
//     latest commit, and the next write rolls the document forward. Acks
//     and leave requests live in their own documents keyed by (room,
//     peer), merged into Member on read and dropped for peers the latest
//     member list no longer holds.
//   - CreateRoom: insert the create commit, then the room; unique room id.
//   - PutWrappedKey: unique (room, epoch, member); on a duplicate key read
//     the stored one and compare.
//   - PutKeyPackage: unique hash; the per-owner count is checked before
//     the insert, so concurrent puts of one owner may pass the bound by
//     a few, which bounds what one peer can store all the same.
//   - PutDirectoryRecord: unique peer; replace with a filter on an older
//     issue time; when nothing matched, read the stored record to tell
//     idempotent from ErrStale.
//   - Expiry: delete by a filter on the expiry field from the caller's now.
//
// A backend may keep every message (it does not implement
// [HistoryLimiter]); one that drops old messages implements it, and its
// ReadMessages says so with a [*HistoryTrimmedError] rather than leaving a
// silent gap.
//
// # Leaving a room
//
// A leave request is applied at once by the host ([Rooms.RecordLeave]) but
// does not change the member list, which always equals the latest commit's:
// the member is marked as gone and the master's client turns the request
// into a remove commit. So the member list, the commit chain the members
// verify and the host's view never disagree, and a backend can rebuild the
// member list from the latest commit alone.
package store
