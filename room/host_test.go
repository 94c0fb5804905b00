package room

import (
	"errors"

	"time"

	"testing"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// fixture is a room at epoch 3: alice (master, Ed25519), bob (RSA) and
// carol (Ed25519), each with its state, and the proposals that made it.
type fixture struct {
	alice, bob, carol *peer
	sa, sb, sc        *MemberState
	p                 []*Proposal // p[1] create, p[2] invite bob, p[3] invite carol
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		alice: newPeer(t, "alice", "ed25519", 0),
		bob:   newPeer(t, "bob", "rsa", 0),
		carol: newPeer(t, "carol", "ed25519", 0),
		p:     make([]*Proposal, 4),
	}
	f.p[1] = must(NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "lab", Now: t0}))(t)
	f.sa = join(t, f.alice, f.p[1], f.alice, nil)
	f.p[2] = must(f.sa.Invite(f.alice.id, kps(f.alice, f.bob), t0, f.bob.pid()))(t)
	if err := f.sa.ApplyProposal(f.p[2], f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	f.sb = join(t, f.alice, f.p[2], f.bob, nil)
	f.p[3] = must(f.sa.Invite(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(f.p[3], f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	follow(t, f.sb, f.p[3], f.bob)
	f.sc = join(t, f.alice, f.p[3], f.carol, nil)
	return f
}

// unchanged fails if st's head moved from epoch/hash.
func unchanged(t *testing.T, st *MemberState, epoch uint64, hash [HashSize]byte) {
	t.Helper()
	if e, h := st.Head(); e != epoch || h != hash {
		t.Fatalf("a refused commit changed the head to epoch %d", e)
	}
}

// TestHostAddsMember: a host (or a member) that signs a commit adding a
// peer, whatever master it names, is refused by every member, who stay on
// their epoch.
func TestHostAddsMember(t *testing.T) {
	f := newFixture(t)
	host := newPeer(t, "host", "ed25519", 0)
	head := f.p[3].Info
	for _, tc := range []struct {
		name   string
		signer *cryptosuite.Identity
		master cryptosuite.PeerID
	}{
		{"host signs, names alice", host.id, f.alice.pid()},
		{"host signs, names itself", host.id, host.pid()},
		{"member signs, names alice", f.bob.id, f.alice.pid()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := commitFields(head)
			fields.Epoch, fields.Previous, fields.Operation, fields.Master = 4, head.Hash[:], uint16(OpInvite), tc.master
			fields.Members = append(fields.Members, canon.RoomCommitMember{Peer: host.pid(), KeyPackageHash: host.kp.Hash()})
			sortCanonMembers(fields.Members)
			forged := signWith(t, tc.signer, canon.LabelRoomCommit, canon.RoomCommit(fields))
			for _, st := range []*MemberState{f.sa, f.sb, f.sc} {
				wantErr(t, st.ApplyCommit(forged), ErrForgedCommit)
				unchanged(t, st, 3, head.Hash)
			}
		})
	}
	// A wrapped key the host signs is refused too, even for a real epoch.
	info := canon.RoomKeyWrapInfo(head.Room, 3, f.bob.pid(), f.bob.kp.Hash())
	enc, ct, err := cryptosuite.WrapRoomKey(f.bob.kp.HPKEKey, info, cryptosuite.GenerateRoomKey())
	if err != nil {
		t.Fatal(err)
	}
	fake := signWith(t, host.id, canon.LabelWrappedKey, canon.WrappedKeyTuple(head.Room, 3, f.bob.pid(), f.bob.kp.Hash(), enc, ct))
	_, err = f.sb.OpenWrappedKey(fake, f.bob.secrets)
	wantErr(t, err, ErrBadSignature)
}

func sortCanonMembers(ms []canon.RoomCommitMember) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && string(ms[j].Peer[:]) < string(ms[j-1].Peer[:]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// TestHostDropsCommit: a member served epoch 5 without epoch 4 refuses it
// (ErrCommitGap); a message of an epoch it has not verified is
// ErrUnknownEpoch until it gets the commit, which a host that dropped it
// cannot produce.
func TestHostDropsCommit(t *testing.T) {
	f := newFixture(t)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	p5 := must(f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(p5, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.sb.ApplyCommit(p5.Commit), ErrCommitGap)
	unchanged(t, f.sb, 3, f.p[3].Info.Hash)
	// The host drops the latest commit: bob still sees alice's messages
	// under epoch 5 and knows it is behind.
	m := must(f.sa.SealMessage(f.alice.secrets, "epoch five", msgID(5)))(t)
	_, err := f.sb.OpenMessage(m, f.alice.kp)
	wantErr(t, err, ErrUnknownEpoch)
	// A wrapped key of an epoch bob has not verified is not opened either.
	_, err = f.sb.OpenWrappedKey(wrappedFor(t, p5, f.bob.pid()), f.bob.secrets)
	wantErr(t, err, ErrUnknownEpoch)
	// With the chain, all is well.
	follow(t, f.sb, p4, f.bob)
	follow(t, f.sb, p5, f.bob)
	if _, err := f.sb.OpenMessage(m, f.alice.kp); err != nil {
		t.Fatal(err)
	}
}

// TestHostRollsBack: commits for passed epochs are ErrRollback; the head
// again is ErrCommitKnown; and a fork (a commit for the next epoch built
// on another commit than the member's head) is ErrChainBroken.
func TestHostRollsBack(t *testing.T) {
	f := newFixture(t)
	for _, old := range []*Proposal{f.p[1], f.p[2]} {
		wantErr(t, f.sb.ApplyCommit(old.Commit), ErrRollback)
	}
	wantErr(t, f.sb.ApplyCommit(f.p[3].Commit), ErrCommitKnown)
	unchanged(t, f.sb, 3, f.p[3].Info.Hash)

	// The master signs two epoch-4 commits (or the host serves bob one
	// chain and carol another): the epoch-5 commit of one chain does not
	// chain to the other.
	p4a := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	p4b := must(f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(p4a, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	p5a := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	follow(t, f.sb, p4b, f.bob)
	wantErr(t, f.sb.ApplyCommit(p5a.Commit), ErrChainBroken)
	wantErr(t, f.sb.ApplyCommit(p4a.Commit), ErrRollback)
	unchanged(t, f.sb, 4, p4b.Info.Hash)
	// A message of the other chain names a commit bob did not verify.
	m := must(f.sa.SealMessage(f.alice.secrets, "fork", msgID(4)))(t)
	_, err := f.sb.OpenMessage(m, f.alice.kp)
	wantErr(t, err, ErrChainBroken)
}

// TestBadCommitRules: master-signed commits whose member list does not fit
// their operation, or that change the room's fixed facts, are
// ErrBadCommit.
func TestBadCommitRules(t *testing.T) {
	f := newFixture(t)
	head := f.p[3].Info
	dave := newPeer(t, "dave", "ed25519", 0)
	next := func(op Operation, edit func(*canon.RoomCommitFields)) []byte {
		fields := commitFields(head)
		fields.Epoch, fields.Previous, fields.Operation = 4, head.Hash[:], uint16(op)
		edit(fields)
		sortCanonMembers(fields.Members)
		return signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	}
	addDave := func(fields *canon.RoomCommitFields) {
		fields.Members = append(fields.Members, canon.RoomCommitMember{Peer: dave.pid(), KeyPackageHash: dave.kp.Hash()})
	}
	dropCarol := func(fields *canon.RoomCommitFields) {
		for i, m := range fields.Members {
			if m.Peer == f.carol.pid() {
				fields.Members = append(fields.Members[:i], fields.Members[i+1:]...)
				return
			}
		}
	}
	for name, blob := range map[string][]byte{
		"rotate adds":        next(OpRotate, addDave),
		"rotate removes":     next(OpRotate, dropCarol),
		"invite adds nobody": next(OpInvite, func(*canon.RoomCommitFields) {}),
		"invite removes":     next(OpInvite, func(fl *canon.RoomCommitFields) { addDave(fl); dropCarol(fl) }),
		"remove adds":        next(OpRemove, addDave),
		"remove nobody":      next(OpRemove, func(*canon.RoomCommitFields) {}),
		"rename":             next(OpRotate, func(fl *canon.RoomCommitFields) { fl.Name = "other" }),
		"new suite":          next(OpRotate, func(fl *canon.RoomCommitFields) { fl.AEAD = uint16(cryptosuite.AEADAES256GCM) }),
		"master not listed": next(OpRemove, func(fl *canon.RoomCommitFields) {
			fl.Members = fl.Members[:0]
			fl.Members = append(fl.Members, canon.RoomCommitMember{Peer: f.bob.pid(), KeyPackageHash: f.bob.kp.Hash()})
		}),
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, f.sb.ApplyCommit(blob), ErrBadCommit)
			unchanged(t, f.sb, 3, head.Hash)
		})
	}
	// Another room's commit, even the master's, is not this room's.
	other := must(NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "lab", Now: t0}))(t)
	wantErr(t, f.sb.ApplyCommit(other.Commit), ErrWrongRoom)
	// Master-side: only the master proposes, and only with its identity.
	_, err := f.sb.Rotate(f.bob.id, kps(f.alice, f.bob, f.carol), t0)
	wantErr(t, err, ErrNotMaster)
	_, err = f.sa.Rotate(f.bob.id, kps(f.alice, f.bob, f.carol), t0)
	wantErr(t, err, ErrNotMaster)
	_, err = f.sa.Invite(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.bob.pid())
	wantErr(t, err, ErrAlreadyMember)
	_, err = f.sa.Invite(f.alice.id, kps(f.alice, f.bob, f.carol), t0, dave.pid())
	wantErr(t, err, ErrMissingKeyPackage)
	_, err = f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, dave.pid())
	wantErr(t, err, ErrNotMember)
	_, err = f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.alice.pid())
	wantErr(t, err, ErrMasterCannotLeave)
	// An expired key package is not wrapped to.
	_, err = f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), f.carol.kp.Expires)
	wantErr(t, err, ErrKeyPackageExpired)
}

