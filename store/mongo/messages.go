package mongo

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/store"
)

// messageDoc is a message, keyed by (room, incarnation, seq): the unique
// _id is what makes sequence numbers unique across processes. A second
// unique index on (rid, inc, mid) keeps a message id to one message.
type messageDoc struct {
	ID     string    `bson:"_id"`
	RID    string    `bson:"rid"`
	Inc    string    `bson:"inc"`
	Seq    int64     `bson:"seq"`
	MID    string    `bson:"mid"`
	Sender []byte    `bson:"sender"`
	Epoch  int64     `bson:"epoch"`
	KP     []byte    `bson:"kp"`
	Blob   []byte    `bson:"blob"`
	Stored time.Time `bson:"stored"`
}

func (d messageDoc) message(id store.RoomID) store.Message {
	m := store.Message{Room: id, Seq: u64(d.Seq), Epoch: u64(d.Epoch), Blob: d.Blob, Stored: d.Stored.UTC()}
	copy(m.Sender[:], d.Sender)
	copy(m.KeyPackageHash[:], d.KP)
	if id, ok := parseMessageID(d.MID); ok {
		m.ID = id
	}
	return m
}

func parseMessageID(s string) (store.MessageID, bool) {
	var id store.MessageID
	r, ok := parseRoomKey(s) // the same 16 bytes in hex
	copy(id[:], r[:])
	return id, ok
}

// maxBatch bounds the messages one append batch inserts at once.
const maxBatch = 256

// appendReq is one AppendMessage waiting for its batch.
type appendReq struct {
	ctx       context.Context
	m         store.Message
	followers []*appendReq // the same message id, answered from this one's result
	attempts  int

	res  store.Message
	err  error
	done chan struct{}
}

func (r *appendReq) finish(m store.Message, err error) {
	r.res, r.err = m, err
	close(r.done)
}

// appendQueue holds a room's waiting appends; one goroutine at a time
// (running) takes them in batches.
type appendQueue struct {
	pending []*appendReq
	running bool
}

// AppendMessage implements store.Messages.
//
// Appends to one room from one Store go through a queue: one goroutine at
// a time takes every waiting message, reads the room, and inserts the
// batch in one ordered InsertMany at the next sequence numbers (a group
// commit). Each message is acknowledged when the insert that carried it
// returned under the write concern. The sequence number is the insert's
// _id: when another process took it first, the insert fails with a
// duplicate key, the message id is looked up to tell that apart from a
// repeated message id, and the message is tried again at the next free
// number (at most Options.MaxAppendAttempts times).
//
// A caller whose context ends while its message waits gets the context's
// error; the message may still be stored, and a retry with its id finds
// it.
func (s *Store) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	if err := s.enter(ctx); err != nil {
		return store.Message{}, err
	}
	if err := store.CheckMessage(m); err != nil {
		return store.Message{}, err
	}
	m.Seq = 0
	m.Stored = store.Millis(m.Stored)
	m.Blob = bytes.Clone(m.Blob)
	r := &appendReq{ctx: ctx, m: m, done: make(chan struct{})}

	s.qMu.Lock()
	if s.closed.Load() {
		s.qMu.Unlock()
		return store.Message{}, store.ErrClosed
	}
	q := s.queues[m.Room]
	if q == nil {
		q = &appendQueue{}
		s.queues[m.Room] = q
	}
	q.pending = append(q.pending, r)
	if !q.running {
		q.running = true
		s.wg.Add(1)
		go s.runAppends(m.Room, q)
	}
	s.qMu.Unlock()

	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return store.Message{}, ctx.Err()
	}
}

// runAppends takes the room's waiting appends in batches until none wait.
func (s *Store) runAppends(id store.RoomID, q *appendQueue) {
	defer s.wg.Done()
	for {
		// Let the callers just answered queue their next messages, so
		// that they join this batch rather than wait for the next.
		runtime.Gosched()
		s.qMu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			delete(s.queues, id)
			s.qMu.Unlock()
			return
		}
		batch, rest := takeBatch(q.pending)
		q.pending = rest
		s.qMu.Unlock()

		again := s.appendBatch(id, batch)

		if len(again) > 0 {
			s.qMu.Lock()
			q.pending = append(again, q.pending...)
			s.qMu.Unlock()
		}
	}
}

