package memory

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

var now = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func peer(n int) store.PeerID {
	var p store.PeerID
	p[0] = 0x50
	binary.BigEndian.PutUint64(p[24:], uint64(n))
	return p
}

func roomID(n int) store.RoomID {
	var id store.RoomID
	id[0] = 0x52
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

func msgID(n int) store.MessageID {
	var id store.MessageID
	id[0] = 0x4d
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// filled returns size bytes that differ for each tag.
func filled(size int, tag string) []byte {
	seed := sha256.Sum256([]byte(tag))
	b := make([]byte, size)
	for i := range b {
		b[i] = seed[i%len(seed)]
	}
	return b
}

func commitOf(id store.RoomID, epoch uint64, size int) store.Commit {
	b := filled(size, fmt.Sprintf("commit %v %d", id, epoch))
	return store.Commit{Room: id, Epoch: epoch, Hash: sha256.Sum256(b), Blob: b}
}

// members returns a master (peer n*10) and two members.
func members(n int) []store.Member {
	var out []store.Member
	for i := range 3 {
		role := store.RoleMember
		if i == 0 {
			role = store.RoleMaster
		}
		out = append(out, store.Member{Peer: peer(n*10 + i), Role: role, KeyPackageHash: [32]byte{1, byte(i)}})
	}
	return out
}

// create makes room n with a create commit of commitSize bytes at epoch 1.
func create(t *testing.T, s *Store, n, commitSize int) store.RoomID {
	t.Helper()
	id := roomID(n)
	c := commitOf(id, 1, commitSize)
	ms := members(n)
	r := store.Room{ID: id, Master: ms[0].Peer, Name: "r", Epoch: 1, Head: c.Hash, Created: now}
	if err := s.CreateRoom(t.Context(), r, c, ms); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return id
}

func msg(id store.RoomID, sender store.PeerID, n, size int) store.Message {
	return store.Message{Room: id, ID: msgID(n), Sender: sender, Epoch: 1, KeyPackageHash: [32]byte{2},
		Blob: filled(size, fmt.Sprint(n)), Stored: now}
}

func keyPkg(owner store.PeerID, n, size int, expires time.Time) store.KeyPackage {
	b := filled(size, fmt.Sprintf("kp %v %d", owner, n))
	return store.KeyPackage{Hash: sha256.Sum256(b), Owner: owner, Blob: b, Expires: expires}
}

func record(p store.PeerID, size int, issued time.Time) store.DirectoryRecord {
	return store.DirectoryRecord{Peer: p, Blob: filled(size, "rec"), Issued: issued, Expires: issued.Add(time.Hour)}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantHeld(t *testing.T, s *Store, want int64, after string) {
	t.Helper()
	if got := s.bytes.Load(); got != want {
		t.Fatalf("after %s the store accounts %d blob bytes, want %d", after, got, want)
	}
}

// TestBytesAccounted follows every write and delete: the bytes the store
// counts against MaxBytes are exactly the blob bytes it holds.
func TestBytesAccounted(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{HistoryPerRoom: 3})
	ms := members(1)
	id := create(t, s, 1, 300)
	wantHeld(t, s, 300, "CreateRoom")
	_, err := s.ApplyCommit(ctx, id, 1, commitOf(id, 2, 300), ms)
	must(t, err, "ApplyCommit")
	wantHeld(t, s, 600, "ApplyCommit")
	must(t, s.RecordLeave(ctx, id, ms[1].Peer, filled(10, "leave")), "RecordLeave")
	must(t, s.RecordLeave(ctx, id, ms[1].Peer, filled(20, "leave again")), "RecordLeave again")
	wantHeld(t, s, 610, "RecordLeave")
	must(t, s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: 2, Member: ms[0].Peer, Blob: filled(180, "k")}), "PutWrappedKey")
	wantHeld(t, s, 790, "PutWrappedKey")
	for i := range 5 { // history 3: the first two go
		_, err := s.AppendMessage(ctx, store.Message{Room: id, ID: msgID(i + 1), Sender: ms[2].Peer, Epoch: 2,
			KeyPackageHash: [32]byte{2}, Blob: filled(60+i, "m"), Stored: now})
		must(t, err, "AppendMessage")
	}
	wantHeld(t, s, 790+62+63+64, "AppendMessage beyond the history")
	must(t, s.PutKeyPackage(ctx, keyPkg(peer(99), 1, 200, now.Add(time.Minute)), now), "PutKeyPackage")
	wantHeld(t, s, 1179, "PutKeyPackage")
	must(t, s.PutDirectoryRecord(ctx, record(peer(98), 150, now), now), "PutDirectoryRecord")
	must(t, s.PutDirectoryRecord(ctx, record(peer(98), 100, now.Add(time.Second)), now), "PutDirectoryRecord newer")
	wantHeld(t, s, 1279, "PutDirectoryRecord")
	// Removing the member that left frees its leave request.
	_, err = s.ApplyCommit(ctx, id, 2, commitOf(id, 3, 300), []store.Member{ms[0], ms[2]})
	must(t, err, "ApplyCommit(remove)")
	wantHeld(t, s, 1569, "ApplyCommit(remove)")
	n, err := s.SweepKeyPackages(ctx, now.Add(time.Minute))
	must(t, err, "SweepKeyPackages")
	if n != 1 {
		t.Fatalf("SweepKeyPackages deleted %d, want 1", n)
	}
	wantHeld(t, s, 1369, "SweepKeyPackages")
	must(t, s.DeleteRoom(ctx, id), "DeleteRoom")
	wantHeld(t, s, 100, "DeleteRoom")
	n, err = s.SweepDirectory(ctx, now.Add(2*time.Hour))
	must(t, err, "SweepDirectory")
	if n != 1 {
		t.Fatalf("SweepDirectory deleted %d, want 1", n)
	}
	wantHeld(t, s, 0, "SweepDirectory")
}

