package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

// hangDeadline bounds how long the concurrency tests wait for their
// goroutines: far beyond what any store needs, so it only catches a hang.
const hangDeadline = 5 * time.Minute

// goAll runs fn(0..n-1) at once, each on its own goroutine, and waits for
// all of them (failing the test after hangDeadline).
func goAll(t *testing.T, n int, fn func(i int)) {
	t.Helper()
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			start.Wait()
			fn(i)
		})
	}
	start.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangDeadline):
		t.Fatalf("%d goroutines still running after %v", n, hangDeadline)
	}
}

func testMessageAppendRead(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id := f.room.ID

	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp != (store.Span{}) {
		t.Errorf("MessageSpan of an empty room = %+v, want zeros", sp)
	}
	got, err := s.ReadMessages(ctx, id, 0, 10)
	ok(t, err, "ReadMessages of an empty room")
	if len(got) != 0 {
		t.Errorf("ReadMessages of an empty room = %d messages", len(got))
	}
	_, err = s.ReadMessages(ctx, id, 1, 10)
	isErr(t, err, store.ErrInvalid, "ReadMessages past the end of an empty room")

	var stored []store.Message
	for i, sender := range []store.PeerID{f.members[1].Peer, f.members[2].Peer, f.members[1].Peer} {
		m := message(id, sender, i+1, 1)
		m.Seq = 99 // ignored on input
		got, err := s.AppendMessage(ctx, m)
		ok(t, err, "AppendMessage")
		want := m
		want.Seq = uint64(i + 1)
		want.Stored = store.Millis(m.Stored)
		if !sameMessage(got, want) {
			t.Errorf("AppendMessage returned %+v, want %+v", got, want)
		}
		stored = append(stored, got)
	}

	sp, err = s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp != (store.Span{First: 1, Last: 3}) {
		t.Errorf("MessageSpan = %+v, want {1 3}", sp)
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []store.Message
	}{
		{0, 10, stored},
		{0, 1, stored[:1]},
		{1, 1, stored[1:2]},
		{1, 10, stored[1:]},
		{3, 10, nil},
	} {
		got, err := s.ReadMessages(ctx, id, tc.after, tc.limit)
		ok(t, err, "ReadMessages")
		if len(got) != len(tc.want) {
			t.Errorf("ReadMessages(after %d, limit %d) = %d messages, want %d", tc.after, tc.limit, len(got), len(tc.want))
			continue
		}
		for i := range got {
			if !sameMessage(got[i], tc.want[i]) {
				t.Errorf("ReadMessages(after %d, limit %d)[%d] = %+v, want %+v", tc.after, tc.limit, i, got[i], tc.want[i])
			}
		}
	}
	_, err = s.ReadMessages(ctx, id, 4, 10)
	isErr(t, err, store.ErrInvalid, "ReadMessages past the last message")
	_, err = s.ReadMessages(ctx, id, 0, 0)
	isErr(t, err, store.ErrInvalid, "ReadMessages(limit 0)")
	_, err = s.ReadMessages(ctx, id, 0, -1)
	isErr(t, err, store.ErrInvalid, "ReadMessages(limit -1)")
	_, err = s.ReadMessages(ctx, id, 0, store.MaxListLimit+1)
	tooLarge(t, err, store.MaxListLimit+1, store.MaxListLimit, "ReadMessages(limit over the bound)")
	_, err = s.ReadMessages(ctx, roomID(99), 0, 10)
	isErr(t, err, store.ErrNotFound, "ReadMessages(unknown room)")
	_, err = s.MessageSpan(ctx, roomID(99))
	isErr(t, err, store.ErrNotFound, "MessageSpan(unknown room)")
}

func testMessageRoomsIndependent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f1, f2 := createRoom(t, s, 1), createRoom(t, s, 2)
	for i := range 5 {
		for _, f := range []fixture{f1, f2} {
			// The same message id in two rooms is two messages.
			m, err := s.AppendMessage(ctx, message(f.room.ID, f.members[1].Peer, i+1, 1))
			ok(t, err, "AppendMessage")
			if m.Seq != uint64(i+1) {
				t.Errorf("message %d in room %s has seq %d", i+1, f.room.ID, m.Seq)
			}
		}
	}
	for _, f := range []fixture{f1, f2} {
		msgs := readAll(t, s, f.room.ID, 0)
		if len(msgs) != 5 {
			t.Errorf("room %s holds %d messages, want 5", f.room.ID, len(msgs))
		}
		for _, m := range msgs {
			if m.Room != f.room.ID {
				t.Errorf("room %s returned a message of room %s", f.room.ID, m.Room)
			}
		}
	}
}