// takeBatch takes up to maxBatch appends whose callers still wait, in
// order. An append with a message id already in the batch follows the
// first one with that id and is answered from its result.
func takeBatch(pending []*appendReq) (batch, rest []*appendReq) {
	byID := make(map[store.MessageID]*appendReq)
	for i, r := range pending {
		if len(batch) == maxBatch {
			return batch, pending[i:]
		}
		if r.ctx.Err() != nil {
			r.finish(store.Message{}, r.ctx.Err())
			continue
		}
		if lead := byID[r.m.ID]; lead != nil {
			lead.followers = append(lead.followers, r)
			continue
		}
		byID[r.m.ID] = r
		batch = append(batch, r)
	}
	return batch, nil
}

// settle answers r and its followers: a follower from the same sender gets
// the same message, one from another sender ErrConflict. When r failed,
// its followers go back to the queue, each to be tried on its own.
func settle(r *appendReq, m store.Message, err error) (again []*appendReq) {
	followers := r.followers
	r.followers = nil
	r.finish(m, err)
	for _, f := range followers {
		switch {
		case err != nil:
			again = append(again, f)
		case f.m.Sender == m.Sender:
			f.finish(m, nil)
		default:
			f.finish(store.Message{}, conflict("message id %s is taken in room %s by another sender", f.m.ID, f.m.Room))
		}
	}
	return again
}

// appendBatch stores one batch and answers each append in it, except
// those to try again, which it returns in order.
func (s *Store) appendBatch(id store.RoomID, batch []*appendReq) (again []*appendReq) {
	ctx, cancel := context.WithTimeout(s.base, s.opts.OpTimeout)
	defer cancel()
	unlock := s.lockRoom(id)
	defer unlock()

	failAll := func(reqs []*appendReq, err error) {
		for _, r := range reqs {
			again = append(again, settle(r, store.Message{}, err)...)
		}
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		failAll(batch, err)
		return again
	}

	// A message under another epoch than the room's is new only if its id
	// is new; a retry of a stored one returns it whatever its epoch.
	var ins []*appendReq
	for _, r := range batch {
		if r.m.Epoch == st.epoch {
			ins = append(ins, r)
			continue
		}
		stored, found, err := s.messageByID(ctx, st, r.m.ID)
		switch {
		case err != nil:
		case found:
			stored, err = retried(r.m, stored)
		case r.m.Epoch < st.epoch:
			err = stale("room %s is at epoch %d; message is under epoch %d", id, st.epoch, r.m.Epoch)
		default:
			err = invalid("message is under epoch %d, beyond room %s's current epoch %d", r.m.Epoch, id, st.epoch)
		}
		again = append(again, settle(r, stored, err)...)
	}
	if len(ins) == 0 {
		return again
	}

	last, err := s.lastSeq(ctx, st, true)
	if err != nil {
		failAll(ins, err)
		return again
	}
	if last > math.MaxInt64-uint64(len(ins)) {
		failAll(ins, invalid("room %s has used every sequence number", id))
		return again
	}
	docs := make([]any, len(ins))
	for i, r := range ins {
		docs[i] = messageDoc{
			ID: messageKey(id, st.doc.Inc, last+1+uint64(i)), RID: roomKey(id), Inc: st.doc.Inc,
			Seq: i64(last + 1 + uint64(i)), MID: r.m.ID.String(), Sender: r.m.Sender[:], Epoch: i64(r.m.Epoch),
			KP: r.m.KeyPackageHash[:], Blob: r.m.Blob, Stored: r.m.Stored,
		}
	}
	_, err = s.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err == nil {
		for i, r := range ins {
			m := r.m
			m.Seq = last + 1 + uint64(i)
			again = append(again, settle(r, m, nil)...)
		}
		s.noteSeq(id, st.doc.Inc, last+uint64(len(ins)))
		return again
	}

	// An ordered insert stops at its first failure: the messages before it
	// are stored, those after it were not tried.
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		// Nothing is known about which messages were stored.
		s.dropSeqHint(id, st.doc.Inc)
		failAll(ins, s.fail(ctx, "storing messages in room "+id.String(), err))
		return again
	}
	k := bwe.WriteErrors[0].Index
	code := bwe.WriteErrors[0].Code
	for _, we := range bwe.WriteErrors[1:] {
		if we.Index < k {
			k, code = we.Index, we.Code
		}
	}
	if k < 0 || k >= len(ins) {
		s.dropSeqHint(id, st.doc.Inc)
		failAll(ins, s.fail(ctx, "storing messages in room "+id.String(), err))
		return again
	}
	for i, r := range ins[:k] {
		m := r.m
		m.Seq = last + 1 + uint64(i)
		again = append(again, settle(r, m, nil)...)
	}
	s.noteSeq(id, st.doc.Inc, last+uint64(k))
	r, rest := ins[k], ins[k+1:]
	if !isDuplicateKey(code) {
		again = append(again, settle(r, store.Message{}, s.fail(ctx, "storing a message in room "+id.String(), err))...)
		return append(again, rest...)
	}
	// Which key was taken is told by looking the message id up, never by
	// reading the error.
	stored, found, err := s.messageByID(ctx, st, r.m.ID)
	switch {
	case err != nil:
		again = append(again, settle(r, store.Message{}, err)...)
	case found:
		stored, err = retried(r.m, stored)
		again = append(again, settle(r, stored, err)...)
	default:
		// Another process took the sequence number: it is stored.
		s.noteSeq(id, st.doc.Inc, last+1+uint64(k))
		if r.attempts++; r.attempts >= s.opts.MaxAppendAttempts {
			again = append(again, settle(r, store.Message{}, &UnavailableError{
				Op: "appending to room " + id.String(), Where: s.where,
				Err: fmt.Errorf("other writers took the sequence number %d times in a row", r.attempts),
			})...)
		} else {
			again = append(again, r)
		}
	}
	return append(again, rest...)
}