// TestMaxBytes: a write that would pass the cap is ErrFull and writes
// nothing; a message that replaces the oldest at the history bound needs
// only the difference; deleting frees room for more.
func TestMaxBytes(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{HistoryPerRoom: 3, MaxBytes: 1000})
	id := create(t, s, 1, 400)
	ms := members(1)
	for i := range 3 {
		_, err := s.AppendMessage(ctx, msg(id, ms[1].Peer, i+1, 100))
		must(t, err, "AppendMessage")
	}
	wantHeld(t, s, 700, "three messages")

	// Replacing the oldest (100 bytes) with 400 needs 300 more: fits.
	_, err := s.AppendMessage(ctx, msg(id, ms[1].Peer, 4, 400))
	must(t, err, "AppendMessage at the history bound")
	wantHeld(t, s, 1000, "a larger message at the history bound")
	// Now a 101-byte message replacing a 100-byte one passes the cap.
	_, err = s.AppendMessage(ctx, msg(id, ms[1].Peer, 5, 101))
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("AppendMessage over MaxBytes: got %v, want ErrFull", err)
	}
	sp, err := s.MessageSpan(ctx, id)
	must(t, err, "MessageSpan")
	if sp != (store.Span{First: 2, Last: 4}) {
		t.Fatalf("a refused message changed the history: span %+v", sp)
	}
	_, err = s.AppendMessage(ctx, msg(id, ms[1].Peer, 5, 100))
	must(t, err, "AppendMessage of the same size as the oldest")

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"ApplyCommit", func() error { _, err := s.ApplyCommit(ctx, id, 1, commitOf(id, 2, 1), ms); return err }()},
		{"PutWrappedKey", s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: 1, Member: ms[0].Peer, Blob: []byte{1}})},
		{"RecordLeave", s.RecordLeave(ctx, id, ms[1].Peer, []byte{1})},
		{"PutKeyPackage", s.PutKeyPackage(ctx, keyPkg(peer(99), 1, 1, now.Add(time.Hour)), now)},
		{"PutDirectoryRecord", s.PutDirectoryRecord(ctx, record(peer(98), 1, now), now)},
		{"CreateRoom", func() error {
			c := commitOf(roomID(2), 1, 1)
			r := store.Room{ID: roomID(2), Master: members(2)[0].Peer, Epoch: 1, Head: c.Hash, Created: now}
			return s.CreateRoom(ctx, r, c, members(2))
		}()},
	} {
		if !errors.Is(tc.err, store.ErrFull) {
			t.Errorf("%s with the store full: got %v, want ErrFull", tc.name, tc.err)
		}
	}
	wantHeld(t, s, 1000, "refused writes")
	if _, err := s.GetRoom(ctx, roomID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused room was created")
	}
	must(t, s.DeleteRoom(ctx, id), "DeleteRoom")
	create(t, s, 2, 1000)
}

