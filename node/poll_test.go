package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// switchStore is a store whose backend can be taken down: while down,
// every call fails with an error wrapping store.ErrUnavailable, as
// store/mongo's do while its server is gone.
type switchStore struct {
	store.Store
	down atomic.Bool
}

func (s *switchStore) check() error {
	if s.down.Load() {
		return fmt.Errorf("%w: test backend is down", store.ErrUnavailable)
	}
	return nil
}

func (s *switchStore) GetRoom(ctx context.Context, id store.RoomID) (store.Room, error) {
	if err := s.check(); err != nil {
		return store.Room{}, err
	}
	return s.Store.GetRoom(ctx, id)
}

func (s *switchStore) GetMember(ctx context.Context, id store.RoomID, p store.PeerID) (store.Member, error) {
	if err := s.check(); err != nil {
		return store.Member{}, err
	}
	return s.Store.GetMember(ctx, id, p)
}

func (s *switchStore) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	if err := s.check(); err != nil {
		return store.Message{}, err
	}
	return s.Store.AppendMessage(ctx, m)
}

func (s *switchStore) MessageSpan(ctx context.Context, id store.RoomID) (store.Span, error) {
	if err := s.check(); err != nil {
		return store.Span{}, err
	}
	return s.Store.MessageSpan(ctx, id)
}

func (s *switchStore) ListRooms(ctx context.Context, p store.PeerID, after store.RoomID, limit int) ([]store.Room, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.Store.ListRooms(ctx, p, after, limit)
}

// startSharedHosts starts n hosts with one identity over one store, as n
// lanpeer processes sharing a --home and a database would be, each
// polling the store every interval.
func startSharedHosts(t *testing.T, n int, interval time.Duration) ([]*roomHost, *switchStore) {
	t.Helper()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	sw := &switchStore{Store: mem}
	return startHostsOn(t, sw, n, interval), sw
}

// startHostsOn starts n hosts with one identity over st, each polling it
// every interval (0: never).
func startHostsOn(t testing.TB, st store.Store, n int, interval time.Duration) []*roomHost {
	t.Helper()
	id := identity(t, "ed-s")
	hosts := make([]*roomHost, n)
	for i := range hosts {
		svc, err := NewService(ServiceConfig{Store: st, Logger: testLogger(), PollInterval: interval})
		if err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Identity: id, Logger: testLogger(), HandshakeRate: -1, MaxSessionsPerAddr: -1}
		svc.Configure(cfg)
		srv := startServer(t, cfg)
		t.Cleanup(func() { svc.Close() })
		hosts[i] = &roomHost{srv: srv, svc: svc}
	}
	return hosts
}

// collectMessages gathers p's message pushes of its room until the push of
// message last, and fails on any sequence number pushed twice.
func collectMessages(t *testing.T, p *roomPeer, last uint64) map[uint64]bool {
	t.Helper()
	got := map[uint64]bool{}
	deadline := time.After(hang)
	for !got[last] {
		select {
		case push := <-p.pushes.C():
			switch {
			case push.Kind == PushLost:
				t.Fatalf("%s: pushes lost", p.name)
			case push.Kind != PushMessage || push.Room != p.room:
				continue
			case got[push.Message.Seq]:
				t.Fatalf("%s: message %d pushed twice", p.name, push.Message.Seq)
			}
			got[push.Message.Seq] = true
		case <-deadline:
			t.Fatalf("%s: no push of message %d; got %v", p.name, last, got)
		}
	}
	return got
}

// waitPolled waits until h's poller has passed message seq and epoch of
// room id.
func waitPolled(t *testing.T, h *roomHost, id store.RoomID, seq, epoch uint64) {
	t.Helper()
	waitFor(t, "the poller passing the room's state", func() bool {
		h.svc.poll.mu.Lock()
		defer h.svc.poll.mu.Unlock()
		r := h.svc.poll.rooms[id]
		return r != nil && r.ready && r.cursor >= seq && r.epoch >= epoch
	})
}

