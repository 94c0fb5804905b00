// Package memory is lanpeer's default store: everything in process memory,
// gone when the process ends (DESIGN.md §9, `--store memory`), with bounded
// history per room.
//
// # Bounds
//
// Each room keeps its newest [Options.HistoryPerRoom] messages; appending
// beyond that drops the oldest, and a read from a cursor before the oldest
// kept message gets a *store.HistoryTrimmedError instead of a silent gap.
// Message ids stay idempotent for as long as their message is kept.
//
// Rooms, key packages and directory records are capped in number, and the
// blob bytes held in all (messages, commits, wrapped keys, leave requests,
// key packages, directory records) by [Options.MaxBytes]; a write past a
// cap is store.ErrFull and writes nothing. Commits and wrapped keys are kept
// for every epoch until the room is deleted, so members can read the
// history they were present for.
//
// # Concurrency
//
// A Store is safe for concurrent use; each method is atomic. Each room has
// its own lock, so appends to different rooms do not wait for each other.
// Lock order: the room table, then a room, then the peer index or the key
// package table (leaves); the directory has its own lock.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lanpeer/lanpeer/store"
)

// Defaults for the zero fields of Options.
const (
	// DefaultHistoryPerRoom is how many messages a room keeps when
	// Options.HistoryPerRoom is 0.
	DefaultHistoryPerRoom = 10000
	// DefaultMaxRooms caps the rooms held when Options.MaxRooms is 0.
	DefaultMaxRooms = 10000
	// DefaultMaxKeyPackages caps the key packages held when
	// Options.MaxKeyPackages is 0.
	DefaultMaxKeyPackages = 100000
	// DefaultMaxDirectoryRecords caps the directory records held when
	// Options.MaxDirectoryRecords is 0.
	DefaultMaxDirectoryRecords = 100000
	// DefaultMaxBytes caps the blob bytes held when Options.MaxBytes is 0.
	DefaultMaxBytes = 1 << 30
)

// Options configures a Store. The zero value takes every default.
type Options struct {
	// HistoryPerRoom is how many messages each room keeps (`listen
	// --history N`); the oldest go beyond it.
	HistoryPerRoom int
	// MaxRooms caps the number of rooms.
	MaxRooms int
	// MaxKeyPackages caps the number of key packages.
	MaxKeyPackages int
	// MaxDirectoryRecords caps the number of directory records.
	MaxDirectoryRecords int
	// MaxBytes caps the blob bytes held in total.
	MaxBytes int64
}

// ErrBadOptions is returned by New for a negative option.
var ErrBadOptions = errors.New("memory: options must not be negative")

// Store is the in-memory store. Create it with New.
type Store struct {
	opts   Options
	closed atomic.Bool
	bytes  atomic.Int64 // blob bytes held, against opts.MaxBytes

	mu    sync.RWMutex // guards rooms (the table, not the rooms' state)
	rooms map[store.RoomID]*room

	idxMu  sync.Mutex // guards byPeer; a leaf lock
	byPeer map[store.PeerID]map[store.RoomID]struct{}

	kpMu sync.Mutex // guards the key package maps and kpRefs; a leaf lock
	kps  map[[32]byte]store.KeyPackage
	// kpOwned lists every stored key package of an owner.
	kpOwned map[store.PeerID]map[[32]byte]struct{}
	// kpRefs counts the kept messages and current members naming a key
	// package hash, stored or not; SweepKeyPackages keeps a key package
	// while its count is above zero.
	kpRefs map[[32]byte]int

	dirMu sync.Mutex // guards dir
	dir   map[store.PeerID]store.DirectoryRecord
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.HistoryLimiter = (*Store)(nil)
)

// New returns an empty Store.
func New(opts Options) (*Store, error) {
	if opts.HistoryPerRoom < 0 || opts.MaxRooms < 0 || opts.MaxKeyPackages < 0 ||
		opts.MaxDirectoryRecords < 0 || opts.MaxBytes < 0 {
		return nil, ErrBadOptions
	}
	if opts.HistoryPerRoom == 0 {
		opts.HistoryPerRoom = DefaultHistoryPerRoom
	}
	if opts.MaxRooms == 0 {
		opts.MaxRooms = DefaultMaxRooms
	}
	if opts.MaxKeyPackages == 0 {
		opts.MaxKeyPackages = DefaultMaxKeyPackages
	}
	if opts.MaxDirectoryRecords == 0 {
		opts.MaxDirectoryRecords = DefaultMaxDirectoryRecords
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	s := &Store{opts: opts}
	s.reset()
	return s, nil
}

// reset empties every table. The caller holds no lock; reset takes each.
func (s *Store) reset() {
	s.mu.Lock()
	s.rooms = make(map[store.RoomID]*room)
	s.mu.Unlock()
	s.idxMu.Lock()
	s.byPeer = make(map[store.PeerID]map[store.RoomID]struct{})
	s.idxMu.Unlock()
	s.kpMu.Lock()
	s.kps = make(map[[32]byte]store.KeyPackage)
	s.kpOwned = make(map[store.PeerID]map[[32]byte]struct{})
	s.kpRefs = make(map[[32]byte]int)
	s.kpMu.Unlock()
	s.dirMu.Lock()
	s.dir = make(map[store.PeerID]store.DirectoryRecord)
	s.dirMu.Unlock()
}

// HistoryPerRoom returns how many messages each room keeps.
func (s *Store) HistoryPerRoom() int { return s.opts.HistoryPerRoom }

// Close drops everything the store holds. It is idempotent; afterwards
// every method returns store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// A method that passed its closed check before the Swap may still
	// finish against the old tables; it writes into tables nobody reads.
	s.reset()
	s.bytes.Store(0)
	return nil
}

// enter is every method's first step.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// reserve accounts delta more blob bytes (a negative delta frees), or
// returns an error wrapping store.ErrFull and accounts nothing when that
// would pass MaxBytes.
func (s *Store) reserve(delta int64, what string) error {
	for {
		cur := s.bytes.Load()
		if delta > 0 && cur+delta > s.opts.MaxBytes {
			return fmt.Errorf("%w: %s of %d bytes would pass the memory store's cap of %d bytes (%d held)",
				store.ErrFull, what, delta, s.opts.MaxBytes, cur)
		}
		if s.bytes.CompareAndSwap(cur, cur+delta) {
			return nil
		}
	}
}

// release frees n blob bytes.
func (s *Store) release(n int) { s.bytes.Add(-int64(n)) }

// refKeyPackages adds delta to the reference count of each hash. The
// caller holds no key package lock.
func (s *Store) refKeyPackages(delta int, hashes ...[32]byte) {
	s.kpMu.Lock()
	defer s.kpMu.Unlock()
	for _, h := range hashes {
		n := s.kpRefs[h] + delta
		if n <= 0 {
			delete(s.kpRefs, h)
		} else {
			s.kpRefs[h] = n
		}
	}
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrNotFound, fmt.Sprintf(format, args...))
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrConflict, fmt.Sprintf(format, args...))
}

func stale(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrStale, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrInvalid, fmt.Sprintf(format, args...))
}

func full(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrFull, fmt.Sprintf(format, args...))
}
