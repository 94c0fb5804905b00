package room

import (
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// TestStory runs a room's life with three identities — alice (Ed25519,
// master), bob (the RSA fixture) and carol (Ed25519, with an
// MLKEM768X25519 key package) — through create, invite, messages, rotate,
// remove and leave, checking at each step who can read what.
func TestStory(t *testing.T) {
	alice := newPeer(t, "alice", "ed25519", cryptosuite.KEMX25519)
	bob := newPeer(t, "bob", "rsa", cryptosuite.KEMX25519)
	carol := newPeer(t, "carol", "ed25519", cryptosuite.KEMMLKEM768X25519)
	now := t0.Add(time.Minute)

	// Create: epoch 1, alice alone.
	p1 := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "lab", Now: now}))(t)
	if p1.Info.Epoch != 1 || p1.Info.Operation != OpCreate || len(p1.Info.Members) != 1 || len(p1.Wrapped) != 1 {
		t.Fatalf("create commit: %+v", p1.Info)
	}
	if p1.Info.Suite != cryptosuite.AEADA256CBCHS512 {
		t.Fatalf("default suite is %v", p1.Info.Suite)
	}
	if p1.Info.Hash != BlobHash(p1.Commit) {
		t.Fatal("commit hash is not SHA-256 of the blob")
	}
	sa := join(t, alice, p1, alice, nil)
	early := must(sa.SealMessage(alice.secrets, "before anyone else", msgID(1)))(t)

	// Invite bob: epoch 2.
	p2 := must(sa.Invite(alice.id, kps(alice, bob), now, bob.pid()))(t)
	if p2.Info.Epoch != 2 || p2.Info.Previous != p1.Info.Hash || len(p2.Wrapped) != 2 {
		t.Fatalf("invite commit: %+v", p2.Info)
	}
	if err := sa.ApplyProposal(p2, alice.secrets); err != nil {
		t.Fatal(err)
	}
	sb := join(t, alice, p2, bob, nil)
	// Bob cannot read what came before it joined.
	_, err := sb.OpenHistory(early, alice.kp)
	wantErr(t, err, ErrUnknownEpoch)

	// Invite carol: epoch 3.
	p3 := must(sa.Invite(alice.id, kps(alice, bob, carol), now, carol.pid()))(t)
	if err := sa.ApplyProposal(p3, alice.secrets); err != nil {
		t.Fatal(err)
	}
	follow(t, sb, p3, bob)
	sc := join(t, alice, p3, carol, nil)

	// Everyone talks; everyone reads everyone, and the host verifies each
	// message's signature without any room key.
	states := map[*peer]*MemberState{alice: sa, bob: sb, carol: sc}
	var epoch3 [][]byte
	senders := []*peer{alice, bob, carol}
	for i, from := range senders {
		text := from.name + " says hello ✓"
		blob := must(states[from].SealMessage(from.secrets, text, msgID(byte(10+i))))(t)
		epoch3 = append(epoch3, blob)
		hm := must(VerifyMessage(blob, from.kp))(t)
		if hm.Sender != from.pid() || hm.Epoch != 3 || hm.Commit != p3.Info.Hash || hm.ID != msgID(byte(10+i)) {
			t.Fatalf("host view of %s's message: %+v", from.name, hm)
		}
		if s, kph, err := MessageSigner(blob); err != nil || s != from.pid() || kph != from.kp.Hash() {
			t.Fatalf("MessageSigner: %v %v", s, err)
		}
		for _, to := range senders {
			pt, err := states[to].OpenMessage(blob, from.kp)
			if err != nil {
				t.Fatalf("%s opening %s's message: %v", to.name, from.name, err)
			}
			if pt.Text != text || pt.Sender != from.pid() {
				t.Fatalf("%s read %q from %s", to.name, pt.Text, pt.Sender.Short())
			}
		}
	}

	// Rotate: epoch 4. Messages of epoch 3 are history now: members refuse
	// them as new, and still read them as history.
	p4 := must(sa.Rotate(alice.id, kps(alice, bob, carol), now))(t)
	for p, st := range states {
		if p == alice {
			if err := sa.ApplyProposal(p4, alice.secrets); err != nil {
				t.Fatal(err)
			}
			continue
		}
		follow(t, st, p4, p)
	}
	stale := must(sb.OpenHistory(epoch3[2], carol.kp))(t)
	if stale.Text != "carol says hello ✓" {
		t.Fatalf("history: %q", stale.Text)
	}
	for _, st := range states {
		_, err := st.OpenMessage(epoch3[1], bob.kp)
		wantErr(t, err, ErrStaleEpoch)
	}
	m4 := must(sc.SealMessage(carol.secrets, "epoch four", msgID(20)))(t)
	if pt := must(sa.OpenMessage(m4, carol.kp))(t); pt.Epoch != 4 {
		t.Fatalf("epoch %d", pt.Epoch)
	}

	// Remove carol: epoch 5, a key carol never receives.
	p5 := must(sa.Remove(alice.id, kps(alice, bob, carol), now, carol.pid()))(t)
	if len(p5.Wrapped) != 2 {
		t.Fatalf("remove wraps %d keys", len(p5.Wrapped))
	}
	for _, w := range p5.Wrapped {
		if w.Member == carol.pid() {
			t.Fatal("the remove commit wraps a key for the removed member")
		}
		// Not even with everything the host holds can carol open one.
		wk := must(VerifyWrappedKey(w.Blob, alice.id.Public()))(t)
		info := canon.RoomKeyWrapInfo(wk.Room, wk.Epoch, carol.pid(), carol.kp.Hash())
		if _, err := cryptosuite.UnwrapRoomKey(carol.secrets.hpke, wk.Enc, info, wk.Ciphertext); err == nil {
			t.Fatal("carol opens a wrapped key of the epoch she was removed from")
		}
	}
	if err := sa.ApplyProposal(p5, alice.secrets); err != nil {
		t.Fatal(err)
	}
	follow(t, sb, p5, bob)
	// Carol's client follows the chain too and learns she is out.
	if err := sc.ApplyCommit(p5.Commit); err != nil {
		t.Fatal(err)
	}
	if sc.IsMember() || sc.HasKey(5) || !sc.HasKey(4) {
		t.Fatalf("carol after removal: member %v, key 5 %v, key 4 %v", sc.IsMember(), sc.HasKey(5), sc.HasKey(4))
	}
	_, err = sc.OpenWrappedKey(wrappedFor(t, p5, bob.pid()), carol.secrets)
	wantErr(t, err, ErrWrongRecipient)
	m5 := must(sb.SealMessage(bob.secrets, "carol is gone", msgID(30)))(t)
	if pt := must(sa.OpenMessage(m5, bob.kp))(t); pt.Text != "carol is gone" {
		t.Fatal(pt.Text)
	}
	_, err = sc.OpenMessage(m5, bob.kp)
	wantErr(t, err, ErrNoEpochKey)
	_, err = sc.SealMessage(carol.secrets, "still here?", msgID(31))
	wantErr(t, err, ErrNotMember)
	// A message carol seals under epoch 4, the last she holds, is refused
	// by the members as new (the host must refuse it; if it does not,
	// this is the evidence).
	carolState4 := carolAtEpoch4(t, alice, carol, p3, p4)
	late := must(carolState4.SealMessage(carol.secrets, "let me back in", msgID(32)))(t)
	for _, st := range []*MemberState{sa, sb} {
		_, err := st.OpenMessage(late, carol.kp)
		wantErr(t, err, ErrStaleEpoch)
	}
	// Carol still reads what she was present for.
	if pt := must(sc.OpenHistory(epoch3[0], alice.kp))(t); pt.Text != "alice says hello ✓" {
		t.Fatal(pt.Text)
	}

	// Bob's client persists its state and restores it: the chain, the
	// keys of the epochs it was present for and its evidence survive.
	blob := must(sb.Marshal())(t)
	sb2 := must(ParseMemberState(blob, nil))(t)
	if e, h := sb2.Head(); e != 5 || h != p5.Info.Hash {
		t.Fatalf("restored head %d %x", e, h)
	}
	for i, m := range epoch3 {
		if _, err := sb2.OpenHistory(m, senders[i].kp); err != nil {
			t.Fatalf("restored state, history message %d: %v", i, err)
		}
	}
	if _, err := sb2.OpenMessage(m5, bob.kp); err != nil {
		t.Fatal(err)
	}

	// Bob leaves: a signed request the master turns into a remove commit.
	lb := must(sb2.Leave(bob.id, now))(t)
	lr := must(VerifyLeaveRequest(lb, bob.id.Public()))(t)
	if lr.Member != bob.pid() || lr.Epoch != 5 || lr.Room != sa.Room() {
		t.Fatalf("leave request %+v", lr)
	}
	if err := sa.AcceptLeave(lr); err != nil {
		t.Fatal(err)
	}
	p6 := must(sa.Remove(alice.id, kps(alice, bob), now, lr.Member))(t)
	if err := sa.ApplyProposal(p6, alice.secrets); err != nil {
		t.Fatal(err)
	}
	if err := sb2.ApplyCommit(p6.Commit); err != nil {
		t.Fatal(err)
	}
	if sb2.IsMember() {
		t.Fatal("bob is still a member after leaving")
	}
	// The same request again, after bob is gone: refused.
	wantErr(t, sa.AcceptLeave(lr), ErrNotMember)
	_, err = sa.Leave(alice.id, now)
	wantErr(t, err, ErrMasterCannotLeave)
}

