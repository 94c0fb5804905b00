package adversarial

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// Faults (issue 8, item 4): a member whose connection dies in the middle
// of a send. The host must go on serving the other members, keep every
// acknowledged message once at its sequence number, store nothing of a
// frame that did not arrive whole, release the dead session, and accept a
// retry of an unacknowledged message (same message id) at most once.
// cmd/lanpeer's TestChatKilledMidSend does the same with a chat process
// killed by SIGKILL.

// member is one member's client of the test's room: its identity and key
// package, its session with the host, and its state of the room.
type member struct {
	name    string
	id      *cryptosuite.Identity
	secrets *room.KeyPackageSecrets
	conn    *node.Conn
	rc      *node.RoomClient
	st      *room.MemberState
}

// newMember makes a member with a fresh identity and key package, dials p
// and publishes the key package, as every session does.
func newMember(t testing.TB, p *peer, name string) *member {
	t.Helper()
	m := &member{name: name, id: newID(t)}
	var err error
	if m.secrets, err = room.GenerateKeyPackage(m.id, 0, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	m.dial(t, p, p.srv.Addr().String())
	if err := m.rc.PublishKeyPackage(tctx(t), m.secrets.KeyPackage().Blob()); err != nil {
		t.Fatalf("%s: publishing its key package: %v", name, err)
	}
	return m
}

// dial opens a (new) session with p through addr, pinned to p's identity.
func (m *member) dial(t testing.TB, p *peer, addr string) {
	t.Helper()
	c, err := node.Dial(tctx(t), p.id.PeerID().String()+"@"+addr, &node.Config{Identity: m.id})
	if err != nil {
		t.Fatalf("%s: dial: %v", m.name, err)
	}
	t.Cleanup(func() { c.Close() })
	m.conn, m.rc = c, node.NewRoomClient(c)
}

// tctx ends at the hang deadline.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// syncKey fetches, opens and acknowledges the head epoch's wrapped key.
func (m *member) syncKey(t testing.TB, id store.RoomID) {
	t.Helper()
	epoch, _ := m.st.Head()
	w, err := m.rc.FetchWrappedKey(tctx(t), id, epoch)
	if err != nil {
		t.Fatalf("%s: wrapped key of epoch %d: %v", m.name, epoch, err)
	}
	if _, err := m.st.OpenWrappedKey(w, m.secrets); err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	if err := m.rc.Ack(tctx(t), id, epoch); err != nil {
		t.Fatal(err)
	}
}

// makeRoom has master create a room on its host and invite the others,
// who join it (epoch 2), and returns its id.
func makeRoom(t testing.TB, master *member, others ...*member) store.RoomID {
	t.Helper()
	prop, err := room.NewRoom(room.RoomConfig{Master: master.id, KeyPackage: master.secrets.KeyPackage(), Name: "faults", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := master.rc.CreateProposal(tctx(t), prop); err != nil {
		t.Fatal(err)
	}
	id := store.RoomID(prop.Info.Room)
	if master.st, err = room.NewMemberState(prop.Commit, master.id.Public(), master.id.PeerID(), nil); err != nil {
		t.Fatal(err)
	}
	master.syncKey(t, id)
	kps := []*room.KeyPackage{master.secrets.KeyPackage()}
	var ids []cryptosuite.PeerID
	for _, o := range others {
		kps = append(kps, o.secrets.KeyPackage())
		ids = append(ids, o.id.PeerID())
	}
	inv, err := master.st.Invite(master.id, kps, time.Now(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	if err := master.rc.Invite(tctx(t), inv); err != nil {
		t.Fatal(err)
	}
	if err := master.st.ApplyProposal(inv, master.secrets); err != nil {
		t.Fatal(err)
	}
	if err := master.rc.Ack(tctx(t), id, inv.Info.Epoch); err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		cs, head, err := o.rc.FetchCommits(tctx(t), id, 0, 10)
		if err != nil || head != 2 || len(cs) != 2 {
			t.Fatalf("%s: commits: %d, head %d, %v", o.name, len(cs), head, err)
		}
		if o.st, err = room.NewMemberState(cs[1], master.id.Public(), o.id.PeerID(), nil); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		o.syncKey(t, id)
	}
	return id
}

// pad makes texts long enough that every send is a frame of several
// hundred bytes, far above the window updates and stream closes between
// them.
var pad = strings.Repeat(".", 300)

// seal seals text under msgID.
func (m *member) seal(t testing.TB, text string, msgID [room.MessageIDSize]byte) []byte {
	t.Helper()
	b, err := m.st.SealMessage(m.secrets, text, msgID)
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	return b
}

func newMsgID() (id [room.MessageIDSize]byte) {
	rand.Read(id[:])
	return id
}

// traffic is honest members sending to and reading the room over their
// own sessions, one send after another, while a test does its damage.
type traffic struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked map[[room.MessageIDSize]byte]uint64 // every acknowledged send
	sends map[string]int                      // acknowledged sends per member
	err   error                               // the first failure
}

// startTraffic has each member send and read room id until stop: every
// send must be acknowledged, and every read continue from the member's
// cursor (RoomClient.Read checks that the host serves no gap).
func startTraffic(t testing.TB, id store.RoomID, ms ...*member) *traffic {
	t.Helper()
	ctx := tctx(t)
	tr := &traffic{stop: make(chan struct{}), acked: map[[room.MessageIDSize]byte]uint64{}, sends: map[string]int{}}
	for _, m := range ms {
		tr.wg.Go(func() {
			var cursor uint64
			for i := 0; i < 5000; i++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				msgID := newMsgID()
				blob, err := m.st.SealMessage(m.secrets, fmt.Sprintf("%s-%d %s", m.name, i, pad), msgID)
				var seq uint64
				if err == nil {
					seq, err = m.rc.Send(ctx, id, blob)
				}
				var got []node.StoredMessage
				if err == nil {
					got, err = m.rc.Read(ctx, id, cursor, 1000)
				}
				if err != nil {
					tr.fail(fmt.Errorf("%s, send %d: %w", m.name, i, err))
					return
				}
				cursor += uint64(len(got))
				if cursor < seq {
					tr.fail(fmt.Errorf("%s read up to %d after its own message %d was stored", m.name, cursor, seq))
					return
				}
				tr.mu.Lock()
				tr.acked[msgID] = seq
				tr.sends[m.name]++
				tr.mu.Unlock()
				time.Sleep(2 * time.Millisecond) // leave the CPU to the test's damage too
			}
		})
	}
	return tr
}

func (tr *traffic) fail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err == nil {
		tr.err = err
	}
}

// count returns name's acknowledged sends so far.
func (tr *traffic) count(name string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sends[name]
}

// more waits until every member named has had n more sends acknowledged,
// and fails the test if the traffic failed.
func (tr *traffic) more(t testing.TB, n int, names ...string) {
	t.Helper()
	base := map[string]int{}
	for _, name := range names {
		base[name] = tr.count(name)
	}
	waitFor(t, "the other members' sends", func() bool {
		tr.mu.Lock()
		failed := tr.err != nil
		tr.mu.Unlock()
		if failed {
			return true
		}
		for _, name := range names {
			if tr.count(name) < base[name]+n {
				return false
			}
		}
		return true
	})
	tr.check(t)
}

func (tr *traffic) check(t testing.TB) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err != nil {
		t.Fatalf("an honest member was not served: %v", tr.err)
	}
}

