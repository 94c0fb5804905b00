package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// directPeer is one side's Messaging, with what it received.
type directPeer struct {
	msg *Messaging
	mu  sync.Mutex
	got []Received
}

func newDirectPeer(cfg DirectConfig) *directPeer {
	p := &directPeer{}
	cfg.OnMessage = func(r Received) {
		p.mu.Lock()
		p.got = append(p.got, r)
		p.mu.Unlock()
	}
	p.msg = NewMessaging(cfg)
	return p
}

func (p *directPeer) received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Received(nil), p.got...)
}

// waitReceived waits until p holds n messages and returns them.
func (p *directPeer) waitReceived(t *testing.T, n int) []Received {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(p.received()) >= n })
	return p.received()
}

type directPair struct {
	client, server     *directPeer
	cconn, sconn       *Conn
	cm, sm             *Messenger
	srv                *Server
	clientID, serverID cryptosuite.PeerID
}

// directSession starts a server with sp's Messaging and dials it with
// cp's, in mode kex, with identities rq (requestor) and rs (responder).
func directSession(t *testing.T, kex cryptosuite.KEXID, rq, rs string, cp, sp DirectConfig) *directPair {
	t.Helper()
	p := &directPair{client: newDirectPeer(cp), server: newDirectPeer(sp)}
	t.Cleanup(p.server.msg.Wait) // after the server's cleanup below has drained it
	scfg := serverConfig(identity(t, rs))
	scfg.Handlers, scfg.AllowRSA = p.server.msg.Handlers(), true
	sessions := make(chan *Conn, 1)
	scfg.OnSession = func(c *Conn) { sessions <- c }
	p.srv = startServer(t, scfg)

	ccfg := clientConfig(identity(t, rq))
	ccfg.KEX, ccfg.AllowRSA, ccfg.Handlers = kex, true, p.client.msg.Handlers()
	p.cconn = mustDial(t, pinned(p.srv), ccfg)
	t.Cleanup(func() {
		p.cconn.Close()
		p.client.msg.Wait()
	})
	var err error
	if p.cm, err = p.client.msg.Attach(p.cconn); err != nil {
		t.Fatal(err)
	}
	select {
	case p.sconn = <-sessions:
	case <-time.After(hang):
		t.Fatal("no session on the server")
	}
	if p.sm, err = p.server.msg.Attach(p.sconn); err != nil {
		t.Fatal(err)
	}
	p.clientID, p.serverID = identity(t, rq).PeerID(), identity(t, rs).PeerID()
	return p
}

func send(t *testing.T, m *Messenger, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := m.Send(ctx, text); err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
}

// checkInOrder checks that got are the texts prefix+i for i from 0, with
// Seq i, from peer, never going back an epoch.
func checkInOrder(t *testing.T, got []Received, prefix string, from cryptosuite.PeerID) {
	t.Helper()
	var epoch uint32
	for i, r := range got {
		if want := fmt.Sprintf("%s %d", prefix, i); r.Text != want || r.Seq != uint64(i) || r.From != from {
			t.Fatalf("message %d: %q seq %d from %s; want %q seq %d from %s", i, r.Text, r.Seq, r.From.Short(), want, i, from.Short())
		}
		if r.Epoch < epoch {
			t.Fatalf("message %d under epoch %d after epoch %d", i, r.Epoch, epoch)
		}
		epoch = r.Epoch
	}
}

