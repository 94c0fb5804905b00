package storetest

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

func testRoomCreateGet(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)

	got, err := s.GetRoom(ctx, f.room.ID)
	ok(t, err, "GetRoom")
	want := f.room
	want.Created = store.Millis(f.room.Created)
	if !sameRoom(got, want) {
		t.Errorf("GetRoom = %+v, want %+v", got, want)
	}
	wantMembers(t, s, f.room.ID, f.members)
	for _, m := range f.members {
		got, err := s.GetMember(ctx, f.room.ID, m.Peer)
		ok(t, err, "GetMember")
		if !sameMember(got, m) {
			t.Errorf("GetMember = %+v, want %+v", got, m)
		}
	}
	c, err := s.GetCommit(ctx, f.room.ID, 1)
	ok(t, err, "GetCommit")
	if !sameCommit(c, f.create) {
		t.Errorf("GetCommit(1) = %+v, want the create commit", c)
	}
	for _, p := range f.members {
		wantRoomIDs(t, s, p.Peer, f.room.ID)
	}

	_, err = s.GetMember(ctx, f.room.ID, peer(999))
	isErr(t, err, store.ErrNotFound, "GetMember(non-member)")
	for _, epoch := range []uint64{0, 2} {
		_, err = s.GetCommit(ctx, f.room.ID, epoch)
		isErr(t, err, store.ErrNotFound, "GetCommit(epoch without a commit)")
	}
	unknown := roomID(99)
	_, err = s.GetRoom(ctx, unknown)
	isErr(t, err, store.ErrNotFound, "GetRoom(unknown)")
	_, err = s.Members(ctx, unknown)
	isErr(t, err, store.ErrNotFound, "Members(unknown)")
	_, err = s.GetMember(ctx, unknown, f.master)
	isErr(t, err, store.ErrNotFound, "GetMember(unknown room)")
	_, err = s.GetCommit(ctx, unknown, 1)
	isErr(t, err, store.ErrNotFound, "GetCommit(unknown room)")
	wantRoomIDs(t, s, peer(999))
}

func testRoomCreateIdempotent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	ok(t, s.CreateRoom(ctx, f.room, f.create, f.members), "CreateRoom again")

	other := newFixture(1)
	other.create = commit(other.room.ID, 1, 1)
	other.room.Head = other.create.Hash
	isErr(t, s.CreateRoom(ctx, other.room, other.create, other.members), store.ErrExists, "another room with the same id")

	// Still the retry of the same create once the room has moved on.
	_, err := s.ApplyCommit(ctx, f.room.ID, 1, commit(f.room.ID, 2, 0), f.members)
	ok(t, err, "ApplyCommit")
	ok(t, s.CreateRoom(ctx, f.room, f.create, f.members), "CreateRoom again after a commit")
	got, err := s.GetRoom(ctx, f.room.ID)
	ok(t, err, "GetRoom")
	if got.Epoch != 2 {
		t.Errorf("a retried CreateRoom set the room back to epoch %d", got.Epoch)
	}
	wantRoomIDs(t, s, f.master, f.room.ID)
}

func testRoomCreateInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := newFixture(1)
	other := peer(77)
	for _, tc := range []struct {
		name   string
		change func(*fixture)
		tooBig [2]int // size and bound of a *TooLargeError; zero for ErrInvalid
	}{
		{"zero id", func(f *fixture) { f.room.ID = store.RoomID{}; f.create.Room = store.RoomID{} }, [2]int{}},
		{"zero master", func(f *fixture) { f.room.Master = store.PeerID{} }, [2]int{}},
		{"name not UTF-8", func(f *fixture) { f.room.Name = "bad \xff name" }, [2]int{}},
		{"name too long", func(f *fixture) { f.room.Name = strings.Repeat("é", 129) }, [2]int{258, store.MaxRoomNameSize}},
		{"no creation time", func(f *fixture) { f.room.Created = time.Time{} }, [2]int{}},
		{"commit of another room", func(f *fixture) { f.create.Room = roomID(2) }, [2]int{}},
		{"commit at another epoch", func(f *fixture) { f.create.Epoch = 2 }, [2]int{}},
		{"head is not the commit", func(f *fixture) { f.room.Head = hash("other") }, [2]int{}},
		{"zero commit hash", func(f *fixture) { f.create.Hash = [32]byte{}; f.room.Head = [32]byte{} }, [2]int{}},
		{"empty commit blob", func(f *fixture) { f.create.Blob = nil }, [2]int{}},
		{"commit blob too large", func(f *fixture) { f.create.Blob = make([]byte, store.MaxCommitSize+1) }, [2]int{store.MaxCommitSize + 1, store.MaxCommitSize}},
		{"no members", func(f *fixture) { f.members = nil }, [2]int{}},
		{"zero member peer", func(f *fixture) { f.members[1].Peer = store.PeerID{} }, [2]int{}},
		{"role zero", func(f *fixture) { f.members[1].Role = 0 }, [2]int{}},
		{"unknown role", func(f *fixture) { f.members[1].Role = 3 }, [2]int{}},
		{"no key package hash", func(f *fixture) { f.members[2].KeyPackageHash = [32]byte{} }, [2]int{}},
		{"acked beyond the epoch", func(f *fixture) { f.members[1].AckedEpoch = 2 }, [2]int{}},
		{"peer twice", func(f *fixture) { f.members[2].Peer = f.members[1].Peer }, [2]int{}},
		{"no master", func(f *fixture) { f.members[0].Role = store.RoleMember }, [2]int{}},
		{"two masters", func(f *fixture) { f.members[1].Role = store.RoleMaster }, [2]int{}},
		{"master role on another peer", func(f *fixture) {
			f.members[0].Role = store.RoleMember
			f.members[1].Role = store.RoleMaster
		}, [2]int{}},
		{"master is not the room's", func(f *fixture) { f.room.Master = other }, [2]int{}},
		{"too many members", func(f *fixture) {
			for i := len(f.members); i <= store.MaxMembers; i++ {
				f.members = append(f.members, member(peer(100000+i), store.RoleMember))
			}
		}, [2]int{store.MaxMembers + 1, store.MaxMembers}},
	} {
		g := newFixture(1)
		tc.change(&g)
		err := s.CreateRoom(ctx, g.room, g.create, g.members)
		if tc.tooBig != [2]int{} {
			tooLarge(t, err, tc.tooBig[0], tc.tooBig[1], tc.name)
		} else {
			isErr(t, err, store.ErrInvalid, tc.name)
		}
		if _, err := s.GetRoom(ctx, f.room.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: the refused room was stored (GetRoom: %v)", tc.name, err)
		}
	}
	wantRoomIDs(t, s, f.members[1].Peer)

	// At the bounds: a name of MaxRoomNameSize bytes, MaxMembers members.
	g := newFixture(1)
	g.room.Name = strings.Repeat("é", store.MaxRoomNameSize/2)
	for i := len(g.members); i < store.MaxMembers; i++ {
		g.members = append(g.members, member(peer(100000+i), store.RoleMember))
	}
	ok(t, s.CreateRoom(ctx, g.room, g.create, g.members), "CreateRoom at the bounds")
	got, err := s.Members(ctx, g.room.ID)
	ok(t, err, "Members")
	if len(got) != store.MaxMembers {
		t.Errorf("Members has %d entries, want %d", len(got), store.MaxMembers)
	}
}

func testRoomCreateAtEpochZero(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := newFixture(1)
	f.create = commit(f.room.ID, 0, 0)
	f.room.Epoch, f.room.Head = 0, f.create.Hash
	ok(t, s.CreateRoom(ctx, f.room, f.create, f.members), "CreateRoom at epoch 0")
	next := commit(f.room.ID, 1, 0)
	r, err := s.ApplyCommit(ctx, f.room.ID, 0, next, f.members)
	ok(t, err, "ApplyCommit from epoch 0")
	if r.Epoch != 1 || r.Head != next.Hash {
		t.Errorf("ApplyCommit from epoch 0 gave epoch %d", r.Epoch)
	}
	cs, err := s.ListCommits(ctx, f.room.ID, 0, 10)
	ok(t, err, "ListCommits")
	if len(cs) != 1 || !sameCommit(cs[0], next) {
		t.Errorf("ListCommits(after 0) = %d commits, want the one at epoch 1", len(cs))
	}
	c, err := s.GetCommit(ctx, f.room.ID, 0)
	ok(t, err, "GetCommit(0)")
	if !sameCommit(c, f.create) {
		t.Errorf("GetCommit(0) is not the create commit")
	}
}