// retried answers an append whose message id is stored: from the same
// sender it is a retry and gets the stored message, from another sender
// it is ErrConflict.
func retried(m, stored store.Message) (store.Message, error) {
	if stored.Sender != m.Sender {
		return store.Message{}, conflict("message id %s is taken in room %s by another sender", m.ID, m.Room)
	}
	return stored, nil
}

// messageByID looks a message up by its id in the room.
func (s *Store) messageByID(ctx context.Context, st *roomState, mid store.MessageID) (store.Message, bool, error) {
	var d messageDoc
	err := s.messages.FindOne(ctx, bson.D{{Key: "rid", Value: roomKey(st.id)}, {Key: "inc", Value: st.doc.Inc}, {Key: "mid", Value: mid.String()}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Message{}, false, nil
	}
	if err != nil {
		return store.Message{}, false, s.fail(ctx, "looking a message up in room "+st.id.String(), err)
	}
	return d.message(st.id), true, nil
}

func seqHintKey(id store.RoomID, inc string) string { return roomKey(id) + "/" + inc }

// noteSeq records that seq is stored in the room.
func (s *Store) noteSeq(id store.RoomID, inc string, seq uint64) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	k := seqHintKey(id, inc)
	if seq > s.seqHints[k] {
		s.seqHints[k] = seq
	}
}

func (s *Store) dropSeqHint(id store.RoomID, inc string) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	delete(s.seqHints, seqHintKey(id, inc))
}

