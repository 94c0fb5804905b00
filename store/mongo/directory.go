package mongo

import (
	"bytes"
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/store"
)

// directoryDoc is one directory record, keyed by (peer, issue time): a
// newer record is a new insert, never an update of the old one (FerretDB
// can lose one of two concurrent updates), and the older ones are deleted
// after it. A peer's record is its latest.
type directoryDoc struct {
	ID      string    `bson:"_id"`
	Peer    []byte    `bson:"peer"`
	Blob    []byte    `bson:"blob"`
	Issued  time.Time `bson:"issued"`
	Expires time.Time `bson:"expires"`
}

func directoryKey(p store.PeerID, issued time.Time) string {
	// Flipping the sign bit orders the milliseconds before 1970 first.
	return peerHex(p) + "/" + num(uint64(issued.UnixMilli())^1<<63)
}

func (d directoryDoc) record() store.DirectoryRecord {
	rec := store.DirectoryRecord{Blob: d.Blob, Issued: d.Issued.UTC(), Expires: d.Expires.UTC()}
	copy(rec.Peer[:], d.Peer)
	return rec
}

func sameRecord(a, b store.DirectoryRecord) bool {
	return a.Peer == b.Peer && a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires) && bytes.Equal(a.Blob, b.Blob)
}

// latestRecord reads peer's latest record, expired or not.
func (s *Store) latestRecord(ctx context.Context, peer store.PeerID) (store.DirectoryRecord, bool, error) {
	var d directoryDoc
	err := s.directory.FindOne(ctx, bson.D{{Key: "peer", Value: peer[:]}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.DirectoryRecord{}, false, nil
	}
	if err != nil {
		return store.DirectoryRecord{}, false, s.fail(ctx, "reading the directory", err)
	}
	return d.record(), true, nil
}

// PutDirectoryRecord implements store.Directory.
func (s *Store) PutDirectoryRecord(ctx context.Context, rec store.DirectoryRecord, now time.Time) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckDirectoryRecord(rec); err != nil {
		return err
	}
	rec.Issued, rec.Expires = store.Millis(rec.Issued), store.Millis(rec.Expires)
	old, found, err := s.latestRecord(ctx, rec.Peer)
	if err != nil {
		return err
	}
	if found && sameRecord(old, rec) {
		return nil
	}
	if store.Expired(rec.Expires, now) {
		return stale("directory record for %s expired at %s", rec.Peer.Short(), rec.Expires.Format(time.RFC3339Nano))
	}
	if found && !rec.Issued.After(old.Issued) {
		return stale("the stored directory record for %s was issued at %s, not before this one",
			rec.Peer.Short(), old.Issued.Format(time.RFC3339Nano))
	}
	key := directoryKey(rec.Peer, rec.Issued)
	_, err = s.directory.InsertOne(ctx, directoryDoc{ID: key, Peer: rec.Peer[:], Blob: rec.Blob, Issued: rec.Issued, Expires: rec.Expires})
	if mongo.IsDuplicateKeyError(err) {
		// A record issued at the same time got there first.
		var d directoryDoc
		if err := s.directory.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d); err != nil {
			return s.fail(ctx, "reading the directory", err)
		}
		if sameRecord(d.record(), rec) {
			return nil
		}
		return stale("the stored directory record for %s was issued at the same time", rec.Peer.Short())
	}
	if err != nil {
		return s.fail(ctx, "storing a directory record", err)
	}
	// The older records say nothing more. Failing to drop them is
	// harmless: the latest is the one served.
	_, _ = s.directory.DeleteMany(ctx, bson.D{{Key: "peer", Value: rec.Peer[:]}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: key}}}})
	return nil
}

// GetDirectoryRecord implements store.Directory.
func (s *Store) GetDirectoryRecord(ctx context.Context, peer store.PeerID, now time.Time) (store.DirectoryRecord, error) {
	if err := s.enter(ctx); err != nil {
		return store.DirectoryRecord{}, err
	}
	rec, found, err := s.latestRecord(ctx, peer)
	if err != nil {
		return store.DirectoryRecord{}, err
	}
	if !found || store.Expired(rec.Expires, now) {
		return store.DirectoryRecord{}, notFound("no unexpired directory record for %s", peer.Short())
	}
	return rec, nil
}

// SweepDirectory implements store.Directory.
func (s *Store) SweepDirectory(ctx context.Context, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	res, err := s.directory.DeleteMany(ctx, bson.D{{Key: "expires", Value: bson.D{{Key: "$lte", Value: store.Millis(now)}}}})
	if err != nil {
		return 0, s.fail(ctx, "sweeping the directory", err)
	}
	return int(res.DeletedCount), nil
}