func testRoomApplyCommit(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	a, b := f.members[1], f.members[2]
	c := member(peer(4), store.RoleMember)

	// Invite c, in an order of the master's choosing.
	c2 := commit(f.room.ID, 2, 0)
	members := []store.Member{c, a, f.members[0], b}
	r, err := s.ApplyCommit(ctx, f.room.ID, 1, c2, members)
	ok(t, err, "ApplyCommit(invite)")
	want := f.room
	want.Created = store.Millis(want.Created)
	want.Epoch, want.Head = 2, c2.Hash
	if !sameRoom(r, want) {
		t.Errorf("ApplyCommit returned %+v, want %+v", r, want)
	}
	got, err := s.GetRoom(ctx, f.room.ID)
	ok(t, err, "GetRoom")
	if !sameRoom(got, want) {
		t.Errorf("GetRoom = %+v, want %+v", got, want)
	}
	wantMembers(t, s, f.room.ID, members)
	wantRoomIDs(t, s, c.Peer, f.room.ID)
	gc, err := s.GetCommit(ctx, f.room.ID, 2)
	ok(t, err, "GetCommit(2)")
	if !sameCommit(gc, c2) {
		t.Errorf("GetCommit(2) is not the applied commit")
	}

	// Remove a; rotate with new key packages.
	c3 := commit(f.room.ID, 3, 0)
	members = []store.Member{f.members[0], b, c}
	_, err = s.ApplyCommit(ctx, f.room.ID, 2, c3, members)
	ok(t, err, "ApplyCommit(remove)")
	wantMembers(t, s, f.room.ID, members)
	wantRoomIDs(t, s, a.Peer)
	_, err = s.GetMember(ctx, f.room.ID, a.Peer)
	isErr(t, err, store.ErrNotFound, "GetMember(removed)")

	c4 := commit(f.room.ID, 4, 0)
	for i := range members {
		members[i].KeyPackageHash = hash("rotated", i)
	}
	_, err = s.ApplyCommit(ctx, f.room.ID, 3, c4, members)
	ok(t, err, "ApplyCommit(rotate)")
	wantMembers(t, s, f.room.ID, members)
	// Every commit stays readable.
	for epoch, want := range map[uint64]store.Commit{1: f.create, 2: c2, 3: c3, 4: c4} {
		got, err := s.GetCommit(ctx, f.room.ID, epoch)
		ok(t, err, "GetCommit")
		if !sameCommit(got, want) {
			t.Errorf("GetCommit(%d) is not the commit applied at that epoch", epoch)
		}
	}
}

