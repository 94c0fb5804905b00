package mongo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/store"
)

// keyPackageDoc is a key package under its hash (hex): the unique _id
// keeps one key package per hash.
type keyPackageDoc struct {
	ID      string    `bson:"_id"`
	Owner   []byte    `bson:"owner"`
	Blob    []byte    `bson:"blob"`
	Expires time.Time `bson:"expires"`
}

func (d keyPackageDoc) keyPackage() store.KeyPackage {
	kp := store.KeyPackage{Blob: d.Blob, Expires: d.Expires.UTC()}
	copy(kp.Owner[:], d.Owner)
	if h, err := hex.DecodeString(d.ID); err == nil {
		copy(kp.Hash[:], h)
	}
	return kp
}

func sameKeyPackage(a, b store.KeyPackage) bool {
	return a.Hash == b.Hash && a.Owner == b.Owner && a.Expires.Equal(b.Expires) && bytes.Equal(a.Blob, b.Blob)
}

// PutKeyPackage implements store.KeyPackages. The per-owner bound is
// checked before the insert, so concurrent puts of one owner may pass it
// by a few (store package documentation).
func (s *Store) PutKeyPackage(ctx context.Context, kp store.KeyPackage, now time.Time) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckKeyPackage(kp); err != nil {
		return err
	}
	kp.Expires = store.Millis(kp.Expires)
	old, found, err := s.keyPackage(ctx, kp.Hash)
	if err != nil {
		return err
	}
	if found {
		if sameKeyPackage(old, kp) {
			return nil
		}
		return conflict("key package %x is stored with other contents", kp.Hash[:8])
	}
	if store.Expired(kp.Expires, now) {
		return stale("key package expired at %s", kp.Expires.Format(time.RFC3339Nano))
	}
	cur, err := s.keyPackages.Find(ctx,
		bson.D{{Key: "owner", Value: kp.Owner[:]}, {Key: "expires", Value: bson.D{{Key: "$gt", Value: store.Millis(now)}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(store.MaxKeyPackagesPerOwner))
	var held []keyPackageDoc
	if err == nil {
		err = cur.All(ctx, &held)
	}
	if err != nil {
		return s.fail(ctx, "counting key packages", err)
	}
	if len(held) >= store.MaxKeyPackagesPerOwner {
		return full("peer %s has %d unexpired key packages, the maximum", kp.Owner.Short(), len(held))
	}
	_, err = s.keyPackages.InsertOne(ctx, keyPackageDoc{
		ID: hex.EncodeToString(kp.Hash[:]), Owner: kp.Owner[:], Blob: kp.Blob, Expires: kp.Expires,
	})
	if err == nil {
		return nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return s.fail(ctx, "storing a key package", err)
	}
	old, found, err = s.keyPackage(ctx, kp.Hash)
	switch {
	case err != nil:
		return err
	case found && sameKeyPackage(old, kp):
		return nil
	}
	return conflict("key package %x is stored with other contents", kp.Hash[:8])
}

func (s *Store) keyPackage(ctx context.Context, hash [32]byte) (store.KeyPackage, bool, error) {
	var d keyPackageDoc
	err := s.keyPackages.FindOne(ctx, bson.D{{Key: "_id", Value: hex.EncodeToString(hash[:])}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.KeyPackage{}, false, nil
	}
	if err != nil {
		return store.KeyPackage{}, false, s.fail(ctx, "reading a key package", err)
	}
	return d.keyPackage(), true, nil
}

// GetKeyPackage implements store.KeyPackages.
func (s *Store) GetKeyPackage(ctx context.Context, hash [32]byte) (store.KeyPackage, error) {
	if err := s.enter(ctx); err != nil {
		return store.KeyPackage{}, err
	}
	kp, found, err := s.keyPackage(ctx, hash)
	if err != nil {
		return store.KeyPackage{}, err
	}
	if !found {
		return store.KeyPackage{}, notFound("key package %x", hash[:8])
	}
	return kp, nil
}

// LatestKeyPackage implements store.KeyPackages. The _id is the hash in
// hex, so sorting by it is sorting by hash byte-wise.
func (s *Store) LatestKeyPackage(ctx context.Context, owner store.PeerID, now time.Time) (store.KeyPackage, error) {
	if err := s.enter(ctx); err != nil {
		return store.KeyPackage{}, err
	}
	var d keyPackageDoc
	err := s.keyPackages.FindOne(ctx,
		bson.D{{Key: "owner", Value: owner[:]}, {Key: "expires", Value: bson.D{{Key: "$gt", Value: store.Millis(now)}}}},
		options.FindOne().SetSort(bson.D{{Key: "expires", Value: -1}, {Key: "_id", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.KeyPackage{}, notFound("peer %s has no unexpired key package", owner.Short())
	}
	if err != nil {
		return store.KeyPackage{}, s.fail(ctx, "reading key packages", err)
	}
	return d.keyPackage(), nil
}

// SweepKeyPackages implements store.KeyPackages: an expired key package
// goes unless a stored message names it or a room's latest member list
// does.
func (s *Store) SweepKeyPackages(ctx context.Context, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	cutoff := store.Millis(now)
	cur, err := s.keyPackages.Find(ctx, bson.D{{Key: "expires", Value: bson.D{{Key: "$lte", Value: cutoff}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	var expired []keyPackageDoc
	if err == nil {
		err = cur.All(ctx, &expired)
	}
	if err != nil {
		return 0, s.fail(ctx, "sweeping key packages", err)
	}
	n := 0
	for _, d := range expired {
		h, err := hex.DecodeString(d.ID)
		if err != nil {
			continue
		}
		used, err := s.keyPackageUsed(ctx, h)
		if err != nil {
			return n, err
		}
		if used {
			continue
		}
		res, err := s.keyPackages.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "expires", Value: bson.D{{Key: "$lte", Value: cutoff}}}})
		if err != nil {
			return n, s.fail(ctx, "sweeping key packages", err)
		}
		n += int(res.DeletedCount)
	}
	return n, nil
}

// keyPackageUsed reports whether a stored message or a room's latest
// member list names the key package hash.
func (s *Store) keyPackageUsed(ctx context.Context, hash []byte) (bool, error) {
	err := s.messages.FindOne(ctx, bson.D{{Key: "kp", Value: hash}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return false, s.fail(ctx, "sweeping key packages", err)
	}
	type listing struct {
		ID    string `bson:"_id"`
		RID   string `bson:"rid"`
		Inc   string `bson:"inc"`
		First int64  `bson:"first"`
		Epoch int64  `bson:"epoch"`
	}
	var lists []listing
	for _, c := range []struct {
		coll *mongo.Collection
		proj bson.D
	}{
		{s.rooms, bson.D{{Key: "inc", Value: 1}, {Key: "first", Value: 1}}},
		{s.commits, bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}, {Key: "epoch", Value: 1}}},
	} {
		var found []listing
		cur, err := c.coll.Find(ctx, bson.D{{Key: "members.kp", Value: hash}}, options.Find().SetProjection(c.proj))
		if err == nil {
			err = cur.All(ctx, &found)
		}
		if err != nil {
			return false, s.fail(ctx, "sweeping key packages", err)
		}
		for _, l := range found {
			if c.coll == s.rooms {
				l.RID, l.Epoch = l.ID, l.First
			}
			lists = append(lists, l)
		}
	}
	for _, l := range lists {
		id, ok := parseRoomKey(l.RID)
		if !ok {
			continue
		}
		st, err := s.loadRoom(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if st.doc.Inc == l.Inc && st.epoch == u64(l.Epoch) {
			return true, nil
		}
	}
	return false, nil
}