// messageExists reports whether the room has a message at seq.
func (s *Store) messageExists(ctx context.Context, st *roomState, seq uint64) (bool, error) {
	err := s.messages.FindOne(ctx, bson.D{{Key: "_id", Value: messageKey(st.id, st.doc.Inc, seq)}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, s.fail(ctx, "reading a message of room "+st.id.String(), err)
	}
	return true, nil
}

// lastSeq finds the room's last sequence number. Sequence numbers are
// dense and messages are kept until the room goes, so seq n is stored
// exactly when n <= last: starting from the highest number this Store
// knows to be stored, it probes forward by doubling steps and bisects,
// with point reads only (a sort would be a scan on FerretDB). When the
// hint is current, one read says so.
//
// With guess, a known hint is returned as it is: an append tries the
// number after it, and if another process took that number the insert
// fails and says so. This saves the read that would confirm the hint,
// which is the expensive one on FerretDB (a read of a key that is not
// there scans the collection).
func (s *Store) lastSeq(ctx context.Context, st *roomState, guess bool) (uint64, error) {
	s.hintMu.Lock()
	lo, known := s.seqHints[seqHintKey(st.id, st.doc.Inc)]
	s.hintMu.Unlock()
	if guess && known {
		return lo, nil
	}
	hi := uint64(0)
	step := uint64(1)
	for range 64 {
		e := lo + step
		ok, err := s.messageExists(ctx, st, e)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = e
			break
		}
		lo = e
		step *= 2
	}
	if hi == 0 {
		return 0, &UnavailableError{Op: "reading room " + st.id.String(), Where: s.where, Err: errors.New("no end to the messages")}
	}
	for hi > lo+1 {
		mid := lo + (hi-lo)/2
		ok, err := s.messageExists(ctx, st, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	s.noteSeq(st.id, st.doc.Inc, lo)
	return lo, nil
}

// ReadMessages implements store.Messages.
func (s *Store) ReadMessages(ctx context.Context, id store.RoomID, after uint64, limit int) ([]store.Message, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckLimit(limit); err != nil {
		return nil, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []store.Message{}
	if after >= math.MaxInt64 {
		return nil, invalid("cursor %d is past room %s's last message", after, id)
	}
	upTo := after + uint64(limit)
	cur, err := s.messages.Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{
			{Key: "$gt", Value: messageKey(id, st.doc.Inc, after)},
			{Key: "$lte", Value: messageKey(id, st.doc.Inc, upTo)},
		}}},
		// The range holds at most limit messages, so no sort is needed to
		// get the page: sorting here spares FerretDB a sort of the whole
		// collection, and the limit lets it stop once it has the page.
		options.Find().SetLimit(int64(limit)))
	var docs []messageDoc
	if err == nil {
		err = cur.All(ctx, &docs)
	}
	if err != nil {
		return nil, s.fail(ctx, "reading the messages of room "+id.String(), err)
	}
	slices.SortFunc(docs, func(a, b messageDoc) int { return cmp.Compare(a.Seq, b.Seq) })
	for i, d := range docs {
		if u64(d.Seq) != after+1+uint64(i) {
			// A number is taken only once the one before it is stored,
			// but a read may meet an insert in flight: stop before the
			// hole, and the reader finds the rest next time.
			break
		}
		out = append(out, d.message(id))
	}
	if len(out) == 0 && after > 0 {
		ok, err := s.messageExists(ctx, st, after)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalid("cursor %d is past room %s's last message", after, id)
		}
	}
	if len(out) > 0 {
		s.noteSeq(id, st.doc.Inc, out[len(out)-1].Seq)
	}
	return out, nil
}

// MessageSpan implements store.Messages. The store keeps every message
// until its room is deleted, so history starts at 1.
func (s *Store) MessageSpan(ctx context.Context, id store.RoomID) (store.Span, error) {
	if err := s.enter(ctx); err != nil {
		return store.Span{}, err
	}
	st, err := s.loadRoom(ctx, id)
	if err != nil {
		return store.Span{}, err
	}
	last, err := s.lastSeq(ctx, st, false)
	if err != nil {
		return store.Span{}, err
	}
	sp := store.Span{Last: last}
	if last > 0 {
		sp.First = 1
	}
	return sp, nil
}
