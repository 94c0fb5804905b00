package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/wire"
)

// TestRoomStory: three peers and a host over TCP on loopback hold an
// encrypted conversation: create, invite, send (pushed with the message),
// read, rotate, remove. The removed member is refused and holds no key
// that opens the new epoch, and the host's store never held a byte of
// plaintext.
func TestRoomStory(t *testing.T) {
	h := startRoomHost(t, memory.Options{}, nil)
	alice, bob, carol := h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob"), h.newRoomPeer(t, "carol")
	marker := fmt.Sprintf("PLAINTEXT-MARKER-%x", randBytes(8))

	id := alice.createRoom(t, "lab")
	alice.invite(t, bob)
	// Bob learns of the invite by push, then joins from the commits and
	// his wrapped key.
	bob.nextPush(t, "invite", func(p Push) bool { return p.Kind == PushMembership && p.Event == EventInvite && p.Epoch == 2 })
	bob.nextPush(t, "key sync", func(p Push) bool { return p.Kind == PushKeySync && p.Epoch == 2 })
	bob.joinRoom(t, id, alice.pid())
	alice.invite(t, carol)
	carol.joinRoom(t, id, alice.pid())
	bob.nextPush(t, "carol's invite", func(p Push) bool { return p.Kind == PushMembership && p.Event == EventInvite && p.Epoch == 3 })
	bob.catchUp(t)

	// Bob sends; alice and carol get the message itself in the push.
	m1 := bob.seal(t, "hello "+marker)
	if seq := bob.send(t, m1); seq != 1 {
		t.Fatalf("first message got seq %d", seq)
	}
	if seq := bob.send(t, m1); seq != 1 {
		t.Fatalf("a retried send got seq %d", seq)
	}
	for _, p := range []*roomPeer{alice, carol} {
		push := p.nextPush(t, "bob's message", func(p Push) bool { return p.Kind == PushMessage })
		if push.Room != id || push.Message.Seq != 1 || !bytes.Equal(push.Message.Blob, m1) {
			t.Fatalf("%s: push %+v", p.name, push)
		}
		if pt := p.openNew(t, push.Message.Blob); pt.Text != "hello "+marker || pt.Sender != bob.pid() {
			t.Fatalf("%s: opened %q from %s", p.name, pt.Text, pt.Sender.Short())
		}
	}
	m2 := carol.seal(t, "hi bob "+marker)
	carol.send(t, m2)
	msgs, err := alice.rc.Read(tctx(t), id, 0, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		want := []string{"hello " + marker, "hi bob " + marker}[i]
		if pt := alice.openHistory(t, m.Blob); pt.Text != want || m.Seq != uint64(i+1) {
			t.Fatalf("message %d: %q", m.Seq, pt.Text)
		}
	}

	// Rotate: every member gets a key sync, catches up, and talks on.
	alice.rotate(t)
	for _, p := range []*roomPeer{bob, carol} {
		p.nextPush(t, "rotation key", func(q Push) bool { return q.Kind == PushKeySync && q.Epoch == 4 })
		p.catchUp(t)
	}
	m3 := carol.seal(t, "after rotation "+marker)
	if seq := carol.send(t, m3); seq != 3 {
		t.Fatalf("seq %d", seq)
	}
	if pt := bob.openNew(t, bob.nextPush(t, "m3", func(p Push) bool { return p.Kind == PushMessage && p.Message.Seq == 3 }).Message.Blob); pt.Text != "after rotation "+marker {
		t.Fatalf("bob opened %q", pt.Text)
	}

	// Remove carol: she is told, refused, and holds no key of the new epoch.
	removal := alice.remove(t, carol)
	carol.nextPush(t, "removal", func(p Push) bool { return p.Kind == PushMembership && p.Event == EventRemove && p.Epoch == 5 })
	bob.nextPush(t, "rotation key", func(q Push) bool { return q.Kind == PushKeySync && q.Epoch == 5 })
	bob.catchUp(t)
	_, err = carol.rc.Read(tctx(t), id, 0, 10)
	wantRefused(t, err, room.ErrNotMember)
	_, err = carol.rc.FetchWrappedKey(tctx(t), id, 5)
	wantRefused(t, err, room.ErrNotMember)
	_, _, err = carol.rc.FetchCommits(tctx(t), id, 4, 10)
	wantRefused(t, err, room.ErrNotMember)
	_, err = carol.rc.Send(tctx(t), id, carol.seal(t, "still here?"))
	wantRefused(t, err, room.ErrNotMember)
	m4 := bob.seal(t, "carol is gone "+marker)
	bob.send(t, m4)
	// Even handed the remove commit (which is no secret), carol holds no
	// key that opens epoch 5.
	if err := carol.st.ApplyCommit(removal.Commit); err != nil {
		t.Fatal(err)
	}
	if carol.st.HasKey(5) || carol.st.IsMember() {
		t.Fatal("carol holds epoch 5's key or membership")
	}
	if _, err := carol.st.OpenMessage(m4, carol.signer(t, m4)); !errors.Is(err, room.ErrNotMember) && !errors.Is(err, room.ErrNoEpochKey) {
		t.Fatalf("carol opened epoch 5's message: %v", err)
	}
	for _, w := range removal.Wrapped {
		if w.Member == carol.pid() {
			t.Fatal("the removal wraps a key for carol")
		}
	}

	// Info says who acknowledged which epoch.
	info, err := alice.rc.RoomInfo(tctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Room.Epoch != 5 || info.Room.Name != "lab" || info.Span != (store.Span{First: 1, Last: 4}) || len(info.Members) != 2 {
		t.Fatalf("info %+v", info)
	}
	for _, m := range info.Members {
		if m.AckedEpoch != 5 || (m.Peer == alice.pid()) != (m.Role == store.RoleMaster) {
			t.Fatalf("member %+v", m)
		}
	}
	rooms, err := bob.rc.ListRooms(tctx(t), store.RoomID{}, 10)
	if err != nil || len(rooms) != 1 || rooms[0].Room.ID != id || rooms[0].Role != store.RoleMember || rooms[0].Left {
		t.Fatalf("bob's rooms: %+v, %v", rooms, err)
	}
	if rooms, err := carol.rc.ListRooms(tctx(t), store.RoomID{}, 10); err != nil || len(rooms) != 0 {
		t.Fatalf("carol's rooms: %+v, %v", rooms, err)
	}

	// The host stored commits, keys and four messages, and never the text.
	if h.rec.count() < 10 {
		t.Fatalf("only %d blobs recorded", h.rec.count())
	}
	if h.rec.contains([]byte("PLAINTEXT-MARKER")) {
		t.Fatal("the host's store holds plaintext")
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// roomOf4 is a room of alice (master), bob and carol, and dave, who has a
// session with the host but is in no room.
func roomOf4(t *testing.T, opts memory.Options) (h *roomHost, alice, bob, carol, dave *roomPeer, id store.RoomID) {
	h = startRoomHost(t, opts, nil)
	alice, bob, carol, dave = h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob"), h.newRoomPeer(t, "carol"), h.newRoomPeer(t, "dave")
	id = alice.createRoom(t, "lab")
	alice.invite(t, bob, carol)
	bob.joinRoom(t, id, alice.pid())
	carol.joinRoom(t, id, alice.pid())
	return
}

// TestRoomRefusals: each rule of the host refuses over the wire with its
// typed error, and the session goes on.
func TestRoomRefusals(t *testing.T) {
	_, alice, bob, carol, dave, id := roomOf4(t, memory.Options{})
	ctx := tctx(t)
	mb := bob.seal(t, "bob's")
	bob.send(t, mb)

	t.Run("non-member reads and posts", func(t *testing.T) {
		_, err := dave.rc.Read(ctx, id, 0, 10)
		wantRefused(t, err, room.ErrNotMember)
		_, err = dave.rc.Send(ctx, id, mb)
		wantRefused(t, err, room.ErrNotMember)
		_, err = dave.rc.RoomInfo(ctx, id)
		wantRefused(t, err, room.ErrNotMember)
		_, err = dave.rc.Read(ctx, store.RoomID{9}, 0, 10)
		re := wantRefused(t, err, room.ErrNoRoom)
		if re.Code != wire.CodeNotFound {
			t.Fatalf("no room is code %v", re.Code)
		}
	})

	t.Run("member invites, removes, rotates", func(t *testing.T) {
		// Bob uploads the master's own next commit, and one he signed.
		rot, err := alice.st.Rotate(alice.id, alice.memberKeyPackages(t), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = bob.rc.Rotate(ctx, rot)
		re := wantRefused(t, err, room.ErrNotMaster)
		if re.Code != wire.CodeUnauthorized {
			t.Fatalf("not master is code %v", re.Code)
		}
		rem, err := alice.st.Remove(alice.id, alice.memberKeyPackages(t), time.Now(), carol.pid())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, bob.rc.Remove(ctx, rem), room.ErrNotMaster)
		inv, err := alice.st.Invite(alice.id, alice.memberKeyPackages(t, dave.pid()), time.Now(), dave.pid())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, bob.rc.Invite(ctx, inv), room.ErrNotMaster)
		wantRefused(t, bob.rc.UploadWrappedKey(ctx, id, rot.Wrapped[0].Blob), room.ErrNotMaster)
		wantRefused(t, bob.rc.Delete(ctx, id), room.ErrNotMaster)
		_, err = bob.rc.FetchLeave(ctx, id, carol.pid())
		wantRefused(t, err, room.ErrNotMaster)
	})

	t.Run("forged sender", func(t *testing.T) {
		// Carol posts bob's genuine message: only bob posts as bob.
		_, err := carol.rc.Send(ctx, id, mb)
		wantRefused(t, err, room.ErrNotOwner)
		// Carol's own message, made to claim bob as its sender: carol
		// cannot post it as bob's, and bob cannot post it either, since
		// it does not verify under the key package it names.
		forged := reattribute(t, carol.seal(t, "as bob"), bob.pid())
		_, err = carol.rc.Send(ctx, id, forged)
		wantRefused(t, err, room.ErrNotOwner)
		_, err = bob.rc.Send(ctx, id, forged)
		wantRefused(t, err, room.ErrBadSignature)
	})

	t.Run("replayed message id from another sender", func(t *testing.T) {
		_, mid := messageID(t, mb)
		_, err := carol.rc.Send(ctx, id, carol.sealID(t, "mine", mid))
		re := wantRefused(t, err, room.ErrMessageIDTaken)
		if re.Code != wire.CodeConflict {
			t.Fatalf("taken id is code %v", re.Code)
		}
	})

	t.Run("message under an old epoch after rotation", func(t *testing.T) {
		var mid [room.MessageIDSize]byte
		rand.Read(mid[:])
		late := bob.sealID(t, "late", mid)
		before, _ := alice.st.Head()
		alice.rotate(t)
		_, err := bob.rc.Send(ctx, id, late)
		wantRefused(t, err, room.ErrOldEpoch)
		var ee *room.EpochError
		if !errors.As(err, &ee) || ee.Current != before+1 {
			t.Fatalf("stale send: %v", err)
		}
		// Bob catches up and sends the same message id again.
		bob.catchUp(t)
		seq := bob.send(t, bob.sealID(t, "late", mid))
		if again := bob.send(t, late); again != seq {
			t.Fatalf("a retry of the stale blob got seq %d, the resend %d", again, seq)
		}
		carol.catchUp(t)
	})

	t.Run("invitee without a key package", func(t *testing.T) {
		stranger, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.rc.LatestKeyPackage(ctx, stranger.PeerID())
		wantRefused(t, err, room.ErrMissingKeyPackage)
		if !strings.Contains(err.Error(), "dial this host once") {
			t.Fatalf("%q does not say what to do", err)
		}
		// The master knows the stranger's key package from elsewhere: the
		// host still refuses to list a key package it does not hold.
		s, err := room.GenerateKeyPackage(stranger, 0, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := alice.st.Invite(alice.id, append(alice.memberKeyPackages(t), s.KeyPackage()), time.Now(), stranger.PeerID())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, alice.rc.Invite(ctx, inv), room.ErrMissingKeyPackage)
	})

	t.Run("commit conflict", func(t *testing.T) {
		// Two proposals from the same head: the second loses.
		a, err := alice.st.Rotate(alice.id, alice.memberKeyPackages(t), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, err := alice.st.Rotate(alice.id, alice.memberKeyPackages(t), time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		alice.propose(t, a, alice.rc.Rotate)
		err = alice.rc.Rotate(ctx, b)
		wantRefused(t, err, room.ErrCommitConflict)
		var ee *room.EpochError
		if !errors.As(err, &ee) || ee.Current != a.Info.Epoch {
			t.Fatalf("conflict: %v", err)
		}
		bob.catchUp(t)
		carol.catchUp(t)
	})

	t.Run("leave", func(t *testing.T) {
		master, err := room.BuildLeaveRequest(alice.id, [16]byte(id), 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, alice.rc.Leave(ctx, id, master), room.ErrMasterCannotLeave)
		lr, err := carol.st.Leave(carol.id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, bob.rc.Leave(ctx, id, lr), room.ErrBadSignature)
		if err := carol.rc.Leave(ctx, id, lr); err != nil {
			t.Fatal(err)
		}
		_, err = carol.rc.Read(ctx, id, 0, 10)
		wantRefused(t, err, room.ErrLeft)
		push := alice.nextPush(t, "carol's leave", func(p Push) bool { return p.Kind == PushMembership && p.Event == EventLeave })
		if push.Peer != carol.pid() {
			t.Fatalf("leave push names %s", push.Peer.Short())
		}
		// The master turns it into a remove commit.
		b, err := alice.rc.FetchLeave(ctx, id, carol.pid())
		if err != nil {
			t.Fatal(err)
		}
		v, err := room.VerifyLeaveRequest(b, alice.latestKeyPackage(t, carol.pid()).IdentityKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.st.AcceptLeave(v); err != nil {
			t.Fatal(err)
		}
		alice.remove(t, carol)
		_, err = alice.rc.FetchLeave(ctx, id, carol.pid())
		wantRefused(t, err, room.ErrNotMember)
	})

	t.Run("delete", func(t *testing.T) {
		bob.catchUp(t)
		if err := alice.rc.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		bob.nextPush(t, "deletion", func(p Push) bool { return p.Kind == PushMembership && p.Event == EventDelete })
		_, err := bob.rc.Read(ctx, id, 0, 10)
		wantRefused(t, err, room.ErrNoRoom)
		wantRefused(t, alice.rc.Delete(ctx, id), room.ErrNoRoom)
	})

	t.Run("not a request", func(t *testing.T) {
		s, err := dave.conn.OpenStream(ctx, KindRequest)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b, _ := wire.Encode(&wire.PushesLost{Count: 1})
		if err := s.WriteFrame(b); err != nil {
			t.Fatal(err)
		}
		refusedWith(t, s, wire.CodeProtocol)
		s2, err := dave.conn.OpenStream(ctx, KindRequest)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if err := s2.WriteFrame(append([]byte{byte(wire.TypeSendMessage)}, 0x81, 0xa1, 'r', 0xc6, 0xff, 0xff, 0xff, 0xff)); err != nil {
			t.Fatal(err)
		}
		refusedWith(t, s2, wire.CodeTooLarge)
	})
}

// reattribute returns p's message blob with its sender field changed to
// sender, the signature left as it was: a message that claims another
// sender than the one who signed it.
func reattribute(t *testing.T, blob []byte, sender cryptosuite.PeerID) []byte {
	t.Helper()
	layout, sig, err := room.SplitBlob(blob, canon.LabelRoomMessage, room.MaxMessageBlob)
	if err != nil {
		t.Fatal(err)
	}
	r := canon.NewReader(canon.LabelRoomMessage, layout)
	var h canon.RoomMessageHeader
	copy(h.Room[:], r.Fixed(16))
	h.Epoch = r.Uint64()
	copy(h.CommitHash[:], r.Fixed(32))
	r.Fixed(32)
	h.Sender = sender
	copy(h.MessageID[:], r.Fixed(16))
	copy(h.KeyPackageHash[:], r.Fixed(32))
	box := r.Bytes()
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	forged := canon.RoomMessage(&h, box)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(forged)))
	out = append(out, forged...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(sig)))
	return append(out, sig...)
}

// messageID returns the sender and id a message blob names.
func messageID(t *testing.T, blob []byte) (cryptosuite.PeerID, [room.MessageIDSize]byte) {
	t.Helper()
	layout, _, err := room.SplitBlob(blob, canon.LabelRoomMessage, room.MaxMessageBlob)
	if err != nil {
		t.Fatal(err)
	}
	r := canon.NewReader(canon.LabelRoomMessage, layout)
	r.Fixed(16)
	r.Uint64()
	r.Fixed(32)
	var sender cryptosuite.PeerID
	copy(sender[:], r.Fixed(32))
	var id [room.MessageIDSize]byte
	copy(id[:], r.Fixed(16))
	return sender, id
}

// TestRoomConcurrentSenders: eight members send 1000 messages each at
// once; the sequence numbers are 1 to 8000 with no gap and no repeat, and
// each message is stored once.
func TestRoomConcurrentSenders(t *testing.T) {
	const senders, each = 8, 1000
	// Pushes are not what this test is about: one queued per session, the
	// rest dropped and counted.
	h := startRoomHost(t, memory.Options{}, func(_ *Config, s *ServiceConfig) { s.PushQueue = 1 })
	peers := make([]*roomPeer, senders)
	for i := range peers {
		peers[i] = h.newRoomPeer(t, fmt.Sprintf("p%d", i))
	}
	id := peers[0].createRoom(t, "busy")
	peers[0].invite(t, peers[1:]...)
	for _, p := range peers[1:] {
		p.joinRoom(t, id, peers[0].pid())
	}
	// Pushes are drained and counted, not checked: 64,000 of them.
	drain(t, peers...)
	// Messages are built before the clock starts.
	blobs := make([][][]byte, senders)
	for i, p := range peers {
		blobs[i] = make([][]byte, each)
		for j := range blobs[i] {
			blobs[i][j] = p.seal(t, fmt.Sprintf("%d/%d", i, j))
		}
	}
	seqs := make([][]uint64, senders)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range blobs[i] {
				ctx, cancel := context.WithTimeout(context.Background(), hang)
				seq, err := p.rc.Send(ctx, id, b)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", p.name, err)
					return
				}
				seqs[i] = append(seqs[i], seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []uint64
	for i := range seqs {
		if !slices.IsSorted(seqs[i]) {
			t.Fatalf("sender %d's sequence numbers are out of order", i)
		}
		all = append(all, seqs[i]...)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("sequence numbers: position %d holds %d", i, s)
		}
	}
	// Reading the whole room back: each message once, in order.
	seen := map[string]bool{}
	var after uint64
	for range senders * each {
		ms, err := peers[3].rc.Read(tctx(t), id, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			sender, mid := messageID(t, m.Blob)
			key := string(sender[:]) + string(mid[:])
			if seen[key] {
				t.Fatalf("message at %d stored twice", m.Seq)
			}
			seen[key] = true
		}
		after = ms[len(ms)-1].Seq
	}
	if len(seen) != senders*each || after != senders*each {
		t.Fatalf("read back %d messages up to %d", len(seen), after)
	}
}

// drain reads every peer's pushes in the background until its session
// ends or the test does.
func drain(t *testing.T, ps ...*roomPeer) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func(p *roomPeer) {
			defer wg.Done()
			for {
				select {
				case <-p.pushes.C():
				case <-p.conn.Done():
					return
				case <-done:
					return
				}
			}
		}(p)
	}
	t.Cleanup(func() { close(done); wg.Wait() })
}

