package mongo

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/store"
)

// memberDoc is one entry of a member list, as a commit (or the room's
// create) stored it.
type memberDoc struct {
	P  []byte `bson:"p"`  // peer id
	R  int32  `bson:"r"`  // role
	KP []byte `bson:"kp"` // key package hash
	A  int64  `bson:"a"`  // acknowledged epoch carried by the commits
	S  int64  `bson:"s"`  // since: the epoch this membership began
}

// roomDoc is a room: what never changes (id, incarnation, master, suite,
// name, creation, the create commit and first member list) and a hint of
// its latest commit (epoch, head), which readers check against the commit
// chain (see chainEnd).
type roomDoc struct {
	ID         string      `bson:"_id"`
	Inc        string      `bson:"inc"`
	Master     []byte      `bson:"master"`
	Suite      int32       `bson:"suite"`
	Name       string      `bson:"name"`
	Created    time.Time   `bson:"created"`
	First      int64       `bson:"first"`
	CreateHash []byte      `bson:"create_hash"`
	CreateBlob []byte      `bson:"create_blob,omitempty"`
	Members    []memberDoc `bson:"members,omitempty"`
	Epoch      int64       `bson:"epoch"`
	Head       []byte      `bson:"head"`
}

// commitDoc is a commit after the create, keyed by (room, incarnation,
// epoch): the unique _id is the compare-and-set that decides which commit
// starts an epoch. A tombstone (Deleted) ends a deleted room's chain.
type commitDoc struct {
	ID      string      `bson:"_id"`
	RID     string      `bson:"rid"`
	Inc     string      `bson:"inc"`
	Epoch   int64       `bson:"epoch"`
	Hash    []byte      `bson:"hash,omitempty"`
	Blob    []byte      `bson:"blob,omitempty"`
	Members []memberDoc `bson:"members,omitempty"`
	Deleted bool        `bson:"deleted,omitempty"`
}

// stateDoc is one membership's acknowledgement or leave request, kept
// apart from the member list so that neither needs a read-modify-write.
type stateDoc struct {
	ID    string `bson:"_id"`
	RID   string `bson:"rid"`
	Inc   string `bson:"inc"`
	P     string `bson:"p"` // peer id, hex
	S     int64  `bson:"s"` // the membership's since
	Kind  string `bson:"kind"`
	Epoch int64  `bson:"epoch,omitempty"` // kindAck
	Blob  []byte `bson:"blob,omitempty"`  // kindLeave
}

const (
	kindAck   = "ack"
	kindLeave = "leave"
)

// roomState is a room as loadRoom found it: its document (without the
// create commit and first member list) and the end of its commit chain.
type roomState struct {
	id    store.RoomID
	doc   roomDoc
	epoch uint64
	head  [32]byte
}

func (st *roomState) first() uint64 { return u64(st.doc.First) }

func (st *roomState) room() store.Room {
	var master store.PeerID
	copy(master[:], st.doc.Master)
	return store.Room{
		ID: st.id, Master: master, Suite: uint16(st.doc.Suite), Name: st.doc.Name,
		Epoch: st.epoch, Head: st.head, Created: st.doc.Created.UTC(),
	}
}

var roomDocLight = options.FindOne().SetProjection(bson.D{{Key: "create_blob", Value: 0}, {Key: "members", Value: 0}})

// loadRoom reads the room and finds its latest commit, or ErrNotFound
// (also for a room being deleted).
func (s *Store) loadRoom(ctx context.Context, id store.RoomID) (*roomState, error) {
	st := &roomState{id: id}
	err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomKey(id)}}, roomDocLight).Decode(&st.doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("room %s", id)
	}
	if err != nil {
		return nil, s.fail(ctx, "reading room "+id.String(), err)
	}
	end, head, deleted, err := s.chainEnd(ctx, st)
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, notFound("room %s (being deleted)", id)
	}
	st.epoch, st.head = end, head
	return st, nil
}

