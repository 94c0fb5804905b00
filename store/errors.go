package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every Store method returns errors that wrap one of these
// (test with errors.Is), a context error, or for a backend that failed, an
// error wrapping ErrUnavailable.
var (
	// ErrNotFound: no such room, member, commit, key package, wrapped key,
	// message or directory record (or, for key packages and directory
	// records where the method says so, none unexpired).
	ErrNotFound = errors.New("store: not found")

	// ErrExists: CreateRoom with the id of a room that is already stored
	// under another create commit.
	ErrExists = errors.New("store: already exists")

	// ErrConflict: the write contradicts what is stored. ApplyCommit from
	// an epoch that is no longer the room's current one (another commit
	// won), a second, different wrapped key for one member and epoch, a
	// message id already used in the room by another sender, a key
	// package hash stored with other contents. An identical retry of a
	// stored write is never a conflict: it succeeds and changes nothing.
	ErrConflict = errors.New("store: conflicts with a stored record")

	// ErrStale: the write is older than what the store holds. A message
	// under an epoch older than the room's current one (the sender fetches
	// the new key and retries under the same message id), a directory
	// record not issued after the stored one, a key package or directory
	// record that has already expired.
	ErrStale = errors.New("store: older than the stored state")

	// ErrInvalid: a value breaks the store's own rules: a zero id, an
	// unknown role, a member list without exactly one master or with a
	// peer twice, a commit that does not start the next epoch, a cursor
	// past the last message, a limit below 1. The error names the rule.
	ErrInvalid = errors.New("store: invalid")

	// ErrTooLarge: a blob, name or list is over its bound (the Max*
	// constants). Returned as a *TooLargeError carrying the sizes.
	ErrTooLarge = errors.New("store: too large")

	// ErrFull: a count bound is reached: key packages per owner
	// (MaxKeyPackagesPerOwner) in every store, and the memory store's
	// own caps on rooms, key packages, directory records and bytes.
	// Nothing was written; the caller may try again after something
	// expires or is deleted.
	ErrFull = errors.New("store: full")

	// ErrHistoryTrimmed: ReadMessages was asked for messages the store no
	// longer keeps (a store with bounded history, such as store/memory).
	// Returned as a *HistoryTrimmedError that says where history begins.
	ErrHistoryTrimmed = errors.New("store: history trimmed")

	// ErrUnavailable: the store's backend cannot be reached or failed
	// (a persistent store whose server is down). Nothing is known about
	// whether the write happened; retrying is safe because every write is
	// idempotent. The memory store never returns it.
	ErrUnavailable = errors.New("store: backend unavailable")

	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// TooLargeError reports a value over one of the store's bounds. It matches
// ErrTooLarge with errors.Is.
type TooLargeError struct {
	What string // what was too large, e.g. "message blob"
	Size int    // its size (bytes, or entries for a list)
	Max  int    // the bound
}

// Error names what was too large and by how much.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("store: too large: %s of %d exceeds maximum of %d", e.What, e.Size, e.Max)
}

// Is reports whether target is ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// HistoryTrimmedError reports a ReadMessages cursor before the oldest
// message the store keeps: the messages after the cursor and before Oldest
// are gone. It matches ErrHistoryTrimmed with errors.Is. A reader that
// accepts the gap reads on with after = Oldest-1; no message is returned
// with this error, so a gap is never silent.
type HistoryTrimmedError struct {
	Room   RoomID
	After  uint64 // the cursor asked for
	Oldest uint64 // the sequence number of the oldest message kept
}

// Error names the oldest message kept and the cursor to read on from.
func (e *HistoryTrimmedError) Error() string {
	return fmt.Sprintf("store: history trimmed: room %s keeps messages from %d on, cursor %d is before them (read after %d to go on)",
		e.Room, e.Oldest, e.After, e.Oldest-1)
}

// Is reports whether target is ErrHistoryTrimmed.
func (e *HistoryTrimmedError) Is(target error) bool { return target == ErrHistoryTrimmed }

// invalid returns an error wrapping ErrInvalid that names the rule broken.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
