package room

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// hostFixture is a Host over a memory store with alice, bob and carol
// (key packages published) and dave (none published), and alice's room
// created with her key uploaded.
type hostFixture struct {
	h                       *Host
	ctx                     context.Context
	alice, bob, carol, dave *peer
	sa                      *MemberState
	id                      store.RoomID
	create                  *Proposal
}

func newHostFixture(t *testing.T, opts memory.Options) *hostFixture {
	t.Helper()
	st, err := memory.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := must(NewHost(HostConfig{Store: st, Now: func() time.Time { return t0 }}))(t)
	f := &hostFixture{
		h: h, ctx: context.Background(),
		alice: newPeer(t, "alice", "ed25519", 0), bob: newPeer(t, "bob", "ed25519", 0),
		carol: newPeer(t, "carol", "ed25519", 0), dave: newPeer(t, "dave", "ed25519", 0),
	}
	for _, p := range []*peer{f.alice, f.bob, f.carol} {
		if _, err := h.PublishKeyPackage(f.ctx, p.id.Public(), p.kp.Blob()); err != nil {
			t.Fatal(err)
		}
	}
	f.create = must(NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "lab", Now: t0}))(t)
	if _, err := h.CreateRoom(f.ctx, f.alice.id.Public(), f.create.Commit); err != nil {
		t.Fatal(err)
	}
	f.id = store.RoomID(f.create.Info.Room)
	f.upload(t, f.create)
	f.sa = join(t, f.alice, f.create, f.alice, nil)
	return f
}

// upload stores every wrapped key of p as the master.
func (f *hostFixture) upload(t *testing.T, p *Proposal) {
	t.Helper()
	for _, w := range p.Wrapped {
		if _, err := f.h.UploadWrappedKey(f.ctx, f.alice.id.Public(), f.id, w.Blob); err != nil {
			t.Fatal(err)
		}
	}
}

// commit has the host apply alice's proposal p and alice apply it too.
func (f *hostFixture) commit(t *testing.T, p *Proposal) {
	t.Helper()
	if _, err := f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, p.Commit); err != nil {
		t.Fatal(err)
	}
	f.upload(t, p)
	if err := f.sa.ApplyProposal(p, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
}

// joinBob invites bob and returns his state.
func (f *hostFixture) joinBob(t *testing.T) *MemberState {
	t.Helper()
	p := must(f.sa.Invite(f.alice.id, kps(f.alice, f.bob), t0, f.bob.pid()))(t)
	f.commit(t, p)
	return join(t, f.alice, p, f.bob, nil)
}

func TestHostPublishKeyPackage(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	if _, err := f.h.PublishKeyPackage(f.ctx, f.alice.id.Public(), f.alice.kp.Blob()); err != nil {
		t.Fatalf("publishing again: %v", err)
	}
	_, err := f.h.PublishKeyPackage(f.ctx, f.bob.id.Public(), f.alice.kp.Blob())
	wantErr(t, err, ErrNotOwner)
	flipped := f.dave.kp.Blob()
	flipped[len(flipped)-1] ^= 1
	_, err = f.h.PublishKeyPackage(f.ctx, f.dave.id.Public(), flipped)
	wantErr(t, err, ErrBadSignature)
	old := must(GenerateKeyPackage(f.dave.id, 0, t0.Add(-40*24*time.Hour), 0))(t)
	_, err = f.h.PublishKeyPackage(f.ctx, f.dave.id.Public(), old.KeyPackage().Blob())
	wantErr(t, err, ErrKeyPackageExpired)

	// By hash for anyone; the latest by peer, or a refusal telling the
	// peer to dial this host once.
	b := must(f.h.KeyPackage(f.ctx, f.bob.kp.Hash()))(t)
	if string(b) != string(f.bob.kp.Blob()) {
		t.Fatal("key package by hash differs")
	}
	if b := must(f.h.LatestKeyPackage(f.ctx, f.bob.pid()))(t); string(b) != string(f.bob.kp.Blob()) {
		t.Fatal("latest key package differs")
	}
	_, err = f.h.LatestKeyPackage(f.ctx, f.dave.pid())
	wantErr(t, err, ErrMissingKeyPackage)
	if !strings.Contains(err.Error(), "dial this host once") {
		t.Fatalf("error %q does not say what to do", err)
	}
	_, err = f.h.KeyPackage(f.ctx, f.dave.kp.Hash())
	wantErr(t, err, ErrNotFound)
}