// probeCommit reads the commit of the room's incarnation at epoch: whether
// there is one, its hash and whether it is a tombstone.
func (s *Store) probeCommit(ctx context.Context, st *roomState, epoch uint64) (found bool, hash [32]byte, deleted bool, err error) {
	var c commitDoc
	err = s.commits.FindOne(ctx, bson.D{{Key: "_id", Value: commitKey(st.id, st.doc.Inc, epoch)}},
		options.FindOne().SetProjection(bson.D{{Key: "hash", Value: 1}, {Key: "deleted", Value: 1}})).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, hash, false, nil
	}
	if err != nil {
		return false, hash, false, s.fail(ctx, "reading a commit of room "+st.id.String(), err)
	}
	copy(hash[:], c.Hash)
	return true, hash, c.Deleted, nil
}

// chainEnd finds the latest commit of the room: the commit chain is dense
// (every epoch from the create's on has one, and commits are only ever
// added at the end), so starting from the room document's hint, which
// always names a stored commit, it probes forward by doubling steps and
// then bisects. Usually the hint is right and one probe says so. A
// tombstone at the end means the room is being deleted.
//
// The hint lags when a process died between storing a commit and updating
// the room document, or when two updates of the document crossed (FerretDB
// can lose one of two concurrent updates); chainEnd moves it forward, which
// is only ever a repair.
func (s *Store) chainEnd(ctx context.Context, st *roomState) (uint64, [32]byte, bool, error) {
	lo, loHash := u64(st.doc.Epoch), [32]byte(nil32(st.doc.Head))
	if lo < st.first() {
		lo, loHash = st.first(), [32]byte(nil32(st.doc.CreateHash))
	}
	hint := lo
	hi := uint64(0) // the first epoch known to have no commit; 0: none known yet
	step := uint64(1)
	for range 65 {
		e := lo + step
		if e < lo {
			e = math.MaxUint64
		}
		found, h, deleted, err := s.probeCommit(ctx, st, e)
		if err != nil {
			return 0, loHash, false, err
		}
		if !found {
			hi = e
			break
		}
		if deleted {
			return e, h, true, nil
		}
		lo, loHash = e, h
		if e == math.MaxUint64 {
			break
		}
		step *= 2
	}
	for hi > lo+1 {
		mid := lo + (hi-lo)/2
		found, h, deleted, err := s.probeCommit(ctx, st, mid)
		if err != nil {
			return 0, loHash, false, err
		}
		switch {
		case !found:
			hi = mid
		case deleted:
			return mid, h, true, nil
		default:
			lo, loHash = mid, h
		}
	}
	if lo > hint {
		s.moveHint(ctx, st.id, st.doc.Inc, lo, loHash)
	}
	return lo, loHash, false, nil
}

// moveHint sets the room document's hint to a stored commit, unless it is
// already at or past it. It is a repair only: a failure is ignored, and
// readers find the chain's end without it.
func (s *Store) moveHint(ctx context.Context, id store.RoomID, inc string, epoch uint64, head [32]byte) {
	_, _ = s.rooms.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: roomKey(id)}, {Key: "inc", Value: inc}, {Key: "epoch", Value: bson.D{{Key: "$lt", Value: i64(epoch)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "epoch", Value: i64(epoch)}, {Key: "head", Value: head[:]}}}})
}

// nil32 returns b as 32 bytes (zeros when b is short).
func nil32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out, b)
	return out
}

func toMemberDocs(members []store.Member, since func(store.Member) (uint64, uint64)) []memberDoc {
	out := make([]memberDoc, len(members))
	for i, m := range members {
		s, a := since(m)
		out[i] = memberDoc{P: bytes.Clone(m.Peer[:]), R: int32(m.Role), KP: bytes.Clone(m.KeyPackageHash[:]), A: i64(a), S: i64(s)}
	}
	return out
}

func (d memberDoc) peer() store.PeerID {
	var p store.PeerID
	copy(p[:], d.P)
	return p
}

