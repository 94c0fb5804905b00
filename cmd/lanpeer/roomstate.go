package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
)

// A peer's room state lives in its home:
//
//	HOME/rooms/keypackages/HASH.pem    the secrets of each key package (0600)
//	HOME/rooms/HOSTPEERID/ROOMID.json  the member state of one room on one host (0600)
//	HOME/rooms/HOSTPEERID/ROOMID.lock  the lock around each read-modify-write of it (empty)
//
// Key package secrets are kept after they expire: a room's epochs may
// still list them (a member seals under the key package its head epoch
// lists until the master's next commit moves it to a fresh one).
const (
	roomsDir       = "rooms"
	keyPackagesDir = "keypackages"
	// maxKeyPackageFiles bounds the key package files read from a home.
	maxKeyPackageFiles = 1024
	// keyPackageRenewal is how long before expiry a new key package is
	// made, so an invite by a master never finds one about to expire.
	keyPackageRenewal = 7 * 24 * time.Hour
)

// roomHome is the room state of one home.
type roomHome struct {
	dir string // HOME/rooms
}

func newRoomHome(home string) *roomHome { return &roomHome{dir: filepath.Join(home, roomsDir)} }

// writePrivate writes b to path atomically with mode 0600, creating the
// directories (0700).
func writePrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > int64(max) {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func (h *roomHome) keyPackagePath(hash [room.HashSize]byte) string {
	return filepath.Join(h.dir, keyPackagesDir, hex.EncodeToString(hash[:])+".pem")
}

// secretsFor returns the secrets of the key package with hash.
func (h *roomHome) secretsFor(hash [room.HashSize]byte) (*room.KeyPackageSecrets, error) {
	path := h.keyPackagePath(hash)
	b, err := readBounded(path, room.MaxKeyPackageSecretsPEM)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no secrets for key package %x in %s: this home did not make it", hash[:8], filepath.Dir(path))
	}
	if err != nil {
		return nil, err
	}
	s, err := room.ParseKeyPackageSecretsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.KeyPackage().Hash() != hash {
		return nil, fmt.Errorf("%s: holds another key package than its name says", path)
	}
	return s, nil
}

// currentSecrets returns the newest key package of id that is valid for
// at least keyPackageRenewal more, making and storing a new one when
// there is none.
func (h *roomHome) currentSecrets(id *cryptosuite.Identity, now time.Time) (*room.KeyPackageSecrets, error) {
	dir := filepath.Join(h.dir, keyPackagesDir)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var best *room.KeyPackageSecrets
	for i, e := range entries {
		if i >= maxKeyPackageFiles {
			break
		}
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		var hash [room.HashSize]byte
		if !ok || hex.DecodedLen(len(name)) != len(hash) {
			continue
		}
		if _, err := hex.Decode(hash[:], []byte(name)); err != nil {
			continue
		}
		s, err := h.secretsFor(hash)
		if err != nil {
			return nil, err
		}
		kp := s.KeyPackage()
		if kp.Owner != id.PeerID() || kp.ValidAt(now.Add(keyPackageRenewal)) != nil || kp.ValidAt(now) != nil {
			continue
		}
		if best == nil || kp.Created.After(best.KeyPackage().Created) {
			best = s
		}
	}
	if best != nil {
		return best, nil
	}
	s, err := room.GenerateKeyPackage(id, 0, now, 0)
	if err != nil {
		return nil, err
	}
	pem, err := s.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := writePrivate(h.keyPackagePath(s.KeyPackage().Hash()), pem); err != nil {
		return nil, err
	}
	return s, nil
}

func (h *roomHome) statePath(host cryptosuite.PeerID, id store.RoomID) string {
	return filepath.Join(h.dir, host.String(), id.String()+".json")
}