// TestForgedSender: a member cannot post as another, whatever it names as
// the signer's key package, and cannot move a message to another room or
// epoch; the host can verify the same without the room key.
func TestForgedSender(t *testing.T) {
	f := newFixture(t)
	head := f.p[3].Info
	key := f.sc.epochs[len(f.sc.epochs)-1].key
	// Carol, holding the room key, seals a message claiming to be bob.
	forge := func(kph [HashSize]byte) []byte {
		hdr := &canon.RoomMessageHeader{Room: head.Room, Epoch: 3, CommitHash: head.Hash, Sender: f.bob.pid(),
			MessageID: msgID(9), KeyPackageHash: kph}
		sk := must(cryptosuite.SenderKey(key, head.Room, 3, f.bob.pid(), f.sc.Suite()))(t)
		a := must(f.sc.Suite().New(sk))(t)
		box := must(cryptosuite.SealRandom(a, nil, nil, []byte("I am bob"), canon.RoomMessageAAD(hdr)))(t)
		return must(signMessageKey(f.carol.secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, box)))(t)
	}
	asBobsKP := forge(f.bob.kp.Hash())
	_, err := f.sa.OpenMessage(asBobsKP, f.bob.kp)
	wantErr(t, err, ErrBadSignature)
	_, err = VerifyMessage(asBobsKP, f.bob.kp)
	wantErr(t, err, ErrBadSignature)
	asOwnKP := forge(f.carol.kp.Hash())
	_, err = f.sa.OpenMessage(asOwnKP, f.carol.kp)
	wantErr(t, err, ErrWrongKeyPackage)
	_, err = VerifyMessage(asOwnKP, f.carol.kp)
	wantErr(t, err, ErrWrongKeyPackage)

	// A real message of bob's, presented with the wrong key package.
	m := must(f.sb.SealMessage(f.bob.secrets, "hi", msgID(1)))(t)
	_, err = f.sa.OpenMessage(m, f.carol.kp)
	wantErr(t, err, ErrBadSignature)
	_, err = f.sa.OpenMessage(m, &KeyPackage{Owner: f.bob.pid(), SigningKey: f.bob.kp.SigningKey})
	wantErr(t, err, ErrWrongKeyPackage)
	// A fresh key package of bob's that epoch 3 does not list: the message
	// signed with it verifies for the host but not for members.
	bob2 := must(GenerateKeyPackage(f.bob.id, 0, t0, 0))(t)
	hdr := &canon.RoomMessageHeader{Room: head.Room, Epoch: 3, CommitHash: head.Hash, Sender: f.bob.pid(),
		MessageID: msgID(2), KeyPackageHash: bob2.KeyPackage().Hash()}
	sk := must(cryptosuite.SenderKey(f.sb.epochs[len(f.sb.epochs)-1].key, head.Room, 3, f.bob.pid(), f.sb.Suite()))(t)
	a := must(f.sb.Suite().New(sk))(t)
	box := must(cryptosuite.SealRandom(a, nil, nil, []byte("new kp"), canon.RoomMessageAAD(hdr)))(t)
	unlisted := must(signMessageKey(bob2.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, box)))(t)
	if _, err := VerifyMessage(unlisted, bob2.KeyPackage()); err != nil {
		t.Fatal(err)
	}
	_, err = f.sa.OpenMessage(unlisted, bob2.KeyPackage())
	wantErr(t, err, ErrWrongKeyPackage)
	// Sealing with secrets the head does not list is refused at the source.
	_, err = f.sb.SealMessage(bob2, "hi", msgID(3))
	wantErr(t, err, ErrWrongKeyPackage)
	_, err = f.sb.SealMessage(f.carol.secrets, "hi", msgID(3))
	wantErr(t, err, ErrWrongKeyPackage)

	// Bob's message in another room, same members, same epoch number.
	q1 := must(NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "lab", Now: t0}))(t)
	qa := join(t, f.alice, q1, f.alice, nil)
	_, err = qa.OpenMessage(m, f.bob.kp)
	wantErr(t, err, ErrWrongRoom)
	// A non-member's message (a peer the epoch does not list).
	dave := newPeer(t, "dave", "ed25519", 0)
	q2 := must(qa.Invite(f.alice.id, kps(f.alice, dave), t0, dave.pid()))(t)
	if err := qa.ApplyProposal(q2, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	sd := join(t, f.alice, q2, dave, nil)
	fromDave := must(sd.SealMessage(dave.secrets, "hello", msgID(4)))(t)
	_, err = f.sa.OpenMessage(fromDave, dave.kp)
	wantErr(t, err, ErrWrongRoom)
}