// CreateRoom implements store.Rooms. The room document, holding the create
// commit and the first member list, is one insert under the room's id:
// the insert that succeeds created the room.
func (s *Store) CreateRoom(ctx context.Context, r store.Room, create store.Commit, members []store.Member) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckRoom(r, create, members); err != nil {
		return err
	}
	inc, err := newIncarnation()
	if err != nil {
		return err
	}
	doc := roomDoc{
		ID: roomKey(r.ID), Inc: inc, Master: bytes.Clone(r.Master[:]), Suite: int32(r.Suite), Name: r.Name,
		Created: store.Millis(r.Created), First: i64(r.Epoch),
		CreateHash: bytes.Clone(create.Hash[:]), CreateBlob: create.Blob,
		Members: toMemberDocs(members, func(m store.Member) (uint64, uint64) { return r.Epoch, m.AckedEpoch }),
		Epoch:   i64(r.Epoch), Head: bytes.Clone(create.Hash[:]),
	}
	const attempts = 4
	for range attempts {
		_, err := s.rooms.InsertOne(ctx, doc)
		if err == nil {
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return s.fail(ctx, "creating room "+r.ID.String(), err)
		}
		// The id is taken: by this very create (a retry), by another
		// room, or by a deleted room whose deletion did not finish.
		st := &roomState{id: r.ID}
		err = s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomKey(r.ID)}}, roomDocLight).Decode(&st.doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // deleted since: try again
		}
		if err != nil {
			return s.fail(ctx, "reading room "+r.ID.String(), err)
		}
		_, _, deleted, err := s.chainEnd(ctx, st)
		if err != nil {
			return err
		}
		if deleted {
			if err := s.purge(ctx, r.ID, st.doc.Inc); err != nil {
				return err
			}
			continue
		}
		if bytes.Equal(st.doc.CreateHash, create.Hash[:]) {
			return nil
		}
		return store.ErrExists
	}
	return &UnavailableError{Op: "creating room " + r.ID.String(), Where: s.where,
		Err: errors.New("the room id was taken and freed again on every attempt")}
}

// currentMembers reads the member list of the room's latest commit.
func (s *Store) currentMembers(ctx context.Context, st *roomState) ([]memberDoc, error) {
	proj := options.FindOne().SetProjection(bson.D{{Key: "members", Value: 1}})
	if st.epoch == st.first() {
		var d roomDoc
		err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomKey(st.id)}, {Key: "inc", Value: st.doc.Inc}}, proj).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, notFound("room %s", st.id)
		}
		if err != nil {
			return nil, s.fail(ctx, "reading the members of room "+st.id.String(), err)
		}
		return d.Members, nil
	}
	var c commitDoc
	err := s.commits.FindOne(ctx, bson.D{{Key: "_id", Value: commitKey(st.id, st.doc.Inc, st.epoch)}}, proj).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("room %s", st.id) // deleted since it was loaded
	}
	if err != nil {
		return nil, s.fail(ctx, "reading the members of room "+st.id.String(), err)
	}
	return c.Members, nil
}

