package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
)

// Server accepts sessions on a TCP listener: it admits connections within
// the limits, runs TLS and the responder's handshake, and serves each
// established session's streams with Config.Handlers. Its methods are safe
// for concurrent use.
type Server struct {
	cfg   Config
	lim   limits
	log   *slog.Logger
	ln    net.Listener
	tls   *tls.Config // nil with Config.Insecure
	scfg  *session.Config
	rate  *rateLimiter // nil: no rate limit
	allow map[cryptosuite.PeerID]bool
	stats counters

	mu      sync.Mutex
	pending map[net.Conn]struct{}
	conns   map[*Conn]struct{}
	perAddr map[addrKey]int
	perPeer map[cryptosuite.PeerID]int
	serving bool
	closing bool

	stop     chan struct{}
	stopOnce sync.Once
	served   chan struct{} // closed when Serve has drained and returned
	wg       sync.WaitGroup
}

// Listen listens on the TCP address addr (e.g. ":7700", "127.0.0.1:0")
// and returns a Server ready to Serve.
func Listen(addr string, cfg *Config) (*Server, error) {
	// No TCP keepalive on accepted connections: yamux pings (see Dial).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	s, err := NewServer(ln, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// NewServer returns a Server that will accept on ln, which it owns from
// now on.
func NewServer(ln net.Listener, cfg *Config) (*Server, error) {
	lim, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: *cfg, lim: lim, ln: ln,
		pending: map[net.Conn]struct{}{}, conns: map[*Conn]struct{}{},
		perAddr: map[addrKey]int{}, perPeer: map[cryptosuite.PeerID]int{},
		stop: make(chan struct{}), served: make(chan struct{}),
	}
	s.log = cfg.logger().With("component", "node", "listen", ln.Addr().String())
	if !cfg.Insecure {
		cert, err := newCertificate(cfg.Identity, cfg.now())
		if err != nil {
			return nil, err
		}
		s.tls = serverTLSConfig(cert)
	} else {
		s.log.Warn("TLS is off (--tls=false): streams travel in clear text and only the lanpeer handshake authenticates peers; use this for debugging only")
	}
	s.scfg = cfg.sessionConfig(&lim)
	s.scfg.Replay = session.NewReplayCache(0, 2*cfg.MaxClockSkew)
	if lim.rate > 0 {
		s.rate = newRateLimiter(lim.rate, lim.burst, lim.maxTracked)
	}
	if len(cfg.Allow) > 0 {
		s.allow = map[cryptosuite.PeerID]bool{}
		for _, id := range cfg.Allow {
			s.allow[id] = true
		}
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	s.mu.Lock()
	st.Pending, st.Sessions = len(s.pending), len(s.conns)
	s.mu.Unlock()
	return st
}

// Sessions returns the sessions established now.
func (s *Server) Sessions() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Serve accepts connections until ctx is cancelled or Close is called,
// then stops accepting, aborts the handshakes in progress, shuts every
// session down gracefully (Conn.Shutdown, bounded by Config.DrainTimeout)
// and returns nil. It returns an error if the listener fails, after the
// same drain. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving || s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.served)

	s.log.Info("listening", "peer", s.cfg.Identity.PeerID(), "tls", !s.cfg.Insecure)
	loopDone := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
		case <-s.stop:
		case <-loopDone:
		}
		s.ln.Close()
	}()
	err := s.acceptLoop()
	close(loopDone)
	<-watchDone
	s.drain()
	s.log.Info("stopped", "sessions_established", s.stats.sessionsEstablished.Load())
	return err
}

// Close stops the server as a cancelled Serve does and waits until Serve
// has drained. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	serving := s.serving
	s.closing = true
	s.mu.Unlock()
	if serving {
		<-s.served
	} else {
		s.ln.Close()
	}
	return nil
}

// maxAcceptDelay bounds the pause after a failed Accept (out of file
// descriptors, say) before the next try.
const maxAcceptDelay = time.Second

func (s *Server) acceptLoop() error {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil // ctx cancelled
			}
			delay = min(max(5*time.Millisecond, 2*delay), maxAcceptDelay)
			s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.stop:
				t.Stop()
				return nil
			}
			continue
		}
		delay = 0
		s.admit(nc)
	}
}