// TestRoomResume: a member that gets pushes, disconnects mid-stream and
// comes back reads on by cursor, across a second disconnect in the
// middle of its paging: no gap, no duplicate.
func TestRoomResume(t *testing.T) {
	h := startRoomHost(t, memory.Options{}, nil)
	alice, bob := h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob")
	id := alice.createRoom(t, "lab")
	alice.invite(t, bob)
	bob.joinRoom(t, id, alice.pid())
	drain(t, alice)

	const total = 60
	sendN := func(from, to int) {
		for i := from; i < to; i++ {
			if seq := alice.send(t, alice.seal(t, fmt.Sprintf("m%d", i))); seq != uint64(i+1) {
				t.Fatalf("message %d got seq %d", i, seq)
			}
		}
	}
	var got []uint64
	texts := map[uint64]string{}
	keep := func(seq uint64, blob []byte, live bool) {
		var pt *room.Plaintext
		if live {
			pt = bob.openNew(t, blob)
		} else {
			pt = bob.openHistory(t, blob)
		}
		got = append(got, seq)
		texts[seq] = pt.Text
	}
	sendN(0, 20)
	// Bob takes pushes up to 12, then his connection drops.
	for {
		p := bob.nextPush(t, "a message", func(p Push) bool { return p.Kind == PushMessage })
		if p.Message.Seq != uint64(len(got)+1) {
			t.Fatalf("push of %d after %d", p.Message.Seq, len(got))
		}
		keep(p.Message.Seq, p.Message.Blob, true)
		if len(got) == 12 {
			break
		}
	}
	bob.conn.Close()
	sendN(20, 40)
	// Back: pages of 7 from the last sequence number he holds, and the
	// connection drops again half-way.
	bob.dial(t, 0)
	cursor := got[len(got)-1]
	for pages := 0; cursor < total && pages < 100; pages++ {
		ms, err := bob.rc.Read(tctx(t), id, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			if cursor == 40 {
				sendN(40, total)
				continue
			}
			t.Fatalf("nothing after %d", cursor)
		}
		for _, m := range ms {
			keep(m.Seq, m.Blob, false)
		}
		cursor = ms[len(ms)-1].Seq
		if pages == 2 {
			bob.conn.Close()
			bob.dial(t, 0)
		}
	}
	if len(got) != total {
		t.Fatalf("bob holds %d messages", len(got))
	}
	for i, s := range got {
		if s != uint64(i+1) || texts[s] != fmt.Sprintf("m%d", i) {
			t.Fatalf("position %d: seq %d %q", i, s, texts[s])
		}
	}
}