// end stops the traffic, fails the test if it failed, and returns what
// was acknowledged.
func (tr *traffic) end(t testing.TB) map[[room.MessageIDSize]byte]uint64 {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	tr.check(t)
	return tr.acked
}

// roomMessages reads the whole room as reader and returns each message's
// id and sequence number, failing on a message stored twice (one id, two
// numbers). RoomClient.Read fails on a gap.
func roomMessages(t testing.TB, reader *member, id store.RoomID, kps map[cryptosuite.PeerID]*room.KeyPackage) map[[room.MessageIDSize]byte]uint64 {
	t.Helper()
	out := map[[room.MessageIDSize]byte]uint64{}
	var cursor uint64
	for range 1000 {
		got, err := reader.rc.Read(tctx(t), id, cursor, 1000)
		if err != nil {
			t.Fatalf("reading the room after %d: %v", cursor, err)
		}
		if len(got) == 0 {
			return out
		}
		for _, sm := range got {
			sender, _, err := room.MessageSigner(sm.Blob)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := room.VerifyMessage(sm.Blob, kps[sender])
			if err != nil {
				t.Fatalf("message %d: %v", sm.Seq, err)
			}
			if prev, dup := out[msg.ID]; dup {
				t.Fatalf("message %x is stored twice, as %d and %d", msg.ID[:4], prev, sm.Seq)
			}
			out[msg.ID] = sm.Seq
		}
		cursor = got[len(got)-1].Seq
	}
	t.Fatal("too many pages of messages")
	return nil
}

