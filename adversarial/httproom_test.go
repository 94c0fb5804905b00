package adversarial

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/httpshim"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
)

// httpMember is a room member speaking to the shim: what a client does,
// written out for the attacks.
type httpMember struct {
	name    string
	id      *cryptosuite.Identity
	secrets *room.KeyPackageSecrets
	c       *httpshim.Client
	st      *room.MemberState
	room    store.RoomID
}

func (hp *httpPeer) member(t *testing.T, name string) *httpMember {
	t.Helper()
	m := &httpMember{name: name, id: newID(t)}
	var err error
	if m.secrets, err = room.GenerateKeyPackage(m.id, 0, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	m.c = hp.newHTTPClient(t, m.id, "")
	ctx := tctx(t)
	if err := m.c.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.c.PublishKeyPackage(ctx, m.secrets.KeyPackage().Blob()); err != nil {
		t.Fatal(err)
	}
	return m
}

// syncKey opens and acknowledges the head epoch's wrapped key.
func (m *httpMember) syncKey(t *testing.T) {
	t.Helper()
	epoch, _ := m.st.Head()
	w, err := m.c.FetchWrappedKey(tctx(t), m.room, epoch)
	if err != nil {
		t.Fatalf("%s: wrapped key: %v", m.name, err)
	}
	if _, err := m.st.OpenWrappedKey(w, m.secrets); err != nil {
		t.Fatal(err)
	}
	if err := m.c.Ack(tctx(t), m.room, epoch); err != nil {
		t.Fatal(err)
	}
}

func (m *httpMember) createRoom(t *testing.T) store.RoomID {
	t.Helper()
	prop, err := room.NewRoom(room.RoomConfig{Master: m.id, KeyPackage: m.secrets.KeyPackage(), Name: "lab", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.c.Propose(tctx(t), prop); err != nil {
		t.Fatal(err)
	}
	if m.st, err = room.NewMemberState(prop.Commit, m.id.Public(), m.id.PeerID(), nil); err != nil {
		t.Fatal(err)
	}
	m.room = store.RoomID(prop.Info.Room)
	m.syncKey(t)
	return m.room
}

// next proposes the master's next epoch: op over the members' latest key
// packages, applied to its own state.
func (m *httpMember) next(t *testing.T, op func(kps []*room.KeyPackage) (*room.Proposal, error), extra ...cryptosuite.PeerID) {
	t.Helper()
	epoch, _ := m.st.Head()
	ms, err := m.st.Members(epoch)
	if err != nil {
		t.Fatal(err)
	}
	peers := extra
	for _, x := range ms {
		peers = append(peers, x.Peer)
	}
	var kps []*room.KeyPackage
	for _, p := range peers {
		b, err := m.c.LatestKeyPackage(tctx(t), p)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := room.VerifyKeyPackage(b, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, kp)
	}
	prop, err := op(kps)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.c.Propose(tctx(t), prop); err != nil {
		t.Fatal(err)
	}
	if err := m.st.ApplyProposal(prop, m.secrets); err != nil {
		t.Fatal(err)
	}
	if err := m.c.Ack(tctx(t), m.room, prop.Info.Epoch); err != nil {
		t.Fatal(err)
	}
}

func (m *httpMember) invite(t *testing.T, o *httpMember) {
	t.Helper()
	m.next(t, func(kps []*room.KeyPackage) (*room.Proposal, error) {
		return m.st.Invite(m.id, kps, time.Now(), o.id.PeerID())
	}, o.id.PeerID())
}

// join starts m's state from the commit list, with the master key it
// carries checked against the master's peer ID.
func (m *httpMember) join(t *testing.T, id store.RoomID) {
	t.Helper()
	cl, err := m.c.CommitList(tctx(t), id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := httpshim.VerifyMasterKey(cl.Master, cl.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cl.Commits {
		st, err := room.NewMemberState(c, mk, m.id.PeerID(), nil)
		if errors.Is(err, room.ErrNotMember) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, next := range cl.Commits[i+1:] {
			if err := st.ApplyCommit(next); err != nil {
				t.Fatal(err)
			}
		}
		m.st, m.room = st, id
		m.syncKey(t)
		return
	}
	t.Fatalf("%s: no commit lists it", m.name)
}

func (m *httpMember) seal(t *testing.T, text string) []byte {
	t.Helper()
	var id [room.MessageIDSize]byte
	rand.Read(id[:])
	b, err := m.st.SealMessage(m.secrets, text, id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedSend is a signed POST of blob to the room's messages, not sent.
func (m *httpMember) signedSend(t *testing.T, blob []byte) (*http.Request, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string][]byte{"message": blob})
	req, err := m.c.NewRequest(tctx(t), http.MethodPost, "/v1/rooms/"+m.room.String()+"/messages", body)
	if err != nil {
		t.Fatal(err)
	}
	return req, body
}

// deliver sends req (again: with a fresh copy of its body) as captured,
// and returns the status and the answer.
func deliver(t *testing.T, c *http.Client, req *http.Request, body []byte) (int, []byte) {
	t.Helper()
	r := req.Clone(tctx(t))
	r.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, b
}

// TestAdversarialHTTPReplayedMessages (THREATS.md R3, H2): room messages
// replayed and reordered over HTTP. A captured request delivered again is
// 401 replay and stores nothing; one held back past the timestamp window
// is 401 stale-timestamp (the MAC covers the timestamp, so it cannot be
// refreshed); two requests delivered in reverse order are each stored
// once, in the order they arrive; a member who posts another's message
// under a request of its own is 403 not-owner; the sender's own retry is
// the first send's sequence number; and a message of an epoch the room
// has left is 409 conflict. The room then holds each message once, and
// honest clients are served all the while.
func TestAdversarialHTTPReplayedMessages(t *testing.T) {
	hp := startHTTPPeer(t, nil)
	alice, bob := hp.member(t, "alice"), hp.member(t, "bob")
	id := alice.createRoom(t)
	alice.invite(t, bob)
	bob.join(t, id)
	ctx := tctx(t)
	whileServingHTTP(t, hp, "", func() {
		first := alice.seal(t, "one")
		req, body := alice.signedSend(t, first)
		if st, b := deliver(t, alice.c.HTTPClient, req, body); st != http.StatusOK {
			t.Fatalf("the first send: %d %s", st, b)
		}
		if st, b := deliver(t, alice.c.HTTPClient, req, body); st != http.StatusUnauthorized || !bytes.Contains(b, []byte(`"code":"replay"`)) {
			t.Errorf("the captured request again: %d %s, want 401 replay", st, b)
		}

		// Held back: signed with a clock more than the window behind.
		alice.c.Now = func() time.Time { return time.Now().Add(-2 * httpshim.DefaultRequestSkew) }
		_, err := alice.c.Send(ctx, id, alice.seal(t, "late"))
		alice.c.Now = nil
		apiErr(t, "a request held back past the window", err, http.StatusUnauthorized, "stale-timestamp", "")

		// Reordered: the later request first.
		r2, b2 := alice.signedSend(t, alice.seal(t, "two"))
		r3, b3 := alice.signedSend(t, alice.seal(t, "three"))
		for _, d := range []struct {
			req  *http.Request
			body []byte
			seq  uint64
		}{{r3, b3, 2}, {r2, b2, 3}} {
			st, b := deliver(t, alice.c.HTTPClient, d.req, d.body)
			var out struct {
				Seq uint64 `json:"seq"`
			}
			if st != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Seq != d.seq {
				t.Errorf("a reordered send: %d %s, want seq %d", st, b, d.seq)
			}
			if st, _ := deliver(t, alice.c.HTTPClient, d.req, d.body); st != http.StatusUnauthorized {
				t.Errorf("a reordered send again: %d, want 401", st)
			}
		}

		// Another's message under bob's own request: not-owner.
		_, err = bob.c.Send(ctx, id, first)
		apiErr(t, "bob posts alice's message", err, http.StatusForbidden, "unauthorized", "not-owner")
		// Alice's retry of her own: stored once, the first seq.
		if seq, err := alice.c.Send(ctx, id, first); err != nil || seq != 1 {
			t.Errorf("alice's retry: seq %d, %v; want 1", seq, err)
		}

		// A new message of epoch 2 after the room moved to epoch 3.
		old := alice.seal(t, "old epoch")
		alice.next(t, func(kps []*room.KeyPackage) (*room.Proposal, error) {
			return alice.st.Rotate(alice.id, kps, time.Now())
		})
		_, err = alice.c.Send(ctx, id, old)
		apiErr(t, "a message of a past epoch", err, http.StatusConflict, "conflict", "")
	})
	ms, err := bob.c.Read(ctx, id, 0, 100, 0)
	if err != nil || len(ms) != 3 {
		t.Fatalf("the room holds %d messages (%v), want 3", len(ms), err)
	}
	for i, want := range []string{"one", "three", "two"} {
		_, kph, err := room.MessageSigner(ms[i].Message)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bob.c.FetchKeyPackage(ctx, kph)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := room.VerifyStoredKeyPackage(b)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := bob.st.OpenHistory(ms[i].Message, kp)
		if err != nil || pt.Text != want {
			t.Fatalf("message %d: %v %v, want %q", i+1, pt, err, want)
		}
	}
}

// TestAdversarialHTTPRoomAuthorization (THREATS.md R1, R2): the room
// rules over HTTP are the TCP front end's. Mallory, with a session and no
// membership, cannot read, post, open the room's event stream, see its
// info, commits or wrapped keys, commit, upload a wrapped key or delete
// (403 not-member); Bob, a member, cannot act as the master (403
// not-master); Carol, removed, cannot read, post or fetch the new epoch's
// key (403 not-member). The room stays as the master made it, and honest
// clients are served all the while.
func TestAdversarialHTTPRoomAuthorization(t *testing.T) {
	hp := startHTTPPeer(t, nil)
	alice, bob, carol, mallory := hp.member(t, "alice"), hp.member(t, "bob"), hp.member(t, "carol"), hp.member(t, "mallory")
	id := alice.createRoom(t)
	alice.invite(t, bob)
	bob.join(t, id)
	alice.invite(t, carol)
	carol.join(t, id)
	carolMsg := carol.seal(t, "before removal")
	alice.next(t, func(kps []*room.KeyPackage) (*room.Proposal, error) {
		return alice.st.Remove(alice.id, kps, time.Now(), carol.id.PeerID())
	})
	ctx := tctx(t)
	createCommit := firstCommit(t, alice, id)
	wk, err := alice.c.FetchWrappedKey(ctx, id, 4)
	if err != nil {
		t.Fatal(err)
	}
	whileServingHTTP(t, hp, "", func() {
		type tc struct {
			name   string
			err    error
			reason string
		}
		events := func(m *httpMember) error {
			es, err := m.c.RoomEvents(ctx, id, "")
			if err == nil {
				es.Close()
			}
			return err
		}
		cases := []tc{
			{"mallory reads", func() error { _, err := mallory.c.Read(ctx, id, 0, 10, 0); return err }(), "not-member"},
			{"mallory posts", func() error { _, err := mallory.c.Send(ctx, id, carolMsg); return err }(), "not-member"},
			{"mallory's room events", events(mallory), "not-member"},
			{"mallory's room info", func() error { _, err := mallory.c.RoomInfo(ctx, id); return err }(), "not-member"},
			{"mallory fetches commits", func() error { _, _, err := mallory.c.FetchCommits(ctx, id, 0, 10); return err }(), "not-member"},
			{"mallory fetches a wrapped key", func() error { _, err := mallory.c.FetchWrappedKey(ctx, id, 4); return err }(), "not-member"},
			{"mallory commits the create again", func() error { _, err := mallory.c.Commit(ctx, id, createCommit); return err }(), "not-member"},
			{"mallory uploads a wrapped key", mallory.c.UploadWrappedKey(ctx, id, wk), "not-member"},
			{"mallory deletes", mallory.c.Delete(ctx, id), "not-member"},
			{"bob commits", func() error { _, err := bob.c.Commit(ctx, id, createCommit); return err }(), "not-master"},
			{"bob uploads a wrapped key", bob.c.UploadWrappedKey(ctx, id, wk), "not-master"},
			{"bob deletes", bob.c.Delete(ctx, id), "not-master"},
			{"bob fetches a leave request", func() error { _, err := bob.c.FetchLeave(ctx, id, carol.id.PeerID()); return err }(), "not-master"},
			{"removed carol reads", func() error { _, err := carol.c.Read(ctx, id, 0, 10, 0); return err }(), "not-member"},
			{"removed carol posts", func() error { _, err := carol.c.Send(ctx, id, carolMsg); return err }(), "not-member"},
			{"removed carol fetches the new key", func() error { _, err := carol.c.FetchWrappedKey(ctx, id, 4); return err }(), "not-member"},
			{"removed carol's room events", events(carol), "not-member"},
		}
		for _, c := range cases {
			apiErr(t, c.name, c.err, http.StatusForbidden, "unauthorized", c.reason)
		}
	})
	cs, epoch, err := bob.c.FetchCommits(ctx, id, 0, 10)
	if err != nil || epoch != 4 || len(cs) != 4 {
		t.Fatalf("the room after the attack: %d commits, epoch %d, %v", len(cs), epoch, err)
	}
	if ms, err := bob.c.Read(ctx, id, 0, 10, 0); err != nil || len(ms) != 0 {
		t.Fatalf("the room holds %d messages (%v), want none", len(ms), err)
	}
}

// firstCommit is the room's create commit.
func firstCommit(t *testing.T, m *httpMember, id store.RoomID) []byte {
	t.Helper()
	cs, _, err := m.c.FetchCommits(tctx(t), id, 0, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("commits: %v", err)
	}
	return cs[0]
}