// TestWrappedKeyChecks: a wrapped key for another member, another key
// package, another room, or an epoch that does not list the member is
// refused; a tampered one does not open; a second one for the same epoch
// must hold the same key.
func TestWrappedKeyChecks(t *testing.T) {
	f := newFixture(t)
	_, err := f.sb.OpenWrappedKey(wrappedFor(t, f.p[3], f.carol.pid()), f.bob.secrets)
	wantErr(t, err, ErrWrongRecipient)
	_, err = f.sb.OpenWrappedKey(wrappedFor(t, f.p[3], f.bob.pid()), f.carol.secrets)
	wantErr(t, err, ErrWrongKeyPackage)
	bob2 := must(GenerateKeyPackage(f.bob.id, 0, t0, 0))(t)
	_, err = f.sb.OpenWrappedKey(wrappedFor(t, f.p[3], f.bob.pid()), bob2)
	wantErr(t, err, ErrWrongKeyPackage)
	// The same key again is fine; a different key for the epoch, signed by
	// the master, is a conflict.
	if e, err := f.sb.OpenWrappedKey(wrappedFor(t, f.p[3], f.bob.pid()), f.bob.secrets); err != nil || e != 3 {
		t.Fatalf("reopening: epoch %d, %v", e, err)
	}
	other := must(wrapRoomKey(f.alice.id, f.p[3].Info.Room, 3, f.bob.kp, cryptosuite.GenerateRoomKey()))(t)
	_, err = f.sb.OpenWrappedKey(other, f.bob.secrets)
	wantErr(t, err, ErrKeyConflict)
	// A master-signed wrap of epoch 3 to a key package epoch 3 does not
	// list for bob.
	stray := must(wrapRoomKey(f.alice.id, f.p[3].Info.Room, 3, bob2.KeyPackage(), cryptosuite.GenerateRoomKey()))(t)
	_, err = f.sb.OpenWrappedKey(stray, bob2)
	wantErr(t, err, ErrWrongKeyPackage)
	// CheckWrappedKey, the host's check against the epoch's commit.
	wk := must(VerifyWrappedKey(wrappedFor(t, f.p[3], f.carol.pid()), f.alice.id.Public()))(t)
	if err := CheckWrappedKey(f.p[3].Info, wk); err != nil {
		t.Fatal(err)
	}
	wantErr(t, CheckWrappedKey(f.p[2].Info, wk), ErrUnknownEpoch)
	wantErr(t, CheckWrappedKey(f.p[1].Info, must(VerifyWrappedKey(other, f.alice.id.Public()))(t)), ErrUnknownEpoch)
	wantErr(t, CheckWrappedKey(f.p[3].Info, must(VerifyWrappedKey(stray, f.alice.id.Public()))(t)), ErrWrongKeyPackage)
	// A master-signed wrap for an epoch that does not list the member:
	// carol, removed at epoch 4, is sent one anyway.
	p4 := must(f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sc.ApplyCommit(p4.Commit); err != nil {
		t.Fatal(err)
	}
	sneak := must(wrapRoomKey(f.alice.id, f.p[3].Info.Room, 4, f.carol.kp, cryptosuite.GenerateRoomKey()))(t)
	_, err = f.sc.OpenWrappedKey(sneak, f.carol.secrets)
	wantErr(t, err, ErrNotMember)
	wantErr(t, CheckWrappedKey(p4.Info, must(VerifyWrappedKey(sneak, f.alice.id.Public()))(t)), ErrNotMember)
	sc2 := must(NewMemberState(f.p[3].Commit, f.alice.id.Public(), f.carol.pid(), nil))(t)
	// A wrap whose ciphertext the master signed but that does not open
	// (the master's bug, or a wrap to another HPKE key): ErrOpen.
	w := must(VerifyWrappedKey(wrappedFor(t, f.p[3], f.carol.pid()), f.alice.id.Public()))(t)
	ct := append([]byte(nil), w.Ciphertext...)
	ct[20] ^= 1
	bad := signWith(t, f.alice.id, canon.LabelWrappedKey, canon.WrappedKeyTuple(w.Room, 3, w.Member, w.KeyPackage, w.Enc, ct))
	_, err = sc2.OpenWrappedKey(bad, f.carol.secrets)
	wantErr(t, err, ErrOpen)
	if sc2.HasKey(3) {
		t.Fatal("a refused wrapped key left a key behind")
	}
	// A wrap for another room.
	q := must(NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "lab", Now: t0}))(t)
	_, err = f.sa.OpenWrappedKey(wrappedFor(t, q, f.alice.pid()), f.alice.secrets)
	wantErr(t, err, ErrWrongRoom)
}

