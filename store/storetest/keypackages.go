package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

func testKeyPackagePutGet(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	kp := keyPackage(peer(1), 1, t0.Add(hour))
	ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	got, err := s.GetKeyPackage(ctx, kp.Hash)
	ok(t, err, "GetKeyPackage")
	want := kp
	want.Expires = store.Millis(kp.Expires)
	if !sameKeyPackage(got, want) {
		t.Errorf("GetKeyPackage = %+v, want %+v", got, want)
	}
	if !got.Expires.Equal(store.Millis(kp.Expires)) || got.Expires.Equal(kp.Expires) {
		t.Errorf("GetKeyPackage Expires = %v, want it cut to the millisecond: %v", got.Expires, store.Millis(kp.Expires))
	}
	_, err = s.GetKeyPackage(ctx, hash("no such key package"))
	isErr(t, err, store.ErrNotFound, "GetKeyPackage(unknown)")
}

func testKeyPackageIdempotent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	kp := keyPackage(peer(1), 1, t0.Add(hour))
	ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	ok(t, s.PutKeyPackage(ctx, kp, t0.Add(time.Minute)), "PutKeyPackage again")

	other := kp
	other.Blob = blob("other contents", 200)
	isErr(t, s.PutKeyPackage(ctx, other, t0), store.ErrConflict, "same hash, other blob")
	other = kp
	other.Owner = peer(2)
	isErr(t, s.PutKeyPackage(ctx, other, t0), store.ErrConflict, "same hash, other owner")
	other = kp
	other.Expires = kp.Expires.Add(time.Second)
	isErr(t, s.PutKeyPackage(ctx, other, t0), store.ErrConflict, "same hash, other expiry")

	got, err := s.GetKeyPackage(ctx, kp.Hash)
	ok(t, err, "GetKeyPackage")
	if !bytes.Equal(got.Blob, kp.Blob) || got.Owner != kp.Owner {
		t.Errorf("a conflicting put changed the stored key package")
	}
}

func testKeyPackageInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	good := keyPackage(peer(1), 1, t0.Add(hour))
	for _, tc := range []struct {
		name   string
		change func(*store.KeyPackage)
	}{
		{"zero hash", func(kp *store.KeyPackage) { kp.Hash = [32]byte{} }},
		{"zero owner", func(kp *store.KeyPackage) { kp.Owner = store.PeerID{} }},
		{"empty blob", func(kp *store.KeyPackage) { kp.Blob = nil }},
		{"no expiry", func(kp *store.KeyPackage) { kp.Expires = time.Time{} }},
	} {
		kp := good
		tc.change(&kp)
		isErr(t, s.PutKeyPackage(ctx, kp, t0), store.ErrInvalid, tc.name)
	}

	big := keyPackage(peer(1), 2, t0.Add(hour))
	big.Blob = blob("big", store.MaxKeyPackageSize+1)
	tooLarge(t, s.PutKeyPackage(ctx, big, t0), store.MaxKeyPackageSize+1, store.MaxKeyPackageSize, "blob over the bound")
	big.Blob = big.Blob[:store.MaxKeyPackageSize]
	ok(t, s.PutKeyPackage(ctx, big, t0), "blob at the bound")

	// Expired at now (the instant of expiry counts) is stale, and not stored.
	exp := keyPackage(peer(1), 3, t0)
	isErr(t, s.PutKeyPackage(ctx, exp, t0), store.ErrStale, "expired at now")
	exp = keyPackage(peer(1), 4, t0.Add(-time.Hour))
	isErr(t, s.PutKeyPackage(ctx, exp, t0), store.ErrStale, "expired an hour ago")
	_, err := s.GetKeyPackage(ctx, exp.Hash)
	isErr(t, err, store.ErrNotFound, "GetKeyPackage of a refused key package")
	_, err = s.GetKeyPackage(ctx, good.Hash)
	isErr(t, err, store.ErrNotFound, "GetKeyPackage of an invalid key package's hash")
}