func testRoomApplyCommitConflict(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id := f.room.ID

	// From an epoch that is not the room's.
	_, err := s.ApplyCommit(ctx, id, 0, commit(id, 1, 5), f.members)
	isErr(t, err, store.ErrConflict, "ApplyCommit from the epoch before the create commit")
	_, err = s.ApplyCommit(ctx, id, 5, commit(id, 6, 0), f.members)
	isErr(t, err, store.ErrConflict, "ApplyCommit from a future epoch")

	won := commit(id, 2, 0)
	_, err = s.ApplyCommit(ctx, id, 1, won, f.members)
	ok(t, err, "ApplyCommit")
	_, err = s.ApplyCommit(ctx, id, 1, commit(id, 2, 1), f.members[:1])
	isErr(t, err, store.ErrConflict, "a second, different commit from the same epoch")

	// The winner again: a retry that changes nothing.
	r, err := s.ApplyCommit(ctx, id, 1, won, f.members[:2])
	ok(t, err, "ApplyCommit retried")
	if r.Epoch != 2 || r.Head != won.Hash {
		t.Errorf("the retried ApplyCommit returned epoch %d", r.Epoch)
	}
	wantMembers(t, s, id, f.members)

	c3 := commit(id, 3, 0)
	_, err = s.ApplyCommit(ctx, id, 2, c3, f.members)
	ok(t, err, "ApplyCommit")
	r, err = s.ApplyCommit(ctx, id, 1, won, f.members[:2])
	ok(t, err, "ApplyCommit of an older winner retried")
	if r.Epoch != 3 || r.Head != c3.Hash {
		t.Errorf("an old commit's retry moved the room to epoch %d", r.Epoch)
	}
	got, err := s.GetRoom(ctx, id)
	ok(t, err, "GetRoom")
	if got.Epoch != 3 || got.Head != c3.Hash {
		t.Errorf("GetRoom after the retries: epoch %d, want 3", got.Epoch)
	}
	wantMembers(t, s, id, f.members)
}

func testRoomApplyCommitInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id := f.room.ID
	swapped := append([]store.Member(nil), f.members...)
	swapped[0].Role, swapped[1].Role = store.RoleMember, store.RoleMaster

	for _, tc := range []struct {
		name    string
		from    uint64
		c       store.Commit
		members []store.Member
	}{
		{"commit skips an epoch", 1, commit(id, 3, 0), f.members},
		{"commit repeats the epoch", 1, commit(id, 1, 9), f.members},
		{"commit of another room", 1, commit(roomID(2), 2, 0), f.members},
		{"from the last epoch there is", math.MaxUint64, commit(id, 0, 0), f.members},
		{"empty commit blob", 1, store.Commit{Room: id, Epoch: 2, Hash: hash("x")}, f.members},
		{"zero commit hash", 1, store.Commit{Room: id, Epoch: 2, Blob: []byte("x")}, f.members},
		{"no members", 1, commit(id, 2, 0), nil},
		{"no master", 1, commit(id, 2, 0), f.members[1:]},
		{"another master", 1, commit(id, 2, 0), swapped},
	} {
		_, err := s.ApplyCommit(ctx, id, tc.from, tc.c, tc.members)
		isErr(t, err, store.ErrInvalid, tc.name)
	}
	big := store.Commit{Room: id, Epoch: 2, Hash: hash("big"), Blob: make([]byte, store.MaxCommitSize+1)}
	_, err := s.ApplyCommit(ctx, id, 1, big, f.members)
	tooLarge(t, err, store.MaxCommitSize+1, store.MaxCommitSize, "commit blob over the bound")

	got, err := s.GetRoom(ctx, id)
	ok(t, err, "GetRoom")
	if got.Epoch != 1 || got.Head != f.create.Hash {
		t.Errorf("a refused commit moved the room to epoch %d", got.Epoch)
	}
	wantMembers(t, s, id, f.members)

	_, err = s.ApplyCommit(ctx, roomID(99), 1, commit(roomID(99), 2, 0), f.members)
	isErr(t, err, store.ErrNotFound, "ApplyCommit to an unknown room")
}

func testRoomApplyCommitConcurrent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const writers, rounds = 8, 20
	f := createRoom(t, s, 1)
	id := f.room.ID
	for round := range rounds {
		from := uint64(1 + round)
		errs := make([]error, writers)
		var start, done sync.WaitGroup
		start.Add(1)
		for w := range writers {
			done.Go(func() {
				start.Wait()
				_, errs[w] = s.ApplyCommit(ctx, id, from, commit(id, from+1, w), f.members)
			})
		}
		start.Done()
		done.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: commits %d and %d both won", round, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: a losing commit got %v, want ErrConflict", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no commit won", round)
		}
		r, err := s.GetRoom(ctx, id)
		ok(t, err, "GetRoom")
		c, err := s.GetCommit(ctx, id, from+1)
		ok(t, err, "GetCommit")
		if want := commit(id, from+1, winner); r.Epoch != from+1 || r.Head != want.Hash || !sameCommit(c, want) {
			t.Fatalf("round %d: the room's head and commit are not the winner's", round)
		}
	}
}