func TestHostCreateRoom(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	if _, err := f.h.CreateRoom(f.ctx, f.alice.id.Public(), f.create.Commit); err != nil {
		t.Fatalf("creating again with the same commit: %v", err)
	}
	// Bob uploads alice's create commit: not his signature.
	_, err := f.h.CreateRoom(f.ctx, f.bob.id.Public(), f.create.Commit)
	wantErr(t, err, ErrForgedCommit)
	// Another create under the same room id.
	fields := commitFields(f.create.Info)
	fields.Name = "other"
	other := signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	_, err = f.h.CreateRoom(f.ctx, f.alice.id.Public(), other)
	wantErr(t, err, ErrCommitConflict)
	// Dave never published a key package: he cannot be listed.
	p := must(NewRoom(RoomConfig{Master: f.dave.id, KeyPackage: f.dave.kp, Name: "d", Now: t0}))(t)
	_, err = f.h.CreateRoom(f.ctx, f.dave.id.Public(), p.Commit)
	wantErr(t, err, ErrMissingKeyPackage)
	if !strings.Contains(err.Error(), "dial this host once") {
		t.Fatalf("error %q does not say what to do", err)
	}
	// A commit of the next epoch cannot create a room.
	rot := must(f.sa.Rotate(f.alice.id, kps(f.alice), t0))(t)
	_, err = f.h.CreateRoom(f.ctx, f.alice.id.Public(), rot.Commit)
	wantErr(t, err, ErrBadCommit)
}

func TestHostWrappedKeys(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	mine := f.create.Wrapped[0].Blob
	if _, err := f.h.UploadWrappedKey(f.ctx, f.alice.id.Public(), f.id, mine); err != nil {
		t.Fatalf("uploading again: %v", err)
	}
	_, err := f.h.UploadWrappedKey(f.ctx, f.bob.id.Public(), f.id, mine)
	wantErr(t, err, ErrNotMember)
	// A key for bob, who epoch 1 does not list.
	key := cryptosuite.GenerateRoomKey()
	forBob := must(wrapRoomKey(f.alice.id, f.create.Info.Room, 1, f.bob.kp, key))(t)
	_, err = f.h.UploadWrappedKey(f.ctx, f.alice.id.Public(), f.id, forBob)
	wantErr(t, err, ErrNotMember)
	// Another key for alice at epoch 1.
	again := must(wrapRoomKey(f.alice.id, f.create.Info.Room, 1, f.alice.kp, key))(t)
	_, err = f.h.UploadWrappedKey(f.ctx, f.alice.id.Public(), f.id, again)
	wantErr(t, err, ErrKeyConflict)
	// An epoch the room has not reached.
	later := must(wrapRoomKey(f.alice.id, f.create.Info.Room, 2, f.alice.kp, key))(t)
	_, err = f.h.UploadWrappedKey(f.ctx, f.alice.id.Public(), f.id, later)
	wantErr(t, err, ErrUnknownEpoch)

	// Members fetch their own key only; nobody fetches another's.
	f.joinBob(t)
	w := must(f.h.FetchWrappedKey(f.ctx, f.bob.pid(), f.id, 2))(t)
	if _, err := VerifyWrappedKey(w, f.alice.id.Public()); err != nil {
		t.Fatal(err)
	}
	_, err = f.h.FetchWrappedKey(f.ctx, f.bob.pid(), f.id, 1)
	wantErr(t, err, ErrNoWrappedKey)
	_, err = f.h.FetchWrappedKey(f.ctx, f.carol.pid(), f.id, 2)
	wantErr(t, err, ErrNotMember)
}

