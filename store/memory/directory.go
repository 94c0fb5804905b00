package memory

import (
	"bytes"
	"context"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

// PutDirectoryRecord implements store.Directory.
func (s *Store) PutDirectoryRecord(ctx context.Context, rec store.DirectoryRecord, now time.Time) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckDirectoryRecord(rec); err != nil {
		return err
	}
	rec.Issued, rec.Expires = store.Millis(rec.Issued), store.Millis(rec.Expires)
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	old, ok := s.dir[rec.Peer]
	if ok && old.Issued.Equal(rec.Issued) && old.Expires.Equal(rec.Expires) && bytes.Equal(old.Blob, rec.Blob) {
		return nil
	}
	if store.Expired(rec.Expires, now) {
		return stale("directory record for %s expired at %s", rec.Peer.Short(), rec.Expires.Format(time.RFC3339Nano))
	}
	if ok && !rec.Issued.After(old.Issued) {
		return stale("the stored directory record for %s was issued at %s, not before this one",
			rec.Peer.Short(), old.Issued.Format(time.RFC3339Nano))
	}
	if !ok && len(s.dir) >= s.opts.MaxDirectoryRecords {
		return full("the memory store holds its maximum of %d directory records", s.opts.MaxDirectoryRecords)
	}
	if err := s.reserve(int64(len(rec.Blob)-len(old.Blob)), "directory record"); err != nil {
		return err
	}
	rec.Blob = bytes.Clone(rec.Blob)
	s.dir[rec.Peer] = rec
	return nil
}

// GetDirectoryRecord implements store.Directory.
func (s *Store) GetDirectoryRecord(ctx context.Context, peer store.PeerID, now time.Time) (store.DirectoryRecord, error) {
	if err := s.enter(ctx); err != nil {
		return store.DirectoryRecord{}, err
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	rec, ok := s.dir[peer]
	if !ok || store.Expired(rec.Expires, now) {
		return store.DirectoryRecord{}, notFound("no unexpired directory record for %s", peer.Short())
	}
	rec.Blob = bytes.Clone(rec.Blob)
	return rec, nil
}

// SweepDirectory implements store.Directory.
func (s *Store) SweepDirectory(ctx context.Context, now time.Time) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	n := 0
	for p, rec := range s.dir {
		if store.Expired(rec.Expires, now) {
			delete(s.dir, p)
			s.release(len(rec.Blob))
			n++
		}
	}
	return n, nil
}
