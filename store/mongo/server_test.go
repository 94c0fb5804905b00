package mongo

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

// needFerretDB returns the tools/ferretdb binary, or skips a test that
// stops and starts its own server when there is none.
func needFerretDB(t *testing.T) string {
	t.Helper()
	if ferretBinary == "" {
		t.Skipf("%s points at an external server and %s is not set: this test starts and stops a FerretDB of its own (make test sets both)",
			envURI, envFerretDB)
	}
	return ferretBinary
}

// ownServer starts a FerretDB of the test's own on dir, stopped when the
// test ends.
func ownServer(t *testing.T, bin, dir, listen string) *ferretDB {
	t.Helper()
	srv, err := startFerretDB(bin, dir, listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// testRoom creates a room with a master and members peer(1..n) at epoch 1.
func testRoom(t *testing.T, s store.Store, n int) (store.Room, []store.Member) {
	t.Helper()
	var id store.RoomID
	copy(id[:], randomHex(8))
	c := store.Commit{Room: id, Epoch: 1, Hash: [32]byte{0xc0, 1}, Blob: []byte("create commit")}
	r := store.Room{ID: id, Master: testPeer(0), Suite: 1, Name: "test room", Epoch: 1, Head: c.Hash, Created: time.Now()}
	members := []store.Member{{Peer: testPeer(0), Role: store.RoleMaster, KeyPackageHash: [32]byte{0xcb, 0}}}
	for i := 1; i <= n; i++ {
		members = append(members, store.Member{Peer: testPeer(i), Role: store.RoleMember, KeyPackageHash: [32]byte{0xcb, byte(i)}})
	}
	if err := s.CreateRoom(t.Context(), r, c, members); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return r, members
}

func testPeer(n int) store.PeerID {
	var p store.PeerID
	p[0], p[1], p[2] = 0x70, byte(n>>8), byte(n)
	return p
}

func testMessage(room store.RoomID, sender, n int) store.Message {
	var id store.MessageID
	id[0], id[1], id[2], id[3], id[4] = 0x6d, byte(sender>>8), byte(sender), byte(n>>8), byte(n)
	return store.Message{
		Room: room, ID: id, Sender: testPeer(sender), Epoch: 1, KeyPackageHash: [32]byte{0xcb, byte(sender)},
		Blob: []byte(fmt.Sprintf("ciphertext %d of %d", n, sender)), Stored: time.Now(),
	}
}

// readEverything reads the room's messages from the start, page by page.
func readEverything(t *testing.T, s store.Store, room store.RoomID) []store.Message {
	t.Helper()
	var out []store.Message
	after := uint64(0)
	for range 10000 {
		page, err := s.ReadMessages(t.Context(), room, after, store.MaxListLimit)
		if err != nil {
			t.Fatalf("ReadMessages(after %d): %v", after, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
	t.Fatal("readEverything: too many pages")
	return nil
}

// TestOutageRecovers: while the server is down, calls fail with an error
// matching store.ErrUnavailable; once it is back on the same address, the
// same Store works again, without being reopened, and nothing acknowledged
// was lost.
func TestOutageRecovers(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	bin := needFerretDB(t)
	dir := t.TempDir()
	srv := ownServer(t, bin, dir, "127.0.0.1:0")
	s, err := Open(t.Context(), srv.uri, Options{Database: "outage", ServerSelectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	r, _ := testRoom(t, s, 1)
	m1, err := s.AppendMessage(ctx, testMessage(r.ID, 1, 1))
	if err != nil {
		t.Fatal(err)
	}

	srv.kill()
	_, err = s.AppendMessage(ctx, testMessage(r.ID, 1, 2))
	var ue *UnavailableError
	if !errors.Is(err, store.ErrUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("AppendMessage with the server down: got %v, want an *UnavailableError", err)
	}
	if _, err := s.GetRoom(ctx, r.ID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetRoom with the server down: got %v, want ErrUnavailable", err)
	}

	srv = ownServer(t, bin, dir, srv.addr)
	var m2 store.Message
	deadline := time.Now().Add(hangDeadline)
	for attempt := 0; ; attempt++ {
		m2, err = s.AppendMessage(ctx, testMessage(r.ID, 1, 2))
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("AppendMessage after the server came back (attempt %d): %v", attempt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m2.Seq != 2 {
		t.Errorf("the message sent after the outage has seq %d, want 2", m2.Seq)
	}
	msgs := readEverything(t, s, r.ID)
	if len(msgs) != 2 || msgs[0].ID != m1.ID || msgs[1].ID != m2.ID {
		t.Errorf("after the outage the room holds %d messages, want the 2 acknowledged", len(msgs))
	}
}

// TestOpenFailsFast: Open against an address where nothing listens fails
// within its server selection timeout, with an error that says so.
func TestOpenFailsFast(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	bin := needFerretDB(t)
	srv := ownServer(t, bin, t.TempDir(), "127.0.0.1:0")
	addr := srv.addr
	srv.stop() // the port is now free, and nothing listens on it
	start := time.Now()
	_, err := Open(t.Context(), "mongodb://"+addr+"/", Options{ServerSelectionTimeout: 500 * time.Millisecond})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open with no server: got %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > hangDeadline {
		t.Errorf("Open with no server took %v", took)
	}
	t.Logf("Open with no server: %v", err)
}

// TestRestartKeepsAcknowledged: the server is killed (SIGKILL) while four
// senders append; after a restart on the same data directory, every
// message a sender saw acknowledged is there exactly once, under the
// sequence number it was given, with no gap; retrying the others stores
// each exactly once.
func TestRestartKeepsAcknowledged(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	bin := needFerretDB(t)
	dir := t.TempDir()
	srv := ownServer(t, bin, dir, "127.0.0.1:0")
	ctx := t.Context()
	s, err := Open(ctx, srv.uri, Options{Database: "restart", ServerSelectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := testRoom(t, s, 4)

	const senders, each, killAfter = 4, 100, 60
	var acked atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	got := make([][]store.Message, senders)
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for i := range each {
				m, err := s.AppendMessage(ctx, testMessage(r.ID, w+1, i))
				if err != nil {
					return // the server is gone: this message and the rest are not acknowledged
				}
				got[w] = append(got[w], m)
				if acked.Add(1) == killAfter {
					killOnce.Do(func() { srv.kill(); close(killed) })
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("the senders finished before the server was killed")
	}
	_ = s.Close()

	srv = ownServer(t, bin, dir, "127.0.0.1:0")
	s, err = Open(ctx, srv.uri, Options{Database: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := readEverything(t, s, r.ID)
	bySeq := make(map[uint64]store.Message)
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("after the restart message %d has seq %d: a gap", i, m.Seq)
		}
		bySeq[m.Seq] = m
	}
	total := 0
	for w := range senders {
		for _, m := range got[w] {
			total++
			if s := bySeq[m.Seq]; s.ID != m.ID || string(s.Blob) != string(m.Blob) {
				t.Errorf("acknowledged message %s at seq %d is not there after the restart", m.ID, m.Seq)
			}
		}
	}
	if total < killAfter {
		t.Fatalf("only %d messages were acknowledged before the kill", total)
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored", total, len(msgs))

	// The senders resume: every message once, in one dense sequence.
	for w := range senders {
		for i := range each {
			if _, err := s.AppendMessage(ctx, testMessage(r.ID, w+1, i)); err != nil {
				t.Fatalf("resending after the restart: %v", err)
			}
		}
	}
	msgs = readEverything(t, s, r.ID)
	seen := make(map[store.MessageID]bool)
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || seen[m.ID] {
			t.Fatalf("after resending, message %d (seq %d, id %s) is a gap or a duplicate", i, m.Seq, m.ID)
		}
		seen[m.ID] = true
	}
	if len(msgs) != senders*each {
		t.Errorf("after resending the room holds %d messages, want %d", len(msgs), senders*each)
	}
}