func testMessageIdempotent(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id, a, b := f.room.ID, f.members[1].Peer, f.members[2].Peer
	first, err := s.AppendMessage(ctx, message(id, a, 1, 1))
	ok(t, err, "AppendMessage")
	_, err = s.AppendMessage(ctx, message(id, b, 2, 1))
	ok(t, err, "AppendMessage")

	// A retry is re-encrypted: a different blob, a later time. The store
	// returns the original and stores nothing.
	retry := message(id, a, 1, 1)
	retry.Blob = blob("the retry's ciphertext", 80)
	retry.Stored = t0.Add(time.Hour)
	got, err := s.AppendMessage(ctx, retry)
	ok(t, err, "AppendMessage retried")
	if !sameMessage(got, first) {
		t.Errorf("the retry returned %+v, want the original %+v", got, first)
	}
	// The same id from another sender is not a retry.
	stolen := message(id, b, 1, 1)
	_, err = s.AppendMessage(ctx, stolen)
	isErr(t, err, store.ErrConflict, "another sender's message with a taken id")

	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp.Last != 2 {
		t.Errorf("after a retry and a conflict the last seq is %d, want 2", sp.Last)
	}
	msgs := readAll(t, s, id, 0)
	if len(msgs) != 2 || !sameMessage(msgs[0], first) {
		t.Errorf("ReadMessages after a retry and a conflict = %d messages, want the 2 originals", len(msgs))
	}
}

func testMessageEpoch(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id, a := f.room.ID, f.members[1].Peer

	_, err := s.AppendMessage(ctx, message(id, a, 1, 0))
	isErr(t, err, store.ErrStale, "a message under an epoch before the room's")
	_, err = s.AppendMessage(ctx, message(id, a, 1, 2))
	isErr(t, err, store.ErrInvalid, "a message under an epoch after the room's")
	stored, err := s.AppendMessage(ctx, message(id, a, 1, 1))
	ok(t, err, "AppendMessage under the current epoch")

	_, err = s.ApplyCommit(ctx, id, 1, commit(id, 2, 0), f.members)
	ok(t, err, "ApplyCommit(rotate)")
	_, err = s.AppendMessage(ctx, message(id, a, 2, 1))
	isErr(t, err, store.ErrStale, "a new message under the old epoch after a rotation")
	// The retry of a message stored before the rotation is still a retry.
	got, err := s.AppendMessage(ctx, message(id, a, 1, 1))
	ok(t, err, "AppendMessage retried after the rotation")
	if !sameMessage(got, stored) {
		t.Errorf("the retry after a rotation returned %+v, want the original", got)
	}
	// The refused message, sent again under the new epoch with its id.
	m, err := s.AppendMessage(ctx, message(id, a, 2, 2))
	ok(t, err, "AppendMessage under the new epoch")
	if m.Seq != 2 {
		t.Errorf("the message under the new epoch has seq %d, want 2", m.Seq)
	}
}

func testMessageInvalid(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	good := message(f.room.ID, f.members[1].Peer, 1, 1)
	for _, tc := range []struct {
		name   string
		change func(*store.Message)
	}{
		{"zero room", func(m *store.Message) { m.Room = store.RoomID{} }},
		{"zero id", func(m *store.Message) { m.ID = store.MessageID{} }},
		{"zero sender", func(m *store.Message) { m.Sender = store.PeerID{} }},
		{"no key package", func(m *store.Message) { m.KeyPackageHash = [32]byte{} }},
		{"no stored time", func(m *store.Message) { m.Stored = time.Time{} }},
		{"empty blob", func(m *store.Message) { m.Blob = nil }},
	} {
		m := good
		tc.change(&m)
		_, err := s.AppendMessage(ctx, m)
		isErr(t, err, store.ErrInvalid, tc.name)
	}
	big := good
	big.Blob = make([]byte, store.MaxMessageSize+1)
	_, err := s.AppendMessage(ctx, big)
	tooLarge(t, err, store.MaxMessageSize+1, store.MaxMessageSize, "blob over the bound")
	unknown := good
	unknown.Room = roomID(99)
	_, err = s.AppendMessage(ctx, unknown)
	isErr(t, err, store.ErrNotFound, "AppendMessage to an unknown room")

	sp, err := s.MessageSpan(ctx, f.room.ID)
	ok(t, err, "MessageSpan")
	if sp.Last != 0 {
		t.Fatalf("refused messages took sequence numbers: last is %d", sp.Last)
	}
	big.Blob = big.Blob[:store.MaxMessageSize]
	m, err := s.AppendMessage(ctx, big)
	ok(t, err, "blob at the bound")
	if m.Seq != 1 {
		t.Errorf("the first accepted message has seq %d, want 1", m.Seq)
	}
}