// ApplyCommit implements store.Rooms. The commit is inserted under the
// unique key (room, incarnation, epoch): of concurrent commits from one
// epoch, in any number of processes, exactly one insert succeeds. Then
// the room document's hint moves to it. A process that dies between the
// two leaves the hint behind, which every reader repairs (chainEnd).
func (s *Store) ApplyCommit(ctx context.Context, id store.RoomID, fromEpoch uint64, c store.Commit, members []store.Member) (store.Room, error) {
	if err := s.enter(ctx); err != nil {
		return store.Room{}, err
	}
	if err := store.CheckCommit(id, fromEpoch, c); err != nil {
		return store.Room{}, err
	}
	unlock := s.lockRoom(id)
	defer unlock()
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return store.Room{}, err
	}
	r := st.room()
	if err := store.CheckMembers(r.Master, c.Epoch, members); err != nil {
		return store.Room{}, err
	}
	if c.Epoch >= st.first() && c.Epoch <= st.epoch {
		return s.sameCommit(ctx, st, c)
	}
	if st.epoch != fromEpoch {
		return store.Room{}, conflict("room %s is at epoch %d, not %d", id, st.epoch, fromEpoch)
	}

	prev, err := s.currentMembers(ctx, st)
	if err != nil {
		return store.Room{}, err
	}
	before := make(map[store.PeerID]memberDoc, len(prev))
	for _, d := range prev {
		before[d.peer()] = d
	}
	doc := commitDoc{
		ID: commitKey(id, st.doc.Inc, c.Epoch), RID: roomKey(id), Inc: st.doc.Inc, Epoch: i64(c.Epoch),
		Hash: bytes.Clone(c.Hash[:]), Blob: c.Blob,
		Members: toMemberDocs(members, func(m store.Member) (uint64, uint64) {
			if old, ok := before[m.Peer]; ok {
				return u64(old.S), max(m.AckedEpoch, u64(old.A))
			}
			return c.Epoch, m.AckedEpoch
		}),
	}
	if _, err := s.commits.InsertOne(ctx, doc); err != nil {
		if !mongo.IsDuplicateKeyError(err) {
			return store.Room{}, s.fail(ctx, "storing a commit of room "+id.String(), err)
		}
		// Another commit (or the deletion) took the epoch first, or this
		// is a retry of the commit that did.
		found, h, deleted, err := s.probeCommit(ctx, st, c.Epoch)
		switch {
		case err != nil:
			return store.Room{}, err
		case !found || deleted:
			return store.Room{}, notFound("room %s", id)
		case h != c.Hash:
			return store.Room{}, conflict("room %s: another commit started epoch %d", id, c.Epoch)
		}
		st, err = s.loadRoom(ctx, id)
		if err != nil {
			return store.Room{}, err
		}
		return st.room(), nil
	}
	s.moveHint(ctx, id, st.doc.Inc, c.Epoch, c.Hash)

	// Drop what the removed members had (their acknowledgements and leave
	// requests): they are keyed by membership, so a member invited again
	// starts afresh whether or not this cleanup runs.
	var gone bson.A
	next := make(map[store.PeerID]bool, len(members))
	for _, m := range members {
		next[m.Peer] = true
	}
	for p, d := range before {
		if !next[p] {
			gone = append(gone, bson.D{{Key: "p", Value: peerHex(p)}, {Key: "s", Value: d.S}})
		}
	}
	for len(gone) > 0 {
		n := min(len(gone), 256)
		_, _ = s.members.DeleteMany(ctx, bson.D{{Key: "rid", Value: roomKey(id)}, {Key: "inc", Value: st.doc.Inc}, {Key: "$or", Value: gone[:n]}})
		gone = gone[n:]
	}
	r.Epoch, r.Head = c.Epoch, c.Hash
	return r, nil
}

// sameCommit answers an ApplyCommit whose epoch already has a commit: a
// retry of that commit succeeds with the room as it is, any other commit
// is ErrConflict.
func (s *Store) sameCommit(ctx context.Context, st *roomState, c store.Commit) (store.Room, error) {
	var stored [32]byte
	switch c.Epoch {
	case st.epoch:
		stored = st.head
	case st.first():
		copy(stored[:], st.doc.CreateHash)
	default:
		found, h, _, err := s.probeCommit(ctx, st, c.Epoch)
		if err != nil {
			return store.Room{}, err
		}
		if !found {
			return store.Room{}, notFound("room %s", st.id)
		}
		stored = h
	}
	if stored != c.Hash {
		return store.Room{}, conflict("room %s is at epoch %d; another commit started epoch %d", st.id, st.epoch, c.Epoch)
	}
	return st.room(), nil
}

// states reads the acknowledgements and leave requests of the room's
// memberships (of one peer, when peer is not nil).
func (s *Store) states(ctx context.Context, st *roomState, peer *store.PeerID) (map[string]store.Member, error) {
	filter := bson.D{{Key: "rid", Value: roomKey(st.id)}, {Key: "inc", Value: st.doc.Inc}}
	if peer != nil {
		filter = append(filter, bson.E{Key: "p", Value: peerHex(*peer)})
	}
	cur, err := s.members.Find(ctx, filter)
	if err != nil {
		return nil, s.fail(ctx, "reading the member state of room "+st.id.String(), err)
	}
	var docs []stateDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.fail(ctx, "reading the member state of room "+st.id.String(), err)
	}
	out := make(map[string]store.Member, len(docs))
	for _, d := range docs {
		k := d.P + "/" + num(u64(d.S))
		m := out[k]
		switch d.Kind {
		case kindAck:
			m.AckedEpoch = max(m.AckedEpoch, u64(d.Epoch))
		case kindLeave:
			m.Leave = d.Blob
		}
		out[k] = m
	}
	return out, nil
}

