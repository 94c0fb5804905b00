package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// Within one room, over TCP on loopback: a host that forks the room (it
// shows two members different commit chains for one epoch), and a member
// that forges a message in another member's name. The other members'
// clients catch both with room's typed errors.

// evilRoom3 starts a lying host and a room of epoch 2 whose master a
// invited b and c together; all three hold the head's key.
func evilRoom3(t *testing.T) (ev *evilStore, a, b, c *roomPeer) {
	t.Helper()
	h := startRoomHost(t, memory.Options{}, func(_ *Config, s *ServiceConfig) {
		ev = &evilStore{Store: s.Store}
		s.Store = ev
	})
	a, b, c = h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob"), h.newRoomPeer(t, "carol")
	id := a.createRoom(t, "one room")
	a.invite(t, b, c)
	b.joinRoom(t, id, a.pid())
	c.joinRoom(t, id, a.pid())
	return ev, a, b, c
}

// readAfter reads n messages after the cursor as the host serves them.
func (p *roomPeer) readAfter(t *testing.T, after uint64, n int) [][]byte {
	t.Helper()
	ms, err := p.rc.Read(tctx(t), p.room, after, 10)
	if err != nil || len(ms) != n {
		t.Fatalf("%s: reading after %d: %d messages, %v; want %d", p.name, after, len(ms), err, n)
	}
	var out [][]byte
	for _, m := range ms {
		out = append(out, m.Blob)
	}
	return out
}

// wrappedFor returns the wrapped key a proposal holds for peer.
func wrappedFor(t *testing.T, p *room.Proposal, peer cryptosuite.PeerID) []byte {
	t.Helper()
	for _, w := range p.Wrapped {
		if w.Member == peer {
			return w.Blob
		}
	}
	t.Fatalf("the proposal wraps no key for %s", peer.Short())
	return nil
}

// TestEvilHostFork: the master signs two commits for epoch 3 (its client
// proposed again after the host claimed the first upload failed): a
// rotation, which the host applies and serves to alice and bob, and a
// removal of bob, which it keeps and serves to carol alone, so that carol
// believes bob can no longer read her. Each commit alone verifies; the
// fork shows as soon as the two chains meet: carol's message names a
// commit the others did not verify for its epoch, the master's next
// commit does not chain to carol's head, and the other epoch 3 is a
// rollback to her. Refusals change no state.
func TestEvilHostFork(t *testing.T) {
	ev, a, b, c := evilRoom3(t)
	fork, err := a.st.Remove(a.id, a.memberKeyPackages(t), time.Now(), b.pid())
	if err != nil {
		t.Fatal(err)
	}
	a.rotate(t)
	b.catchUp(t)
	genuine, err := ev.Store.GetCommit(tctx(t), a.room, 3)
	if err != nil {
		t.Fatal(err)
	}

	// Carol is served the fork, and its wrapped key.
	ev.lieCommits(func(cs []store.Commit) []store.Commit {
		for i := range cs {
			if cs[i].Epoch == 3 {
				cs[i].Blob, cs[i].Hash = fork.Commit, room.BlobHash(fork.Commit)
			}
		}
		return cs
	})
	if n, err := c.rc.CatchUp(tctx(t), c.st); err != nil || n != 1 {
		t.Fatalf("carol catching up on the fork: %d commits, %v", n, err)
	}
	if _, err := c.st.OpenWrappedKey(wrappedFor(t, fork, c.pid()), c.secrets); err != nil {
		t.Fatal(err)
	}
	ev.lieCommits(nil)
	ms, err := c.st.Members(3)
	if err != nil || len(ms) != 2 {
		t.Fatalf("carol's epoch 3 lists %d members (%v), want 2 (the fork removed bob)", len(ms), err)
	}

	// Her message names the fork's commit: the host's own check refuses
	// it (a rule broken: reason invalid on the wire); a host that stores
	// it anyway has it refused by alice and bob.
	forked := c.seal(t, "bob is gone, so: the code is 1234")
	_, err = c.rc.Send(tctx(t), c.room, forked)
	wantRefused(t, err, room.ErrBadRequest)
	ev.lieMessages(func(ms []store.Message) []store.Message {
		return append(ms, store.Message{Room: c.room, Seq: 1, Sender: c.pid(), Epoch: 3, Blob: forked, Stored: time.Now()})
	})
	for _, p := range []*roomPeer{a, b} {
		blob := p.readAfter(t, 0, 1)[0]
		before := p.marshal(t)
		if _, err := p.st.OpenMessage(blob, p.signer(t, blob)); !errors.Is(err, room.ErrChainBroken) {
			t.Fatalf("%s opening carol's message of the forked epoch: %v, want %v", p.name, err, room.ErrChainBroken)
		}
		if !bytes.Equal(before, p.marshal(t)) {
			t.Fatalf("a refused message changed %s's state", p.name)
		}
	}
	ev.lieMessages(nil)

	// The master's next commit chains to the genuine epoch 3, not to hers.
	a.rotate(t)
	before := c.marshal(t)
	if _, err := c.rc.CatchUp(tctx(t), c.st); !errors.Is(err, room.ErrChainBroken) {
		t.Fatalf("carol catching up past the fork: %v, want %v", err, room.ErrChainBroken)
	}
	// Served the other epoch 3 itself, she refuses it as a rollback.
	ev.lieCommits(func([]store.Commit) []store.Commit { return []store.Commit{genuine} })
	c.refuseCommits(t, room.ErrRollback)
	if !bytes.Equal(before, c.marshal(t)) {
		t.Fatal("the refused commits changed carol's state")
	}
}