func testKeyPackageLatest(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	owner := peer(1)
	_, err := s.LatestKeyPackage(ctx, owner, t0)
	isErr(t, err, store.ErrNotFound, "LatestKeyPackage with none")

	kp1 := keyPackage(owner, 1, t0.Add(1*hour))
	kp3 := keyPackage(owner, 3, t0.Add(3*hour))
	kp2 := keyPackage(owner, 2, t0.Add(2*hour))
	other := keyPackage(peer(2), 9, t0.Add(9*hour))
	for _, kp := range []store.KeyPackage{kp1, kp3, kp2, other} {
		ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	}
	for _, tc := range []struct {
		now  time.Time
		want store.KeyPackage
	}{
		{t0, kp3},
		{t0.Add(2*hour + 30*time.Minute), kp3},
		{t0.Add(3*hour - time.Millisecond), kp3},
	} {
		got, err := s.LatestKeyPackage(ctx, owner, tc.now)
		ok(t, err, "LatestKeyPackage")
		if got.Hash != tc.want.Hash {
			t.Errorf("LatestKeyPackage at %v = %x, want %x", tc.now, got.Hash[:4], tc.want.Hash[:4])
		}
	}
	_, err = s.LatestKeyPackage(ctx, owner, t0.Add(3*hour))
	isErr(t, err, store.ErrNotFound, "LatestKeyPackage at the last expiry")

	// Of equal expiries, the greater hash.
	tieA := keyPackage(owner, 10, t0.Add(5*hour))
	tieB := keyPackage(owner, 11, t0.Add(5*hour))
	ok(t, s.PutKeyPackage(ctx, tieA, t0), "PutKeyPackage")
	ok(t, s.PutKeyPackage(ctx, tieB, t0), "PutKeyPackage")
	want := tieA
	if bytes.Compare(tieB.Hash[:], tieA.Hash[:]) > 0 {
		want = tieB
	}
	got, err := s.LatestKeyPackage(ctx, owner, t0)
	ok(t, err, "LatestKeyPackage")
	if got.Hash != want.Hash {
		t.Errorf("LatestKeyPackage of equal expiries = %x, want the greater hash %x", got.Hash[:4], want.Hash[:4])
	}
}

func testKeyPackagePerOwnerBound(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	owner := peer(1)
	var first store.KeyPackage
	for i := range store.MaxKeyPackagesPerOwner {
		// The first half expires in an hour, the rest in two.
		expires := t0.Add(hour)
		if i >= store.MaxKeyPackagesPerOwner/2 {
			expires = t0.Add(2 * hour)
		}
		kp := keyPackage(owner, i, expires)
		if i == 0 {
			first = kp
		}
		ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage under the bound")
	}
	over := keyPackage(owner, 1000, t0.Add(hour))
	isErr(t, s.PutKeyPackage(ctx, over, t0), store.ErrFull, "one key package over the bound")
	ok(t, s.PutKeyPackage(ctx, first, t0), "an idempotent put at the bound")
	ok(t, s.PutKeyPackage(ctx, keyPackage(peer(2), 1, t0.Add(hour)), t0), "another owner at the same time")

	// Expired key packages do not count.
	later := t0.Add(hour)
	for i := range store.MaxKeyPackagesPerOwner / 2 {
		ok(t, s.PutKeyPackage(ctx, keyPackage(owner, 2000+i, later.Add(hour)), later), "PutKeyPackage once half expired")
	}
	isErr(t, s.PutKeyPackage(ctx, keyPackage(owner, 3000, later.Add(hour)), later), store.ErrFull, "over the bound again")
}