func keyPackages(ms ...*member) map[cryptosuite.PeerID]*room.KeyPackage {
	out := map[cryptosuite.PeerID]*room.KeyPackage{}
	for _, m := range ms {
		out[m.id.PeerID()] = m.secrets.KeyPackage()
	}
	return out
}

// killRelay is a client's socket that the test can kill in the middle of
// a write: it passes one connection's bytes to the peer and back, and
// once armed it forwards only the first half of the next chunk of at least
// minCut bytes the client writes, then resets both connections (SO_LINGER
// 0), as the kernel does for a process killed with unread data.
type killRelay struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	cut    chan [2]int // the chunk's size and the bytes forwarded of it
	wg     sync.WaitGroup
}

const minCut = 200

func startKillRelay(t testing.TB, target string) *killRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &killRelay{ln: ln, target: target, cut: make(chan [2]int, 1)}
	r.wg.Go(r.serve)
	t.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
	})
	return r
}

func (r *killRelay) addr() string { return r.ln.Addr().String() }

// serve relays the one connection it accepts.
func (r *killRelay) serve() {
	in, err := r.ln.Accept()
	if err != nil {
		return
	}
	out, err := net.DialTimeout("tcp", r.target, hang)
	if err != nil {
		in.Close()
		return
	}
	kill := func() {
		for _, c := range []net.Conn{in, out} {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}
	r.wg.Go(func() {
		io.Copy(in, out)
		kill()
	})
	defer kill()
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if n >= minCut && r.armed.Load() {
			half := n / 2
			out.Write(buf[:half])
			r.cut <- [2]int{n, half}
			return
		}
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestAdversarialMemberKilledMidSend: carol sends to a room over four
// concurrent request streams through a socket that is killed in the
// middle of a send (half of a TLS record reaches the host, then both
// connections are reset), while alice and bob send and read throughout.
// The host keeps serving alice and bob, releases carol's session (its
// session count returns to what it was), and holds every message carol
// saw acknowledged once, at the number acknowledged, and none she did not
// send. Carol then restarts (a new session with the same state) and
// retries each unacknowledged message with its message id, twice: each is
// stored once, at the number the host had given it if it had stored it
// before the kill. The whole room is one dense sequence.
func TestAdversarialMemberKilledMidSend(t *testing.T) {
	p := startPeer(t, nil)
	alice, bob, carol := newMember(t, p, "alice"), newMember(t, p, "bob"), newMember(t, p, "carol")
	id := makeRoom(t, alice, bob, carol)
	kps := keyPackages(alice, bob, carol)
	carol.conn.Close()
	waitFor(t, "carol's first session to end", func() bool { return p.srv.Stats().Sessions == 2 })
	tr := startTraffic(t, id, alice, bob)
	defer func() {
		select {
		case <-tr.stop:
		default:
			close(tr.stop)
			tr.wg.Wait()
		}
	}()

	relay := startKillRelay(t, p.srv.Addr().String())
	carol.dial(t, p, relay.addr())
	if n := p.srv.Stats().Sessions; n != 3 {
		t.Fatalf("%d sessions with carol's", n)
	}
	type pending struct {
		text  string
		msgID [room.MessageIDSize]byte
	}
	var mu sync.Mutex
	acked := map[[room.MessageIDSize]byte]uint64{}
	var unacked []pending
	var wg sync.WaitGroup
	ctx := tctx(t)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				text := fmt.Sprintf("carol-%d-%d %s", w, i, pad)
				msgID := newMsgID()
				blob, err := carol.st.SealMessage(carol.secrets, text, msgID)
				if err != nil {
					t.Errorf("carol: %v", err)
					return
				}
				seq, err := carol.rc.Send(ctx, id, blob)
				mu.Lock()
				if err != nil {
					unacked = append(unacked, pending{text, msgID})
					mu.Unlock()
					return
				}
				acked[msgID] = seq
				mu.Unlock()
			}
		})
	}
	waitFor(t, "carol's first sends", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 })
	relay.armed.Store(true)
	var cut [2]int
	select {
	case cut = <-relay.cut:
	case <-time.After(hang):
		t.Fatal("carol's connection was never cut")
	}
	wg.Wait()
	if len(unacked) != 4 {
		t.Fatalf("%d of carol's 4 senders saw their send fail", len(unacked))
	}
	// The host releases the dead session; alice and bob go on.
	waitFor(t, "carol's session to end on the host", func() bool { return p.srv.Stats().Sessions == 2 })
	tr.more(t, 10, "alice", "bob")

	stored := roomMessages(t, bob, id, kps)
	for msgID, seq := range acked {
		if stored[msgID] != seq {
			t.Fatalf("carol saw message %x acknowledged as %d; the room holds it as %d", msgID[:4], seq, stored[msgID])
		}
	}
	before := map[[room.MessageIDSize]byte]uint64{}
	for _, u := range unacked {
		if seq, ok := stored[u.msgID]; ok {
			before[u.msgID] = seq
		}
	}

	// Carol restarts and retries what she did not see acknowledged, with
	// the same ids (sealed again, as a client does), twice.
	carol.dial(t, p, p.srv.Addr().String())
	for _, u := range unacked {
		var seqs [2]uint64
		for i := range seqs {
			seq, err := carol.rc.Send(tctx(t), id, carol.seal(t, u.text, u.msgID))
			if err != nil {
				t.Fatalf("carol's retry: %v", err)
			}
			seqs[i] = seq
		}
		if seqs[0] != seqs[1] {
			t.Fatalf("one message id stored as %d and %d", seqs[0], seqs[1])
		}
		if prev, ok := before[u.msgID]; ok && prev != seqs[0] {
			t.Fatalf("a message stored before the kill as %d was stored again as %d", prev, seqs[0])
		}
		acked[u.msgID] = seqs[0]
	}
	if err := carol.conn.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "carol's second session to end", func() bool { return p.srv.Stats().Sessions == 2 })

	honest := tr.end(t)
	stored = roomMessages(t, alice, id, kps)
	for _, set := range []map[[room.MessageIDSize]byte]uint64{acked, honest} {
		for msgID, seq := range set {
			if stored[msgID] != seq {
				t.Fatalf("message %x acknowledged as %d; the room holds it as %d", msgID[:4], seq, stored[msgID])
			}
		}
	}
	if len(stored) != len(acked)+len(honest) {
		t.Fatalf("the room holds %d messages; %d were acknowledged", len(stored), len(acked)+len(honest))
	}
	t.Logf("cut a %d-byte write after %d bytes; carol: %d acknowledged before the kill, %d of 4 in flight stored before it; alice and bob: %d; room: %d",
		cut[0], cut[1], len(acked)-len(unacked), len(before), len(honest), len(stored))
}