func TestMaxRooms(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{MaxRooms: 2})
	create(t, s, 1, 10)
	create(t, s, 2, 10)
	c := commitOf(roomID(3), 1, 10)
	r := store.Room{ID: roomID(3), Master: members(3)[0].Peer, Epoch: 1, Head: c.Hash, Created: now}
	if err := s.CreateRoom(ctx, r, c, members(3)); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a third room with MaxRooms 2: got %v, want ErrFull", err)
	}
	create(t, s, 1, 10) // an idempotent retry at the cap
	must(t, s.DeleteRoom(ctx, roomID(1)), "DeleteRoom")
	must(t, s.CreateRoom(ctx, r, c, members(3)), "CreateRoom after a delete")
}

func TestMaxKeyPackages(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{MaxKeyPackages: 2})
	must(t, s.PutKeyPackage(ctx, keyPkg(peer(1), 1, 10, now.Add(time.Minute)), now), "PutKeyPackage")
	kp := keyPkg(peer(2), 1, 10, now.Add(time.Hour))
	must(t, s.PutKeyPackage(ctx, kp, now), "PutKeyPackage")
	third := keyPkg(peer(3), 1, 10, now.Add(time.Hour))
	if err := s.PutKeyPackage(ctx, third, now); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a third key package with MaxKeyPackages 2: got %v, want ErrFull", err)
	}
	must(t, s.PutKeyPackage(ctx, kp, now), "an idempotent put at the cap")
	later := now.Add(time.Minute)
	_, err := s.SweepKeyPackages(ctx, later)
	must(t, err, "SweepKeyPackages")
	must(t, s.PutKeyPackage(ctx, third, later), "PutKeyPackage after a sweep")
}

func TestMaxDirectoryRecords(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, Options{MaxDirectoryRecords: 2})
	must(t, s.PutDirectoryRecord(ctx, record(peer(1), 10, now), now), "PutDirectoryRecord")
	must(t, s.PutDirectoryRecord(ctx, record(peer(2), 10, now.Add(time.Minute)), now), "PutDirectoryRecord")
	if err := s.PutDirectoryRecord(ctx, record(peer(3), 10, now), now); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a third peer's record with MaxDirectoryRecords 2: got %v, want ErrFull", err)
	}
	must(t, s.PutDirectoryRecord(ctx, record(peer(1), 10, now.Add(time.Second)), now), "replacing a record at the cap")
	later := now.Add(time.Hour + time.Second)
	n, err := s.SweepDirectory(ctx, later)
	must(t, err, "SweepDirectory")
	if n != 1 {
		t.Fatalf("SweepDirectory deleted %d, want 1", n)
	}
	must(t, s.PutDirectoryRecord(ctx, record(peer(3), 10, later), later), "PutDirectoryRecord after a sweep")
}

// TestHistoryWindow appends far beyond a small history and checks after
// every append that the room keeps exactly its newest messages, readable
// from the oldest on, and that the backing slice stays bounded.
func TestHistoryWindow(t *testing.T) {
	ctx := t.Context()
	const history, total = 10, 2000
	s := newStore(t, Options{HistoryPerRoom: history})
	id := create(t, s, 1, 10)
	sender := members(1)[1].Peer
	for i := 1; i <= total; i++ {
		_, err := s.AppendMessage(ctx, msg(id, sender, i, 8))
		must(t, err, "AppendMessage")
		first := uint64(max(1, i-history+1))
		got, err := s.ReadMessages(ctx, id, first-1, store.MaxListLimit)
		must(t, err, "ReadMessages")
		if len(got) != int(uint64(i)-first+1) || got[0].Seq != first || got[len(got)-1].ID != msgID(i) {
			t.Fatalf("after %d appends: %d messages from seq %d, want %d from %d", i, len(got), got[0].Seq, uint64(i)-first+1, first)
		}
		s.mu.RLock()
		rm := s.rooms[id]
		s.mu.RUnlock()
		rm.mu.Lock()
		n, ids := len(rm.msgs), len(rm.ids)
		rm.mu.Unlock()
		if n > 2*history+64 || ids != len(got) {
			t.Fatalf("after %d appends the room holds %d message slots and %d ids for %d messages", i, n, ids, len(got))
		}
	}
	// A trimmed message's id is free again: its retry is a new message
	// (idempotency holds for the messages kept).
	m, err := s.AppendMessage(ctx, msg(id, sender, 1, 8))
	must(t, err, "AppendMessage of a trimmed message's id")
	if m.Seq != total+1 {
		t.Errorf("a trimmed message's id got seq %d, want %d", m.Seq, total+1)
	}
}