// member merges a member list entry with its membership's state.
func member(d memberDoc, states map[string]store.Member) store.Member {
	m := store.Member{Peer: d.peer(), Role: store.Role(d.R), AckedEpoch: u64(d.A)}
	copy(m.KeyPackageHash[:], d.KP)
	if st, ok := states[peerHex(m.Peer)+"/"+num(u64(d.S))]; ok {
		m.AckedEpoch = max(m.AckedEpoch, st.AckedEpoch)
		m.Leave = st.Leave
	}
	return m
}

// findMember loads the room and finds peer in its latest member list.
func (s *Store) findMember(ctx context.Context, id store.RoomID, peer store.PeerID) (*roomState, memberDoc, error) {
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return nil, memberDoc{}, err
	}
	list, err := s.currentMembers(ctx, st)
	if err != nil {
		return nil, memberDoc{}, err
	}
	for _, d := range list {
		if bytes.Equal(d.P, peer[:]) {
			return st, d, nil
		}
	}
	return nil, memberDoc{}, notFound("peer %s is not a member of room %s", peer.Short(), id)
}

// RecordLeave implements store.Rooms: the request is inserted under the
// membership's key, so the first request stands.
func (s *Store) RecordLeave(ctx context.Context, id store.RoomID, peer store.PeerID, request []byte) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckLeave(id, peer, request); err != nil {
		return err
	}
	st, d, err := s.findMember(ctx, id, peer)
	if err != nil {
		return err
	}
	if store.Role(d.R) == store.RoleMaster {
		return invalid("the master of room %s cannot leave it; it deletes the room", id)
	}
	_, err = s.members.InsertOne(ctx, stateDoc{
		ID:  memberKey(id, st.doc.Inc, peer, u64(d.S)) + "/" + kindLeave,
		RID: roomKey(id), Inc: st.doc.Inc, P: peerHex(peer), S: d.S, Kind: kindLeave, Blob: request,
	})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return s.fail(ctx, "storing a leave request in room "+id.String(), err)
	}
	return nil
}

// AckEpoch implements store.Rooms. Each acknowledgement is its own
// document, and the acknowledged epoch is the greatest of them: concurrent
// acknowledgements never lose the greater one, as a read-modify-write of
// one document could on FerretDB.
func (s *Store) AckEpoch(ctx context.Context, id store.RoomID, peer store.PeerID, epoch uint64) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	st, d, err := s.findMember(ctx, id, peer)
	if err != nil {
		return err
	}
	if epoch > st.epoch {
		return invalid("epoch %d is beyond room %s's current epoch %d", epoch, id, st.epoch)
	}
	if epoch <= u64(d.A) {
		return nil
	}
	key := memberKey(id, st.doc.Inc, peer, u64(d.S))
	_, err = s.members.InsertOne(ctx, stateDoc{
		ID:  key + "/" + kindAck + "/" + num(epoch),
		RID: roomKey(id), Inc: st.doc.Inc, P: peerHex(peer), S: d.S, Kind: kindAck, Epoch: i64(epoch),
	})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return s.fail(ctx, "storing an acknowledgement in room "+id.String(), err)
	}
	// The lower acknowledgements say nothing more; dropping them keeps
	// one document per membership. Failing to is harmless.
	_, _ = s.members.DeleteMany(ctx, bson.D{
		{Key: "rid", Value: roomKey(id)}, {Key: "inc", Value: st.doc.Inc}, {Key: "p", Value: peerHex(peer)},
		{Key: "s", Value: d.S}, {Key: "kind", Value: kindAck}, {Key: "epoch", Value: bson.D{{Key: "$lt", Value: i64(epoch)}}},
	})
	return nil
}