// carolAtEpoch4 rebuilds carol's state as it was at epoch 4, before she
// applied her removal, so she can seal under epoch 4.
func carolAtEpoch4(t *testing.T, alice, carol *peer, p3, p4 *Proposal) *MemberState {
	t.Helper()
	st := join(t, alice, p3, carol, nil)
	follow(t, st, p4, carol)
	return st
}

// TestSuites: a room under each AEAD suite seals and opens, and its
// messages are sealed under that suite's nonce size.
func TestSuites(t *testing.T) {
	alice := newPeer(t, "alice", "ed25519", 0)
	bob := newPeer(t, "bob", "ed25519", 0)
	for _, s := range cryptosuite.AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			p1 := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "x", Suite: s.ID, Now: t0}))(t)
			sa := join(t, alice, p1, alice, nil)
			p2 := must(sa.Invite(alice.id, kps(alice, bob), t0, bob.pid()))(t)
			if err := sa.ApplyProposal(p2, alice.secrets); err != nil {
				t.Fatal(err)
			}
			sb := join(t, alice, p2, bob, nil)
			if sb.Suite().ID != s.ID {
				t.Fatalf("suite %v", sb.Suite().ID)
			}
			a := must(sa.SealMessage(alice.secrets, "same text", msgID(1)))(t)
			b := must(sa.SealMessage(alice.secrets, "same text", msgID(1)))(t)
			ma, mb := must(VerifyMessage(a, alice.kp))(t), must(VerifyMessage(b, alice.kp))(t)
			if string(ma.Box[:s.NonceSize]) == string(mb.Box[:s.NonceSize]) {
				t.Fatal("two seals share a nonce")
			}
			if pt := must(sb.OpenMessage(a, alice.kp))(t); pt.Text != "same text" {
				t.Fatal(pt.Text)
			}
		})
	}
}
