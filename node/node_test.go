package node

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// TestModes runs every key-agreement mode with every identity key type
// through real TCP, TLS, the handshake and yamux, and checks that both
// sides hold the same keys and that a stream works.
func TestModes(t *testing.T) {
	type tc struct {
		kex    cryptosuite.KEXID
		rq, rs string
		refuse error
	}
	var cases []tc
	for _, k := range []cryptosuite.KEXID{cryptosuite.KEXX25519, cryptosuite.KEXP256, cryptosuite.KEXX25519MLKEM768} {
		cases = append(cases, tc{k, "ed-a", "ed-s", nil}, tc{k, "rsa2048", "rsa3072", nil})
	}
	cases = append(cases,
		tc{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072", nil},
		tc{cryptosuite.KEXRSAOAEPSHA256, "rsa3072", "ed-s", nil},
		tc{cryptosuite.KEXRSAOAEPSHA256, "ed-a", "ed-s", session.ErrKEXRefused},
	)
	for _, c := range cases {
		t.Run(c.kex.String()+"/"+c.rq+"-"+c.rs, func(t *testing.T) {
			scfg := serverConfig(identity(t, c.rs))
			scfg.AllowRSA = true
			established := make(chan *Conn, 1)
			scfg.OnSession = func(c *Conn) { established <- c }
			srv := startServer(t, scfg)

			ccfg := clientConfig(identity(t, c.rq))
			ccfg.KEX, ccfg.AllowRSA = c.kex, true
			conn, err := dial(t, pinned(srv), ccfg)
			if c.refuse != nil {
				if !errors.Is(err, c.refuse) {
					t.Fatalf("dial: %v, want %v", err, c.refuse)
				}
				if st := srv.Stats(); st.SessionsEstablished != 0 {
					t.Fatalf("server established %d sessions", st.SessionsEstablished)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sconn *Conn
			select {
			case sconn = <-established:
			case <-time.After(hang):
				t.Fatal("no session on the server")
			}
			k1, k2 := conn.Keys(), sconn.Keys()
			if k1.SessionID != k2.SessionID || k1.TranscriptHash != k2.TranscriptHash ||
				!bytes.Equal(k1.C2S, k2.C2S) || !bytes.Equal(k1.S2C, k2.S2C) || k1.AuthKey != k2.AuthKey {
				t.Fatal("the two sides hold different keys")
			}
			if k1.KEX.ID != c.kex {
				t.Fatalf("mode %v, want %v", k1.KEX.ID, c.kex)
			}
			if conn.Peer() != identity(t, c.rs).PeerID() || sconn.Peer() != identity(t, c.rq).PeerID() {
				t.Fatal("peer IDs not as authenticated")
			}
			if conn.Role() != session.RoleRequestor || sconn.Role() != session.RoleResponder {
				t.Fatal("roles")
			}
			echo(t, conn, "hello over "+c.kex.String())
		})
	}
}

// TestSessionsNeverShareKeys: two sessions between the same peers.
func TestSessionsNeverShareKeys(t *testing.T) {
	srv := startServer(t, serverConfig(identity(t, "ed-s")))
	a := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	b := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	ka, kb := a.Keys(), b.Keys()
	if ka.SessionID == kb.SessionID || ka.TranscriptHash == kb.TranscriptHash || bytes.Equal(ka.C2S, kb.C2S) || bytes.Equal(ka.S2C, kb.S2C) {
		t.Fatal("two sessions share keys")
	}
}

// TestWrongPin: a man in the middle answers with its own key; the pinned
// dial refuses it during TLS, before any lanpeer byte is sent.
func TestWrongPin(t *testing.T) {
	mitm := startServer(t, serverConfig(identity(t, "ed-m")))
	want := identity(t, "ed-s").PeerID()
	_, err := dial(t, want.String()+"@"+mitm.Addr().String(), clientConfig(identity(t, "ed-a")))
	var pm *PeerMismatchError
	if !errors.As(err, &pm) || !errors.Is(err, session.ErrWrongPeer) {
		t.Fatalf("dial: %v, want a *PeerMismatchError", err)
	}
	if pm.Want != want || pm.Got != identity(t, "ed-m").PeerID() {
		t.Fatalf("mismatch %v / %v", pm.Want, pm.Got)
	}
	waitFor(t, "the server to see the TLS failure", func() bool { return mitm.Stats().TLSFailures == 1 })
	if st := mitm.Stats(); st.SessionsEstablished != 0 || st.HandshakeFailures != 0 {
		t.Fatalf("the lanpeer handshake ran: %+v", st)
	}
}

// TestTrustOnFirstUse: the first dial of HOST:PORT records the key; when
// another key answers at that address, the dial is refused with a message
// that says how to resolve it, and pinning the new key resolves it.
func TestTrustOnFirstUse(t *testing.T) {
	kp, err := session.LoadKnownPeers(filepath.Join(t.TempDir(), "known_peers"))
	if err != nil {
		t.Fatal(err)
	}
	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.Trust = kp

	first, err := Listen("127.0.0.1:0", serverConfig(identity(t, "ed-s")))
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	served := make(chan error, 1)
	go func() { served <- first.Serve(context.Background()) }()
	c := mustDial(t, addr, ccfg)
	if id, ok := kp.Lookup(addr); !ok || id != identity(t, "ed-s").PeerID() {
		t.Fatalf("known_peers holds %v %v after the first dial", id, ok)
	}
	echo(t, c, "first")
	c.Close()
	// The same key again: accepted.
	mustDial(t, addr, ccfg).Close()
	first.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	// Another peer at the same address.
	other := startServerAt(t, addr, serverConfig(identity(t, "ed-m")))
	_, err = dial(t, addr, ccfg)
	var changed *session.KeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("dial: %v, want a *session.KeyChangedError", err)
	}
	for _, want := range []string{"has changed", kp.Path(), "delete line 1", identity(t, "ed-m").PeerID().String() + "@" + addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if st := other.Stats(); st.SessionsEstablished != 0 {
		t.Fatal("a session was established with the changed key")
	}
	// Pinning the new key is the way out named in the message.
	c = mustDial(t, pinned(other), ccfg)
	echo(t, c, "pinned")
	if id, _ := kp.Lookup(addr); id != identity(t, "ed-s").PeerID() {
		t.Fatal("a pinned dial replaced the known_peers record")
	}
}

// TestIdentityMismatch: a TLS certificate of one key with a lanpeer
// handshake of another is refused, in both directions.
func TestIdentityMismatch(t *testing.T) {
	t.Run("requestor", func(t *testing.T) {
		srv := startServer(t, serverConfig(identity(t, "ed-s")))
		ccfg := clientConfig(identity(t, "ed-a"))
		ccfg.testInnerIdentity = identity(t, "ed-b")
		_, err := dial(t, pinned(srv), ccfg)
		var pe *session.PeerError
		if !errors.As(err, &pe) || pe.Code != wire.CodePolicy {
			t.Fatalf("dial: %v, want the server's policy refusal", err)
		}
		waitFor(t, "the refusal to be counted", func() bool { return srv.Stats().IdentityMismatches == 1 })
		if st := srv.Stats(); st.SessionsEstablished != 0 {
			t.Fatal("session established")
		}
	})
	t.Run("responder", func(t *testing.T) {
		scfg := serverConfig(identity(t, "ed-s"))
		scfg.testInnerIdentity = identity(t, "ed-m")
		srv := startServer(t, scfg)
		_, err := dial(t, srv.Addr().String(), clientConfig(identity(t, "ed-a")))
		// The requestor names the certificate's peer in its hello; the
		// responder's handshake identity is another, so it refuses.
		var pe *session.PeerError
		if !errors.As(err, &pe) || pe.Code != wire.CodePolicy {
			t.Fatalf("dial: %v, want a refusal", err)
		}
		if st := srv.Stats(); st.SessionsEstablished != 0 {
			t.Fatal("session established")
		}
	})
}

// TestAllowList: only listed peers get a session; others get the
// handshake's policy error.
func TestAllowList(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.Allow = []cryptosuite.PeerID{identity(t, "ed-a").PeerID()}
	srv := startServer(t, scfg)
	_, err := dial(t, pinned(srv), clientConfig(identity(t, "ed-b")))
	var pe *session.PeerError
	if !errors.As(err, &pe) || pe.Code != wire.CodePolicy {
		t.Fatalf("dial: %v, want a policy refusal", err)
	}
	echo(t, mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a"))), "allowed")
	if st := srv.Stats(); st.NotAllowed != 1 || st.SessionsEstablished != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServerOpensStreams: the listening side opens a stream back to the
// requestor (notifications), served by the requestor's handlers.
func TestServerOpensStreams(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	pushed := make(chan error, 1)
	scfg.OnSession = func(c *Conn) {
		go func() {
			s, err := c.OpenStream(context.Background(), KindDirect)
			if err != nil {
				pushed <- err
				return
			}
			defer s.Close()
			pushed <- s.WriteFrame([]byte("note"))
		}()
	}
	srv := startServer(t, scfg)
	got := make(chan string, 1)
	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.Handlers = map[StreamKind]Handler{KindDirect: HandlerFunc(func(ctx context.Context, s *Stream) {
		p, err := s.ReadFrame()
		if err == nil {
			got <- string(p)
		}
	})}
	mustDial(t, pinned(srv), ccfg)
	select {
	case err := <-pushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hang):
		t.Fatal("server did not push")
	}
	select {
	case p := <-got:
		if p != "note" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(hang):
		t.Fatal("requestor's handler got nothing")
	}
}

// rawStream opens a stream whose first frame is payload, whatever it
// holds: a peer that breaks §13.1's rules.
func rawStream(t *testing.T, c *Conn, payload []byte) *Stream {
	t.Helper()
	ys, err := c.mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.outgoing++
	c.mu.Unlock()
	s := c.newStream(ys, 0, false, framing.NewReader(ys, c.frameIn))
	t.Cleanup(func() { s.Close() })
	if err := s.w.WriteFrame(payload); err != nil {
		t.Fatal(err)
	}
	return s
}

func refusedWith(t *testing.T, s *Stream, code wire.ErrorCode) {
	t.Helper()
	s.SetDeadline(time.Now().Add(hang))
	_, err := s.ReadFrame()
	var se *StreamError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("read: %v, want a %v refusal", err, code)
	}
}

// TestStreamKinds: streams that break §13.1's rules, or of a kind no
// handler serves, are refused with protocol and the session goes on;
// OpenStream does not open them in the first place.
func TestStreamKinds(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	directServed := make(chan struct{}, 1)
	scfg.Handlers[KindDirect] = HandlerFunc(func(ctx context.Context, s *Stream) {
		directServed <- struct{}{}
		<-ctx.Done()
	})
	srv := startServer(t, scfg)
	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))

	// Not served here: no control handler.
	s, err := c.OpenStream(context.Background(), KindControl)
	if err != nil {
		t.Fatal(err)
	}
	refusedWith(t, s, wire.CodeProtocol)
	s.Close()

	// Refused by the opener's own side.
	for _, k := range []StreamKind{KindNotify, KindControl, 0, 5} {
		if _, err := c.OpenStream(context.Background(), k); err == nil {
			t.Fatalf("OpenStream(%v) opened a stream", k)
		}
	}
	d, err := c.OpenStream(context.Background(), KindDirect)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := c.OpenStream(context.Background(), KindDirect); !errors.Is(err, ErrStreamKindNotAllowed) {
		t.Fatalf("second direct stream: %v", err)
	}
	// The server has taken d as the first direct stream before the raw
	// one below arrives (streams are served concurrently).
	select {
	case <-directServed:
	case <-time.After(hang):
		t.Fatal("the direct stream was not served")
	}

	// Refused by the acceptor, from a peer that sends them anyway.
	for name, payload := range map[string][]byte{
		"unknown kind":          {0x10, 0x81, 0xa1, 'k', 0xcd, 0x00, 0x05},
		"notify from requestor": {0x10, 0x81, 0xa1, 'k', 0xcd, 0x00, 0x03},
		"second direct":         {0x10, 0x81, 0xa1, 'k', 0xcd, 0x00, 0x01},
		"not a StreamOpen":      {0x03, 0x81, 0xa3, 'm', 'a', 'c', 0xc4, 0x00},
	} {
		t.Run(name, func(t *testing.T) { refusedWith(t, rawStream(t, c, payload), wire.CodeProtocol) })
	}
	echo(t, c, "still there")
	if st := srv.Stats(); st.UnknownKinds != 1 || st.BadStreamOpens != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInsecure: --tls=false runs the handshake on plain TCP with the
// tcp-notls transport; a TLS peer and a plain one do not mix.
func TestInsecure(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.Insecure = true
	logs := &logStore{}
	scfg.Logger = logs.logger()
	srv := startServer(t, scfg)
	if !logs.has("TLS is off") {
		t.Error("no warning that TLS is off")
	}
	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.Insecure = true
	c := mustDial(t, pinned(srv), ccfg)
	if !c.Insecure() {
		t.Fatal("Insecure() = false")
	}
	echo(t, c, "in clear")

	// Trust on first use works without TLS too, after the handshake.
	kp, err := session.LoadKnownPeers(filepath.Join(t.TempDir(), "known_peers"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Add(srv.Addr().String(), identity(t, "ed-m").PeerID()); err != nil {
		t.Fatal(err)
	}
	ccfg.Trust = kp
	var changed *session.KeyChangedError
	if _, err := dial(t, srv.Addr().String(), ccfg); !errors.As(err, &changed) {
		t.Fatalf("dial with a changed key: %v", err)
	}
	// A wrong pin is refused by the handshake itself.
	if _, err := dial(t, identity(t, "ed-m").PeerID().String()+"@"+srv.Addr().String(), clientConfig(identity(t, "ed-a"))); err == nil {
		t.Fatal("TLS client reached an insecure server")
	}
	ccfg.Trust = nil
	if _, err := dial(t, identity(t, "ed-m").PeerID().String()+"@"+srv.Addr().String(), ccfg); err == nil {
		t.Fatal("wrong pin accepted without TLS")
	}
}

// TestStreamFail: a handler's refusal reaches the opener as a
// *StreamError with its code.
func TestStreamFail(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.Handlers[KindDirect] = HandlerFunc(func(ctx context.Context, s *Stream) { s.Fail(wire.CodeUnauthorized) })
	srv := startServer(t, scfg)
	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	s, err := c.OpenStream(context.Background(), KindDirect)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(hang))
	var se *StreamError
	if _, err := s.ReadFrame(); !errors.As(err, &se) || se.Code != wire.CodeUnauthorized {
		t.Fatalf("read: %v, want unauthorized", err)
	}
}

// TestDialDeadlineAndCancel: a server that never answers costs the dialer
// its handshake timeout, or less if its context is cancelled, and each
// case says which.
func TestDialDeadlineAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	}()

	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.HandshakeTimeout = 200 * time.Millisecond
	if _, err := dial(t, ln.Addr().String(), ccfg); !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("dial: %v, want ErrHandshakeTimeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := Dial(ctx, ln.Addr().String(), clientConfig(identity(t, "ed-a"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial: %v, want context.Canceled", err)
	}
}