// loadState returns the member state of room id on host; nil, nil when
// this home has none.
func (h *roomHome) loadState(host cryptosuite.PeerID, id store.RoomID) (*room.MemberState, error) {
	path := h.statePath(host, id)
	b, err := readBounded(path, room.MaxStateSize(nil))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := room.ParseMemberState(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if store.RoomID(st.Room()) != id {
		return nil, fmt.Errorf("%s: holds room %x", path, st.Room())
	}
	return st, nil
}

// saveState stores st as the state of its room on host.
func (h *roomHome) saveState(host cryptosuite.PeerID, st *room.MemberState) error {
	b, err := st.Marshal()
	if err != nil {
		return err
	}
	return writePrivate(h.statePath(host, store.RoomID(st.Room())), b)
}

// lockPoll is how often a room lock that another command holds is tried
// again.
const lockPoll = 10 * time.Millisecond

func (h *roomHome) lockPath(host cryptosuite.PeerID, id store.RoomID) string {
	return filepath.Join(h.dir, host.String(), id.String()+".lock")
}

// lockRoom takes the lock of room id's state on host: an exclusive flock
// on HOME/rooms/HOSTPEERID/ROOMID.lock. Every read-modify-write of the
// state file holds it, so two commands from one home at once (processes,
// or sessions in one process: each lock is its own open file) cannot lose
// an update; it is held for one operation, never for a process's life,
// and other rooms and the rest of the home stay free. It waits while
// another holds it, until ctx ends. unlock releases it; the lock file
// stays (removing it would let a waiter lock a file no longer there).
func (h *roomHome) lockRoom(ctx context.Context, host cryptosuite.PeerID, id store.RoomID) (unlock func(), err error) {
	path := h.lockPath(host, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: another lanpeer command from this home holds room %s's state (%w)", path, id, ctx.Err())
		case <-tick.C:
		}
	}
}

// localRooms lists the rooms on host this home holds a state of.
func (h *roomHome) localRooms(host cryptosuite.PeerID) ([]store.RoomID, error) {
	entries, err := os.ReadDir(filepath.Join(h.dir, host.String()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []store.RoomID
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if id, err := parseRoomID(name); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// minRoomPrefix is the shortest prefix of a room id a ROOM argument may
// be (as git's shortest abbreviation).
const minRoomPrefix = 4

// roomRef is a ROOM argument: a whole room id, or a prefix of one that the
// rooms this peer knows on the host must resolve (roomSession.resolve).
type roomRef struct {
	id     store.RoomID // when whole
	prefix string       // lowercase hex, when not
}

// parseRoomRef reads a ROOM argument: a room id (32 hex characters) or a
// prefix of one, at least minRoomPrefix characters.
func parseRoomRef(s string) (roomRef, error) {
	if id, err := parseRoomID(s); err == nil {
		return roomRef{id: id}, nil
	}
	p := strings.ToLower(s)
	if len(p) < minRoomPrefix || len(p) > 2*len(store.RoomID{}) || strings.Trim(p, "0123456789abcdef") != "" {
		return roomRef{}, usagef("ROOM %q: want a room id, %d hex characters, or a unique prefix of one (at least %d; 'room list' prints them)",
			s, 2*len(store.RoomID{}), minRoomPrefix)
	}
	return roomRef{prefix: p}, nil
}

// matchRoom picks the one room in known whose id starts with ref's
// prefix (names: what to show of each; absent names show as the id).
func matchRoom(ref roomRef, known map[store.RoomID]string) (store.RoomID, error) {
	if ref.prefix == "" {
		return ref.id, nil
	}
	var found []store.RoomID
	for id := range known {
		if strings.HasPrefix(id.String(), ref.prefix) {
			found = append(found, id)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].String() < found[j].String() })
	switch len(found) {
	case 0:
		return store.RoomID{}, fmt.Errorf("no room of this peer's starts with %q ('room list' prints them; a whole room id is used as it is)", ref.prefix)
	case 1:
		return found[0], nil
	}
	const shown = 5
	var names []string
	for _, id := range found[:min(len(found), shown)] {
		n := id.String()
		if name := known[id]; name != "" {
			n += " " + escapeLine(name)
		}
		names = append(names, n)
	}
	if len(found) > shown {
		names = append(names, "...")
	}
	return store.RoomID{}, usagef("ROOM %q is ambiguous: %d rooms start with it (%s); give more characters of the id",
		ref.prefix, len(found), strings.Join(names, ", "))
}

// parseRoomID reads a room id: 32 hex characters.
func parseRoomID(s string) (store.RoomID, error) {
	var id store.RoomID
	b, err := hex.DecodeString(strings.ToLower(s))
	if err != nil || len(b) != len(id) {
		return id, usagef("ROOM %q: want a room id, %d hex characters ('room list' prints them)", s, 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}