// secretParts returns the HPKE private key and the Ed25519 message-signing
// key of secrets, from their documented PEM form: what a member holds
// and could misuse.
func secretParts(t *testing.T, s *room.KeyPackageSecrets) (*cryptosuite.HPKEPrivateKey, ed25519.PrivateKey) {
	t.Helper()
	b, err := s.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	var fields [3][]byte
	p := blk.Bytes
	for i := range fields {
		n := binary.BigEndian.Uint32(p)
		fields[i], p = p[4:4+n], p[4+n:]
	}
	hk, err := cryptosuite.NewHPKEPrivateKey(s.KeyPackage().HPKEKey.KEM(), fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return hk, ed25519.NewKeyFromSeed(fields[2])
}

// forgeAs builds, as member p, a message that claims to be sender's: p
// unwraps its own copy of the head's room key, derives sender's key from
// it (any member can), seals text, names kph as the signer's key package
// and signs with p's own message-signing key (the one key p lacks is
// sender's).
func (p *roomPeer) forgeAs(t *testing.T, sender cryptosuite.PeerID, kph [32]byte, text string) []byte {
	t.Helper()
	epoch, commit := p.st.Head()
	hk, sign := secretParts(t, p.secrets)
	wb, err := p.rc.FetchWrappedKey(tctx(t), p.room, epoch)
	if err != nil {
		t.Fatal(err)
	}
	w, err := room.VerifyWrappedKey(wb, p.st.MasterKey())
	if err != nil {
		t.Fatal(err)
	}
	key, err := cryptosuite.UnwrapRoomKey(hk, w.Enc, canon.RoomKeyWrapInfo(p.room, epoch, p.pid(), w.KeyPackage), w.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := cryptosuite.SenderKey(key, p.room, epoch, sender, p.st.Suite())
	if err != nil {
		t.Fatal(err)
	}
	aead, err := p.st.Suite().New(sk)
	if err != nil {
		t.Fatal(err)
	}
	hdr := &canon.RoomMessageHeader{Room: p.room, Epoch: epoch, CommitHash: commit, Sender: sender,
		MessageID: [16]byte{9}, KeyPackageHash: kph}
	box, err := cryptosuite.SealRandom(aead, nil, nil, []byte(text), canon.RoomMessageAAD(hdr))
	if err != nil {
		t.Fatal(err)
	}
	layout := canon.RoomMessage(hdr, box)
	in, err := canon.SignatureInput(canon.LabelRoomMessage, layout)
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(sign, in)
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(layout)))
	blob = append(blob, layout...)
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(sig)))
	return append(blob, sig...)
}

// TestMemberForgesSender: carol, a member holding the room key, forges
// messages in bob's name, naming bob's key package or her own. The host
// refuses to store them from her; a host that stores them anyway has them
// refused by alice and by bob himself, while a genuine message of bob's
// between them opens.
func TestMemberForgesSender(t *testing.T) {
	ev, a, b, c := evilRoom3(t)
	asBobsKP := c.forgeAs(t, b.pid(), b.secrets.KeyPackage().Hash(), "bob here: send me the code")
	asOwnKP := c.forgeAs(t, b.pid(), c.secrets.KeyPackage().Hash(), "bob here: send me the code")
	for _, blob := range [][]byte{asBobsKP, asOwnKP} {
		_, err := c.rc.Send(tctx(t), c.room, blob)
		wantRefused(t, err, room.ErrNotOwner)
	}

	seq := b.send(t, b.seal(t, "genuinely bob"))
	// The lying host serves the forgeries after bob's message.
	lie := func(ms []store.Message) []store.Message {
		for i, blob := range [][]byte{asBobsKP, asOwnKP} {
			ms = append(ms, store.Message{Room: c.room, Seq: seq + 1 + uint64(i), Sender: b.pid(), Epoch: 2, Blob: blob, Stored: time.Now()})
		}
		return ms
	}
	for _, p := range []*roomPeer{a, b} {
		ev.lieMessages(nil)
		if pt := p.openNew(t, p.readAfter(t, seq-1, 1)[0]); pt.Text != "genuinely bob" || pt.Sender != b.pid() {
			t.Fatalf("%s opened bob's message as %q from %s", p.name, pt.Text, pt.Sender.Short())
		}
		ev.lieMessages(lie)
		blobs := p.readAfter(t, seq, 2)
		for i, want := range []error{room.ErrBadSignature, room.ErrWrongKeyPackage} {
			blob := blobs[i]
			before := p.marshal(t)
			if _, err := p.st.OpenMessage(blob, p.signer(t, blob)); !errors.Is(err, want) {
				t.Fatalf("%s opening carol's forgery %d in bob's name: %v, want %v", p.name, i, err, want)
			}
			if !bytes.Equal(before, p.marshal(t)) {
				t.Fatalf("a refused forgery changed %s's state", p.name)
			}
		}
	}
}