func testRoomAckEpoch(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id, a := f.room.ID, f.members[1].Peer
	acked := func(p store.PeerID) uint64 {
		t.Helper()
		m, err := s.GetMember(ctx, id, p)
		ok(t, err, "GetMember")
		return m.AckedEpoch
	}

	ok(t, s.AckEpoch(ctx, id, a, 1), "AckEpoch(1)")
	if got := acked(a); got != 1 {
		t.Errorf("AckedEpoch = %d, want 1", got)
	}
	isErr(t, s.AckEpoch(ctx, id, a, 2), store.ErrInvalid, "AckEpoch beyond the current epoch")
	_, err := s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
	ok(t, err, "ApplyCommit")
	ok(t, s.AckEpoch(ctx, id, a, 2), "AckEpoch(2)")
	ok(t, s.AckEpoch(ctx, id, a, 1), "AckEpoch(1) after 2")
	if got := acked(a); got != 2 {
		t.Errorf("AckedEpoch after acknowledging 2 then 1 = %d, want 2", got)
	}
	isErr(t, s.AckEpoch(ctx, id, peer(999), 1), store.ErrNotFound, "AckEpoch of a non-member")
	isErr(t, s.AckEpoch(ctx, roomID(99), a, 1), store.ErrNotFound, "AckEpoch in an unknown room")

	// A member that stays keeps its acknowledgement (the commit's zero is
	// not a step back); one that is removed and invited again starts over.
	_, err = s.ApplyCommit(ctx, id, 2, commit(id, 3, 0), f.members)
	ok(t, err, "ApplyCommit(rotate)")
	if got := acked(a); got != 2 {
		t.Errorf("AckedEpoch after a commit = %d, want 2", got)
	}
	_, err = s.ApplyCommit(ctx, id, 3, commit(id, 4, 0), []store.Member{f.members[0], f.members[2]})
	ok(t, err, "ApplyCommit(remove)")
	_, err = s.ApplyCommit(ctx, id, 4, commit(id, 5, 0), f.members)
	ok(t, err, "ApplyCommit(invite again)")
	if got := acked(a); got != 0 {
		t.Errorf("AckedEpoch of a member invited again = %d, want 0", got)
	}
	// A commit may carry acknowledgements itself (the master's own).
	members := append([]store.Member(nil), f.members...)
	members[0].AckedEpoch = 6
	_, err = s.ApplyCommit(ctx, id, 5, commit(id, 6, 0), members)
	ok(t, err, "ApplyCommit with the master's acknowledgement")
	if got := acked(f.master); got != 6 {
		t.Errorf("the master's AckedEpoch = %d, want 6 from the commit", got)
	}
}

