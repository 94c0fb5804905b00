package memory

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/lanpeer/lanpeer/store"
)

// room is one room's state, guarded by mu.
type room struct {
	mu   sync.Mutex
	gone bool // deleted: a caller that found the room before sees ErrNotFound

	r       store.Room
	members []store.Member // in the latest commit's order
	index   map[store.PeerID]int

	firstEpoch uint64         // the create commit's epoch
	commits    []store.Commit // commits[i].Epoch == firstEpoch+i

	keys map[keyID][]byte // wrapped keys

	msgs []store.Message // msgs[head:] are the kept messages, in seq order
	head int
	last uint64                     // the latest seq assigned
	ids  map[store.MessageID]uint64 // seq of each kept message by id

	bytes int // blob bytes this room holds
}

type keyID struct {
	epoch  uint64
	member store.PeerID
}

// room finds a room and returns it locked, or ErrNotFound.
func (s *Store) room(ctx context.Context, id store.RoomID) (*room, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	rm := s.rooms[id]
	s.mu.RUnlock()
	if rm == nil {
		return nil, notFound("room %s", id)
	}
	rm.mu.Lock()
	if rm.gone {
		rm.mu.Unlock()
		return nil, notFound("room %s", id)
	}
	return rm, nil
}

// CreateRoom implements store.Rooms.
func (s *Store) CreateRoom(ctx context.Context, r store.Room, create store.Commit, members []store.Member) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckRoom(r, create, members); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	if old := s.rooms[r.ID]; old != nil {
		// A room in the table is never gone: DeleteRoom removes it from
		// the table under s.mu before anyone else can see it.
		old.mu.Lock()
		same := old.commits[0].Hash == create.Hash
		old.mu.Unlock()
		if same {
			return nil
		}
		return store.ErrExists
	}
	if len(s.rooms) >= s.opts.MaxRooms {
		return full("the memory store holds its maximum of %d rooms", s.opts.MaxRooms)
	}
	if err := s.reserve(int64(len(create.Blob)), "create commit"); err != nil {
		return err
	}
	r.Created = store.Millis(r.Created)
	create.Blob = bytes.Clone(create.Blob)
	rm := &room{
		r:          r,
		firstEpoch: r.Epoch,
		commits:    []store.Commit{create},
		keys:       make(map[keyID][]byte),
		ids:        make(map[store.MessageID]uint64),
		bytes:      len(create.Blob),
	}
	s.setMembers(rm, members)
	s.rooms[r.ID] = rm
	return nil
}

// setMembers replaces rm's member list, keeping what staying members had
// (the greater acknowledged epoch, the leave request), and keeps the peer
// index and the key package references in step. The caller holds rm.mu.
func (s *Store) setMembers(rm *room, members []store.Member) {
	next := make([]store.Member, len(members))
	index := make(map[store.PeerID]int, len(members))
	var added, dropped []store.PeerID
	var refs, unrefs [][32]byte
	for i, m := range members {
		m.Leave = nil
		if j, ok := rm.index[m.Peer]; ok {
			old := rm.members[j]
			m.AckedEpoch = max(m.AckedEpoch, old.AckedEpoch)
			m.Leave = old.Leave
		} else {
			added = append(added, m.Peer)
		}
		next[i] = m
		index[m.Peer] = i
		refs = append(refs, m.KeyPackageHash)
	}
	for _, old := range rm.members {
		unrefs = append(unrefs, old.KeyPackageHash)
		if _, ok := index[old.Peer]; !ok {
			dropped = append(dropped, old.Peer)
			rm.bytes -= len(old.Leave)
			s.release(len(old.Leave))
		}
	}
	rm.members, rm.index = next, index
	s.refKeyPackages(+1, refs...)
	s.refKeyPackages(-1, unrefs...)
	s.indexPeers(rm.r.ID, added, dropped)
}