// TestStaleAndForgottenEpochs: after rotations a new message under an old
// epoch is ErrStaleEpoch; past Limits.MaxEpochs the oldest epoch and its
// key are forgotten (ErrUnknownEpoch), the rest stay readable.
func TestStaleAndForgottenEpochs(t *testing.T) {
	alice := newPeer(t, "alice", "ed25519", 0)
	lim := &Limits{MaxEpochs: 2}
	p := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "x", Now: t0, Limits: lim}))(t)
	st := join(t, alice, p, alice, lim)
	var msgs [][]byte
	for e := 1; e <= 3; e++ {
		msgs = append(msgs, must(st.SealMessage(alice.secrets, "m", msgID(byte(e))))(t))
		if e < 3 {
			next := must(st.Rotate(alice.id, kps(alice), t0))(t)
			if err := st.ApplyProposal(next, alice.secrets); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o, n := st.Epochs(); o != 2 || n != 3 {
		t.Fatalf("epochs %d to %d", o, n)
	}
	_, err := st.OpenHistory(msgs[0], alice.kp)
	wantErr(t, err, ErrUnknownEpoch)
	_, err = st.OpenMessage(msgs[1], alice.kp)
	wantErr(t, err, ErrStaleEpoch)
	if _, err := st.OpenHistory(msgs[1], alice.kp); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenMessage(msgs[2], alice.kp); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedMemberPosts: a removed member cannot post into the epoch that
// excludes it, even naming its public commit hash: the members refuse the
// sender before they would need the key it does not have.
func TestRemovedMemberPosts(t *testing.T) {
	f := newFixture(t)
	p4 := must(f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	follow(t, f.sb, p4, f.bob)
	hdr := &canon.RoomMessageHeader{Room: p4.Info.Room, Epoch: 4, CommitHash: p4.Info.Hash, Sender: f.carol.pid(),
		MessageID: msgID(7), KeyPackageHash: f.carol.kp.Hash()}
	// Carol has no epoch-4 key; she seals under her epoch-3 one.
	sk := must(cryptosuite.SenderKey(f.sc.head().key, p4.Info.Room, 4, f.carol.pid(), f.sc.Suite()))(t)
	a := must(f.sc.Suite().New(sk))(t)
	box := must(cryptosuite.SealRandom(a, nil, nil, []byte("still here"), canon.RoomMessageAAD(hdr)))(t)
	blob := must(signMessageKey(f.carol.secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, box)))(t)
	for _, st := range []*MemberState{f.sa, f.sb} {
		_, err := st.OpenMessage(blob, f.carol.kp)
		wantErr(t, err, ErrNotMember)
	}
}

// TestCommitNamesOtherMaster: a commit the master signs but that names
// another peer as master is refused: the master never changes.
func TestCommitNamesOtherMaster(t *testing.T) {
	f := newFixture(t)
	fields := commitFields(f.p[3].Info)
	fields.Epoch, fields.Previous, fields.Operation, fields.Master = 4, f.p[3].Info.Hash[:], uint16(OpRotate), f.bob.pid()
	blob := signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	wantErr(t, f.sb.ApplyCommit(blob), ErrForgedCommit)
	unchanged(t, f.sb, 3, f.p[3].Info.Hash)
}

// TestKeyNotYetOpened: a member that verified a commit but has not opened
// its wrapped key can neither seal nor open under that epoch.
func TestKeyNotYetOpened(t *testing.T) {
	f := newFixture(t)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	if err := f.sb.ApplyCommit(p4.Commit); err != nil {
		t.Fatal(err)
	}
	_, err := f.sb.SealMessage(f.bob.secrets, "hi", msgID(1))
	wantErr(t, err, ErrNoEpochKey)
	m := must(f.sa.SealMessage(f.alice.secrets, "hi", msgID(2)))(t)
	_, err = f.sb.OpenMessage(m, f.alice.kp)
	wantErr(t, err, ErrNoEpochKey)
	if _, err := f.sb.OpenWrappedKey(wrappedFor(t, p4, f.bob.pid()), f.bob.secrets); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sb.OpenMessage(m, f.alice.kp); err != nil {
		t.Fatal(err)
	}
}

// TestFreshestKeyPackage: given several valid key packages of a member,
// the master wraps to the freshest; expired ones are passed over.
func TestFreshestKeyPackage(t *testing.T) {
	f := newFixture(t)
	later := t0.Add(time.Hour)
	bob2 := must(GenerateKeyPackage(f.bob.id, 0, later, 0))(t)
	shortLived := must(GenerateKeyPackage(f.bob.id, 0, later.Add(time.Minute), time.Minute))(t)
	all := append(kps(f.alice, f.bob, f.carol), shortLived.KeyPackage(), bob2.KeyPackage())
	p4 := must(f.sa.Rotate(f.alice.id, all, later.Add(3*time.Minute)))(t)
	m, _ := p4.Info.member(f.bob.pid())
	if m.KeyPackage != bob2.KeyPackage().Hash() {
		t.Fatal("the master did not wrap to bob's freshest valid key package")
	}
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	// Bob now seals with the new key package's secrets only.
	if err := f.sb.ApplyCommit(p4.Commit); err != nil {
		t.Fatal(err)
	}
	_, err := f.sb.OpenWrappedKey(wrappedFor(t, p4, f.bob.pid()), f.bob.secrets)
	wantErr(t, err, ErrWrongKeyPackage)
	if _, err := f.sb.OpenWrappedKey(wrappedFor(t, p4, f.bob.pid()), bob2); err != nil {
		t.Fatal(err)
	}
	_, err = f.sb.SealMessage(f.bob.secrets, "old kp", msgID(1))
	wantErr(t, err, ErrWrongKeyPackage)
	m4 := must(f.sb.SealMessage(bob2, "new kp", msgID(2)))(t)
	if _, err := f.sa.OpenMessage(m4, bob2.KeyPackage()); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse: one state seals, opens, applies commits, opens
// wrapped keys and marshals from several goroutines at once (run with
// -race). Messages sealed before a rotation may open as stale; nothing
// else fails.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	bobWrap := wrappedFor(t, p4, f.bob.pid())
	const n = 50
	errs := make(chan error, 4*n+2)
	done := make(chan struct{})
	workers := 0
	start := func(fn func()) {
		workers++
		go func() {
			defer func() { done <- struct{}{} }()
			fn()
		}()
	}
	for w := range 3 {
		start(func() {
			for i := range n {
				m, err := f.sb.SealMessage(f.bob.secrets, "concurrent", msgID(byte(w*n+i)))
				if err != nil {
					errs <- err
					continue
				}
				if _, err := f.sb.OpenHistory(m, f.bob.kp); err != nil {
					errs <- err
				}
			}
		})
	}
	start(func() {
		if err := f.sb.ApplyCommit(p4.Commit); err != nil {
			errs <- err
			return
		}
		if _, err := f.sb.OpenWrappedKey(bobWrap, f.bob.secrets); err != nil {
			errs <- err
		}
	})
	start(func() {
		for range n {
			if _, err := f.sb.Marshal(); err != nil {
				errs <- err
			}
		}
	})
	deadline := time.After(time.Minute)
	for range workers {
		select {
		case <-done:
		case <-deadline:
			t.Fatal("concurrent use did not finish within a minute")
		}
	}
	close(errs)
	for err := range errs {
		// A seal between ApplyCommit and OpenWrappedKey finds no key yet.
		if !errors.Is(err, ErrNoEpochKey) {
			t.Error(err)
		}
	}
	if e, _ := f.sb.Head(); e != 4 || !f.sb.HasKey(4) {
		t.Fatalf("head %d, key %v", e, f.sb.HasKey(4))
	}
}
