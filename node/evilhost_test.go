package node

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// A host whose store lies to the members: it serves a commit no master
// signed, drops commits, serves an older commit as the next one, or serves
// an old epoch's message as new. Everything goes over TCP on loopback
// through the Service, as for an honest host; the members' clients catch
// each lie with room's typed errors and keep their state as it was.

// evilStore rewrites what the store hands out for commits and messages.
type evilStore struct {
	store.Store
	mu       sync.Mutex
	commits  func([]store.Commit) []store.Commit
	messages func([]store.Message) []store.Message
	room     func(store.Room) store.Room
}

func (e *evilStore) lieRoom(f func(store.Room) store.Room) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.room = f
}

func (e *evilStore) GetRoom(ctx context.Context, id store.RoomID) (store.Room, error) {
	r, err := e.Store.GetRoom(ctx, id)
	e.mu.Lock()
	f := e.room
	e.mu.Unlock()
	if err != nil || f == nil {
		return r, err
	}
	return f(r), nil
}

func (e *evilStore) lieCommits(f func([]store.Commit) []store.Commit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.commits = f
}

func (e *evilStore) lieMessages(f func([]store.Message) []store.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.messages = f
}

func (e *evilStore) ListCommits(ctx context.Context, id store.RoomID, after uint64, limit int) ([]store.Commit, error) {
	cs, err := e.Store.ListCommits(ctx, id, after, limit)
	e.mu.Lock()
	f := e.commits
	e.mu.Unlock()
	if err != nil || f == nil {
		return cs, err
	}
	return f(cs), nil
}

func (e *evilStore) ReadMessages(ctx context.Context, id store.RoomID, after uint64, limit int) ([]store.Message, error) {
	ms, err := e.Store.ReadMessages(ctx, id, after, limit)
	e.mu.Lock()
	f := e.messages
	e.mu.Unlock()
	if err != nil || f == nil {
		return ms, err
	}
	return f(ms), nil
}

// evilRoom starts a lying host, a master a and a member b in a room of
// epoch 2 (create, invite b), both with the head's key.
func evilRoom(t *testing.T) (*evilStore, *roomPeer, *roomPeer) {
	t.Helper()
	var ev *evilStore
	h := startRoomHost(t, memory.Options{}, func(_ *Config, s *ServiceConfig) {
		ev = &evilStore{Store: s.Store}
		s.Store = ev
	})
	a, b := h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob")
	id := a.createRoom(t, "evil host")
	a.invite(t, b)
	b.joinRoom(t, id, a.pid())
	if epoch, _ := b.st.Head(); epoch != 2 {
		t.Fatalf("bob's head is epoch %d, want 2", epoch)
	}
	return ev, a, b
}

