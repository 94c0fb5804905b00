package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

func record(p store.PeerID, issued time.Time, lifetime time.Duration) store.DirectoryRecord {
	return store.DirectoryRecord{
		Peer:    p,
		Blob:    blob(fmt.Sprintf("record %v %d", p, issued.UnixNano()), 150),
		Issued:  issued,
		Expires: issued.Add(lifetime),
	}
}

func normalized(rec store.DirectoryRecord) store.DirectoryRecord {
	rec.Issued, rec.Expires = store.Millis(rec.Issued), store.Millis(rec.Expires)
	return rec
}

func testDirectoryPutGet(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rec := record(peer(1), t0, hour)
	ok(t, s.PutDirectoryRecord(ctx, rec, t0), "PutDirectoryRecord")
	got, err := s.GetDirectoryRecord(ctx, rec.Peer, t0)
	ok(t, err, "GetDirectoryRecord")
	if !sameDirectoryRecord(got, normalized(rec)) {
		t.Errorf("GetDirectoryRecord = %+v, want %+v", got, normalized(rec))
	}
	ok(t, s.PutDirectoryRecord(ctx, rec, t0.Add(time.Minute)), "PutDirectoryRecord again")
	_, err = s.GetDirectoryRecord(ctx, peer(2), t0)
	isErr(t, err, store.ErrNotFound, "GetDirectoryRecord(unknown)")
}

func testDirectoryNewer(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	p := peer(1)
	rec := record(p, t0, hour)
	ok(t, s.PutDirectoryRecord(ctx, rec, t0), "PutDirectoryRecord")

	older := record(p, t0.Add(-time.Minute), hour)
	isErr(t, s.PutDirectoryRecord(ctx, older, t0), store.ErrStale, "an older record")
	same := rec
	same.Blob = blob("another record issued at the same time", 150)
	isErr(t, s.PutDirectoryRecord(ctx, same, t0), store.ErrStale, "another record issued at the same time")
	// Within the same millisecond is the same time.
	sub := record(p, store.Millis(t0).Add(999*time.Microsecond), hour)
	isErr(t, s.PutDirectoryRecord(ctx, sub, t0), store.ErrStale, "a record issued less than a millisecond later")
	got, err := s.GetDirectoryRecord(ctx, p, t0)
	ok(t, err, "GetDirectoryRecord")
	if !sameDirectoryRecord(got, normalized(rec)) {
		t.Fatalf("a refused record replaced the stored one")
	}

	newer := record(p, t0.Add(time.Millisecond), 2*hour)
	ok(t, s.PutDirectoryRecord(ctx, newer, t0), "a newer record")
	got, err = s.GetDirectoryRecord(ctx, p, t0)
	ok(t, err, "GetDirectoryRecord")
	if !sameDirectoryRecord(got, normalized(newer)) {
		t.Errorf("GetDirectoryRecord after a newer put = %+v, want the newer record", got)
	}
	isErr(t, s.PutDirectoryRecord(ctx, rec, t0), store.ErrStale, "the replaced record again")
}

func testDirectoryInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	good := record(peer(1), t0, hour)
	for _, tc := range []struct {
		name   string
		change func(*store.DirectoryRecord)
	}{
		{"zero peer", func(r *store.DirectoryRecord) { r.Peer = store.PeerID{} }},
		{"empty blob", func(r *store.DirectoryRecord) { r.Blob = nil }},
		{"no issue time", func(r *store.DirectoryRecord) { r.Issued = time.Time{} }},
		{"no expiry", func(r *store.DirectoryRecord) { r.Expires = time.Time{} }},
		{"expires when issued", func(r *store.DirectoryRecord) { r.Expires = r.Issued }},
		{"expires within the millisecond it was issued", func(r *store.DirectoryRecord) {
			r.Issued = store.Millis(t0)
			r.Expires = r.Issued.Add(time.Microsecond)
		}},
		{"expires before issued", func(r *store.DirectoryRecord) { r.Expires = r.Issued.Add(-time.Hour) }},
	} {
		rec := good
		tc.change(&rec)
		isErr(t, s.PutDirectoryRecord(ctx, rec, t0), store.ErrInvalid, tc.name)
	}
	big := good
	big.Blob = make([]byte, store.MaxDirectoryRecordSize+1)
	tooLarge(t, s.PutDirectoryRecord(ctx, big, t0), store.MaxDirectoryRecordSize+1, store.MaxDirectoryRecordSize, "blob over the bound")
	_, err := s.GetDirectoryRecord(ctx, good.Peer, t0)
	isErr(t, err, store.ErrNotFound, "GetDirectoryRecord after refused puts")
	big.Blob = big.Blob[:store.MaxDirectoryRecordSize]
	ok(t, s.PutDirectoryRecord(ctx, big, t0), "blob at the bound")
}