// TestRoomHistoryTrimmed: over the wire, a cursor before the kept history
// says where it begins, and reading on from there works.
func TestRoomHistoryTrimmed(t *testing.T) {
	h := startRoomHost(t, memory.Options{HistoryPerRoom: 5}, nil)
	alice := h.newRoomPeer(t, "alice")
	id := alice.createRoom(t, "short")
	drain(t, alice)
	for i := range 8 {
		alice.send(t, alice.seal(t, fmt.Sprint(i)))
	}
	_, err := alice.rc.Read(tctx(t), id, 0, 10)
	var tr *store.HistoryTrimmedError
	if !errors.As(err, &tr) || tr.Oldest != 4 || tr.Room != id {
		t.Fatalf("read from 0: %v", err)
	}
	ms, err := alice.rc.Read(tctx(t), id, tr.Oldest-1, 10)
	if err != nil || len(ms) != 5 || ms[0].Seq != 4 {
		t.Fatalf("read on: %d, %v", len(ms), err)
	}
	_, err = alice.rc.Read(tctx(t), id, 9, 10)
	wantRefused(t, err, room.ErrBadRequest)
}

// TestSubscriptionDropsAndMarks: a subscriber that does not keep up loses
// pushes beyond its queue, never blocking the sender, and is told how many
// before anything else; Close ends it.
func TestSubscriptionDropsAndMarks(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	svc, err := NewService(ServiceConfig{Store: mem, PushQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	peer := identity(t, "ed-b").PeerID()
	sub, err := svc.Subscribe(peer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		svc.publish(Push{Kind: PushMessage, Message: StoredMessage{Seq: uint64(i + 1)}}, []cryptosuite.PeerID{peer})
	}
	ctx := tctx(t)
	p, err := sub.Next(ctx)
	if err != nil || p.Kind != PushLost || p.Lost != 6 {
		t.Fatalf("first: %+v, %v", p, err)
	}
	for want := uint64(1); want <= 4; want++ {
		if p, err := sub.Next(ctx); err != nil || p.Kind != PushMessage || p.Message.Seq != want {
			t.Fatalf("push %d: %+v, %v", want, p, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("empty queue: %v", err)
	}
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	svc.Close()
	if _, err := svc.Subscribe(peer); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// TestRoomSlowMember: a member that reads no pushes neither blocks the
// sender nor misses anything silently: the host drops pushes beyond its
// queue, tells the member how many, and the member catches up by cursor.
func TestRoomSlowMember(t *testing.T) {
	h := startRoomHost(t, memory.Options{}, func(_ *Config, s *ServiceConfig) {
		s.PushQueue = 8
		s.PushWriteTimeout = 200 * time.Millisecond
	})
	alice, bob := h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob")
	id := alice.createRoom(t, "lab")
	alice.invite(t, bob)
	bob.joinRoom(t, id, alice.pid())
	drain(t, alice)
	bob.conn.Close()
	bob.dial(t, 1) // reads one push into its channel, then stops reading

	// Enough bytes to fill bob's stream window many times over.
	const n = 600
	text := strings.Repeat("x", 512)
	for range n {
		alice.send(t, alice.seal(t, text))
	}
	// Now bob reads: some pushes, a count of those dropped, then catch up.
	var pushed []uint64
	lost := uint64(0)
	for lost == 0 {
		p := bob.nextPush(t, "a push", func(Push) bool { return true })
		switch p.Kind {
		case PushMessage:
			pushed = append(pushed, p.Message.Seq)
		case PushLost:
			lost = p.Lost
		}
	}
	if len(pushed) == 0 || len(pushed) >= n {
		t.Fatalf("%d pushes before the loss marker", len(pushed))
	}
	// Catch up from the last contiguous push.
	sort.Slice(pushed, func(i, j int) bool { return pushed[i] < pushed[j] })
	cursor := uint64(0)
	for _, s := range pushed {
		if s != cursor+1 {
			break
		}
		cursor = s
	}
	for range n {
		ms, err := bob.rc.Read(tctx(t), id, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		cursor = ms[len(ms)-1].Seq
	}
	if cursor != n {
		t.Fatalf("bob caught up to %d of %d", cursor, n)
	}
}

// TestRequestFrameClass: request streams carry frames beyond a control
// frame both ways: a commit of 1,000 members goes up, and the default
// host accepts it; a reply of as many members comes back.
func TestRequestFrameClass(t *testing.T) {
	h := startRoomHost(t, memory.Options{}, nil)
	if got := h.srv.lim.maxRequestFrame; got < room.MaxCommitBlob(room.DefaultMaxMembers) {
		t.Fatalf("the host accepts request frames of %d bytes, less than a commit of %d members", got, room.DefaultMaxMembers)
	}
	alice := h.newRoomPeer(t, "alice")
	id := alice.createRoom(t, "big")
	// Invite 999 members: their key packages are published on one
	// session each would be slow; the host only needs them stored, which
	// a session of their own does. Use fewer sessions: each peer
	// publishes on alice's host through its own short session.
	const n = 999
	ids := make([]cryptosuite.PeerID, n)
	kps := alice.memberKeyPackages(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err != nil {
				t.Error(err)
				return
			}
			s, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
			if err != nil {
				t.Error(err)
				return
			}
			// Published directly through the Service, as a session would.
			if err := h.svc.PublishKeyPackage(context.Background(), id.Public(), s.KeyPackage().Blob()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[i] = id.PeerID()
			kps = append(kps, s.KeyPackage())
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	prop, err := alice.st.Invite(alice.id, kps, time.Now(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	if len(prop.Commit) <= framing.MaxControlFrame {
		t.Fatalf("a commit of %d members is only %d bytes", n+1, len(prop.Commit))
	}
	if err := alice.rc.Commit(tctx(t), id, prop.Commit); err != nil {
		t.Fatalf("uploading a %d-byte commit: %v", len(prop.Commit), err)
	}
	cs, head, err := alice.rc.FetchCommits(tctx(t), id, 1, 10)
	if err != nil || head != 2 || len(cs) != 1 || !bytes.Equal(cs[0], prop.Commit) {
		t.Fatalf("fetching the commit back: %d commits, head %d, %v", len(cs), head, err)
	}
	info, err := alice.rc.RoomInfo(tctx(t), id)
	if err != nil || len(info.Members) != n+1 {
		t.Fatalf("info: %v", err)
	}
	// A host whose rooms are small has a small request frame too, and
	// refuses the big commit at the frame, before decoding it.
	small := startRoomHost(t, memory.Options{}, func(c *Config, s *ServiceConfig) {
		c.MaxRequestFrame = 1024
		s.Limits = &room.Limits{MaxMembers: 10}
	})
	if got, want := small.srv.lim.maxRequestFrame, room.MaxCommitBlob(10); got < want || got > 4096 {
		t.Fatalf("Configure set the request frame to %d for commits of %d bytes", got, want)
	}
	other := small.newRoomPeer(t, "other")
	var se *StreamError
	if err := other.rc.Commit(tctx(t), id, prop.Commit); !errors.As(err, &se) || se.Code != wire.CodeTooLarge {
		t.Fatalf("a commit over the host's request frame: %v", err)
	}
}

// TestWireBoundsMatchRoom: the wire's bounds of the room objects are
// package room's and the store's, and the request class fits what it must
// carry.
func TestWireBoundsMatchRoom(t *testing.T) {
	for _, c := range []struct {
		name       string
		wire, want int
	}{
		{"RoomIDSize", wire.RoomIDSize, room.RoomIDSize},
		{"HashSize", wire.HashSize, room.HashSize},
		{"MaxRoomNameSize", wire.MaxRoomNameSize, room.MaxNameSize},
		{"MaxKeyPackageBlob", wire.MaxKeyPackageBlob, room.MaxKeyPackageBlob},
		{"MaxWrappedKeyBlob", wire.MaxWrappedKeyBlob, room.MaxWrappedKeyBlob},
		{"MaxMessageBlob", wire.MaxMessageBlob, room.MaxMessageBlob},
		{"MaxLeaveBlob", wire.MaxLeaveBlob, room.MaxLeaveBlob},
		{"MaxCommitBlob", wire.MaxCommitBlob, store.MaxCommitSize},
		{"MaxListLimit", wire.MaxListLimit, store.MaxListLimit},
	} {
		if c.wire != c.want {
			t.Errorf("wire.%s = %d, want %d", c.name, c.wire, c.want)
		}
	}
	if room.MaxCommitBlob(store.MaxMembers) > wire.MaxCommitBlob {
		t.Error("a commit of the store's largest room does not fit wire.MaxCommitBlob")
	}
	if wire.MaxCommitBlob+64 > replyBudget || replyBudget != 2031616 {
		t.Errorf("reply budget %d (PROTOCOL.md §18.5 says 2031616) does not hold a commit", replyBudget)
	}
	if wire.MaxMessageBlob+64 > framing.MaxControlFrame {
		t.Error("a message push does not fit a control frame")
	}
	if DefaultMaxRequestFrame < room.MaxCommitBlob(room.DefaultMaxMembers)+64 || DefaultMaxRequestFrame != 131072 {
		t.Errorf("DefaultMaxRequestFrame %d", DefaultMaxRequestFrame)
	}
}