func testRoomLeave(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id, a := f.room.ID, f.members[1].Peer
	req := blob("leave request", 100)

	ok(t, s.RecordLeave(ctx, id, a, req), "RecordLeave")
	m, err := s.GetMember(ctx, id, a)
	ok(t, err, "GetMember")
	if !bytes.Equal(m.Leave, req) {
		t.Errorf("GetMember after RecordLeave: Leave = %x, want the request", m.Leave)
	}
	// Still in the member list and in its room list until the master
	// removes it by a commit.
	got, err := s.Members(ctx, id)
	ok(t, err, "Members")
	if len(got) != 3 || !bytes.Equal(got[1].Leave, req) {
		t.Errorf("Members after RecordLeave does not show the request")
	}
	wantRoomIDs(t, s, a, id)

	ok(t, s.RecordLeave(ctx, id, a, blob("a second request", 100)), "RecordLeave again")
	m, err = s.GetMember(ctx, id, a)
	ok(t, err, "GetMember")
	if !bytes.Equal(m.Leave, req) {
		t.Errorf("a second leave request replaced the first")
	}

	isErr(t, s.RecordLeave(ctx, id, f.master, req), store.ErrInvalid, "RecordLeave of the master")
	isErr(t, s.RecordLeave(ctx, id, peer(999), req), store.ErrNotFound, "RecordLeave of a non-member")
	isErr(t, s.RecordLeave(ctx, roomID(99), a, req), store.ErrNotFound, "RecordLeave in an unknown room")
	isErr(t, s.RecordLeave(ctx, id, f.members[2].Peer, nil), store.ErrInvalid, "RecordLeave with no request")
	err = s.RecordLeave(ctx, id, f.members[2].Peer, make([]byte, store.MaxLeaveRequestSize+1))
	tooLarge(t, err, store.MaxLeaveRequestSize+1, store.MaxLeaveRequestSize, "leave request over the bound")
	m, err = s.GetMember(ctx, id, f.members[2].Peer)
	ok(t, err, "GetMember")
	if m.Leave != nil {
		t.Errorf("a refused leave request was stored")
	}

	// A commit that keeps the member keeps the request; the remove
	// commit drops both; a later invitation starts without it.
	_, err = s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
	ok(t, err, "ApplyCommit(rotate)")
	m, err = s.GetMember(ctx, id, a)
	ok(t, err, "GetMember")
	if !bytes.Equal(m.Leave, req) {
		t.Errorf("a commit that keeps the member dropped its leave request")
	}
	_, err = s.ApplyCommit(ctx, id, 2, commit(id, 3, 0), []store.Member{f.members[0], f.members[2]})
	ok(t, err, "ApplyCommit(remove)")
	wantRoomIDs(t, s, a)
	_, err = s.ApplyCommit(ctx, id, 3, commit(id, 4, 0), f.members)
	ok(t, err, "ApplyCommit(invite again)")
	m, err = s.GetMember(ctx, id, a)
	ok(t, err, "GetMember")
	if m.Leave != nil {
		t.Errorf("a member invited again still has its old leave request")
	}
}

func testRoomList(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	p := peer(5)
	// p is in rooms 3, 1 and 4 (created in that order), not in 2.
	var ids []store.RoomID
	for _, n := range []int{3, 1, 4, 2} {
		f := newFixture(n)
		if n != 2 {
			f.members = append(f.members, member(p, store.RoleMember))
			ids = append(ids, f.room.ID)
		}
		ok(t, s.CreateRoom(ctx, f.room, f.create, f.members), "CreateRoom")
	}
	r1, r3, r4 := roomID(1), roomID(3), roomID(4)
	wantRoomIDs(t, s, p, r1, r3, r4)

	page, err := s.ListRooms(ctx, p, store.RoomID{}, 2)
	ok(t, err, "ListRooms(limit 2)")
	if len(page) != 2 || page[0].ID != r1 || page[1].ID != r3 {
		t.Fatalf("ListRooms(limit 2) = %d rooms, want rooms 1 and 3", len(page))
	}
	if !sameRoom(page[1], func() store.Room { r := newFixture(3).room; r.Created = store.Millis(r.Created); return r }()) {
		t.Errorf("ListRooms returned %+v, not the stored room", page[1])
	}
	page, err = s.ListRooms(ctx, p, page[1].ID, 2)
	ok(t, err, "ListRooms(after room 3)")
	if len(page) != 1 || page[0].ID != r4 {
		t.Fatalf("ListRooms(after room 3) = %d rooms, want room 4", len(page))
	}
	page, err = s.ListRooms(ctx, p, r4, 2)
	ok(t, err, "ListRooms(after the last)")
	if len(page) != 0 {
		t.Errorf("ListRooms(after the last) = %d rooms, want none", len(page))
	}

	_, err = s.ListRooms(ctx, p, store.RoomID{}, 0)
	isErr(t, err, store.ErrInvalid, "ListRooms(limit 0)")
	_, err = s.ListRooms(ctx, p, store.RoomID{}, store.MaxListLimit+1)
	tooLarge(t, err, store.MaxListLimit+1, store.MaxListLimit, "ListRooms(limit over the bound)")

	// The listed room shows the current epoch.
	f := newFixture(4)
	f.members = append(f.members, member(p, store.RoleMember))
	_, err = s.ApplyCommit(ctx, r4, 1, commit(r4, 2, 0), f.members)
	ok(t, err, "ApplyCommit")
	page, err = s.ListRooms(ctx, p, r3, 1)
	ok(t, err, "ListRooms")
	if len(page) != 1 || page[0].Epoch != 2 {
		t.Errorf("ListRooms does not show the room's current epoch")
	}
}