// admit applies the limits that cost nothing to check, before TLS: the
// address's rate, the pending handshakes, the sessions overall and per
// address. A refused connection is closed at once, with a reset.
func (s *Server) admit(nc net.Conn) {
	s.stats.accepted.Add(1)
	key := keyOf(nc.RemoteAddr())
	if s.rate != nil && !s.rate.allow(key, s.cfg.now()) {
		s.refuseAtAccept(nc, ErrRateLimited, &s.stats.rateLimited)
		return
	}
	s.mu.Lock()
	var reason error
	switch {
	case s.closing:
		reason = ErrClosed
	case len(s.pending) >= s.lim.maxPending:
		reason = ErrTooManyPending
		s.stats.pendingLimited.Add(1)
	case len(s.pending)+len(s.conns) >= s.lim.maxSessions:
		reason = ErrTooManySessions
		s.stats.sessionsLimited.Add(1)
	case s.lim.maxPerAddr > 0 && s.perAddr[key] >= s.lim.maxPerAddr:
		reason = ErrTooManySessionsPerAddr
		s.stats.addrLimited.Add(1)
	}
	if reason != nil {
		s.mu.Unlock()
		s.refuseAtAccept(nc, reason, nil)
		return
	}
	s.pending[nc] = struct{}{}
	s.perAddr[key]++
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.handshakesStarted.Add(1)
	go s.handshake(nc, key)
}

func (s *Server) refuseAtAccept(nc net.Conn, reason error, counter interface{ Add(uint64) uint64 }) {
	if counter != nil {
		counter.Add(1)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset: no TIME_WAIT state kept for a refused peer
	}
	nc.Close()
	s.log.Debug("connection refused", logAddr("remote", nc.RemoteAddr()), "reason", reason)
}