func testMessageConcurrentAppenders(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const senders, each = 8, 1000
	f := createRoom(t, s, 1)
	id := f.room.ID
	got := make([][]store.Message, senders)
	errs := make([]error, senders)
	goAll(t, senders, func(w int) {
		sender := peer(10 + w)
		for i := range each {
			m, err := s.AppendMessage(ctx, message(id, sender, w*each+i+1, 1))
			if err != nil {
				errs[w] = err
				return
			}
			got[w] = append(got[w], m)
		}
	})
	for w, err := range errs {
		ok(t, err, fmt.Sprintf("sender %d: AppendMessage", w))
	}

	// Every sequence number from 1 to 8000 once; each sender's in the
	// order it sent.
	bySeq := make(map[uint64]store.Message, senders*each)
	for w := range senders {
		for i, m := range got[w] {
			if m.Seq < 1 || m.Seq > senders*each {
				t.Fatalf("sender %d got seq %d, outside 1..%d", w, m.Seq, senders*each)
			}
			if prev, dup := bySeq[m.Seq]; dup {
				t.Fatalf("seq %d given to two messages: %s and %s", m.Seq, prev.ID, m.ID)
			}
			if i > 0 && m.Seq <= got[w][i-1].Seq {
				t.Fatalf("sender %d: message %d has seq %d, not after %d", w, i, m.Seq, got[w][i-1].Seq)
			}
			bySeq[m.Seq] = m
		}
	}
	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp.Last != senders*each {
		t.Fatalf("last seq is %d, want %d", sp.Last, senders*each)
	}
	// What the store returns matches what each appender was told, with no
	// gap and no duplicate, from the oldest message kept on.
	msgs := readAll(t, s, id, sp.First-1)
	if want := int(sp.Last - sp.First + 1); len(msgs) != want {
		t.Fatalf("ReadMessages returned %d messages, want %d", len(msgs), want)
	}
	for i, m := range msgs {
		if m.Seq != sp.First+uint64(i) {
			t.Fatalf("ReadMessages[%d] has seq %d, want %d", i, m.Seq, sp.First+uint64(i))
		}
		if !sameMessage(m, bySeq[m.Seq]) {
			t.Fatalf("ReadMessages seq %d is %s from %s, but AppendMessage gave it to %s", m.Seq, m.ID, m.Sender.Short(), bySeq[m.Seq].ID)
		}
	}
}

func testMessageConcurrentRetries(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const retries, rounds = 8, 50
	f := createRoom(t, s, 1)
	id, a := f.room.ID, f.members[1].Peer
	for round := range rounds {
		got := make([]store.Message, retries)
		errs := make([]error, retries)
		goAll(t, retries, func(w int) {
			m := message(id, a, round+1, 1)
			m.Blob = blob(fmt.Sprintf("retry %d of %d", w, round), 64) // each re-encrypted
			got[w], errs[w] = s.AppendMessage(ctx, m)
		})
		for w := range retries {
			ok(t, errs[w], "AppendMessage")
			if !sameMessage(got[w], got[0]) {
				t.Fatalf("round %d: retries got different messages back: seq %d and %d", round, got[0].Seq, got[w].Seq)
			}
		}
		if got[0].Seq != uint64(round+1) {
			t.Fatalf("round %d: the message has seq %d, want %d", round, got[0].Seq, round+1)
		}
	}
	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	msgs := readAll(t, s, id, sp.First-1)
	if sp.Last != rounds || len(msgs) != int(sp.Last-sp.First+1) {
		t.Errorf("%d concurrent retries of %d messages: last seq %d, %d messages kept from %d", retries, rounds, sp.Last, len(msgs), sp.First)
	}
}

func testMessageConcurrentSameID(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const senders, rounds = 8, 50
	f := createRoom(t, s, 1)
	id := f.room.ID
	for round := range rounds {
		errs := make([]error, senders)
		goAll(t, senders, func(w int) {
			_, errs[w] = s.AppendMessage(ctx, message(id, peer(10+w), round+1, 1))
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: a sender reusing a taken id got %v, want ErrConflict", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d senders stored a message under one id, want 1", round, won)
		}
	}
	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp.Last != rounds {
		t.Errorf("last seq is %d, want %d", sp.Last, rounds)
	}
}