// DeleteRoom implements store.Rooms. A tombstone inserted at the epoch
// after the chain's end decides the deletion against concurrent commits
// (the same compare-and-set); from then on the room is not found. Then
// everything of the room's incarnation goes: messages, wrapped keys,
// member state, the room document, and last the commits with the
// tombstone. A process that dies half way leaves a tombstoned room that
// the next DeleteRoom or CreateRoom with its id finishes deleting.
func (s *Store) DeleteRoom(ctx context.Context, id store.RoomID) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	unlock := s.lockRoom(id)
	defer unlock()
	const attempts = 8
	for range attempts {
		st := &roomState{id: id}
		err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomKey(id)}}, roomDocLight).Decode(&st.doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return notFound("room %s", id)
		}
		if err != nil {
			return s.fail(ctx, "reading room "+id.String(), err)
		}
		end, _, deleted, err := s.chainEnd(ctx, st)
		if err != nil {
			return err
		}
		if deleted {
			if err := s.purge(ctx, id, st.doc.Inc); err != nil {
				return err
			}
			return notFound("room %s (already deleted)", id)
		}
		if end == math.MaxUint64 {
			return invalid("room %s is at the last epoch there is", id)
		}
		_, err = s.commits.InsertOne(ctx, commitDoc{
			ID: commitKey(id, st.doc.Inc, end+1), RID: roomKey(id), Inc: st.doc.Inc, Epoch: i64(end + 1), Deleted: true,
		})
		if mongo.IsDuplicateKeyError(err) {
			continue // a commit came first: find the new end
		}
		if err != nil {
			return s.fail(ctx, "deleting room "+id.String(), err)
		}
		s.dropSeqHint(id, st.doc.Inc)
		return s.purge(ctx, id, st.doc.Inc)
	}
	return &UnavailableError{Op: "deleting room " + id.String(), Where: s.where,
		Err: errors.New("new commits kept arriving")}
}

// purge deletes everything of a tombstoned incarnation of a room.
func (s *Store) purge(ctx context.Context, id store.RoomID, inc string) error {
	of := bson.D{{Key: "rid", Value: roomKey(id)}, {Key: "inc", Value: inc}}
	for _, c := range []*mongo.Collection{s.messages, s.wrapped, s.members} {
		if _, err := c.DeleteMany(ctx, of); err != nil {
			return s.fail(ctx, "deleting room "+id.String(), err)
		}
	}
	if _, err := s.rooms.DeleteOne(ctx, bson.D{{Key: "_id", Value: roomKey(id)}, {Key: "inc", Value: inc}}); err != nil {
		return s.fail(ctx, "deleting room "+id.String(), err)
	}
	if _, err := s.commits.DeleteMany(ctx, of); err != nil {
		return s.fail(ctx, "deleting room "+id.String(), err)
	}
	return nil
}

// GetRoom implements store.Rooms.
func (s *Store) GetRoom(ctx context.Context, id store.RoomID) (store.Room, error) {
	if err := s.enter(ctx); err != nil {
		return store.Room{}, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return store.Room{}, err
	}
	return st.room(), nil
}

// ListRooms implements store.Rooms. The candidates are the rooms whose
// create or some commit lists peer; a room is listed when its latest
// commit is among them.
func (s *Store) ListRooms(ctx context.Context, peer store.PeerID, after store.RoomID, limit int) ([]store.Room, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	type cand struct {
		inc   string
		epoch uint64
	}
	cands := make(map[string]cand) // room key/incarnation -> the latest epoch listing peer
	note := func(rid, inc string, epoch uint64) {
		k := rid + "/" + inc
		if c, ok := cands[k]; !ok || epoch > c.epoch {
			cands[k] = cand{inc, epoch}
		}
	}
	var rooms []roomDoc
	cur, err := s.rooms.Find(ctx,
		bson.D{{Key: "members.p", Value: peer[:]}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: roomKey(after)}}}},
		options.Find().SetProjection(bson.D{{Key: "inc", Value: 1}, {Key: "first", Value: 1}}))
	if err == nil {
		err = cur.All(ctx, &rooms)
	}
	if err != nil {
		return nil, s.fail(ctx, "listing rooms", err)
	}
	for _, d := range rooms {
		note(d.ID, d.Inc, u64(d.First))
	}
	var commits []commitDoc
	cur, err = s.commits.Find(ctx,
		bson.D{{Key: "members.p", Value: peer[:]}, {Key: "rid", Value: bson.D{{Key: "$gt", Value: roomKey(after)}}}},
		options.Find().SetProjection(bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}, {Key: "epoch", Value: 1}}))
	if err == nil {
		err = cur.All(ctx, &commits)
	}
	if err != nil {
		return nil, s.fail(ctx, "listing rooms", err)
	}
	for _, d := range commits {
		note(d.RID, d.Inc, u64(d.Epoch))
	}

	keys := make([]string, 0, len(cands))
	for k := range cands {
		keys = append(keys, k)
	}
	slices.Sort(keys) // room keys are hex: string order is byte order
	out := []store.Room{}
	for _, k := range keys {
		if len(out) == limit {
			break
		}
		id, ok := parseRoomKey(k[:32])
		if !ok {
			continue
		}
		st, err := s.loadRoom(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if c := cands[k]; st.doc.Inc == c.inc && st.epoch == c.epoch {
			out = append(out, st.room())
		}
	}
	return out, nil
}

