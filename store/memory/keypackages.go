package memory

import (
	"bytes"
	"context"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

// PutKeyPackage implements store.KeyPackages.
func (s *Store) PutKeyPackage(ctx context.Context, kp store.KeyPackage, now time.Time) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckKeyPackage(kp); err != nil {
		return err
	}
	kp.Expires = store.Millis(kp.Expires)
	s.kpMu.Lock()
	defer s.kpMu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	if old, ok := s.kps[kp.Hash]; ok {
		if old.Owner == kp.Owner && old.Expires.Equal(kp.Expires) && bytes.Equal(old.Blob, kp.Blob) {
			return nil
		}
		return conflict("key package %x is stored with other contents", kp.Hash[:8])
	}
	if store.Expired(kp.Expires, now) {
		return stale("key package expired at %s", kp.Expires.Format(time.RFC3339Nano))
	}
	unexpired := 0
	for h := range s.kpOwned[kp.Owner] {
		if !store.Expired(s.kps[h].Expires, now) {
			unexpired++
		}
	}
	if unexpired >= store.MaxKeyPackagesPerOwner {
		return full("peer %s has %d unexpired key packages, the maximum", kp.Owner.Short(), unexpired)
	}
	if len(s.kps) >= s.opts.MaxKeyPackages {
		return full("the memory store holds its maximum of %d key packages", s.opts.MaxKeyPackages)
	}
	if err := s.reserve(int64(len(kp.Blob)), "key package"); err != nil {
		return err
	}
	kp.Blob = bytes.Clone(kp.Blob)
	s.kps[kp.Hash] = kp
	owned := s.kpOwned[kp.Owner]
	if owned == nil {
		owned = make(map[[32]byte]struct{})
		s.kpOwned[kp.Owner] = owned
	}
	owned[kp.Hash] = struct{}{}
	return nil
}

// GetKeyPackage implements store.KeyPackages.
func (s *Store) GetKeyPackage(ctx context.Context, hash [32]byte) (store.KeyPackage, error) {
	if err := s.enter(ctx); err != nil {
		return store.KeyPackage{}, err
	}
	s.kpMu.Lock()
	defer s.kpMu.Unlock()
	kp, ok := s.kps[hash]
	if !ok {
		return store.KeyPackage{}, notFound("key package %x", hash[:8])
	}
	kp.Blob = bytes.Clone(kp.Blob)
	return kp, nil
}

// LatestKeyPackage implements store.KeyPackages.
func (s *Store) LatestKeyPackage(ctx context.Context, owner store.PeerID, now time.Time) (store.KeyPackage, error) {
	if err := s.enter(ctx); err != nil {
		return store.KeyPackage{}, err
	}
	s.kpMu.Lock()
	defer s.kpMu.Unlock()
	var best store.KeyPackage
	found := false
	for h := range s.kpOwned[owner] {
		kp := s.kps[h]
		if store.Expired(kp.Expires, now) {
			continue
		}
		if !found || later(kp, best) {
			best, found = kp, true
		}
	}
	if !found {
		return store.KeyPackage{}, notFound("peer %s has no unexpired key package", owner.Short())
	}
	best.Blob = bytes.Clone(best.Blob)
	return best, nil
}

// later reports whether a is preferred to b: a later expiry, or of equal
// expiries the greater hash.
func later(a, b store.KeyPackage) bool {
	if c := a.Expires.Compare(b.Expires); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.Hash[:], b.Hash[:]) > 0
}

// SweepKeyPackages implements store.KeyPackages.
func (s *Store) SweepKeyPackages(ctx context.Context, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	s.kpMu.Lock()
	defer s.kpMu.Unlock()
	n := 0
	for h, kp := range s.kps {
		if !store.Expired(kp.Expires, now) || s.kpRefs[h] > 0 {
			continue
		}
		delete(s.kps, h)
		owned := s.kpOwned[kp.Owner]
		delete(owned, h)
		if len(owned) == 0 {
			delete(s.kpOwned, kp.Owner)
		}
		s.release(len(kp.Blob))
		n++
	}
	return n, nil
}