func TestHostCommits(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	// Carol has a key package on the host, dave not: inviting dave is
	// refused with what to do.
	daveKPs := append(kps(f.alice), f.dave.kp)
	pd := must(f.sa.Invite(f.alice.id, daveKPs, t0, f.dave.pid()))(t)
	_, err := f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, pd.Commit)
	wantErr(t, err, ErrMissingKeyPackage)
	if !strings.Contains(err.Error(), "dial this host once") {
		t.Fatalf("error %q does not say what to do", err)
	}

	p2 := must(f.sa.Invite(f.alice.id, kps(f.alice, f.bob), t0, f.bob.pid()))(t)
	// Bob is not a member yet; once he is, he is still not the master.
	_, err = f.h.ApplyCommit(f.ctx, f.bob.id.Public(), f.id, p2.Commit)
	wantErr(t, err, ErrNotMember)
	f.commit(t, p2)
	res := must(f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, p2.Commit))(t)
	if !res.Retry {
		t.Fatal("re-applying the head is not reported as a retry")
	}
	p3 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob), t0))(t)
	_, err = f.h.ApplyCommit(f.ctx, f.bob.id.Public(), f.id, p3.Commit)
	wantErr(t, err, ErrNotMaster)
	// A fork (another commit for epoch 3) and an old commit: conflicts
	// naming the room's epoch.
	// (another time: the same fields would make the same commit, which is
	// a retry)
	p2b := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob), t0.Add(time.Second)))(t)
	f.commit(t, p3)
	var ee *EpochError
	_, err = f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, p2b.Commit)
	if !errors.As(err, &ee) || !errors.Is(err, ErrCommitConflict) || ee.Current != 3 {
		t.Fatalf("fork of epoch 3: %v", err)
	}
	_, err = f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, p2.Commit)
	wantErr(t, err, ErrCommitConflict)
	// A master-signed commit that breaks the room's rules.
	head := f.sa.head()
	fields := &canon.RoomCommitFields{Room: f.create.Info.Room, Epoch: 4, Previous: head.hash[:], Operation: uint16(OpRotate),
		Name: "renamed", AEAD: uint16(f.sa.suite.ID), Master: f.alice.pid(), TimeMillis: uint64(t0.UnixMilli())}
	for _, m := range head.members {
		fields.Members = append(fields.Members, canon.RoomCommitMember{Peer: m.Peer, KeyPackageHash: m.KeyPackage})
	}
	renamed := signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	_, err = f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, renamed)
	wantErr(t, err, ErrBadCommit)
	fields.Name, fields.Operation = "lab", uint16(OpInvite) // an invite adding nobody
	_, err = f.h.ApplyCommit(f.ctx, f.alice.id.Public(), f.id, signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields)))
	wantErr(t, err, ErrBadCommit)
	// Another room's commit.
	_, err = f.h.ApplyCommit(f.ctx, f.alice.id.Public(), store.RoomID{1}, p3.Commit)
	wantErr(t, err, ErrNoRoom)
}

func TestHostSend(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	sb := f.joinBob(t)
	m1 := must(sb.SealMessage(f.bob.secrets, "hello", msgID(1)))(t)
	got := must(f.h.Send(f.ctx, f.bob.pid(), f.id, m1))(t)
	if got.Seq != 1 || got.Sender != f.bob.pid() || got.Epoch != 2 {
		t.Fatalf("stored %+v", got)
	}
	// A retry, even re-sealed, returns the first send.
	m1b := must(sb.SealMessage(f.bob.secrets, "hello", msgID(1)))(t)
	if again := must(f.h.Send(f.ctx, f.bob.pid(), f.id, m1b))(t); again.Seq != 1 || string(again.Blob) != string(m1) {
		t.Fatalf("retry stored %+v", again)
	}
	// Nobody posts another's message, forged or genuine.
	_, err := f.h.Send(f.ctx, f.alice.pid(), f.id, m1)
	wantErr(t, err, ErrNotOwner)
	forged := must(sb.SealMessage(f.bob.secrets, "forged", msgID(9)))(t)
	layout, _, _ := SplitBlob(forged, canon.LabelRoomMessage, MaxMessageBlob)
	msg, _ := parseMessage(layout)
	msg.Sender = f.alice.pid()
	reattributed := must(signMessageKey(f.bob.secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(msg.header(), msg.Box)))(t)
	_, err = f.h.Send(f.ctx, f.bob.pid(), f.id, reattributed)
	wantErr(t, err, ErrNotOwner)
	_, err = f.h.Send(f.ctx, f.alice.pid(), f.id, reattributed)
	wantErr(t, err, ErrWrongKeyPackage)
	// Non-members post nothing.
	_, err = f.h.Send(f.ctx, f.carol.pid(), f.id, m1)
	wantErr(t, err, ErrNotMember)
	// Another sender's message id.
	taken := must(f.sa.SealMessage(f.alice.secrets, "mine", msgID(1)))(t)
	_, err = f.h.Send(f.ctx, f.alice.pid(), f.id, taken)
	wantErr(t, err, ErrMessageIDTaken)

	// After a rotation, a message under the old epoch is refused with the
	// room's epoch; a retry of a stored one still gets its first answer.
	pending := must(sb.SealMessage(f.bob.secrets, "late", msgID(2)))(t)
	p3 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob), t0))(t)
	f.commit(t, p3)
	var ee *EpochError
	_, err = f.h.Send(f.ctx, f.bob.pid(), f.id, pending)
	if !errors.As(err, &ee) || !errors.Is(err, ErrOldEpoch) || ee.Current != 3 || ee.Epoch != 2 {
		t.Fatalf("old epoch: %v", err)
	}
	if again := must(f.h.Send(f.ctx, f.bob.pid(), f.id, m1))(t); again.Seq != 1 {
		t.Fatalf("retry after rotation stored %+v", again)
	}
	// The sender catches up and sends again under the same id.
	follow(t, sb, p3, f.bob)
	resent := must(sb.SealMessage(f.bob.secrets, "late", msgID(2)))(t)
	if got := must(f.h.Send(f.ctx, f.bob.pid(), f.id, resent))(t); got.Seq != 2 || got.Epoch != 3 {
		t.Fatalf("resent %+v", got)
	}
}