// indexPeers adds and drops peers' entries for a room in the peer index.
func (s *Store) indexPeers(id store.RoomID, added, dropped []store.PeerID) {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	for _, p := range added {
		set := s.byPeer[p]
		if set == nil {
			set = make(map[store.RoomID]struct{})
			s.byPeer[p] = set
		}
		set[id] = struct{}{}
	}
	for _, p := range dropped {
		if set := s.byPeer[p]; set != nil {
			delete(set, id)
			if len(set) == 0 {
				delete(s.byPeer, p)
			}
		}
	}
}

// ApplyCommit implements store.Rooms.
func (s *Store) ApplyCommit(ctx context.Context, id store.RoomID, fromEpoch uint64, c store.Commit, members []store.Member) (store.Room, error) {
	if err := s.enter(ctx); err != nil {
		return store.Room{}, err
	}
	if err := store.CheckCommit(id, fromEpoch, c); err != nil {
		return store.Room{}, err
	}
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.Room{}, err
	}
	defer rm.mu.Unlock()
	if err := store.CheckMembers(rm.r.Master, c.Epoch, members); err != nil {
		return store.Room{}, err
	}
	if c.Epoch >= rm.firstEpoch && c.Epoch <= rm.r.Epoch {
		if rm.commits[c.Epoch-rm.firstEpoch].Hash == c.Hash {
			return rm.r, nil // a retry of the commit that won
		}
		return store.Room{}, conflict("room %s is at epoch %d; another commit started epoch %d", id, rm.r.Epoch, c.Epoch)
	}
	if rm.r.Epoch != fromEpoch {
		return store.Room{}, conflict("room %s is at epoch %d, not %d", id, rm.r.Epoch, fromEpoch)
	}
	if err := s.reserve(int64(len(c.Blob)), "commit"); err != nil {
		return store.Room{}, err
	}
	c.Blob = bytes.Clone(c.Blob)
	rm.bytes += len(c.Blob)
	rm.commits = append(rm.commits, c)
	rm.r.Epoch, rm.r.Head = c.Epoch, c.Hash
	s.setMembers(rm, members)
	return rm.r, nil
}

// RecordLeave implements store.Rooms.
func (s *Store) RecordLeave(ctx context.Context, id store.RoomID, peer store.PeerID, request []byte) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckLeave(id, peer, request); err != nil {
		return err
	}
	rm, err := s.room(ctx, id)
	if err != nil {
		return err
	}
	defer rm.mu.Unlock()
	i, ok := rm.index[peer]
	if !ok {
		return notFound("peer %s is not a member of room %s", peer.Short(), id)
	}
	m := &rm.members[i]
	if m.Role == store.RoleMaster {
		return invalid("the master of room %s cannot leave it; it deletes the room", id)
	}
	if m.Leave != nil {
		return nil // it has left already; the first request stands
	}
	if err := s.reserve(int64(len(request)), "leave request"); err != nil {
		return err
	}
	m.Leave = bytes.Clone(request)
	rm.bytes += len(request)
	return nil
}

// AckEpoch implements store.Rooms.
func (s *Store) AckEpoch(ctx context.Context, id store.RoomID, peer store.PeerID, epoch uint64) error {
	rm, err := s.room(ctx, id)
	if err != nil {
		return err
	}
	defer rm.mu.Unlock()
	i, ok := rm.index[peer]
	if !ok {
		return notFound("peer %s is not a member of room %s", peer.Short(), id)
	}
	if epoch > rm.r.Epoch {
		return invalid("epoch %d is beyond room %s's current epoch %d", epoch, id, rm.r.Epoch)
	}
	m := &rm.members[i]
	m.AckedEpoch = max(m.AckedEpoch, epoch)
	return nil
}

