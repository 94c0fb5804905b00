package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/lanpeer/lanpeer/store"
)

// call is one use of one Store method.
type call struct {
	name string
	fn   func(ctx context.Context) error
}

// everyMethod returns a call of every Store method except Close, each one
// that would succeed on a store holding f (as createRoom made it) with a
// live context, in this order. Writes use fresh ids, so that success would
// show.
func everyMethod(s store.Store, f fixture) []call {
	id, a := f.room.ID, f.members[1].Peer
	g := newFixture(2)
	kp := keyPackage(peer(1), 1, t0.Add(hour))
	return []call{
		{"PutKeyPackage", func(ctx context.Context) error { return s.PutKeyPackage(ctx, kp, t0) }},
		{"GetKeyPackage", func(ctx context.Context) error { _, err := s.GetKeyPackage(ctx, kp.Hash); return err }},
		{"LatestKeyPackage", func(ctx context.Context) error { _, err := s.LatestKeyPackage(ctx, kp.Owner, t0); return err }},
		{"SweepKeyPackages", func(ctx context.Context) error { _, err := s.SweepKeyPackages(ctx, t0); return err }},
		{"CreateRoom", func(ctx context.Context) error { return s.CreateRoom(ctx, g.room, g.create, g.members) }},
		{"RecordLeave", func(ctx context.Context) error { return s.RecordLeave(ctx, id, a, blob("leave", 10)) }},
		{"AckEpoch", func(ctx context.Context) error { return s.AckEpoch(ctx, id, a, 1) }},
		{"GetRoom", func(ctx context.Context) error { _, err := s.GetRoom(ctx, id); return err }},
		{"ListRooms", func(ctx context.Context) error { _, err := s.ListRooms(ctx, a, store.RoomID{}, 10); return err }},
		{"Members", func(ctx context.Context) error { _, err := s.Members(ctx, id); return err }},
		{"GetMember", func(ctx context.Context) error { _, err := s.GetMember(ctx, id, a); return err }},
		{"GetCommit", func(ctx context.Context) error { _, err := s.GetCommit(ctx, id, 1); return err }},
		{"ListCommits", func(ctx context.Context) error { _, err := s.ListCommits(ctx, id, 0, 10); return err }},
		{"PutWrappedKey", func(ctx context.Context) error {
			return s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: 1, Member: a, Blob: blob("key", 10)})
		}},
		{"GetWrappedKey", func(ctx context.Context) error { _, err := s.GetWrappedKey(ctx, id, 1, f.master); return err }},
		{"AppendMessage", func(ctx context.Context) error { _, err := s.AppendMessage(ctx, message(id, a, 2, 1)); return err }},
		{"ReadMessages", func(ctx context.Context) error { _, err := s.ReadMessages(ctx, id, 0, 10); return err }},
		{"MessageSpan", func(ctx context.Context) error { _, err := s.MessageSpan(ctx, id); return err }},
		{"PutDirectoryRecord", func(ctx context.Context) error {
			return s.PutDirectoryRecord(ctx, record(peer(1), t0, hour), t0)
		}},
		{"GetDirectoryRecord", func(ctx context.Context) error { _, err := s.GetDirectoryRecord(ctx, peer(5), t0); return err }},
		{"SweepDirectory", func(ctx context.Context) error { _, err := s.SweepDirectory(ctx, t0); return err }},
		{"ApplyCommit", func(ctx context.Context) error {
			_, err := s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
			return err
		}},
		{"DeleteRoom", func(ctx context.Context) error { return s.DeleteRoom(ctx, id) }},
	}
}

// seed stores what everyMethod's reads expect, so that each call would
// succeed with a live context.
func seed(t *testing.T, s store.Store) fixture {
	t.Helper()
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	ok(t, s.PutWrappedKey(ctx, store.WrappedKey{Room: f.room.ID, Epoch: 1, Member: f.master, Blob: blob("key", 10)}), "PutWrappedKey")
	ok(t, s.PutDirectoryRecord(ctx, record(peer(5), t0, hour), t0), "PutDirectoryRecord")
	_, err := s.AppendMessage(ctx, message(f.room.ID, f.members[1].Peer, 1, 1))
	ok(t, err, "AppendMessage")
	return f
}

func testContext(t *testing.T, s store.Store) {
	f := seed(t, s)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	for _, c := range everyMethod(s, f) {
		if err := c.fn(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v, want an error wrapping context.Canceled", c.name, err)
		}
	}
	// Nothing was written.
	live := ctxT(t)
	if _, err := s.GetKeyPackage(live, keyPackage(peer(1), 1, t0.Add(hour)).Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutKeyPackage with a cancelled context stored it (GetKeyPackage: %v)", err)
	}
	if _, err := s.GetRoom(live, roomID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateRoom with a cancelled context stored it (GetRoom: %v)", err)
	}
	r, err := s.GetRoom(live, f.room.ID)
	ok(t, err, "GetRoom: DeleteRoom with a cancelled context deleted it")
	if r.Epoch != 1 {
		t.Errorf("ApplyCommit with a cancelled context moved the room to epoch %d", r.Epoch)
	}
	sp, err := s.MessageSpan(live, f.room.ID)
	ok(t, err, "MessageSpan")
	if sp.Last != 1 {
		t.Errorf("AppendMessage with a cancelled context stored a message")
	}
	if m, err := s.GetMember(live, f.room.ID, f.members[1].Peer); err != nil || m.Leave != nil || m.AckedEpoch != 0 {
		t.Errorf("RecordLeave or AckEpoch with a cancelled context changed the member (%+v, %v)", m, err)
	}

	// The same calls with a live context all succeed: the cancelled
	// context, not a bad argument, refused them.
	for _, c := range everyMethod(s, f) {
		if err := c.fn(live); err != nil {
			t.Errorf("%s with a live context: %v", c.name, err)
		}
	}
}

func testClose(t *testing.T, s store.Store) {
	f := seed(t, s)
	ok(t, s.Close(), "Close")
	ok(t, s.Close(), "Close again")
	for _, c := range everyMethod(s, f) {
		if err := c.fn(ctxT(t)); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", c.name, err)
		}
	}
}