// TestPollSharedStore: two hosts with one identity over one store (the
// scale-out story) serve one room. A member connected to either gets the
// invite's key sync, the rotation, every message and the deletion made
// through the other, each message exactly once, whichever host stored it.
func TestPollSharedStore(t *testing.T) {
	hosts, _ := startSharedHosts(t, 2, 20*time.Millisecond)
	a, b := hosts[0], hosts[1]
	if pinned(a.srv)[:64] != pinned(b.srv)[:64] {
		t.Fatal("the hosts have two identities")
	}
	alice, bob := a.newRoomPeer(t, "alice"), b.newRoomPeer(t, "bob")
	id := alice.createRoom(t, "shared")

	// Invited through A, bob learns it on B: the key sync of epoch 2.
	alice.invite(t, bob)
	bob.nextPush(t, "key sync of the invite, through the other host", func(p Push) bool {
		return p.Kind == PushKeySync && p.Room == id && p.Epoch == 2
	})
	bob.joinRoom(t, id, alice.pid())

	// A rotation through A reaches bob on B: membership, then key sync.
	alice.rotate(t)
	bob.nextPush(t, "rotation through the other host", func(p Push) bool {
		return p.Kind == PushMembership && p.Room == id && p.Epoch == 3 && p.Event == EventRotate
	})
	bob.nextPush(t, "key sync of the rotation", func(p Push) bool { return p.Kind == PushKeySync && p.Room == id && p.Epoch == 3 })
	bob.catchUp(t)

	// Messages through both hosts, interleaved: one dense sequence.
	const each = 15
	seqs := map[uint64]string{}
	for i := range each {
		for _, p := range []*roomPeer{alice, bob} {
			text := fmt.Sprintf("%s %d", p.name, i)
			seq := p.send(t, p.seal(t, text))
			if seqs[seq] != "" {
				t.Fatalf("seq %d given to %q and %q", seq, seqs[seq], text)
			}
			seqs[seq] = text
		}
	}
	// The last message through the other host closes each member's
	// collection: the poller pushes in order, so every message before it
	// has been pushed by then.
	toBob := alice.send(t, alice.seal(t, "last from alice"))
	toAlice := bob.send(t, bob.seal(t, "last from bob"))
	for _, c := range []struct {
		p    *roomPeer
		last uint64
	}{{alice, toAlice}, {bob, toBob}} {
		got := collectMessages(t, c.p, c.last)
		for seq := uint64(1); seq <= 2*each; seq++ {
			if !got[seq] {
				t.Errorf("%s: message %d (%q) was not pushed", c.p.name, seq, seqs[seq])
			}
		}
	}
	msgs, err := bob.rc.Read(tctx(t), id, 0, 100)
	if err != nil || len(msgs) != 2*each+2 {
		t.Fatalf("read through B: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
		if pt := bob.openHistory(t, m.Blob); i < 2*each && pt.Text != seqs[m.Seq] {
			t.Fatalf("message %d reads %q, want %q", m.Seq, pt.Text, seqs[m.Seq])
		}
	}

	// A deletion through A reaches bob on B.
	if err := alice.rc.Delete(tctx(t), id); err != nil {
		t.Fatal(err)
	}
	bob.nextPush(t, "deletion through the other host", func(p Push) bool {
		return p.Kind == PushMembership && p.Room == id && p.Event == EventDelete
	})
}

// TestPollOwnPushesOnce: with polling on, a host's own pushes are not
// pushed again by its poller: a member gets each message, the rotation
// and the key sync once.
func TestPollOwnPushesOnce(t *testing.T) {
	hosts, _ := startSharedHosts(t, 1, MinPollInterval)
	h := hosts[0]
	alice, bob := h.newRoomPeer(t, "alice"), h.newRoomPeer(t, "bob")
	id := alice.createRoom(t, "one")
	alice.invite(t, bob)
	bob.joinRoom(t, id, alice.pid())
	alice.rotate(t)
	const n = 30
	for i := range n {
		alice.send(t, alice.seal(t, fmt.Sprint(i)))
	}
	// Once the poller has passed them, a marker closes the collection: a
	// duplicate from the poller would come before it.
	waitPolled(t, h, id, n, 3)
	last := alice.send(t, alice.seal(t, "marker"))
	counts := map[string]int{}
	deadline := time.After(hang)
	for done := false; !done; {
		select {
		case p := <-bob.pushes.C():
			if p.Room != id {
				continue
			}
			key := fmt.Sprintf("kind %d epoch %d seq %d", p.Kind, p.Epoch, p.Message.Seq)
			counts[key]++
			if counts[key] > 1 {
				t.Fatalf("pushed twice: %s", key)
			}
			done = p.Kind == PushMessage && p.Message.Seq == last
		case <-deadline:
			t.Fatalf("no push of the marker; got %v", counts)
		}
	}
	if counts[fmt.Sprintf("kind %d epoch 3 seq 0", PushMembership)] != 1 || counts[fmt.Sprintf("kind %d epoch 3 seq 0", PushKeySync)] != 1 {
		t.Fatalf("the rotation's pushes: %v", counts)
	}
}

// TestStoreOutageTyped: while the host's store is down, a send is refused
// with a typed error (reason unavailable, matching store.ErrUnavailable);
// once it is back, the same send succeeds, nothing acknowledged is lost,
// and the other host's poller pushes what was stored after the outage.
func TestStoreOutageTyped(t *testing.T) {
	hosts, sw := startSharedHosts(t, 2, 20*time.Millisecond)
	alice, bob := hosts[0].newRoomPeer(t, "alice"), hosts[1].newRoomPeer(t, "bob")
	id := alice.createRoom(t, "outage")
	alice.invite(t, bob)
	bob.joinRoom(t, id, alice.pid())
	first := alice.send(t, alice.seal(t, "before"))
	// B polls the room before the outage: what is stored from then on is
	// pushed by B.
	waitPolled(t, hosts[1], id, first, 2)

	sw.down.Store(true)
	during := alice.seal(t, "during")
	_, err := alice.rc.Send(tctx(t), id, during)
	re := wantRefused(t, err, store.ErrUnavailable)
	if re.Reason.String() != "unavailable" {
		t.Fatalf("refused with reason %v, want unavailable", re.Reason)
	}
	if _, err := bob.rc.Read(tctx(t), id, 0, 10); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read during the outage: %v", err)
	}
	sw.down.Store(false)

	seq := alice.send(t, during) // the same message id: stored once
	if seq != first+1 {
		t.Fatalf("the send after the outage got seq %d, want %d", seq, first+1)
	}
	got := collectMessages(t, bob, seq)
	if !got[seq] {
		t.Fatal("bob missed the message sent after the outage")
	}
	msgs, err := bob.rc.Read(tctx(t), id, 0, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("after the outage: %d messages, %v", len(msgs), err)
	}
}

// TestPollIntervalConfig: the poll interval is off (0) or within bounds.
func TestPollIntervalConfig(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 2 * time.Minute} {
		if _, err := NewService(ServiceConfig{Store: mem, PollInterval: d}); !errors.Is(err, ErrConfig) {
			t.Errorf("PollInterval %v: %v, want ErrConfig", d, err)
		}
	}
	for _, d := range []time.Duration{0, MinPollInterval, MaxPollInterval} {
		s, err := NewService(ServiceConfig{Store: mem, PollInterval: d})
		if err != nil {
			t.Fatalf("PollInterval %v: %v", d, err)
		}
		s.Close()
	}
}
