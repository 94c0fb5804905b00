// Package mongo is lanpeer's persistent store (DESIGN.md §9, `--store
// mongodb://...`): a store.Store on a MongoDB database, with the
// go.mongodb.org/mongo-driver/v2 driver. It keeps every message until its
// room is deleted (no store.HistoryLimiter), and it passes the same
// conformance suite as store/memory (store/storetest).
//
// It needs no more than FerretDB with its SQLite backend provides: no
// transactions, no atomic $inc or findOneAndUpdate (FerretDB loses
// concurrent updates of one document), no change streams, no TTL indexes.
// Several Stores, in one process or in many, may share one database; every
// race between them is decided by an insert into a unique key.
//
// # Collections
//
// Every record's _id is a string, so that a point read is an index lookup
// on MongoDB and a filter FerretDB pushes down to SQLite (it pushes down
// nothing else). Numbers in keys are 16 hex digits, so string order is
// number order. A room's records are keyed by its id and an incarnation, 16
// random hex digits chosen when the room is created, so that a room created
// again with the id of a deleted one shares nothing with it.
//
//	collection     _id                                  other unique key       what decides
//	rooms          room                                 -                      who created the room
//	commits        room/inc/epoch                       -                      which commit starts an epoch; deletion
//	messages       room/inc/seq                         (rid, inc, mid)        sequence numbers; message ids
//	wrapped_keys   room/inc/epoch/member                -                      one key per member and epoch
//	member_state   room/inc/peer/since/leave            -                      the first leave request stands
//	               room/inc/peer/since/ack/epoch        -                      (acknowledgements, insert only)
//	key_packages   hash                                 -                      one key package per hash
//	directory      peer/issued                          -                      (records, insert only)
//
// Other indexes serve MongoDB's queries: messages by key package (sweep),
// commits and rooms by member peer and key package (ListRooms, sweep),
// everything of a room incarnation (deletion), key packages by owner and
// expiry, directory records by peer and by expiry.
//
// # How each rule holds without transactions
//
// Rooms. The room document is inserted once under the room's id and holds
// what never changes (master, suite, name, creation time, the create
// commit and first member list) and a hint: the epoch and hash of the
// latest commit. Each later commit is its own document under (room,
// incarnation, epoch), holding its member list; the insert that succeeds
// is the compare-and-set that wins the epoch, and a duplicate key makes
// ApplyCommit read the stored commit: the same hash is a retry, another is
// store.ErrConflict. After the insert the room document's hint moves
// forward. The hint can lag, when a process dies between the two writes
// or when two updates of the document cross (FerretDB can lose one), but
// it always names a stored commit; since the chain of commits is dense,
// every reader finds its end from the hint by probing the next epochs
// (usually one read that finds nothing) and repairs the hint. So the room's
// state is the commit chain's, whatever the hint says.
//
// Members. The member list is the latest commit's. Each entry carries the
// epoch its membership began (since); acknowledgements and leave requests
// are documents of their own, keyed by the membership, so that neither is a
// read-modify-write: a leave request is inserted (the first stands), an
// acknowledgement is inserted per epoch and the greatest counts. A member
// removed and invited again is a new membership and starts with neither.
//
// Messages. A message is inserted under (room, incarnation, seq); the
// unique _id keeps a sequence number to one message, and a unique index on
// (rid, inc, mid) keeps a message id to one message. Appends from one Store
// to one room go through a queue: one goroutine at a time takes every
// waiting message, reads the room (its epoch, and that it is not being
// deleted), and inserts the batch at the next numbers in one ordered
// InsertMany (a group commit). On a duplicate key the message id is looked
// up, never the error text read: if it is stored, the append is a retry
// (same sender: the stored message is returned) or store.ErrConflict
// (another sender); if not, another process took the number, and the
// message is tried again at the next one, at most Options.MaxAppendAttempts
// times. A number is tried only once the number before it is stored, so the
// sequence stays dense; the highest number a Store knows to be stored is
// kept in memory, and a lagging value costs one failed insert.
//
// Deletion. DeleteRoom inserts a tombstone at the epoch after the chain's
// end, which wins or loses against concurrent commits like a commit, and
// from then on the room is not found. Then it deletes the incarnation's
// messages, wrapped keys, member state, the room document, and last its
// commits with the tombstone.
//
// Expiry is decided in code from the caller's now: sweeps delete by a
// filter on the expiry field (FerretDB has no TTL indexes).
//
// # Crash windows and races across processes
//
//   - Between a commit's insert and the hint's update: readers find the
//     commit by probing and move the hint.
//   - Within a deletion, after the tombstone: the room is not found; the
//     next DeleteRoom or CreateRoom with its id finishes the deletion. A
//     process that dies after deleting the room document and before its
//     commits leaves those commits behind, unreachable.
//   - In one process, appends, commits and deletion of a room take turns
//     (a lock per room). Across processes, an append reads the room's epoch
//     and then inserts: an append that overlaps a commit made by another
//     process can be stored under the epoch that commit just ended, one
//     round trip after it, as if it had arrived just before it (the sender
//     sealed it before it knew of the commit). An append that overlaps a
//     deletion by another process can leave its message behind, unreachable.
//   - A caller whose context ends while its append waits in the queue gets
//     the context's error, and the message may still be stored: a retry
//     with the same id finds it.
//
// # Errors
//
// A server that cannot be reached, a broken connection or a refused
// operation is an *UnavailableError, which matches store.ErrUnavailable:
// whether a write happened is unknown, and a retry is safe because every
// write is idempotent. The driver reconnects by itself, so the same Store
// works again once the server is back. Open fails within
// Options.ServerSelectionTimeout when no server answers.
//
// # Write concern
//
// Every write uses Options.WriteConcern, by default {w: "majority", j:
// true}: an append is acknowledged only once a majority of the replica set
// has it in its journal (a standalone server: its own journal). FerretDB
// accepts write concerns and ignores them; its SQLite backend commits each
// write before answering, and tools/ferretdb runs SQLite in WAL mode with
// synchronous=FULL, so an acknowledged write is on disk.
//
// # On FerretDB
//
// FerretDB's SQLite backend reads every document of a collection for any
// query but a point read by string _id, and even a point read scans the
// table in SQLite (its _id index is not used). The store is written so
// that an append costs point reads of the small rooms and commits
// collections and one insert; reading a page of messages scans the
// collection up to the page. That is fast enough for tests; a deployment
// uses MongoDB.
package mongo