// TestAdversarialCutMidFrame: a member's raw session (past the handshake,
// speaking yamux itself) opens a request stream and writes part of a
// SendMessage frame — the length header cut in two, half of the payload,
// all but its last byte, or half of the yamux frame carrying it — and its
// connection then ends, closed (FIN) or reset (RST), as a process killed
// mid-write leaves it. Nothing of the frame is stored, the host releases
// the session, and the same message sent whole afterwards is stored once
// at the next number; alice and bob send and read throughout.
func TestAdversarialCutMidFrame(t *testing.T) {
	p := startPeer(t, nil)
	alice, bob, carol := newMember(t, p, "alice"), newMember(t, p, "bob"), newMember(t, p, "carol")
	id := makeRoom(t, alice, bob, carol)
	kps := keyPackages(alice, bob, carol)
	tr := startTraffic(t, id, alice, bob)
	defer func() {
		select {
		case <-tr.stop:
		default:
			close(tr.stop)
			tr.wg.Wait()
		}
	}()
	open := framed(encode(t, &wire.StreamOpen{Kind: wire.StreamRequest}))
	const sessions = 3 // alice's, bob's and carol's own
	var retried []uint64
	for i, tc := range []struct {
		name  string
		cut   func(frame []byte) []byte // the yamux bytes written
		reset bool
	}{
		{"length header", func(f []byte) []byte { return yamuxFrame(yamuxData, 0, 1, f[:2]) }, false},
		{"half the payload", func(f []byte) []byte { return yamuxFrame(yamuxData, 0, 1, f[:len(f)/2]) }, false},
		{"all but the last byte", func(f []byte) []byte { return yamuxFrame(yamuxData, 0, 1, f[:len(f)-1]) }, false},
		{"half a yamux frame", func(f []byte) []byte { y := yamuxFrame(yamuxData, 0, 1, f); return y[:len(y)/2] }, false},
		{"half the payload, reset", func(f []byte) []byte { return yamuxFrame(yamuxData, 0, 1, f[:len(f)/2]) }, true},
	} {
		msgID := newMsgID()
		text := fmt.Sprintf("cut %d %s", i, pad)
		blob := carol.seal(t, text, msgID)
		frame := framed(encode(t, &wire.SendMessage{Room: id[:], Message: blob}))

		c := dialSession(t, p, carol.id)
		waitFor(t, "the raw session", func() bool { return p.srv.Stats().Sessions == sessions+1 })
		out := append(yamuxFrame(yamuxWindowUpdate, yamuxSYN, 1, nil), yamuxFrame(yamuxData, 0, 1, open)...)
		if _, err := c.Write(append(out, tc.cut(frame)...)); err != nil {
			t.Fatal(err)
		}
		// Killed: no TLS close_notify, the socket just ends.
		tcp := c.Conn.(*tls.Conn).NetConn().(*net.TCPConn)
		if tc.reset {
			tcp.SetLinger(0)
		}
		tcp.Close()
		waitFor(t, "the cut session to end on the host", func() bool { return p.srv.Stats().Sessions == sessions })
		tr.more(t, 3, "alice", "bob")

		if seq, ok := roomMessages(t, bob, id, kps)[msgID]; ok {
			t.Fatalf("%s: the cut frame was stored as %d", tc.name, seq)
		}
		// The same message, whole, is stored once.
		seq, err := carol.rc.Send(tctx(t), id, blob)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		again, err := carol.rc.Send(tctx(t), id, blob)
		if err != nil || again != seq {
			t.Fatalf("%s: the same message sent again: %d, %v; first %d", tc.name, again, err, seq)
		}
		retried = append(retried, seq)
	}
	honest := tr.end(t)
	stored := roomMessages(t, alice, id, kps)
	if len(stored) != len(honest)+len(retried) {
		t.Fatalf("the room holds %d messages; %d were acknowledged", len(stored), len(honest)+len(retried))
	}
	for msgID, seq := range honest {
		if stored[msgID] != seq {
			t.Fatalf("message %x acknowledged as %d; the room holds it as %d", msgID[:4], seq, stored[msgID])
		}
	}
	if st := p.srv.Stats(); st.Sessions != sessions {
		t.Fatalf("%d sessions at the end, want %d", st.Sessions, sessions)
	}
}
