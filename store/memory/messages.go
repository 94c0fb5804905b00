package memory

import (
	"bytes"
	"context"

	"github.com/lanpeer/lanpeer/store"
)

// PutWrappedKey implements store.WrappedKeys.
func (s *Store) PutWrappedKey(ctx context.Context, wk store.WrappedKey) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(wk); err != nil {
		return err
	}
	rm, err := s.room(ctx, wk.Room)
	if err != nil {
		return err
	}
	defer rm.mu.Unlock()
	if wk.Epoch < rm.firstEpoch || wk.Epoch > rm.r.Epoch {
		return notFound("room %s has no commit at epoch %d", wk.Room, wk.Epoch)
	}
	k := keyID{wk.Epoch, wk.Member}
	if old, ok := rm.keys[k]; ok {
		if bytes.Equal(old, wk.Blob) {
			return nil
		}
		return conflict("room %s already holds another key for %s at epoch %d", wk.Room, wk.Member.Short(), wk.Epoch)
	}
	if err := s.reserve(int64(len(wk.Blob)), "wrapped key"); err != nil {
		return err
	}
	rm.keys[k] = bytes.Clone(wk.Blob)
	rm.bytes += len(wk.Blob)
	return nil
}

// GetWrappedKey implements store.WrappedKeys.
func (s *Store) GetWrappedKey(ctx context.Context, id store.RoomID, epoch uint64, member store.PeerID) (store.WrappedKey, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.WrappedKey{}, err
	}
	defer rm.mu.Unlock()
	b, ok := rm.keys[keyID{epoch, member}]
	if !ok {
		return store.WrappedKey{}, notFound("room %s holds no key for %s at epoch %d", id, member.Short(), epoch)
	}
	return store.WrappedKey{Room: id, Epoch: epoch, Member: member, Blob: bytes.Clone(b)}, nil
}

// kept returns the room's kept messages. The caller holds rm.mu.
func (rm *room) kept() []store.Message { return rm.msgs[rm.head:] }

// AppendMessage implements store.Messages.
func (s *Store) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	if err := s.enter(ctx); err != nil {
		return store.Message{}, err
	}
	if err := store.CheckMessage(m); err != nil {
		return store.Message{}, err
	}
	rm, err := s.room(ctx, m.Room)
	if err != nil {
		return store.Message{}, err
	}
	defer rm.mu.Unlock()

	if seq, ok := rm.ids[m.ID]; ok {
		kept := rm.kept()
		old := kept[seq-kept[0].Seq]
		if old.Sender != m.Sender {
			return store.Message{}, conflict("message id %s is taken in room %s by another sender", m.ID, m.Room)
		}
		return copyMessage(old), nil // a retry: the original, stored once
	}
	if m.Epoch < rm.r.Epoch {
		return store.Message{}, stale("room %s is at epoch %d; message is under epoch %d", m.Room, rm.r.Epoch, m.Epoch)
	}
	if m.Epoch > rm.r.Epoch {
		return store.Message{}, invalid("message is under epoch %d, beyond room %s's current epoch %d", m.Epoch, m.Room, rm.r.Epoch)
	}

	// At the history bound the oldest message goes: account for the
	// bytes it frees before refusing for want of space.
	kept := rm.kept()
	freed := 0
	if len(kept) >= s.opts.HistoryPerRoom {
		freed = len(kept[0].Blob)
	}
	delta := len(m.Blob) - freed
	if err := s.reserve(int64(delta), "message"); err != nil {
		return store.Message{}, err
	}
	rm.bytes += delta

	rm.last++
	m.Seq = rm.last
	m.Stored = store.Millis(m.Stored)
	m.Blob = bytes.Clone(m.Blob)
	rm.msgs = append(rm.msgs, m)
	rm.ids[m.ID] = m.Seq
	s.refKeyPackages(+1, m.KeyPackageHash)
	if len(kept) >= s.opts.HistoryPerRoom {
		rm.dropOldest(s) // its bytes were accounted above
	}
	return copyMessage(m), nil
}

// dropOldest forgets the room's oldest kept message, whose blob bytes the
// caller has already accounted. The caller holds rm.mu.
func (rm *room) dropOldest(s *Store) {
	old := rm.msgs[rm.head]
	rm.msgs[rm.head] = store.Message{} // let the blob go
	rm.head++
	delete(rm.ids, old.ID)
	s.refKeyPackages(-1, old.KeyPackageHash)
	// Move the kept messages down once the dropped prefix is the larger
	// part, so the slice does not grow without bound.
	if rm.head >= 64 && rm.head > len(rm.msgs)/2 {
		n := copy(rm.msgs, rm.msgs[rm.head:])
		clear(rm.msgs[n:])
		rm.msgs = rm.msgs[:n]
		rm.head = 0
	}
}

// ReadMessages implements store.Messages.
func (s *Store) ReadMessages(ctx context.Context, id store.RoomID, after uint64, limit int) ([]store.Message, error) {
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	rm, err := s.room(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rm.mu.Unlock()
	if after > rm.last {
		return nil, invalid("cursor %d is past room %s's last message %d", after, id, rm.last)
	}
	out := []store.Message{}
	kept := rm.kept()
	if after == rm.last {
		return out, nil
	}
	// after < last, so at least one message was appended and, since the
	// newest is always kept, kept is not empty.
	first := kept[0].Seq
	if after+1 < first {
		return nil, &store.HistoryTrimmedError{Room: id, After: after, Oldest: first}
	}
	start := int(after + 1 - first)
	for _, m := range kept[start:min(len(kept), start+limit)] {
		out = append(out, copyMessage(m))
	}
	return out, nil
}

// MessageSpan implements store.Messages.
func (s *Store) MessageSpan(ctx context.Context, id store.RoomID) (store.Span, error) {
	rm, err := s.room(ctx, id)
	if err != nil {
		return store.Span{}, err
	}
	defer rm.mu.Unlock()
	sp := store.Span{Last: rm.last}
	if kept := rm.kept(); len(kept) > 0 {
		sp.First = kept[0].Seq
	}
	return sp, nil
}

func copyMessage(m store.Message) store.Message {
	m.Blob = bytes.Clone(m.Blob)
	return m
}