// DeleteRoom implements store.Rooms.
func (s *Store) DeleteRoom(ctx context.Context, id store.RoomID) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[id]
	if rm == nil {
		return notFound("room %s", id)
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.gone = true
	delete(s.rooms, id)

	var refs [][32]byte
	dropped := make([]store.PeerID, 0, len(rm.members))
	for _, m := range rm.members {
		refs = append(refs, m.KeyPackageHash)
		dropped = append(dropped, m.Peer)
	}
	for _, m := range rm.msgs[rm.head:] {
		refs = append(refs, m.KeyPackageHash)
	}
	s.refKeyPackages(-1, refs...)
	s.indexPeers(id, nil, dropped)
	s.release(rm.bytes)
	// Drop the state now rather than when the last pointer goes.
	rm.members, rm.index, rm.commits, rm.keys, rm.msgs, rm.ids = nil, nil, nil, nil, nil, nil
	rm.bytes = 0
	return nil
}

// GetRoom implements store.Rooms.
func (s *Store) GetRoom(ctx context.Context, id store.RoomID) (store.Room, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.Room{}, err
	}
	defer rm.mu.Unlock()
	return rm.r, nil
}

// ListRooms implements store.Rooms.
func (s *Store) ListRooms(ctx context.Context, peer store.PeerID, after store.RoomID, limit int) ([]store.Room, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	s.idxMu.Lock()
	ids := make([]store.RoomID, 0, len(s.byPeer[peer]))
	for id := range s.byPeer[peer] {
		if bytes.Compare(id[:], after[:]) > 0 {
			ids = append(ids, id)
		}
	}
	s.idxMu.Unlock()
	slices.SortFunc(ids, func(a, b store.RoomID) int { return bytes.Compare(a[:], b[:]) })

	out := []store.Room{}
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		// The index was read without the rooms' locks: a room may have
		// gone, or dropped the peer, since. Check under the room's lock.
		rm, err := s.room(ctx, id)
		if err != nil {
			if ctxErr := s.enter(ctx); ctxErr != nil {
				return nil, ctxErr
			}
			continue
		}
		if _, ok := rm.index[peer]; ok {
			out = append(out, rm.r)
		}
		rm.mu.Unlock()
	}
	return out, nil
}

// Members implements store.Rooms.
func (s *Store) Members(ctx context.Context, id store.RoomID) ([]store.Member, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rm.mu.Unlock()
	out := make([]store.Member, len(rm.members))
	for i, m := range rm.members {
		m.Leave = bytes.Clone(m.Leave)
		out[i] = m
	}
	return out, nil
}

// GetMember implements store.Rooms.
func (s *Store) GetMember(ctx context.Context, id store.RoomID, peer store.PeerID) (store.Member, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.Member{}, err
	}
	defer rm.mu.Unlock()
	i, ok := rm.index[peer]
	if !ok {
		return store.Member{}, notFound("peer %s is not a member of room %s", peer.Short(), id)
	}
	m := rm.members[i]
	m.Leave = bytes.Clone(m.Leave)
	return m, nil
}

// GetCommit implements store.Rooms.
func (s *Store) GetCommit(ctx context.Context, id store.RoomID, epoch uint64) (store.Commit, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.Commit{}, err
	}
	defer rm.mu.Unlock()
	if epoch < rm.firstEpoch || epoch > rm.r.Epoch {
		return store.Commit{}, notFound("room %s has no commit at epoch %d", id, epoch)
	}
	c := rm.commits[epoch-rm.firstEpoch]
	c.Blob = bytes.Clone(c.Blob)
	return c, nil
}

// ListCommits implements store.Rooms.
func (s *Store) ListCommits(ctx context.Context, id store.RoomID, afterEpoch uint64, limit int) ([]store.Commit, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rm, err := s.room(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rm.mu.Unlock()
	out := []store.Commit{}
	if afterEpoch >= rm.r.Epoch {
		return out, nil
	}
	start := 0
	if afterEpoch >= rm.firstEpoch {
		start = int(afterEpoch - rm.firstEpoch + 1)
	}
	for _, c := range rm.commits[start:min(len(rm.commits), start+limit)] {
		c.Blob = bytes.Clone(c.Blob)
		out = append(out, c)
	}
	return out, nil
}