// TestDirectBothWays: each side sends on its own direct stream at the
// same time; every message arrives once, in order, from the right peer,
// under epoch 0 (no rekey with the default policy).
func TestDirectBothWays(t *testing.T) {
	p := directSession(t, cryptosuite.KEXX25519, "ed-a", "ed-s", DirectConfig{}, DirectConfig{})
	const n = 100
	var wg sync.WaitGroup
	for _, side := range []struct {
		m      *Messenger
		prefix string
	}{{p.cm, "to server"}, {p.sm, "to client"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := side.m.Send(context.Background(), fmt.Sprintf("%s %d", side.prefix, i)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := p.server.waitReceived(t, n)
	checkInOrder(t, got, "to server", p.clientID)
	back := p.client.waitReceived(t, n)
	checkInOrder(t, back, "to client", p.serverID)
	if got[0].Session != back[0].Session || got[0].Session != p.cconn.Keys().SessionID || got[0].Conn != p.sconn {
		t.Fatal("messages do not name their session")
	}
	if got[n-1].Epoch != 0 || p.cm.Epoch() != 0 || p.sm.Epoch() != 0 {
		t.Fatal("rekeyed under the default policy")
	}
	// Tabs, line feeds and any script travel as they are.
	send(t, p.cm, "tab\there\nnew line, ñ, 日本, 👩‍💻")
	if r := p.server.waitReceived(t, n+1)[n]; r.Text != "tab\there\nnew line, ñ, 日本, 👩‍💻" {
		t.Fatalf("text %q", r.Text)
	}
}

// TestDirectRekeyModes: with a policy of a rekey every 4 messages, both
// sides keep sending while exchanges run, in every mode; the messages
// arrive in order across the switches, the epochs climb on both sides,
// and later messages travel under the new keys.
func TestDirectRekeyModes(t *testing.T) {
	for _, c := range []struct {
		kex    cryptosuite.KEXID
		rq, rs string
	}{
		{cryptosuite.KEXX25519, "ed-a", "ed-s"},
		{cryptosuite.KEXP256, "ed-a", "ed-s"},
		{cryptosuite.KEXX25519MLKEM768, "ed-a", "ed-s"},
		{cryptosuite.KEXX25519, "rsa2048", "rsa3072"},
		{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072"},
	} {
		t.Run(c.kex.String()+"/"+c.rq, func(t *testing.T) {
			policy := DirectConfig{Rekey: session.RekeyPolicy{AfterMessages: 4, MinInterval: time.Millisecond}}
			p := directSession(t, c.kex, c.rq, c.rs, policy, policy)
			const perRound, rounds = 10, 3
			for round := range rounds {
				var wg sync.WaitGroup
				for _, side := range []struct {
					m      *Messenger
					prefix string
				}{{p.cm, "up"}, {p.sm, "down"}} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := round * perRound; i < (round+1)*perRound; i++ {
							if err := side.m.Send(context.Background(), fmt.Sprintf("%s %d", side.prefix, i)); err != nil {
								t.Errorf("send: %v", err)
								return
							}
						}
					}()
				}
				wg.Wait()
				// Each side sealed at least AfterMessages under the round's
				// epoch: an exchange is due and completes.
				waitFor(t, "both sides past the round's epoch", func() bool {
					return p.cm.Epoch() > uint32(round) && p.sm.Epoch() > uint32(round)
				})
			}
			up := p.server.waitReceived(t, rounds*perRound)
			checkInOrder(t, up, "up", p.clientID)
			down := p.client.waitReceived(t, rounds*perRound)
			checkInOrder(t, down, "down", p.serverID)
			// The last round was sealed after two completed exchanges.
			if up[len(up)-1].Epoch < 2 || down[len(down)-1].Epoch < 2 {
				t.Fatalf("last messages under epochs %d and %d", up[len(up)-1].Epoch, down[len(down)-1].Epoch)
			}
			if p.cm.Err() != nil || p.sm.Err() != nil || p.cconn.Err() != nil {
				t.Fatalf("errors: %v, %v, %v", p.cm.Err(), p.sm.Err(), p.cconn.Err())
			}
		})
	}
}

// TestDirectRekeyResponderAsks: only the responder's policy fires; it asks
// with RekeyRequest and the requestor runs the exchange.
func TestDirectRekeyResponderAsks(t *testing.T) {
	p := directSession(t, cryptosuite.KEXX25519, "ed-a", "ed-s",
		DirectConfig{Rekey: session.RekeyPolicy{MinInterval: time.Millisecond}},
		DirectConfig{Rekey: session.RekeyPolicy{AfterMessages: 3}})
	for i := range 3 {
		send(t, p.sm, fmt.Sprintf("down %d", i))
	}
	waitFor(t, "the responder's request answered", func() bool { return p.sm.Epoch() == 1 && p.cm.Epoch() == 1 })
	send(t, p.sm, "down 3")
	got := p.client.waitReceived(t, 4)
	checkInOrder(t, got, "down", p.serverID)
	if got[3].Epoch != 1 {
		t.Fatalf("message after the rekey under epoch %d", got[3].Epoch)
	}
}

// TestDirectRekeyStalls: a peer that never answers a rekey flight gets an
// Error timeout on the control stream and loses the session, on either
// side of the exchange.
func TestDirectRekeyStalls(t *testing.T) {
	t.Run("requestor waits for the reply", func(t *testing.T) {
		ctrlErr := make(chan error, 1)
		scfg := serverConfig(identity(t, "ed-s"))
		scfg.Handlers = map[StreamKind]Handler{
			KindDirect: drainHandler,
			KindControl: HandlerFunc(func(ctx context.Context, s *Stream) {
				for { // swallows the RekeyInit, then sees the refusal
					if _, err := s.ReadFrame(); err != nil {
						ctrlErr <- err
						return
					}
				}
			}),
		}
		srv := startServer(t, scfg)
		var logs logStore
		cp := newDirectPeer(DirectConfig{Rekey: session.RekeyPolicy{AfterMessages: 1}, RekeyTimeout: 50 * time.Millisecond})
		t.Cleanup(cp.msg.Wait)
		ccfg := clientConfig(identity(t, "ed-a"))
		ccfg.Handlers, ccfg.Logger = cp.msg.Handlers(), logs.logger()
		conn := mustDial(t, pinned(srv), ccfg)
		m, err := cp.msg.Attach(conn)
		if err != nil {
			t.Fatal(err)
		}
		send(t, m, "one") // due: RekeyInit goes out, and nothing comes back
		select {
		case <-m.Done():
		case <-time.After(hang):
			t.Fatal("the session outlived a stalled rekey")
		}
		if !errors.Is(m.Err(), ErrRekeyTimeout) || !anyIs(logs.errorsLogged("closing the session"), ErrRekeyTimeout) {
			t.Fatalf("messenger error %v; logged %v", m.Err(), logs.errorsLogged("closing the session"))
		}
		var se *StreamError
		if err := <-ctrlErr; !errors.As(err, &se) || se.Code != wire.CodeTimeout {
			t.Fatalf("the peer's control stream ended with %v, want Error timeout", err)
		}
	})
	t.Run("responder waits for the confirmation", func(t *testing.T) {
		sp := newDirectPeer(DirectConfig{RekeyTimeout: 50 * time.Millisecond})
		t.Cleanup(sp.msg.Wait)
		scfg := serverConfig(identity(t, "ed-s"))
		scfg.Handlers = sp.msg.Handlers()
		srv := startServer(t, scfg)
		conn := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
		s, err := conn.OpenStream(context.Background(), KindControl)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		kex, err := conn.Keys().KEX.NewRequestor(cryptosuite.RequestorKEXConfig{})
		if err != nil {
			t.Fatal(err)
		}
		writeMsg(t, s, &wire.RekeyInit{Epoch: 1, Share: kex.Share()})
		s.SetReadDeadline(time.Now().Add(hang))
		if m := readMsg(t, s); m.Type() != wire.TypeRekeyReply {
			t.Fatalf("got %v, want RekeyReply", m.Type())
		}
		// No RekeyConfirm: the responder gives up.
		_, err = s.ReadFrame()
		var se *StreamError
		if !errors.As(err, &se) || se.Code != wire.CodeTimeout {
			t.Fatalf("control stream: %v, want Error timeout", err)
		}
		select {
		case <-conn.Done():
		case <-time.After(hang):
			t.Fatal("the responder kept the session")
		}
	})
}

var drainHandler = HandlerFunc(func(ctx context.Context, s *Stream) {
	for {
		if _, err := s.ReadFrame(); err != nil {
			return
		}
	}
})

func writeMsg(t *testing.T, s *Stream, m wire.Message) {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFrame(b); err != nil {
		t.Fatal(err)
	}
}

func readMsg(t *testing.T, s *Stream) wire.Message {
	t.Helper()
	p, err := s.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDirectRefusals: a requestor that sends what a direct or control
// stream must not carry gets an Error with the rule's code, loses its
// session, and the server logs the typed error; a good client is served
// all the while.
func TestDirectRefusals(t *testing.T) {
	var logs logStore
	sp := newDirectPeer(DirectConfig{})
	t.Cleanup(sp.msg.Wait)
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.Handlers, scfg.Logger = sp.msg.Handlers(), logs.logger()
	srv := startServer(t, scfg)

	// good keeps a session with messages flowing while the others fail.
	gp := newDirectPeer(DirectConfig{})
	t.Cleanup(gp.msg.Wait)
	gcfg := clientConfig(identity(t, "ed-b"))
	gcfg.Handlers = gp.msg.Handlers()
	good := mustDial(t, pinned(srv), gcfg)
	gm, err := gp.msg.Attach(good)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0

	type attempt struct {
		name string
		kind StreamKind
		msgs func(keys *session.Keys) []wire.Message // the last one is refused
		code wire.ErrorCode
		err  error
	}
	sealed := func(keys *session.Keys, texts ...string) []wire.Message {
		s, err := session.NewDirectSender(keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []wire.Message
		for _, text := range texts {
			m, err := s.Seal(text)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	for _, a := range []attempt{
		{"garbage box", KindDirect, func(*session.Keys) []wire.Message {
			return []wire.Message{&wire.DirectMessage{Seq: 0, Box: bytes.Repeat([]byte{7}, 40)}}
		}, wire.CodeBadSignature, session.ErrDirectOpen},
		{"a gap in Seq", KindDirect, func(k *session.Keys) []wire.Message {
			m := sealed(k, "a")[0].(*wire.DirectMessage)
			m.Seq = 3
			return []wire.Message{m}
		}, wire.CodeProtocol, session.ErrDirectSeq},
		{"a replay", KindDirect, func(k *session.Keys) []wire.Message {
			m := sealed(k, "a")
			return []wire.Message{m[0], m[0]}
		}, wire.CodeProtocol, session.ErrDirectSeq},
		{"an epoch no rekey made", KindDirect, func(k *session.Keys) []wire.Message {
			m := sealed(k, "a")[0].(*wire.DirectMessage)
			m.Epoch = 7
			return []wire.Message{m}
		}, wire.CodeConflict, session.ErrDirectEpoch},
		{"another message type", KindDirect, func(*session.Keys) []wire.Message {
			return []wire.Message{&wire.RekeyRequest{Epoch: 1}}
		}, wire.CodeProtocol, ErrNotDirectMessage},
		{"a reflected message", KindDirect, func(k *session.Keys) []wire.Message {
			// Sealed as the responder would: the server's own direction.
			r := *k
			r.Role = session.RoleResponder
			return sealed(&r, "a")
		}, wire.CodeBadSignature, session.ErrDirectOpen},
		{"rekey for a later epoch", KindControl, func(k *session.Keys) []wire.Message {
			kex, err := k.KEX.NewRequestor(cryptosuite.RequestorKEXConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return []wire.Message{&wire.RekeyInit{Epoch: 2, Share: kex.Share()}}
		}, wire.CodeConflict, session.ErrRekeyEpoch},
		{"a confirmation out of turn", KindControl, func(*session.Keys) []wire.Message {
			return []wire.Message{&wire.RekeyConfirm{Epoch: 1, MAC: make([]byte, 32)}}
		}, wire.CodeProtocol, session.ErrRekeyUnexpected},
		{"a share of the wrong size", KindControl, func(*session.Keys) []wire.Message {
			return []wire.Message{&wire.RekeyInit{Epoch: 1, Share: make([]byte, 31)}}
		}, wire.CodeBadSignature, session.ErrRekeyBadShare},
	} {
		t.Run(a.name, func(t *testing.T) {
			conn := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
			s, err := conn.OpenStream(context.Background(), a.kind)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, m := range a.msgs(conn.Keys()) {
				b, err := wire.Encode(m)
				if err != nil {
					t.Fatal(err)
				}
				// A write may report the session's end once the server
				// has refused and closed: what it sent is checked below.
				_ = s.WriteFrame(b)
			}
			s.SetReadDeadline(time.Now().Add(hang))
			_, err = s.ReadFrame()
			var se *StreamError
			if !errors.As(err, &se) || se.Code != a.code {
				t.Fatalf("stream: %v, want Error %v", err, a.code)
			}
			select {
			case <-conn.Done():
			case <-time.After(hang):
				t.Fatal("the server kept the session")
			}
			waitFor(t, "the typed error logged", func() bool { return anyIs(logs.errorsLogged("closing the session"), a.err) })
			send(t, gm, fmt.Sprintf("good %d", sent))
			sent++
		})
	}
	got := sp.waitReceived(t, sent+1) // plus the replay case's first message
	var fromGood []Received
	for _, r := range got {
		if r.From == identity(t, "ed-b").PeerID() {
			fromGood = append(fromGood, r)
		}
	}
	checkInOrder(t, fromGood, "good", identity(t, "ed-b").PeerID())
	if len(fromGood) != sent || good.Err() != nil {
		t.Fatalf("good client: %d of %d messages, session error %v", len(fromGood), sent, good.Err())
	}
}

// TestDirectText: a text that may not travel is refused before anything
// is sent or consumed; the next good text goes out with Seq 0.
func TestDirectText(t *testing.T) {
	p := directSession(t, cryptosuite.KEXX25519, "ed-a", "ed-s", DirectConfig{}, DirectConfig{})
	for _, bad := range []string{"", "esc \x1b[31m", "cr\r", string(make([]byte, session.MaxDirectTextSize+1)), "\xff"} {
		if err := p.cm.Send(context.Background(), bad); !errors.Is(err, session.ErrDirectText) {
			t.Fatalf("send %q: %v, want ErrDirectText", bad, err)
		}
	}
	p.cm.sendMu.Lock()
	opened := p.cm.out != nil
	p.cm.sendMu.Unlock()
	if opened {
		t.Fatal("a refused text opened the direct stream")
	}
	send(t, p.cm, "fine")
	if r := p.server.waitReceived(t, 1)[0]; r.Text != "fine" || r.Seq != 0 {
		t.Fatalf("got %q seq %d", r.Text, r.Seq)
	}
}

// TestDirectFinish: once Finish returns, the peer has handed on every
// message; Send then fails.
func TestDirectFinish(t *testing.T) {
	p := directSession(t, cryptosuite.KEXX25519, "ed-a", "ed-s", DirectConfig{}, DirectConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := p.sm.Finish(ctx); err != nil {
		t.Fatalf("finish without messages: %v", err)
	}
	const n = 300
	for i := range n {
		send(t, p.cm, fmt.Sprintf("m %d", i))
	}
	if err := p.cm.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.server.received(); len(got) != n { // not waited for: Finish did
		t.Fatalf("after Finish the server has %d of %d messages", len(got), n)
	} else {
		checkInOrder(t, got, "m", p.clientID)
	}
	if err := p.cm.Send(ctx, "late"); !errors.Is(err, ErrDirectFinished) {
		t.Fatalf("send after finish: %v", err)
	}
}

// TestDirectSessionEnd: when the server goes away, the Messenger ends,
// zeroes the secrets it held and refuses to send; Attach refuses a
// session that has ended.
func TestDirectSessionEnd(t *testing.T) {
	p := directSession(t, cryptosuite.KEXX25519, "ed-a", "ed-s", DirectConfig{}, DirectConfig{})
	send(t, p.cm, "before")
	p.server.waitReceived(t, 1)
	p.srv.Close()
	for _, m := range []*Messenger{p.cm, p.sm} {
		select {
		case <-m.Done():
		case <-time.After(hang):
			t.Fatal("a messenger outlived its session")
		}
		for _, k := range [][]byte{m.c2s, m.s2c, m.rekeySecret} {
			if !bytes.Equal(k, make([]byte, len(k))) {
				t.Fatal("a secret survived the session")
			}
		}
		if m.Err() != nil {
			t.Fatalf("the end of a session is no failure: %v", m.Err())
		}
	}
	if err := p.cm.Send(context.Background(), "after"); err == nil {
		t.Fatal("sent on an ended session")
	}
	if _, err := p.client.msg.Attach(p.cconn); !errors.Is(err, ErrClosed) {
		t.Fatalf("attach after the end: %v", err)
	}
}

// TestDirectServerDraining: a requestor that attaches while the server
// drains (GoAway sent, a handler still running) cannot open its control
// stream; that is no failure: the session ends as the server closes it,
// and Err stays nil.
func TestDirectServerDraining(t *testing.T) {
	release := make(chan struct{})
	served := make(chan struct{})
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.DrainTimeout = hang
	var servedOnce sync.Once
	scfg.Handlers[kindEcho] = HandlerFunc(func(ctx context.Context, s *Stream) {
		// The probes below may open more echo streams before the GoAway
		// lands; each is held like the first.
		servedOnce.Do(func() { close(served) })
		<-release // holds the drain open, as a slow handler would
	})
	srv := startServer(t, scfg)
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before the server's cleanup, should the test fail
	var logs logStore
	cp := newDirectPeer(DirectConfig{})
	t.Cleanup(cp.msg.Wait)
	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.Handlers, ccfg.Logger = cp.msg.Handlers(), logs.logger()
	conn := mustDial(t, pinned(srv), ccfg)
	s, err := conn.OpenStream(context.Background(), kindEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-served
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	waitFor(t, "the server's GoAway", func() bool {
		probe, err := conn.OpenStream(context.Background(), kindEcho)
		if err != nil {
			return true
		}
		probe.Close()
		return false
	})
	m, err := cp.msg.Attach(conn)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the control stream's refusal", func() bool { return logs.has("no control stream") })
	free()
	<-closed
	select {
	case <-m.Done():
	case <-time.After(hang):
		t.Fatal("the messenger outlived the session")
	}
	if m.Err() != nil || logs.has("closing the session") {
		t.Fatalf("a draining server counted as a failure: %v", m.Err())
	}
}