func TestHostReadAndTrim(t *testing.T) {
	f := newHostFixture(t, memory.Options{HistoryPerRoom: 3})
	for i := byte(1); i <= 5; i++ {
		m := must(f.sa.SealMessage(f.alice.secrets, "m", msgID(i)))(t)
		if _, err := f.h.Send(f.ctx, f.alice.pid(), f.id, m); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.h.Read(f.ctx, f.alice.pid(), f.id, 0, 10)
	var tr *store.HistoryTrimmedError
	if !errors.As(err, &tr) || tr.Oldest != 3 {
		t.Fatalf("read before the kept history: %v", err)
	}
	ms := must(f.h.Read(f.ctx, f.alice.pid(), f.id, 2, 10))(t)
	if len(ms) != 3 || ms[0].Seq != 3 || ms[2].Seq != 5 {
		t.Fatalf("read %d messages", len(ms))
	}
	_, err = f.h.Read(f.ctx, f.alice.pid(), f.id, 6, 10)
	wantErr(t, err, ErrBadRequest)
	_, err = f.h.Read(f.ctx, f.bob.pid(), f.id, 0, 10)
	wantErr(t, err, ErrNotMember)
}

func TestHostLeaveRemoveDelete(t *testing.T) {
	f := newHostFixture(t, memory.Options{})
	sb := f.joinBob(t)
	if err := f.h.Ack(f.ctx, f.bob.pid(), f.id, 2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.h.Ack(f.ctx, f.bob.pid(), f.id, 3), ErrBadRequest)
	info := must(f.h.Info(f.ctx, f.bob.pid(), f.id))(t)
	acked := map[cryptosuite.PeerID]uint64{}
	for _, m := range info.Members {
		acked[m.Peer] = m.AckedEpoch
	}
	if info.Room.Epoch != 2 || len(info.Members) != 2 || acked[f.bob.pid()] != 2 || acked[f.alice.pid()] != 0 {
		t.Fatalf("info %+v", info)
	}
	_, err := f.h.Info(f.ctx, f.carol.pid(), f.id)
	wantErr(t, err, ErrNotMember)

	// The master cannot leave; bob can, and is gone at once.
	aliceLeave := must(BuildLeaveRequest(f.alice.id, f.create.Info.Room, 2, t0))(t)
	_, err = f.h.Leave(f.ctx, f.alice.id.Public(), f.id, aliceLeave)
	wantErr(t, err, ErrMasterCannotLeave)
	lr := must(sb.Leave(f.bob.id, t0))(t)
	_, err = f.h.Leave(f.ctx, f.alice.id.Public(), f.id, lr)
	wantErr(t, err, ErrBadSignature)
	if _, err := f.h.Leave(f.ctx, f.bob.id.Public(), f.id, lr); err != nil {
		t.Fatal(err)
	}
	_, err = f.h.Read(f.ctx, f.bob.pid(), f.id, 0, 10)
	wantErr(t, err, ErrLeft)
	m := must(sb.SealMessage(f.bob.secrets, "still here?", msgID(3)))(t)
	_, err = f.h.Send(f.ctx, f.bob.pid(), f.id, m)
	wantErr(t, err, ErrLeft)
	rooms := must(f.h.ListRooms(f.ctx, f.bob.pid(), store.RoomID{}, 10))(t)
	if len(rooms) != 1 || !rooms[0].Left || rooms[0].Role != store.RoleMember {
		t.Fatalf("bob's rooms %+v", rooms)
	}

	// The master fetches the request and turns it into a remove.
	_, err = f.h.LeaveRequest(f.ctx, f.bob.pid(), f.id, f.bob.pid())
	wantErr(t, err, ErrNotMaster)
	got := must(f.h.LeaveRequest(f.ctx, f.alice.pid(), f.id, f.bob.pid()))(t)
	vlr := must(VerifyLeaveRequest(got, f.bob.id.Public()))(t)
	if err := f.sa.AcceptLeave(vlr); err != nil {
		t.Fatal(err)
	}
	f.commit(t, must(f.sa.Remove(f.alice.id, kps(f.alice), t0, f.bob.pid()))(t))
	_, err = f.h.FetchWrappedKey(f.ctx, f.bob.pid(), f.id, 3)
	wantErr(t, err, ErrNotMember)
	_, err = f.h.Read(f.ctx, f.bob.pid(), f.id, 0, 10)
	wantErr(t, err, ErrNotMember)
	if rooms := must(f.h.ListRooms(f.ctx, f.bob.pid(), store.RoomID{}, 10))(t); len(rooms) != 0 {
		t.Fatalf("bob still lists %d rooms", len(rooms))
	}

	// Only the master deletes; afterwards the room is gone for everyone.
	_, err = f.h.Delete(f.ctx, f.bob.pid(), f.id)
	wantErr(t, err, ErrNotMember)
	members := must(f.h.Delete(f.ctx, f.alice.pid(), f.id))(t)
	if len(members) != 1 || members[0].Peer != f.alice.pid() {
		t.Fatalf("deleted room had %+v", members)
	}
	_, err = f.h.Read(f.ctx, f.alice.pid(), f.id, 0, 10)
	wantErr(t, err, ErrNoRoom)
	_, err = f.h.Delete(f.ctx, f.alice.pid(), f.id)
	wantErr(t, err, ErrNoRoom)
}

func TestHostLimits(t *testing.T) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := NewHost(HostConfig{Store: st, Limits: &Limits{MaxMembers: store.MaxMembers + 1}}); err == nil {
		t.Fatal("a member limit beyond the store's is accepted")
	}
	if _, err := NewHost(HostConfig{}); err == nil {
		t.Fatal("a host without a store is accepted")
	}
	// A room over the host's member limit is refused as such.
	h := must(NewHost(HostConfig{Store: st, Limits: &Limits{MaxMembers: 1}, Now: func() time.Time { return t0 }}))(t)
	a, b := newPeer(t, "a", "ed25519", 0), newPeer(t, "b", "ed25519", 0)
	for _, p := range []*peer{a, b} {
		if _, err := h.PublishKeyPackage(context.Background(), p.id.Public(), p.kp.Blob()); err != nil {
			t.Fatal(err)
		}
	}
	p := must(NewRoom(RoomConfig{Master: a.id, KeyPackage: a.kp, Name: "x", Now: t0}))(t)
	if _, err := h.CreateRoom(context.Background(), a.id.Public(), p.Commit); err != nil {
		t.Fatal(err)
	}
	sa := join(t, a, p, a, nil)
	inv := must(sa.Invite(a.id, kps(a, b), t0, b.pid()))(t)
	_, err = h.ApplyCommit(context.Background(), a.id.Public(), store.RoomID(p.Info.Room), inv.Commit)
	wantErr(t, err, ErrTooManyMembers)
}
