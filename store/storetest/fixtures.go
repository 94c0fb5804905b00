package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
)

// t0 is the suite's "now": a fixed time with a sub-millisecond part, so
// that the millisecond rule is exercised everywhere.
var t0 = time.Date(2031, 5, 6, 7, 8, 9, 123_456_789, time.UTC)

// hour is the key packages' and directory records' usual lifetime.
const hour = time.Hour

func ctxT(t *testing.T) context.Context { return t.Context() }

// peer returns a distinct peer id for each n.
func peer(n int) store.PeerID {
	var p store.PeerID
	p[0] = 0x50
	binary.BigEndian.PutUint64(p[24:], uint64(n))
	return p
}

// roomID returns a distinct room id for each n, in the byte order of n.
func roomID(n int) store.RoomID {
	var id store.RoomID
	id[0] = 0x52
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// msgID returns a distinct message id for each n.
func msgID(n int) store.MessageID {
	var id store.MessageID
	id[0] = 0x4d
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// hash returns a distinct 32-byte hash for each tag and list of numbers.
func hash(tag string, ns ...int) [32]byte {
	h := sha256.New()
	h.Write([]byte(tag))
	for _, n := range ns {
		_ = binary.Write(h, binary.BigEndian, int64(n))
	}
	return [32]byte(h.Sum(nil))
}

// blob returns size deterministic bytes for tag.
func blob(tag string, size int) []byte {
	b := make([]byte, size)
	seed := sha256.Sum256([]byte(tag))
	for i := range b {
		b[i] = seed[i%len(seed)] ^ byte(i/len(seed))
	}
	return b
}

func keyPackage(owner store.PeerID, n int, expires time.Time) store.KeyPackage {
	b := blob(fmt.Sprintf("key package %v %d", owner, n), 200)
	return store.KeyPackage{Hash: sha256.Sum256(b), Owner: owner, Blob: b, Expires: expires}
}

func commit(room store.RoomID, epoch uint64, variant int) store.Commit {
	b := blob(fmt.Sprintf("commit %v %d %d", room, epoch, variant), 300)
	return store.Commit{Room: room, Epoch: epoch, Hash: sha256.Sum256(b), Blob: b}
}

func member(p store.PeerID, role store.Role) store.Member {
	return store.Member{Peer: p, Role: role, KeyPackageHash: hash("kp of", int(binary.BigEndian.Uint64(p[24:])))}
}

// fixture is a room with a master and two members, created at epoch 1.
type fixture struct {
	room    store.Room
	create  store.Commit
	master  store.PeerID
	members []store.Member
}

func newFixture(n int) fixture {
	id := roomID(n)
	create := commit(id, 1, 0)
	master := peer(1000*n + 1)
	members := []store.Member{
		member(master, store.RoleMaster),
		member(peer(1000*n+2), store.RoleMember),
		member(peer(1000*n+3), store.RoleMember),
	}
	return fixture{
		room: store.Room{
			ID: id, Master: master, Suite: 1, Name: fmt.Sprintf("room %d ✓", n),
			Epoch: 1, Head: create.Hash, Created: t0,
		},
		create:  create,
		master:  master,
		members: members,
	}
}

// createRoom creates the fixture's room in s.
func createRoom(t *testing.T, s store.Store, n int) fixture {
	t.Helper()
	f := newFixture(n)
	ok(t, s.CreateRoom(ctxT(t), f.room, f.create, f.members), "CreateRoom")
	return f
}

// message returns a message from sender with id n under epoch.
func message(room store.RoomID, sender store.PeerID, n int, epoch uint64) store.Message {
	return store.Message{
		Room: room, ID: msgID(n), Sender: sender, Epoch: epoch,
		KeyPackageHash: hash("kp of", int(binary.BigEndian.Uint64(sender[24:]))),
		Blob:           blob(fmt.Sprintf("message %v %d", room, n), 64),
		Stored:         t0.Add(time.Duration(n) * time.Millisecond),
	}
}

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// isErr fails the test unless err wraps want.
func isErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, want)
	}
}

// tooLarge fails the test unless err is a *store.TooLargeError with these
// sizes.
func tooLarge(t *testing.T, err error, size, maxSize int, what string) {
	t.Helper()
	var tl *store.TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("%s: got error %v, want a *store.TooLargeError", what, err)
		return
	}
	if tl.Size != size || tl.Max != maxSize {
		t.Errorf("%s: TooLargeError{Size: %d, Max: %d}, want {%d, %d}", what, tl.Size, tl.Max, size, maxSize)
	}
}

func sameKeyPackage(a, b store.KeyPackage) bool {
	return a.Hash == b.Hash && a.Owner == b.Owner && bytes.Equal(a.Blob, b.Blob) && a.Expires.Equal(b.Expires)
}

func sameRoom(a, b store.Room) bool {
	return a.ID == b.ID && a.Master == b.Master && a.Suite == b.Suite && a.Name == b.Name &&
		a.Epoch == b.Epoch && a.Head == b.Head && a.Created.Equal(b.Created)
}

func sameMember(a, b store.Member) bool {
	return a.Peer == b.Peer && a.Role == b.Role && a.KeyPackageHash == b.KeyPackageHash &&
		a.AckedEpoch == b.AckedEpoch && bytes.Equal(a.Leave, b.Leave)
}

func sameMembers(a, b []store.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameMember(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameCommit(a, b store.Commit) bool {
	return a.Room == b.Room && a.Epoch == b.Epoch && a.Hash == b.Hash && bytes.Equal(a.Blob, b.Blob)
}

func sameMessage(a, b store.Message) bool {
	return a.Room == b.Room && a.Seq == b.Seq && a.ID == b.ID && a.Sender == b.Sender && a.Epoch == b.Epoch &&
		a.KeyPackageHash == b.KeyPackageHash && bytes.Equal(a.Blob, b.Blob) && a.Stored.Equal(b.Stored)
}

func sameDirectoryRecord(a, b store.DirectoryRecord) bool {
	return a.Peer == b.Peer && bytes.Equal(a.Blob, b.Blob) && a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires)
}

// wantMembers fails the test unless the room's member list is want.
func wantMembers(t *testing.T, s store.Store, room store.RoomID, want []store.Member) {
	t.Helper()
	got, err := s.Members(ctxT(t), room)
	ok(t, err, "Members")
	if !sameMembers(got, want) {
		t.Errorf("Members = %+v, want %+v", got, want)
	}
}

// wantRoomIDs fails the test unless ListRooms(peer) from the start gives
// exactly these rooms, in order.
func wantRoomIDs(t *testing.T, s store.Store, p store.PeerID, want ...store.RoomID) {
	t.Helper()
	got, err := s.ListRooms(ctxT(t), p, store.RoomID{}, store.MaxListLimit)
	ok(t, err, "ListRooms")
	if len(got) != len(want) {
		t.Errorf("ListRooms(%s) has %d rooms, want %d", p.Short(), len(got), len(want))
		return
	}
	for i := range got {
		if got[i].ID != want[i] {
			t.Errorf("ListRooms(%s)[%d] = %s, want %s", p.Short(), i, got[i].ID, want[i])
		}
	}
}

// readAll reads the room's messages after after, page by page.
func readAll(t *testing.T, s store.Store, room store.RoomID, after uint64) []store.Message {
	t.Helper()
	var out []store.Message
	for range 1 << 20 { // bounded: far more pages than any test stores
		page, err := s.ReadMessages(ctxT(t), room, after, store.MaxListLimit)
		ok(t, err, fmt.Sprintf("ReadMessages(after %d)", after))
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
	t.Fatal("readAll: too many pages")
	return nil
}