// TestConcurrentMixed runs every kind of operation at once on a few rooms,
// under -race, with rooms created and deleted underneath readers: no data
// race, no deadlock, and the byte count returns to zero once everything
// is deleted.
func TestConcurrentMixed(t *testing.T) {
	const workers, rounds, rooms = 8, 200, 4
	s := newStore(t, Options{HistoryPerRoom: 20})
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				n := 1 + (w+i)%rooms
				id := roomID(n)
				ms := members(n)
				switch (w + i) % 8 {
				case 0:
					c := commitOf(id, 1, 50)
					r := store.Room{ID: id, Master: ms[0].Peer, Epoch: 1, Head: c.Hash, Created: now}
					_ = s.CreateRoom(ctx, r, c, ms)
				case 1:
					_ = s.DeleteRoom(ctx, id)
				case 2:
					if r, err := s.GetRoom(ctx, id); err == nil {
						_, _ = s.ApplyCommit(ctx, id, r.Epoch, commitOf(id, r.Epoch+1, 40), ms)
					}
				case 3:
					if r, err := s.GetRoom(ctx, id); err == nil {
						_, _ = s.AppendMessage(ctx, store.Message{Room: id, ID: msgID(w*rounds + i + 1), Sender: ms[1].Peer,
							Epoch: r.Epoch, KeyPackageHash: [32]byte{byte(i)}, Blob: filled(30, "m"), Stored: now})
					}
				case 4:
					_, _ = s.ListRooms(ctx, ms[1].Peer, store.RoomID{}, 10)
					_, _ = s.Members(ctx, id)
				case 5:
					if sp, err := s.MessageSpan(ctx, id); err == nil && sp.First > 0 {
						_, _ = s.ReadMessages(ctx, id, sp.First-1, 10)
					}
					_ = s.RecordLeave(ctx, id, ms[2].Peer, filled(5, "l"))
				case 6:
					_ = s.PutKeyPackage(ctx, keyPkg(peer(w), i, 20, now.Add(time.Duration(i)*time.Second)), now)
					_, _ = s.SweepKeyPackages(ctx, now.Add(100*time.Second))
				case 7:
					if r, err := s.GetRoom(ctx, id); err == nil {
						_ = s.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: r.Epoch, Member: ms[w%3].Peer, Blob: filled(15, "k")})
						_ = s.AckEpoch(ctx, id, ms[w%3].Peer, r.Epoch)
					}
					_ = s.PutDirectoryRecord(ctx, record(peer(w), 10, now.Add(time.Duration(i)*time.Millisecond)), now)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a hang deadline: the work takes milliseconds
		t.Fatal("concurrent operations still running after 2 minutes: a deadlock")
	}

	for n := 1; n <= rooms; n++ {
		if err := s.DeleteRoom(ctx, roomID(n)); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteRoom: %v", err)
		}
	}
	_, err := s.SweepKeyPackages(ctx, now.Add(24*time.Hour))
	must(t, err, "SweepKeyPackages")
	_, err = s.SweepDirectory(ctx, now.Add(24*time.Hour))
	must(t, err, "SweepDirectory")
	wantHeld(t, s, 0, "deleting and sweeping everything")
	s.kpMu.Lock()
	refs := len(s.kpRefs)
	s.kpMu.Unlock()
	s.idxMu.Lock()
	idx := len(s.byPeer)
	s.idxMu.Unlock()
	if refs != 0 || idx != 0 {
		t.Errorf("with every room deleted, %d key package references and %d peer index entries remain", refs, idx)
	}
}