func parseRoomKey(k string) (store.RoomID, bool) {
	var id store.RoomID
	if len(k) != 2*len(id) {
		return id, false
	}
	for i := range id {
		hi, ok1 := unhex(k[2*i])
		lo, ok2 := unhex(k[2*i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Members implements store.Rooms.
func (s *Store) Members(ctx context.Context, id store.RoomID) ([]store.Member, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return nil, err
	}
	list, err := s.currentMembers(ctx, st)
	if err != nil {
		return nil, err
	}
	states, err := s.states(ctx, st, nil)
	if err != nil {
		return nil, err
	}
	out := make([]store.Member, len(list))
	for i, d := range list {
		out[i] = member(d, states)
	}
	return out, nil
}

// GetMember implements store.Rooms.
func (s *Store) GetMember(ctx context.Context, id store.RoomID, peer store.PeerID) (store.Member, error) {
	if err := s.enter(ctx); err != nil {
		return store.Member{}, err
	}
	st, d, err := s.findMember(ctx, id, peer)
	if err != nil {
		return store.Member{}, err
	}
	states, err := s.states(ctx, st, &peer)
	if err != nil {
		return store.Member{}, err
	}
	return member(d, states), nil
}

// GetCommit implements store.Rooms.
func (s *Store) GetCommit(ctx context.Context, id store.RoomID, epoch uint64) (store.Commit, error) {
	if err := s.enter(ctx); err != nil {
		return store.Commit{}, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return store.Commit{}, err
	}
	if epoch < st.first() || epoch > st.epoch {
		return store.Commit{}, notFound("room %s has no commit at epoch %d", id, epoch)
	}
	if epoch == st.first() {
		return s.createCommit(ctx, st)
	}
	var d commitDoc
	err = s.commits.FindOne(ctx, bson.D{{Key: "_id", Value: commitKey(id, st.doc.Inc, epoch)}},
		options.FindOne().SetProjection(bson.D{{Key: "members", Value: 0}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Commit{}, notFound("room %s has no commit at epoch %d", id, epoch)
	}
	if err != nil {
		return store.Commit{}, s.fail(ctx, "reading a commit of room "+id.String(), err)
	}
	return d.commit(id), nil
}

func (d commitDoc) commit(id store.RoomID) store.Commit {
	c := store.Commit{Room: id, Epoch: u64(d.Epoch), Blob: d.Blob}
	copy(c.Hash[:], d.Hash)
	return c
}

// createCommit reads the create commit from the room document.
func (s *Store) createCommit(ctx context.Context, st *roomState) (store.Commit, error) {
	var d roomDoc
	err := s.rooms.FindOne(ctx, bson.D{{Key: "_id", Value: roomKey(st.id)}, {Key: "inc", Value: st.doc.Inc}},
		options.FindOne().SetProjection(bson.D{{Key: "create_blob", Value: 1}, {Key: "create_hash", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Commit{}, notFound("room %s", st.id)
	}
	if err != nil {
		return store.Commit{}, s.fail(ctx, "reading the create commit of room "+st.id.String(), err)
	}
	c := store.Commit{Room: st.id, Epoch: st.first(), Blob: d.CreateBlob}
	copy(c.Hash[:], d.CreateHash)
	return c, nil
}

// ListCommits implements store.Rooms.
func (s *Store) ListCommits(ctx context.Context, id store.RoomID, afterEpoch uint64, limit int) ([]store.Commit, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []store.Commit{}
	if afterEpoch >= st.epoch {
		return out, nil
	}
	if afterEpoch < st.first() {
		c, err := s.createCommit(ctx, st)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		afterEpoch = st.first()
	}
	if len(out) == limit || afterEpoch >= st.epoch {
		return out, nil
	}
	last := st.epoch
	if n := uint64(limit - len(out)); last-afterEpoch > n {
		last = afterEpoch + n
	}
	cur, err := s.commits.Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{
			{Key: "$gt", Value: commitKey(id, st.doc.Inc, afterEpoch)},
			{Key: "$lte", Value: commitKey(id, st.doc.Inc, last)},
		}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "members", Value: 0}}))
	var docs []commitDoc
	if err == nil {
		err = cur.All(ctx, &docs)
	}
	if err != nil {
		return nil, s.fail(ctx, "listing the commits of room "+id.String(), err)
	}
	for _, d := range docs {
		if !d.Deleted {
			out = append(out, d.commit(id))
		}
	}
	return out, nil
}

// wrappedDoc is a wrapped key, keyed by (room, incarnation, epoch,
// member): the unique _id keeps one per member and epoch.
type wrappedDoc struct {
	ID     string `bson:"_id"`
	RID    string `bson:"rid"`
	Inc    string `bson:"inc"`
	Epoch  int64  `bson:"epoch"`
	Member []byte `bson:"member"`
	Blob   []byte `bson:"blob"`
}

// PutWrappedKey implements store.WrappedKeys.
func (s *Store) PutWrappedKey(ctx context.Context, wk store.WrappedKey) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(wk); err != nil {
		return err
	}
	st, err := s.loadRoom(ctx, wk.Room)
	if err != nil {
		return err
	}
	if wk.Epoch < st.first() || wk.Epoch > st.epoch {
		return notFound("room %s has no commit at epoch %d", wk.Room, wk.Epoch)
	}
	key := wrappedKeyKey(wk.Room, st.doc.Inc, wk.Epoch, wk.Member)
	_, err = s.wrapped.InsertOne(ctx, wrappedDoc{
		ID: key, RID: roomKey(wk.Room), Inc: st.doc.Inc, Epoch: i64(wk.Epoch), Member: wk.Member[:], Blob: wk.Blob,
	})
	if err == nil {
		return nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return s.fail(ctx, "storing a wrapped key in room "+wk.Room.String(), err)
	}
	var old wrappedDoc
	if err := s.wrapped.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&old); err != nil {
		return s.fail(ctx, "reading a wrapped key in room "+wk.Room.String(), err)
	}
	if bytes.Equal(old.Blob, wk.Blob) {
		return nil
	}
	return conflict("room %s already holds another key for %s at epoch %d", wk.Room, wk.Member.Short(), wk.Epoch)
}

// GetWrappedKey implements store.WrappedKeys.
func (s *Store) GetWrappedKey(ctx context.Context, id store.RoomID, epoch uint64, member store.PeerID) (store.WrappedKey, error) {
	if err := s.enter(ctx); err != nil {
		return store.WrappedKey{}, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return store.WrappedKey{}, err
	}
	var d wrappedDoc
	err = s.wrapped.FindOne(ctx, bson.D{{Key: "_id", Value: wrappedKeyKey(id, st.doc.Inc, epoch, member)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.WrappedKey{}, notFound("room %s holds no key for %s at epoch %d", id, member.Short(), epoch)
	}
	if err != nil {
		return store.WrappedKey{}, s.fail(ctx, "reading a wrapped key in room "+id.String(), err)
	}
	return store.WrappedKey{Room: id, Epoch: epoch, Member: member, Blob: d.Blob}, nil
}
