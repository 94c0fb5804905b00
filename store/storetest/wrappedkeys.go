package storetest

import (
	"bytes"
	"testing"

	"github.com/lanpeer/lanpeer/store"
)

func testWrappedKeyPutGet(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id := f.room.ID
	wk := func(epoch uint64, m store.Member, tag string) store.WrappedKey {
		return store.WrappedKey{Room: id, Epoch: epoch, Member: m.Peer, Blob: blob(tag, 180)}
	}
	keys1 := []store.WrappedKey{wk(1, f.members[0], "k1 0"), wk(1, f.members[1], "k1 1")}
	for _, k := range keys1 {
		ok(t, s.PutWrappedKey(ctx, k), "PutWrappedKey")
	}
	ok(t, s.PutWrappedKey(ctx, keys1[0]), "PutWrappedKey again")
	isErr(t, s.PutWrappedKey(ctx, wk(1, f.members[0], "another key")), store.ErrConflict, "a different key for the same member and epoch")

	// A key for an epoch that has no commit yet (or before the room).
	isErr(t, s.PutWrappedKey(ctx, wk(2, f.members[0], "k2 0")), store.ErrNotFound, "PutWrappedKey for a future epoch")
	isErr(t, s.PutWrappedKey(ctx, wk(0, f.members[0], "k0 0")), store.ErrNotFound, "PutWrappedKey for an epoch before the room")
	unknown := wk(1, f.members[0], "k")
	unknown.Room = roomID(99)
	isErr(t, s.PutWrappedKey(ctx, unknown), store.ErrNotFound, "PutWrappedKey in an unknown room")

	_, err := s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
	ok(t, err, "ApplyCommit")
	k2 := wk(2, f.members[0], "k2 0")
	ok(t, s.PutWrappedKey(ctx, k2), "PutWrappedKey at the new epoch")

	// Every epoch's keys stay: members read the history they were there for.
	for _, want := range append(keys1, k2) {
		got, err := s.GetWrappedKey(ctx, id, want.Epoch, want.Member)
		ok(t, err, "GetWrappedKey")
		if got.Room != want.Room || got.Epoch != want.Epoch || got.Member != want.Member || !bytes.Equal(got.Blob, want.Blob) {
			t.Errorf("GetWrappedKey(%d, %s) = %+v, want %+v", want.Epoch, want.Member.Short(), got, want)
		}
	}
	_, err = s.GetWrappedKey(ctx, id, 2, f.members[1].Peer)
	isErr(t, err, store.ErrNotFound, "GetWrappedKey with none stored")
	_, err = s.GetWrappedKey(ctx, id, 3, f.members[0].Peer)
	isErr(t, err, store.ErrNotFound, "GetWrappedKey of a future epoch")
	_, err = s.GetWrappedKey(ctx, roomID(99), 1, f.members[0].Peer)
	isErr(t, err, store.ErrNotFound, "GetWrappedKey in an unknown room")

	// Copies both ways.
	want := bytes.Clone(k2.Blob)
	k2.Blob[0] ^= 0xff
	got, err := s.GetWrappedKey(ctx, id, 2, k2.Member)
	ok(t, err, "GetWrappedKey")
	if !bytes.Equal(got.Blob, want) {
		t.Fatal("changing the blob passed to PutWrappedKey changed the stored key")
	}
	got.Blob[0] ^= 0xff
	got, err = s.GetWrappedKey(ctx, id, 2, k2.Member)
	ok(t, err, "GetWrappedKey")
	if !bytes.Equal(got.Blob, want) {
		t.Fatal("changing a blob GetWrappedKey returned changed the stored key")
	}
}

func testWrappedKeyInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	good := store.WrappedKey{Room: f.room.ID, Epoch: 1, Member: f.members[1].Peer, Blob: blob("key", 180)}
	for _, tc := range []struct {
		name   string
		change func(*store.WrappedKey)
	}{
		{"zero room", func(k *store.WrappedKey) { k.Room = store.RoomID{} }},
		{"zero member", func(k *store.WrappedKey) { k.Member = store.PeerID{} }},
		{"empty blob", func(k *store.WrappedKey) { k.Blob = nil }},
	} {
		k := good
		tc.change(&k)
		isErr(t, s.PutWrappedKey(ctx, k), store.ErrInvalid, tc.name)
	}
	big := good
	big.Blob = make([]byte, store.MaxWrappedKeySize+1)
	tooLarge(t, s.PutWrappedKey(ctx, big), store.MaxWrappedKeySize+1, store.MaxWrappedKeySize, "blob over the bound")
	_, err := s.GetWrappedKey(ctx, good.Room, 1, good.Member)
	isErr(t, err, store.ErrNotFound, "GetWrappedKey after refused puts")
	big.Blob = big.Blob[:store.MaxWrappedKeySize]
	ok(t, s.PutWrappedKey(ctx, big), "blob at the bound")
}