// marshal returns p's persisted state, to show a refusal changed nothing.
func (p *roomPeer) marshal(t *testing.T) []byte {
	t.Helper()
	b, err := p.st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refuseCommits fetches the commits after p's head, as catching up does,
// and applies them until one is refused: that refusal must match want,
// and p's state must be what it was.
func (p *roomPeer) refuseCommits(t *testing.T, want error) {
	t.Helper()
	before := p.marshal(t)
	epoch, _ := p.st.Head()
	cs := p.allCommits(t, p.room, epoch)
	if len(cs) == 0 {
		t.Fatalf("%s: the host served no commit", p.name)
	}
	var err error
	for _, c := range cs {
		if err = p.st.ApplyCommit(c); err != nil {
			break
		}
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: applying the host's commits: %v, want %v", p.name, err, want)
	}
	if after := p.marshal(t); !bytes.Equal(before, after) {
		t.Fatalf("%s: a refused commit changed the member's state", p.name)
	}
	if now, _ := p.st.Head(); now != epoch {
		t.Fatalf("%s: head moved from epoch %d to %d", p.name, epoch, now)
	}
}

// TestEvilHostForgedCommit: the host serves, as the room's next commit, an
// invite that adds a member and that a peer other than the master signed.
// The member refuses it as forged and keeps its member list.
func TestEvilHostForgedCommit(t *testing.T) {
	ev, a, b := evilRoom(t)

	// Mallory, not the master, signs an invite of epoch 3 adding eve.
	mal, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	malSecrets, err := room.GenerateKeyPackage(mal, 0, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	eve, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	eveSecrets, err := room.GenerateKeyPackage(eve, 0, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	prop, err := room.NewRoom(room.RoomConfig{Master: mal, KeyPackage: malSecrets.KeyPackage(), Name: "evil host", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := room.NewMemberState(prop.Commit, mal.Public(), mal.PeerID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := ms.Rotate(mal, []*room.KeyPackage{malSecrets.KeyPackage()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.ApplyProposal(rot, malSecrets); err != nil {
		t.Fatal(err)
	}
	inv, err := ms.Invite(mal, []*room.KeyPackage{malSecrets.KeyPackage(), eveSecrets.KeyPackage()}, time.Now(), eve.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Info.Epoch != 3 {
		t.Fatalf("forged invite is for epoch %d, want 3", inv.Info.Epoch)
	}
	ev.lieCommits(func(cs []store.Commit) []store.Commit {
		return append(cs, store.Commit{Room: a.room, Epoch: 3, Hash: room.BlobHash(inv.Commit), Blob: inv.Commit})
	})

	b.refuseCommits(t, room.ErrForgedCommit)
	members, err := b.st.Members(2)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(members, func(m room.Member) bool { return m.Peer == eve.PeerID() }) {
		t.Fatal("the forged member is in bob's member list")
	}
}

// TestEvilHostDropsCommit: the master rotates twice; the host drops the
// first of the two. The member refuses the second as skipping an epoch.
// When the host drops the latest commit instead, a message under that
// epoch is refused as of an epoch the member has not verified.
func TestEvilHostDropsCommit(t *testing.T) {
	ev, a, b := evilRoom(t)
	a.rotate(t)
	a.rotate(t)
	ev.lieCommits(func(cs []store.Commit) []store.Commit {
		return slices.DeleteFunc(cs, func(c store.Commit) bool { return c.Epoch == 3 })
	})
	b.refuseCommits(t, room.ErrCommitGap)

	// Drop only the latest: bob reaches epoch 3 and stops there.
	ev.lieCommits(func(cs []store.Commit) []store.Commit {
		return slices.DeleteFunc(cs, func(c store.Commit) bool { return c.Epoch == 4 })
	})
	b.catchUp(t)
	if epoch, _ := b.st.Head(); epoch != 3 {
		t.Fatalf("bob's head is epoch %d, want 3", epoch)
	}
	blob := a.seal(t, "under the dropped epoch")
	seq := a.send(t, blob)
	ms, err := b.rc.Read(tctx(t), b.room, seq-1, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("bob reading: %d messages, %v", len(ms), err)
	}
	before := b.marshal(t)
	if _, err := b.st.OpenMessage(ms[0].Blob, b.signer(t, ms[0].Blob)); !errors.Is(err, room.ErrUnknownEpoch) {
		t.Fatalf("bob opening a message of the dropped epoch: %v, want %v", err, room.ErrUnknownEpoch)
	}
	if !bytes.Equal(before, b.marshal(t)) {
		t.Fatal("a refused message changed bob's state")
	}
}

// TestEvilHostRollback: the host serves an epoch the member already passed
// as the next commit. The member refuses it as a rollback.
func TestEvilHostRollback(t *testing.T) {
	ev, a, b := evilRoom(t)
	a.rotate(t)
	b.catchUp(t)
	a.rotate(t)
	old, err := ev.Store.GetCommit(tctx(t), a.room, 2)
	if err != nil {
		t.Fatal(err)
	}
	ev.lieCommits(func([]store.Commit) []store.Commit { return []store.Commit{old} })
	b.refuseCommits(t, room.ErrRollback)
}

// TestEvilHostStaleMessage: after a rotation, the host serves a message of
// the epoch before as a new one. The member refuses it as stale.
func TestEvilHostStaleMessage(t *testing.T) {
	ev, a, b := evilRoom(t)
	blob := a.seal(t, "under epoch 2")
	seq := a.send(t, blob)
	a.rotate(t)
	b.catchUp(t)
	var old store.Message
	if ms, err := ev.Store.ReadMessages(tctx(t), a.room, seq-1, 1); err != nil || len(ms) != 1 {
		t.Fatalf("reading the stored message: %d, %v", len(ms), err)
	} else {
		old = ms[0]
	}
	// The host serves it again after bob's cursor, as a new message.
	ev.lieMessages(func(ms []store.Message) []store.Message {
		replay := old
		replay.Seq = seq + 1
		return append(ms, replay)
	})
	ms, err := b.rc.Read(tctx(t), b.room, seq, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("bob reading: %d messages, %v", len(ms), err)
	}
	before := b.marshal(t)
	if _, err := b.st.OpenMessage(ms[0].Blob, b.signer(t, ms[0].Blob)); !errors.Is(err, room.ErrStaleEpoch) {
		t.Fatalf("bob opening an old epoch's message as new: %v, want %v", err, room.ErrStaleEpoch)
	}
	if !bytes.Equal(before, b.marshal(t)) {
		t.Fatal("a refused message changed bob's state")
	}
}

// TestEvilHostHidesLatestCommit: the host drops the latest commit from
// what it serves while its reply still reports the room's epoch. The
// member's CatchUp applies the commits it got and refuses at fetch time,
// before any message of the hidden epoch arrives; once the host serves
// the commit, CatchUp reaches the head.
func TestEvilHostHidesLatestCommit(t *testing.T) {
	ev, a, b := evilRoom(t)
	a.rotate(t)
	a.rotate(t)
	ev.lieCommits(func(cs []store.Commit) []store.Commit {
		return slices.DeleteFunc(cs, func(c store.Commit) bool { return c.Epoch == 4 })
	})
	n, err := b.rc.CatchUp(tctx(t), b.st)
	if !errors.Is(err, room.ErrCommitGap) {
		t.Fatalf("catching up past a hidden commit: %v, want %v", err, room.ErrCommitGap)
	}
	if epoch, _ := b.st.Head(); n != 1 || epoch != 3 {
		t.Fatalf("bob applied %d commits up to epoch %d, want 1 up to epoch 3", n, epoch)
	}
	// Hiding every commit after the member's head is caught the same way.
	ev.lieCommits(func([]store.Commit) []store.Commit { return nil })
	if _, err := b.rc.CatchUp(tctx(t), b.st); !errors.Is(err, room.ErrCommitGap) {
		t.Fatalf("catching up with no commit served: %v, want %v", err, room.ErrCommitGap)
	}
	ev.lieCommits(nil)
	if n, err := b.rc.CatchUp(tctx(t), b.st); err != nil || n != 1 {
		t.Fatalf("catching up from an honest host: %d commits, %v", n, err)
	}
	if epoch, _ := b.st.Head(); epoch != 4 {
		t.Fatalf("bob's head is epoch %d, want 4", epoch)
	}
}

// TestEvilHostReportsOldEpoch: the host reports an epoch below the one
// the member verified (a rollback of the room's record). CatchUp refuses
// it and the member's state stays as it was.
func TestEvilHostReportsOldEpoch(t *testing.T) {
	ev, a, b := evilRoom(t)
	a.rotate(t)
	b.catchUp(t)
	ev.lieRoom(func(r store.Room) store.Room {
		r.Epoch = 2
		return r
	})
	before := b.marshal(t)
	if _, err := b.rc.CatchUp(tctx(t), b.st); !errors.Is(err, room.ErrRollback) {
		t.Fatalf("catching up with a host reporting epoch 2: %v, want %v", err, room.ErrRollback)
	}
	if !bytes.Equal(before, b.marshal(t)) {
		t.Fatal("the refusal changed bob's state")
	}
}

// TestEvilHostWrongMasterKey: the host's room info and commit lists carry
// the master's identity key, so a joining member needs no key package
// fetch. An honest host's key is the master's; a host that serves another
// key for the master (its cache poisoned with mallory's), or another
// master for the room, is refused with ErrWrongMasterKey and the member's
// state is unchanged.
func TestEvilHostWrongMasterKey(t *testing.T) {
	ev, a, b := evilRoom(t)
	info, err := b.rc.RoomInfo(tctx(t), a.room)
	if err != nil {
		t.Fatal(err)
	}
	if info.Room.Master != a.pid() || !info.MasterKey.Equal(a.id.Public()) {
		t.Fatalf("room info names master %s with a key of %s, want alice's", info.Room.Master.Short(), info.MasterKey.PeerID().Short())
	}

	// The host claims bob is the master: its commit list carries bob's
	// key, not the one bob's state verified the room under.
	before := b.marshal(t)
	ev.lieRoom(func(r store.Room) store.Room { r.Master = b.pid(); return r })
	if _, err := b.rc.CatchUp(tctx(t), b.st); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("catching up under another master's key: %v, want %v", err, ErrWrongMasterKey)
	}
	ev.lieRoom(nil)

	// The host serves mallory's key as alice's.
	mal, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	svc := a.h.svc
	svc.mu.Lock()
	svc.masterKeys[a.pid()] = mal.Public()
	svc.mu.Unlock()
	if _, err := b.rc.RoomInfo(tctx(t), a.room); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("room info with mallory's key for the master: %v, want %v", err, ErrWrongMasterKey)
	}
	if _, err := b.rc.CatchUp(tctx(t), b.st); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("catching up with mallory's key for the master: %v, want %v", err, ErrWrongMasterKey)
	}
	if after := b.marshal(t); !bytes.Equal(before, after) {
		t.Fatal("a refused reply changed bob's state")
	}
	// The next honest reply is served and accepted.
	svc.mu.Lock()
	clear(svc.masterKeys)
	svc.mu.Unlock()
	if _, err := b.rc.CatchUp(tctx(t), b.st); err != nil {
		t.Fatalf("catching up from the honest host: %v", err)
	}
}

// TestVerifyMasterKey: a key is the master's exactly when its SHA-256 is
// the master's peer ID; anything else matches ErrWrongMasterKey.
func TestVerifyMasterKey(t *testing.T) {
	a, b := identity(t, "ed-a"), identity(t, "ed-b")
	pk, err := VerifyMasterKey(a.PeerID(), a.Public().SPKI())
	if err != nil || !pk.Equal(a.Public()) {
		t.Fatalf("alice's own key: %v", err)
	}
	for name, spki := range map[string][]byte{"another key": b.Public().SPKI(), "not a key": []byte("not a key"), "empty": nil} {
		if _, err := VerifyMasterKey(a.PeerID(), spki); !errors.Is(err, ErrWrongMasterKey) {
			t.Errorf("%s: %v, want %v", name, err, ErrWrongMasterKey)
		}
	}
}