func testRoomListCommits(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id := f.room.ID
	all := []store.Commit{f.create}
	for epoch := uint64(2); epoch <= 5; epoch++ {
		c := commit(id, epoch, 0)
		_, err := s.ApplyCommit(ctx, id, epoch-1, c, f.members)
		ok(t, err, "ApplyCommit")
		all = append(all, c)
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []store.Commit
	}{
		{0, 10, all},
		{1, 10, all[1:]},
		{2, 2, all[2:4]},
		{4, 1, all[4:]},
		{5, 10, nil},
		{100, 10, nil},
	} {
		got, err := s.ListCommits(ctx, id, tc.after, tc.limit)
		ok(t, err, "ListCommits")
		if len(got) != len(tc.want) {
			t.Errorf("ListCommits(after %d, limit %d) = %d commits, want %d", tc.after, tc.limit, len(got), len(tc.want))
			continue
		}
		for i := range got {
			if !sameCommit(got[i], tc.want[i]) {
				t.Errorf("ListCommits(after %d, limit %d)[%d] is epoch %d, want %d", tc.after, tc.limit, i, got[i].Epoch, tc.want[i].Epoch)
			}
		}
	}
	_, err := s.ListCommits(ctx, id, 0, 0)
	isErr(t, err, store.ErrInvalid, "ListCommits(limit 0)")
	_, err = s.ListCommits(ctx, id, 0, store.MaxListLimit+1)
	tooLarge(t, err, store.MaxListLimit+1, store.MaxListLimit, "ListCommits(limit over the bound)")
	_, err = s.ListCommits(ctx, roomID(99), 0, 10)
	isErr(t, err, store.ErrNotFound, "ListCommits(unknown room)")
}

func testRoomDelete(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	keep := createRoom(t, s, 2)
	id, a := f.room.ID, f.members[1].Peer
	_, err := s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
	ok(t, err, "ApplyCommit")
	ok(t, s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: 2, Member: a, Blob: blob("key", 100)}), "PutWrappedKey")
	_, err = s.AppendMessage(ctx, message(id, a, 1, 2))
	ok(t, err, "AppendMessage")
	ok(t, s.RecordLeave(ctx, id, f.members[2].Peer, blob("leave", 10)), "RecordLeave")
	kept, err := s.AppendMessage(ctx, message(keep.room.ID, keep.members[1].Peer, 1, 1))
	ok(t, err, "AppendMessage to the other room")

	ok(t, s.DeleteRoom(ctx, id), "DeleteRoom")
	isErr(t, s.DeleteRoom(ctx, id), store.ErrNotFound, "DeleteRoom again")

	nf := func(what string, err error) { t.Helper(); isErr(t, err, store.ErrNotFound, what+" of a deleted room") }
	_, err = s.GetRoom(ctx, id)
	nf("GetRoom", err)
	_, err = s.Members(ctx, id)
	nf("Members", err)
	_, err = s.GetMember(ctx, id, a)
	nf("GetMember", err)
	_, err = s.GetCommit(ctx, id, 1)
	nf("GetCommit", err)
	_, err = s.ListCommits(ctx, id, 0, 10)
	nf("ListCommits", err)
	_, err = s.GetWrappedKey(ctx, id, 2, a)
	nf("GetWrappedKey", err)
	_, err = s.ReadMessages(ctx, id, 0, 10)
	nf("ReadMessages", err)
	_, err = s.MessageSpan(ctx, id)
	nf("MessageSpan", err)
	_, err = s.AppendMessage(ctx, message(id, a, 2, 2))
	nf("AppendMessage", err)
	nf("PutWrappedKey", s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: 2, Member: a, Blob: blob("key", 100)}))
	_, err = s.ApplyCommit(ctx, id, 2, commit(id, 3, 0), f.members)
	nf("ApplyCommit", err)
	nf("AckEpoch", s.AckEpoch(ctx, id, a, 1))
	nf("RecordLeave", s.RecordLeave(ctx, id, a, blob("leave", 10)))
	for _, m := range f.members {
		wantRoomIDs(t, s, m.Peer)
	}

	// The other room is untouched.
	wantRoomIDs(t, s, keep.master, keep.room.ID)
	msgs := readAll(t, s, keep.room.ID, 0)
	if len(msgs) != 1 || !sameMessage(msgs[0], kept) {
		t.Errorf("deleting a room changed another room's messages")
	}

	// The id can be used again, for a room that starts from nothing.
	g := newFixture(1)
	g.create = commit(id, 1, 7)
	g.room.Head = g.create.Hash
	ok(t, s.CreateRoom(ctx, g.room, g.create, g.members), "CreateRoom with a deleted room's id")
	_, err = s.GetWrappedKey(ctx, id, 2, a)
	nf("GetWrappedKey", err)
	m, err := s.AppendMessage(ctx, message(id, a, 1, 1))
	ok(t, err, "AppendMessage")
	if m.Seq != 1 {
		t.Errorf("the new room's first message has seq %d, want 1", m.Seq)
	}
	gm, err := s.GetMember(ctx, id, f.members[2].Peer)
	ok(t, err, "GetMember")
	if gm.Leave != nil {
		t.Errorf("the new room inherited a leave request")
	}
}