func testKeyPackageSweep(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := newFixture(1)
	sender := f.members[1]

	// Expired and named by nothing: swept.
	loose := keyPackage(peer(7), 1, t0.Add(hour))
	// Named by a stored message: kept.
	byMessage := keyPackage(sender.Peer, 1, t0.Add(hour))
	// Named by a current member: kept while it is.
	byMember := keyPackage(f.members[2].Peer, 1, t0.Add(hour))
	// Unexpired: kept.
	fresh := keyPackage(peer(8), 1, t0.Add(5*hour))
	for _, kp := range []store.KeyPackage{loose, byMessage, byMember, fresh} {
		ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	}
	f.members[2].KeyPackageHash = byMember.Hash
	ok(t, s.CreateRoom(ctx, f.room, f.create, f.members), "CreateRoom")
	m := message(f.room.ID, sender.Peer, 1, 1)
	m.KeyPackageHash = byMessage.Hash
	_, err := s.AppendMessage(ctx, m)
	ok(t, err, "AppendMessage")

	n, err := s.SweepKeyPackages(ctx, t0.Add(hour-time.Millisecond))
	ok(t, err, "SweepKeyPackages before expiry")
	if n != 0 {
		t.Errorf("SweepKeyPackages before expiry deleted %d, want 0", n)
	}
	n, err = s.SweepKeyPackages(ctx, t0.Add(hour))
	ok(t, err, "SweepKeyPackages")
	if n != 1 {
		t.Errorf("SweepKeyPackages deleted %d, want 1", n)
	}
	_, err = s.GetKeyPackage(ctx, loose.Hash)
	isErr(t, err, store.ErrNotFound, "the swept key package")
	for _, kp := range []store.KeyPackage{byMessage, byMember, fresh} {
		if _, err := s.GetKeyPackage(ctx, kp.Hash); err != nil {
			t.Errorf("GetKeyPackage of a key package sweeping must keep: %v", err)
		}
	}

	// A commit that moves the member to another key package lets the old
	// one go.
	next := commit(f.room.ID, 2, 0)
	members := append([]store.Member(nil), f.members...)
	members[2].KeyPackageHash = hash("a newer key package")
	_, err = s.ApplyCommit(ctx, f.room.ID, 1, next, members)
	ok(t, err, "ApplyCommit")
	n, err = s.SweepKeyPackages(ctx, t0.Add(hour))
	ok(t, err, "SweepKeyPackages after the member moved on")
	if n != 1 {
		t.Errorf("SweepKeyPackages after the member moved on deleted %d, want 1", n)
	}
	_, err = s.GetKeyPackage(ctx, byMember.Hash)
	isErr(t, err, store.ErrNotFound, "the key package no member names any more")

	// Deleting the room lets the message's key package go.
	ok(t, s.DeleteRoom(ctx, f.room.ID), "DeleteRoom")
	n, err = s.SweepKeyPackages(ctx, t0.Add(hour))
	ok(t, err, "SweepKeyPackages after DeleteRoom")
	if n != 1 {
		t.Errorf("SweepKeyPackages after DeleteRoom deleted %d, want 1", n)
	}
	_, err = s.GetKeyPackage(ctx, byMessage.Hash)
	isErr(t, err, store.ErrNotFound, "the key package of a deleted room's message")
	if _, err := s.GetKeyPackage(ctx, fresh.Hash); err != nil {
		t.Errorf("the unexpired key package is gone: %v", err)
	}
}

func testKeyPackageCopies(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	kp := keyPackage(peer(1), 1, t0.Add(hour))
	want := bytes.Clone(kp.Blob)
	ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	kp.Blob[0] ^= 0xff // the caller reuses its buffer

	got, err := s.GetKeyPackage(ctx, kp.Hash)
	ok(t, err, "GetKeyPackage")
	if !bytes.Equal(got.Blob, want) {
		t.Fatal("changing the blob passed to PutKeyPackage changed the stored key package")
	}
	got.Blob[0] ^= 0xff
	latest, err := s.LatestKeyPackage(ctx, kp.Owner, t0)
	ok(t, err, "LatestKeyPackage")
	if !bytes.Equal(latest.Blob, want) {
		t.Fatal("changing a blob GetKeyPackage returned changed the stored key package")
	}
	latest.Blob[0] ^= 0xff
	again, err := s.GetKeyPackage(ctx, kp.Hash)
	ok(t, err, "GetKeyPackage")
	if !bytes.Equal(again.Blob, want) {
		t.Fatal("changing a blob LatestKeyPackage returned changed the stored key package")
	}
}