// handshake runs TLS and the responder's handshake on nc under one
// deadline and, if both succeed, starts the session.
func (s *Server) handshake(nc net.Conn, key addrKey) {
	defer s.wg.Done()
	_ = nc.SetDeadline(time.Now().Add(s.lim.handshakeTimeout))
	raw, params, certKey, err := s.acceptTLS(nc)
	if err != nil {
		s.log.Debug("TLS handshake failed", logAddr("remote", nc.RemoteAddr()), "err", err)
		s.endPending(nc, raw, key)
		return
	}
	keys, err := s.respond(raw, params, certKey)
	if err != nil {
		s.log.Debug("handshake failed", logAddr("remote", nc.RemoteAddr()), "err", err)
		s.endPending(nc, raw, key)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.establish(nc, raw, keys, key)
}

// acceptTLS runs the server side of TLS on nc (unless the server is
// insecure) and returns the connection for the handshake, its parameters
// and the client certificate's key.
func (s *Server) acceptTLS(nc net.Conn) (net.Conn, session.Params, *cryptosuite.PublicKey, error) {
	if s.tls == nil {
		return nc, session.Params{Transport: session.TransportNoTLS}, nil, nil
	}
	tc := tls.Server(nc, s.tls)
	params := session.Params{Transport: session.TransportTLS}
	if err := tc.Handshake(); err != nil {
		if isTimeout(err) {
			s.stats.handshakeTimeouts.Add(1)
			return tc, params, nil, fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
		}
		s.stats.tlsFailures.Add(1)
		return tc, params, nil, err
	}
	cs := tc.ConnectionState()
	pk, err := peerKey(&cs)
	if err == nil {
		params.KnownKey = pk
		params.ChannelBinding, err = channelBinding(&cs)
	}
	if err != nil {
		s.stats.tlsFailures.Add(1)
		return tc, params, nil, err
	}
	return tc, params, pk, nil
}

// respond runs the responder's handshake. Its policy, checked once the
// requestor's signature is verified: the handshake identity is the
// certificate's key, the allow list, and a place among the identity's
// sessions, which the session keeps if the handshake succeeds.
func (s *Server) respond(raw net.Conn, params session.Params, certKey *cryptosuite.PublicKey) (*session.Keys, error) {
	var policyErr error
	var reserved *cryptosuite.PeerID
	scfg := *s.scfg
	scfg.Policy = func(pk *cryptosuite.PublicKey) error {
		id := pk.PeerID()
		switch {
		case certKey != nil && !pk.Equal(certKey):
			policyErr = ErrIdentityMismatch
		case s.allow != nil && !s.allow[id]:
			policyErr = ErrNotAllowed
		case !s.reservePeer(id):
			policyErr = ErrTooManySessionsPerPeer
		default:
			reserved = &id
		}
		return policyErr
	}
	keys, err := session.RunResponder(raw, &scfg, params)
	if err == nil {
		return keys, nil
	}
	if reserved != nil {
		s.releasePeer(*reserved)
	}
	var tooLarge *framing.FrameTooLargeError
	switch {
	case errors.Is(policyErr, ErrIdentityMismatch):
		s.stats.identityMismatches.Add(1)
	case errors.Is(policyErr, ErrNotAllowed):
		s.stats.notAllowed.Add(1)
	case errors.Is(policyErr, ErrTooManySessionsPerPeer):
		s.stats.peerLimited.Add(1)
	case isTimeout(err):
		s.stats.handshakeTimeouts.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
	case errors.As(err, &tooLarge):
		s.stats.oversizedFrames.Add(1)
		s.stats.handshakeFailures.Add(1)
	default:
		s.stats.handshakeFailures.Add(1)
	}
	if policyErr != nil {
		return nil, fmt.Errorf("%w (%w)", err, policyErr)
	}
	return nil, err
}

// establish turns a connection past its handshake into a session, unless
// the server is closing.
func (s *Server) establish(nc, raw net.Conn, keys *session.Keys, key addrKey) {
	peer := keys.Peer.PeerID()
	s.mu.Lock()
	delete(s.pending, nc)
	var c *Conn
	err := ErrClosed
	if !s.closing {
		c, err = newConn(raw, keys, &s.cfg, &s.lim, &s.stats, s.log, nil, func(c *Conn) { s.sessionEnded(c, key, peer) })
	}
	if err != nil {
		s.mu.Unlock()
		s.log.Debug("session not started", logAddr("remote", nc.RemoteAddr()), "err", err)
		keys.Wipe()
		raw.Close()
		s.releasePeer(peer)
		s.releaseAddr(key)
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.stats.sessionsEstablished.Add(1)
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("session established", logAddr("remote", nc.RemoteAddr()), "peer", peer, "kex", keys.KEX, "aead", keys.AEAD.ID)
	}
	c.start()
	if s.cfg.OnSession != nil {
		s.cfg.OnSession(c)
	}
}

// isTimeout reports a passed deadline: os.ErrDeadlineExceeded from
// net and crypto/tls, yamux's own timeout error from streams.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// endPending closes a connection whose handshake failed and frees its
// place.
func (s *Server) endPending(nc, raw net.Conn, key addrKey) {
	raw.Close()
	s.mu.Lock()
	delete(s.pending, nc)
	s.mu.Unlock()
	s.releaseAddr(key)
}

func (s *Server) releaseAddr(key addrKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[key]--; s.perAddr[key] <= 0 {
		delete(s.perAddr, key)
	}
}

// reservePeer takes one of the identity's session places, if one is free.
func (s *Server) reservePeer(id cryptosuite.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lim.maxPerPeer > 0 && s.perPeer[id] >= s.lim.maxPerPeer {
		return false
	}
	s.perPeer[id]++
	return true
}

func (s *Server) releasePeer(id cryptosuite.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perPeer[id]--; s.perPeer[id] <= 0 {
		delete(s.perPeer, id)
	}
}

func (s *Server) sessionEnded(c *Conn, key addrKey, peer cryptosuite.PeerID) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.releasePeer(peer)
	s.releaseAddr(key)
}

// drain aborts the handshakes in progress and shuts the sessions down.
func (s *Server) drain() {
	s.mu.Lock()
	s.closing = true
	pending := make([]net.Conn, 0, len(s.pending))
	for nc := range s.pending {
		pending = append(pending, nc)
	}
	s.mu.Unlock()
	for _, nc := range pending {
		nc.Close()
	}
	s.wg.Wait() // no handshake will add a session from now on

	ctx, cancel := context.WithTimeout(context.Background(), s.lim.drainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range s.Sessions() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Shutdown(ctx)
		}()
	}
	wg.Wait()
}