func testRoomCopies(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := newFixture(1)
	members := append([]store.Member(nil), f.members...)
	create := f.create
	create.Blob = append([]byte(nil), f.create.Blob...)
	ok(t, s.CreateRoom(ctx, f.room, create, members), "CreateRoom")
	members[1].Role = store.RoleMaster // the caller reuses its slices
	members[2].KeyPackageHash[0] ^= 0xff
	create.Blob[0] ^= 0xff
	wantMembers(t, s, f.room.ID, f.members)
	c, err := s.GetCommit(ctx, f.room.ID, 1)
	ok(t, err, "GetCommit")
	if !sameCommit(c, f.create) {
		t.Fatal("changing the blob passed to CreateRoom changed the stored commit")
	}
	c.Blob[0] ^= 0xff
	cs, err := s.ListCommits(ctx, f.room.ID, 0, 1)
	ok(t, err, "ListCommits")
	if !sameCommit(cs[0], f.create) {
		t.Fatal("changing a blob GetCommit returned changed the stored commit")
	}
	cs[0].Blob[0] ^= 0xff
	c, err = s.GetCommit(ctx, f.room.ID, 1)
	ok(t, err, "GetCommit")
	if !sameCommit(c, f.create) {
		t.Fatal("changing a blob ListCommits returned changed the stored commit")
	}

	req := blob("leave", 20)
	ok(t, s.RecordLeave(ctx, f.room.ID, f.members[1].Peer, req), "RecordLeave")
	want := bytes.Clone(req)
	req[0] ^= 0xff
	got, err := s.Members(ctx, f.room.ID)
	ok(t, err, "Members")
	if !bytes.Equal(got[1].Leave, want) {
		t.Fatal("changing the request passed to RecordLeave changed the stored one")
	}
	got[1].Leave[0] ^= 0xff
	m, err := s.GetMember(ctx, f.room.ID, f.members[1].Peer)
	ok(t, err, "GetMember")
	if !bytes.Equal(m.Leave, want) {
		t.Fatal("changing a leave request Members returned changed the stored one")
	}
	m.Leave[0] ^= 0xff
	got, err = s.Members(ctx, f.room.ID)
	ok(t, err, "Members")
	if !bytes.Equal(got[1].Leave, want) {
		t.Fatal("changing a leave request GetMember returned changed the stored one")
	}
}
