package node

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// from returns cfg dialing from the local address ip.
func from(cfg *Config, ip string) *Config {
	c := *cfg
	c.LocalAddr = ip + ":0"
	return &c
}

// rawTLS completes TLS with srv as a client with id's certificate and
// returns the connection, on which the lanpeer handshake is to come.
func rawTLS(t *testing.T, srv *Server, idName string) *tls.Conn {
	t.Helper()
	cert, err := newCertificate(identity(t, idName), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", srv.Addr().String(), hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(hang))
	tc := tls.Client(nc, clientTLSConfig(cert, func(*cryptosuite.PublicKey) error { return nil }))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestHandshakeDeadline: a client silent at TCP, and one silent after TLS,
// are dropped at the deadline while a good client is served meanwhile.
func TestHandshakeDeadline(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.HandshakeTimeout = time.Second
	srv := startServer(t, scfg)

	silent, err := net.DialTimeout("tcp", srv.Addr().String(), hang)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	afterTLS := rawTLS(t, srv, "ed-b")

	echo(t, mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a"))), "served meanwhile")

	for name, c := range map[string]net.Conn{"silent": silent, "after TLS": afterTLS} {
		c.SetReadDeadline(time.Now().Add(hang))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err == nil || isTimeout(err) {
			t.Errorf("%s client: read %d, %v; want the server to close", name, n, err)
		}
	}
	waitFor(t, "both timeouts to be counted", func() bool { st := srv.Stats(); return st.HandshakeTimeouts == 2 && st.Pending == 0 })
	if st := srv.Stats(); st.SessionsEstablished != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHandshakeFlood: connections from one address beyond its rate are
// closed at accept, before TLS, while a client from another address
// completes and an established session keeps working.
func TestHandshakeFlood(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.HandshakeRate, scfg.HandshakeBurst = 2, 3
	scfg.HandshakeTimeout = time.Second
	srv := startServer(t, scfg)
	established := mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-b")), "127.0.0.4"))

	const flood = 200
	start := time.Now()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: hang}
	var conns []net.Conn
	refused := 0 // reset before, or after, connect returned
	for range flood {
		c, err := dialer.Dial("tcp", srv.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			refused++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	echo(t, mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-a")), "127.0.0.3")), "not starved")
	echo(t, established, "still served")
	elapsed := time.Since(start)

	// Every refused connection was reset without a byte of TLS; the
	// others wait for a ClientHello until the handshake deadline.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(hang))
		n, err := c.Read(make([]byte, 1))
		if n != 0 {
			t.Fatal("the server sent bytes to a flooding connection")
		}
		if errors.Is(err, syscall.ECONNRESET) {
			refused++
		}
	}
	allowed := scfg.HandshakeBurst + int(math.Ceil(elapsed.Seconds()*scfg.HandshakeRate))
	st := srv.Stats()
	if st.RateLimited < uint64(flood-allowed) || st.HandshakesStarted > uint64(allowed+2) {
		t.Fatalf("flood of %d in %v: %d rate limited, %d handshakes started (at most %d allowed)", flood, elapsed, st.RateLimited, st.HandshakesStarted, allowed)
	}
	if refused < flood-allowed {
		t.Fatalf("%d connections reset, want at least %d", refused, flood-allowed)
	}
}

// TestSessionsPerPeer: one identity gets MaxSessionsPerPeer sessions, from
// any address; one more is refused with the handshake's busy code, and a
// place freed is usable again.
func TestSessionsPerPeer(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxSessionsPerPeer = 2
	logs := &logStore{}
	scfg.Logger = logs.logger()
	srv := startServer(t, scfg)
	a := clientConfig(identity(t, "ed-a"))
	first := mustDial(t, pinned(srv), from(a, "127.0.0.5"))
	mustDial(t, pinned(srv), from(a, "127.0.0.6"))
	_, err := dial(t, pinned(srv), from(a, "127.0.0.7"))
	var pe *session.PeerError
	if !errors.As(err, &pe) || pe.Code != wire.CodeBusy {
		t.Fatalf("third session: %v, want busy", err)
	}
	waitFor(t, "the refusal to be logged with ErrTooManySessionsPerPeer", func() bool {
		return anyIs(logs.errorsLogged("handshake failed"), ErrTooManySessionsPerPeer)
	})
	echo(t, mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-b")), "127.0.0.7")), "another peer")
	first.Close()
	waitFor(t, "the server to free the place", func() bool { return srv.Stats().Sessions == 2 })
	echo(t, mustDial(t, pinned(srv), from(a, "127.0.0.7")), "place freed")
	if st := srv.Stats(); st.PeerLimited != 1 {
		t.Fatalf("PeerLimited = %d", st.PeerLimited)
	}
}

// TestSessionsPerAddr: one address gets MaxSessionsPerAddr connections;
// one more is closed at accept; another address is served.
func TestSessionsPerAddr(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxSessionsPerAddr = 2
	srv := startServer(t, scfg)
	mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-a")), "127.0.0.8"))
	mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-b")), "127.0.0.8"))
	_, err := dial(t, pinned(srv), from(clientConfig(identity(t, "ed-c")), "127.0.0.8"))
	if !errors.Is(err, ErrClosedByServer) {
		t.Fatalf("third connection: %v, want ErrClosedByServer", err)
	}
	echo(t, mustDial(t, pinned(srv), from(clientConfig(identity(t, "ed-c")), "127.0.0.9")), "other address")
	if st := srv.Stats(); st.AddrLimited != 1 || st.HandshakesStarted != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMaxPendingHandshakes: beyond the pending handshakes allowed, new
// connections are closed at accept.
func TestMaxPendingHandshakes(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxPendingHandshakes = 2
	srv := startServer(t, scfg)
	for range 2 {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), hang)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, "two pending handshakes", func() bool { return srv.Stats().Pending == 2 })
	_, err := dial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	if !errors.Is(err, ErrClosedByServer) {
		t.Fatalf("dial: %v, want ErrClosedByServer", err)
	}
	if st := srv.Stats(); st.PendingLimited != 1 {
		t.Fatalf("PendingLimited = %d", st.PendingLimited)
	}
}

// TestStreamLimit: streams beyond MaxStreams are refused with busy, the
// session survives, and a stream opened once a place is free works.
func TestStreamLimit(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxStreams = 2
	srv := startServer(t, scfg)
	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	if k := c.Keys(); k.PeerMaxStreams != 2 {
		t.Fatalf("Ready stated %d streams", k.PeerMaxStreams)
	}
	var open []*Stream
	for range 2 {
		s, err := c.OpenStream(context.Background(), kindEcho)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		echoOn(t, s, "held")
		open = append(open, s)
	}
	// The client keeps to the stated limit by itself.
	if _, err := c.OpenStream(context.Background(), kindEcho); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream: %v, want ErrTooManyStreams", err)
	}
	// A client that ignores it gets its extra streams refused.
	c.outCap = 100
	for range 3 {
		s, err := c.OpenStream(context.Background(), kindEcho)
		if err != nil {
			t.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(hang))
		_, err = s.ReadFrame()
		var se *StreamError
		if !errors.As(err, &se) || se.Code != wire.CodeBusy {
			t.Fatalf("extra stream: %v, want busy", err)
		}
		s.Close()
	}
	echoOn(t, open[1], "session survives")
	open[0].Close()
	waitFor(t, "the server to free a stream", func() bool { return srvStreams(srv) == 1 })
	echo(t, c, "place freed")
	if st := srv.Stats(); st.StreamsRefused != 3 || st.StreamFloods != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func srvStreams(srv *Server) int {
	n := 0
	for _, c := range srv.Sessions() {
		c.mu.Lock()
		n += c.incoming
		c.mu.Unlock()
	}
	return n
}

// TestStreamFlood: a peer that keeps its refused streams open, past any
// honest use, loses its session; others keep theirs.
func TestStreamFlood(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxStreams = 2
	srv := startServer(t, scfg)
	good := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-b")))
	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	c.outCap = 1000
	for range scfg.MaxStreams {
		s, err := c.OpenStream(context.Background(), kindEcho)
		if err != nil {
			t.Fatal(err)
		}
		echoOn(t, s, "served")
	}
	// Each further stream is read until its refusal and then left open:
	// yamux on the server keeps it until this side closes it too.
	for range 100 {
		s, err := c.OpenStream(context.Background(), kindEcho)
		if err != nil {
			break // the server closed the session
		}
		s.SetReadDeadline(time.Now().Add(hang))
		var se *StreamError
		if _, err := s.ReadFrame(); !errors.As(err, &se) {
			break // the server closed the session
		}
	}
	select {
	case <-c.Done():
	case <-time.After(hang):
		t.Fatal("the flooding session was not closed")
	}
	waitFor(t, "the flood to be counted", func() bool { return srv.Stats().StreamFloods == 1 })
	echo(t, good, "other session unaffected")
}

// TestOversizedStreamFrame: a frame above the stream class's maximum is
// refused with too-large; the stream closes, the session goes on. The
// control class's maximum is stated in Ready and kept by the opener; the
// request class's is the acceptor's own (docs/PROTOCOL.md §18.1).
func TestOversizedStreamFrame(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	scfg.MaxControlFrame = 4096
	scfg.MaxRequestFrame = 4096
	scfg.Handlers[KindDirect] = echoHandler
	srv := startServer(t, scfg)
	ccfg := clientConfig(identity(t, "ed-a"))
	ccfg.MaxControlFrame = 8192
	c := mustDial(t, pinned(srv), ccfg)
	refused := func(s *Stream) {
		t.Helper()
		s.SetDeadline(time.Now().Add(hang))
		_, err := s.ReadFrame()
		var se *StreamError
		if !errors.As(err, &se) || se.Code != wire.CodeTooLarge {
			t.Fatalf("read: %v, want too-large", err)
		}
	}

	d, err := c.OpenStream(context.Background(), KindDirect)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The client keeps to the stated maximum by itself...
	var tooLarge *framing.FrameTooLargeError
	if err := d.WriteFrame(make([]byte, 4097)); !errors.As(err, &tooLarge) {
		t.Fatalf("write: %v, want a *framing.FrameTooLargeError", err)
	}
	// ...and one that does not is refused.
	d.w = framing.NewWriter(d.ys, 8192)
	if err := d.WriteFrame(make([]byte, 4097)); err != nil {
		t.Fatal(err)
	}
	refused(d)

	// A request stream's frames may be larger than a control frame; the
	// server refuses those above its own maximum.
	s, err := c.OpenStream(context.Background(), kindEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteFrame(make([]byte, 4097)); err != nil {
		t.Fatal(err)
	}
	refused(s)
	echo(t, c, "session goes on")
	if st := srv.Stats(); st.OversizedStreams != 2 {
		t.Fatalf("OversizedStreams = %d", st.OversizedStreams)
	}
}

// TestBadHandshakeFrames: an oversized and a truncated handshake frame on
// the TLS connection get their typed errors; the server keeps serving.
func TestBadHandshakeFrames(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	logs := &logStore{}
	scfg.Logger = logs.logger()
	srv := startServer(t, scfg)

	t.Run("oversized", func(t *testing.T) {
		tc := rawTLS(t, srv, "ed-a")
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 0xfffffff0)
		if _, err := tc.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		p, err := framing.NewReader(tc, framing.MaxControlFrame).ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := m.(*wire.Error); !ok || e.Code != wire.CodeTooLarge {
			t.Fatalf("server answered %#v, want too-large", m)
		}
		var fe *framing.FrameTooLargeError
		waitFor(t, "a *framing.FrameTooLargeError to be logged", func() bool {
			for _, err := range logs.errorsLogged("handshake failed") {
				if errors.As(err, &fe) && fe.N == 0xfffffff0 {
					return true
				}
			}
			return false
		})
		if st := srv.Stats(); st.OversizedFrames != 1 {
			t.Fatalf("OversizedFrames = %d", st.OversizedFrames)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		tc := rawTLS(t, srv, "ed-b")
		var frame [14]byte
		binary.BigEndian.PutUint32(frame[:], 100)
		if _, err := tc.Write(frame[:]); err != nil {
			t.Fatal(err)
		}
		if err := tc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if n, err := tc.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("read %d, %v; want the server to close", n, err)
		}
		waitFor(t, "the truncated frame to be logged", func() bool {
			return anyIs(logs.errorsLogged("handshake failed"), io.ErrUnexpectedEOF)
		})
	})
	echo(t, mustDial(t, pinned(srv), clientConfig(identity(t, "ed-c"))), "next client served")
	if st := srv.Stats(); st.HandshakeFailures != 2 || st.SessionsEstablished != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCloseDrains: Close stops accepting, lets handlers see their context
// cancelled and their reads fail, waits for them, and returns; goleak
// then finds nothing left.
func TestCloseDrains(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	var mu sync.Mutex
	var returned []string
	note := func(s string) { mu.Lock(); returned = append(returned, s); mu.Unlock() }
	started := make(chan struct{}, 2)
	scfg.Handlers[KindDirect] = HandlerFunc(func(ctx context.Context, s *Stream) {
		started <- struct{}{}
		<-ctx.Done() // a handler waiting on something else than its stream
		note("ctx")
	})
	scfg.Handlers[kindEcho] = HandlerFunc(func(ctx context.Context, s *Stream) {
		started <- struct{}{}
		_, err := s.ReadFrame() // a handler blocked reading
		if errors.Is(err, ErrClosed) {
			note("read")
		}
	})
	srv, err := Listen("127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()

	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	for _, k := range []StreamKind{KindDirect, kindEcho} {
		s, err := c.OpenStream(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		<-started
	}
	srv.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hang):
		t.Fatal("Serve did not return")
	}
	mu.Lock()
	if len(returned) != 2 {
		t.Fatalf("handlers returned: %v", returned)
	}
	mu.Unlock()
	select {
	case <-c.Done():
	case <-time.After(hang):
		t.Fatal("the client's session did not end")
	}
	if _, err := net.DialTimeout("tcp", srv.Addr().String(), hang); err == nil {
		t.Fatal("still accepting after Close")
	}
	if st := srv.Stats(); st.Sessions != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServeContext: cancelling Serve's context drains and returns nil.
func TestServeContext(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", serverConfig(identity(t, "ed-s")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	c := mustDial(t, pinned(srv), clientConfig(identity(t, "ed-a")))
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := srv.Serve(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Serve: %v", err)
	}
	srv.Close()
}