func testMessageHistory(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	id, a := f.room.ID, f.members[1].Peer
	hl, bounded := s.(store.HistoryLimiter)
	if !bounded {
		// A store that keeps everything returns everything.
		for i := range 50 {
			_, err := s.AppendMessage(ctx, message(id, a, i+1, 1))
			ok(t, err, "AppendMessage")
		}
		msgs := readAll(t, s, id, 0)
		sp, err := s.MessageSpan(ctx, id)
		ok(t, err, "MessageSpan")
		if len(msgs) != 50 || sp != (store.Span{First: 1, Last: 50}) {
			t.Errorf("a store without a history bound holds %d of 50 messages, span %+v", len(msgs), sp)
		}
		return
	}
	n := hl.HistoryPerRoom()
	if n < 1 {
		t.Fatalf("HistoryPerRoom() = %d; a bounded store keeps at least one message", n)
	}
	if n > 50000 {
		t.Skipf("HistoryPerRoom() = %d: too many messages to fill in a test", n)
	}

	// Message 1 alone names an expiring key package: once trimmed, the
	// key package may go.
	kp := keyPackage(a, 1, t0.Add(hour))
	ok(t, s.PutKeyPackage(ctx, kp, t0), "PutKeyPackage")
	m1 := message(id, a, 1, 1)
	m1.KeyPackageHash = kp.Hash
	_, err := s.AppendMessage(ctx, m1)
	ok(t, err, "AppendMessage")
	swept, err := s.SweepKeyPackages(ctx, t0.Add(hour))
	ok(t, err, "SweepKeyPackages")
	if swept != 0 {
		t.Fatalf("SweepKeyPackages deleted the key package of a kept message")
	}
	const over = 3
	for i := 2; i <= n+over; i++ {
		m := message(id, a, i, 1)
		m.Blob = m.Blob[:8]
		_, err := s.AppendMessage(ctx, m)
		ok(t, err, "AppendMessage")
	}
	oldest := uint64(over + 1)
	sp, err := s.MessageSpan(ctx, id)
	ok(t, err, "MessageSpan")
	if sp != (store.Span{First: oldest, Last: uint64(n + over)}) {
		t.Errorf("MessageSpan = %+v, want {%d %d}", sp, oldest, n+over)
	}

	// A cursor before the oldest kept message says so, with no messages.
	for _, after := range []uint64{0, 1, oldest - 2} {
		msgs, err := s.ReadMessages(ctx, id, after, 10)
		var hte *store.HistoryTrimmedError
		if !errors.As(err, &hte) || !errors.Is(err, store.ErrHistoryTrimmed) {
			t.Fatalf("ReadMessages(after %d) before the oldest kept: got %v, want a *HistoryTrimmedError", after, err)
		}
		if hte.Oldest != oldest || hte.After != after || hte.Room != id {
			t.Errorf("HistoryTrimmedError = %+v, want Room %s, After %d, Oldest %d", hte, id, after, oldest)
		}
		if len(msgs) != 0 {
			t.Errorf("ReadMessages(after %d) returned %d messages with the trimmed error", after, len(msgs))
		}
	}
	// From just before the oldest, everything kept, densely.
	msgs := readAll(t, s, id, oldest-1)
	if len(msgs) != n || msgs[0].Seq != oldest || msgs[len(msgs)-1].Seq != uint64(n+over) {
		t.Errorf("reading on from the oldest kept: %d messages, want %d from seq %d", len(msgs), n, oldest)
	}

	// A kept message's retry is still a retry.
	last := message(id, a, n+over, 1)
	got, err := s.AppendMessage(ctx, last)
	ok(t, err, "AppendMessage retried")
	if got.Seq != uint64(n+over) {
		t.Errorf("the retry of the newest message got seq %d, want %d", got.Seq, n+over)
	}
	swept, err = s.SweepKeyPackages(ctx, t0.Add(hour))
	ok(t, err, "SweepKeyPackages")
	if swept != 1 {
		t.Errorf("SweepKeyPackages after the only message naming it was trimmed deleted %d, want 1", swept)
	}
}

func testMessageCopies(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := createRoom(t, s, 1)
	m := message(f.room.ID, f.members[1].Peer, 1, 1)
	want := bytes.Clone(m.Blob)
	got, err := s.AppendMessage(ctx, m)
	ok(t, err, "AppendMessage")
	m.Blob[0] ^= 0xff // the caller reuses its buffer
	got.Blob[1] ^= 0xff
	msgs, err := s.ReadMessages(ctx, f.room.ID, 0, 1)
	ok(t, err, "ReadMessages")
	if !bytes.Equal(msgs[0].Blob, want) {
		t.Fatal("changing the blob passed to or returned by AppendMessage changed the stored message")
	}
	msgs[0].Blob[0] ^= 0xff
	retry, err := s.AppendMessage(ctx, message(f.room.ID, f.members[1].Peer, 1, 1))
	ok(t, err, "AppendMessage retried")
	if !bytes.Equal(retry.Blob, want) {
		t.Fatal("changing a blob ReadMessages returned changed the stored message")
	}
	retry.Blob[0] ^= 0xff
	msgs, err = s.ReadMessages(ctx, f.room.ID, 0, 1)
	ok(t, err, "ReadMessages")
	if !bytes.Equal(msgs[0].Blob, want) {
		t.Fatal("changing the blob a retried AppendMessage returned changed the stored message")
	}
}