func testDirectoryExpiry(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	short1 := record(peer(1), t0, hour)
	short2 := record(peer(2), t0, hour)
	long := record(peer(3), t0, 3*hour)
	for _, r := range []store.DirectoryRecord{short1, short2, long} {
		ok(t, s.PutDirectoryRecord(ctx, r, t0), "PutDirectoryRecord")
	}
	end := store.Millis(t0.Add(hour))
	_, err := s.GetDirectoryRecord(ctx, short1.Peer, end.Add(-time.Millisecond))
	ok(t, err, "GetDirectoryRecord a millisecond before expiry")
	_, err = s.GetDirectoryRecord(ctx, short1.Peer, end)
	isErr(t, err, store.ErrNotFound, "GetDirectoryRecord at expiry")

	isErr(t, s.PutDirectoryRecord(ctx, record(peer(4), t0, hour), end), store.ErrStale, "a record expired at now")
	_, err = s.GetDirectoryRecord(ctx, peer(4), t0)
	isErr(t, err, store.ErrNotFound, "the expired record was stored")

	n, err := s.SweepDirectory(ctx, end.Add(-time.Millisecond))
	ok(t, err, "SweepDirectory before expiry")
	if n != 0 {
		t.Errorf("SweepDirectory before expiry deleted %d, want 0", n)
	}
	n, err = s.SweepDirectory(ctx, end)
	ok(t, err, "SweepDirectory")
	if n != 2 {
		t.Errorf("SweepDirectory deleted %d, want 2", n)
	}
	// Swept means gone, whatever now a later Get passes.
	_, err = s.GetDirectoryRecord(ctx, short1.Peer, t0)
	isErr(t, err, store.ErrNotFound, "a swept record")
	got, err := s.GetDirectoryRecord(ctx, long.Peer, end)
	ok(t, err, "the unexpired record after a sweep")
	if !sameDirectoryRecord(got, normalized(long)) {
		t.Errorf("the unexpired record changed in a sweep")
	}
	// After a sweep the peer registers afresh.
	ok(t, s.PutDirectoryRecord(ctx, record(short1.Peer, end, hour), end), "a new record after the sweep")
}

func testDirectoryCopies(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rec := record(peer(1), t0, hour)
	want := bytes.Clone(rec.Blob)
	ok(t, s.PutDirectoryRecord(ctx, rec, t0), "PutDirectoryRecord")
	rec.Blob[0] ^= 0xff
	got, err := s.GetDirectoryRecord(ctx, rec.Peer, t0)
	ok(t, err, "GetDirectoryRecord")
	if !bytes.Equal(got.Blob, want) {
		t.Fatal("changing the blob passed to PutDirectoryRecord changed the stored record")
	}
	got.Blob[0] ^= 0xff
	got, err = s.GetDirectoryRecord(ctx, rec.Peer, t0)
	ok(t, err, "GetDirectoryRecord")
	if !bytes.Equal(got.Blob, want) {
		t.Fatal("changing a blob GetDirectoryRecord returned changed the stored record")
	}
}
