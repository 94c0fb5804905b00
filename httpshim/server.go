package httpshim

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// Defaults of Config (docs/HTTP.md, "Limits").
const (
	DefaultPendingTTL         = 60 * time.Second
	DefaultMaxPending         = 64
	DefaultMaxSessions        = 256
	DefaultMaxSessionsPerPeer = node.DefaultMaxSessionsPerPeer
	DefaultMaxSessionsPerAddr = 16
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultRequestSkew        = 60 * time.Second
	DefaultRate               = 20
	DefaultBurst              = 40
	DefaultHandshakeRate      = node.DefaultHandshakeRate
	DefaultHandshakeBurst     = node.DefaultHandshakeBurst
	DefaultMaxNonces          = 4096
	DefaultMaxWait            = 30 * time.Second
	DefaultPingInterval       = 15 * time.Second
	DefaultEventBacklog       = 256
	DefaultEventRetention     = 10 * time.Minute
	DefaultMaxIdleJournals    = 256
	DefaultOpTimeout          = 10 * time.Second
	DefaultReadHeaderTimeout  = 5 * time.Second
	DefaultReadTimeout        = 30 * time.Second

	// MaxHandshakeBody bounds the body of init and finish.
	MaxHandshakeBody = 8 << 10
	// MaxBody bounds the body of every other request but commits.
	MaxBody = 64 << 10

	maxTrackedAddrs = 4096
	maxPrealloc     = 4 << 10 // readAll's largest buffer before the body arrives
)

// Config configures a Server. A zero field selects its default; for the
// rates, MaxSessionsPerPeer and MaxSessionsPerAddr a negative value turns
// the limit off.
type Config struct {
	// Service runs the room operations: the one the TCP listener uses.
	// Required; the Server does not close it.
	Service *node.Service
	// Identity is this peer's identity key. Required.
	Identity *cryptosuite.Identity
	// AEADs, AllowRSA, MaxClockSkew and Allow are the TCP listener's
	// handshake settings (node.Config), with the same meaning.
	AEADs        []cryptosuite.AEADID
	AllowRSA     bool
	MaxClockSkew time.Duration
	Allow        []cryptosuite.PeerID
	// Replay is the cache of hello nonces (nil: the Server's own).
	Replay *session.ReplayCache

	PendingTTL         time.Duration // a pending handshake's lifetime
	MaxPending         int           // pending handshakes
	MaxSessions        int           // established sessions
	MaxSessionsPerPeer int           // sessions (and pending handshakes) of one identity
	// MaxSessionsPerAddr bounds the sessions and pending handshakes begun
	// from one client address (an IPv4 address or an IPv6 /64), so that
	// one address cannot take every slot with identities made for it.
	MaxSessionsPerAddr int
	IdleTimeout        time.Duration // a session without requests ends
	RequestSkew        time.Duration // request timestamp window, either side of now
	Rate               float64       // requests a second per session
	Burst              int
	HandshakeRate      float64 // handshake inits a second per client address
	HandshakeBurst     int
	MaxNonces          int           // request nonces remembered per session (the replay window)
	MaxWait            time.Duration // longest long poll
	PingInterval       time.Duration // event streams' keep-alive comment
	EventBacklog       int           // session events kept per peer for Last-Event-ID
	// EventRetention is how long a peer's events are still recorded
	// after its last session ended, so that a new session resumes
	// GET /v1/events from Last-Event-ID; MaxIdleJournals bounds the peers
	// so followed. A negative EventRetention stops following at once.
	EventRetention  time.Duration
	MaxIdleJournals int
	OpTimeout       time.Duration // one Service call
	// ReadHeaderTimeout and ReadTimeout are HTTPServer's: the time a
	// client has to send a request's headers, and its whole request.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration

	// Now defaults to time.Now; Logger to discarding.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the HTTP shim: an http.Handler over a node.Service. Make one
// with New, serve it with an http.Server (HTTPServer has the timeouts),
// and Close it before shutting that server down (Close ends the event
// streams and long polls, which http.Server.Shutdown would wait for).
type Server struct {
	cfg   Config
	svc   *node.Service
	id    *cryptosuite.Identity
	scfg  session.Config
	allow map[cryptosuite.PeerID]bool
	log   *slog.Logger
	met   *metrics
	mux   *http.ServeMux
	hsLim *node.AddrRateLimiter // nil: off

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	pending  map[[session.SessionIDSize]byte]*pendingHandshake
	sessions map[[session.SessionIDSize]byte]*httpSession
	perPeer  map[cryptosuite.PeerID]int
	perAddr  map[netip.Prefix]int            // pending handshakes and sessions by client address
	journals map[cryptosuite.PeerID]*journal // with sessions, or idle within EventRetention
	idle     int                             // journals without sessions
	idFloor  uint64                          // the highest event id of a dropped journal
	closed   bool
}

type pendingHandshake struct {
	resp    *session.Responder
	peer    cryptosuite.PeerID
	addr    netip.Prefix
	mode    string
	expires time.Time
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil || cfg.Identity == nil {
		return nil, errors.New("httpshim: a Service and an Identity are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def(&cfg.PendingTTL, DefaultPendingTTL)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.RequestSkew, DefaultRequestSkew)
	def(&cfg.MaxWait, DefaultMaxWait)
	def(&cfg.PingInterval, DefaultPingInterval)
	def(&cfg.OpTimeout, DefaultOpTimeout)
	def(&cfg.EventRetention, DefaultEventRetention)
	def(&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&cfg.ReadTimeout, DefaultReadTimeout)
	defInt(&cfg.MaxIdleJournals, DefaultMaxIdleJournals)
	defInt(&cfg.MaxPending, DefaultMaxPending)
	defInt(&cfg.MaxSessions, DefaultMaxSessions)
	defInt(&cfg.MaxSessionsPerPeer, DefaultMaxSessionsPerPeer)
	defInt(&cfg.MaxSessionsPerAddr, DefaultMaxSessionsPerAddr)
	defInt(&cfg.Burst, DefaultBurst)
	defInt(&cfg.HandshakeBurst, DefaultHandshakeBurst)
	defInt(&cfg.MaxNonces, DefaultMaxNonces)
	defInt(&cfg.EventBacklog, DefaultEventBacklog)
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.HandshakeRate == 0 {
		cfg.HandshakeRate = DefaultHandshakeRate
	}
	for _, d := range []time.Duration{cfg.PendingTTL, cfg.IdleTimeout, cfg.RequestSkew, cfg.MaxWait, cfg.PingInterval, cfg.OpTimeout,
		cfg.ReadHeaderTimeout, cfg.ReadTimeout} {
		if d < 0 {
			return nil, errors.New("httpshim: durations must be positive")
		}
	}
	if cfg.MaxPending < 0 || cfg.MaxSessions < 0 || cfg.Burst < 0 || cfg.HandshakeBurst < 0 || cfg.MaxNonces < 0 || cfg.EventBacklog < 0 || cfg.MaxIdleJournals < 0 {
		return nil, errors.New("httpshim: counts must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg, svc: cfg.Service, id: cfg.Identity,
		stop:     make(chan struct{}),
		pending:  map[[session.SessionIDSize]byte]*pendingHandshake{},
		sessions: map[[session.SessionIDSize]byte]*httpSession{},
		perPeer:  map[cryptosuite.PeerID]int{},
		perAddr:  map[netip.Prefix]int{},
		journals: map[cryptosuite.PeerID]*journal{},
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "httpshim")
	s.scfg = session.Config{
		Identity: cfg.Identity, AEADs: cfg.AEADs, AllowRSA: cfg.AllowRSA,
		MaxClockSkew: cfg.MaxClockSkew, Now: cfg.Now, Replay: cfg.Replay,
	}
	if s.scfg.Replay == nil {
		skew := cfg.MaxClockSkew
		if skew <= 0 {
			skew = session.DefaultMaxClockSkew
		}
		s.scfg.Replay = session.NewReplayCache(0, 2*skew)
	}
	if len(cfg.Allow) > 0 {
		s.allow = map[cryptosuite.PeerID]bool{}
		for _, p := range cfg.Allow {
			s.allow[p] = true
		}
	}
	if cfg.HandshakeRate > 0 {
		s.hsLim = node.NewAddrRateLimiter(cfg.HandshakeRate, cfg.HandshakeBurst, maxTrackedAddrs)
	}
	s.met = newMetrics(func() float64 { return float64(s.count(false)) }, func() float64 { return float64(s.count(true)) })
	s.routes()
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

func (s *Server) count(pending bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pending {
		return len(s.pending)
	}
	return len(s.sessions)
}

// Close ends every session, event stream and long poll, and stops the
// Server's goroutines. Requests after it get 503. Idempotent.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	s.closed = true
	var all []*httpSession
	for _, hs := range s.sessions {
		all = append(all, hs)
	}
	for id, p := range s.pending {
		p.resp.Abort()
		delete(s.pending, id)
	}
	s.mu.Unlock()
	for _, hs := range all {
		s.endSession(hs)
	}
	s.mu.Lock()
	var idle []*journal
	for _, j := range s.journals {
		if j.refs == 0 {
			idle = append(idle, j)
		}
	}
	for _, j := range idle {
		s.dropJournalLocked(j)
	}
	s.mu.Unlock()
	for _, j := range idle {
		j.close()
	}
	s.wg.Wait()
	return nil
}

// HTTPServer returns an http.Server for s with the shim's timeouts
// (docs/HTTP.md, "Limits"); event streams extend their write deadline per
// event.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.MaxWait + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Stats are counts for tests and logs.
type Stats struct {
	Pending, Sessions, Journals int
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Pending: len(s.pending), Sessions: len(s.sessions), Journals: len(s.journals)}
}

// janitor ends idle sessions and drops expired pending handshakes.
func (s *Server) janitor() {
	defer s.wg.Done()
	every := min(s.cfg.IdleTimeout/4, s.cfg.PendingTTL/4, 30*time.Second)
	if s.cfg.EventRetention > 0 {
		every = min(every, s.cfg.EventRetention/4)
	}
	every = max(every, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(s.cfg.Now())
		}
	}
}

// sweep drops expired pending handshakes, idle sessions, and the
// journals of peers without sessions for EventRetention.
func (s *Server) sweep(now time.Time) {
	var idle []*httpSession
	var expired []*journal
	s.mu.Lock()
	for id, p := range s.pending {
		if !now.Before(p.expires) {
			s.dropPendingLocked(id, p, "expired")
		}
	}
	for _, hs := range s.sessions {
		if hs.idle(now, s.cfg.IdleTimeout) {
			idle = append(idle, hs)
		}
	}
	for _, j := range s.journals {
		if j.refs == 0 && !now.Before(j.idleSince.Add(s.cfg.EventRetention)) {
			expired = append(expired, j)
		}
	}
	for _, j := range expired {
		s.dropJournalLocked(j)
	}
	s.mu.Unlock()
	for _, j := range expired {
		j.close()
	}
	for _, hs := range idle {
		s.log.Debug("session idle; ended", "peer", hs.peerID.Short())
		s.endSession(hs)
	}
}

// dropJournalLocked removes an idle journal (the caller closes it after
// unlocking) and raises idFloor to its last id, so that no later journal
// gives an id again.
func (s *Server) dropJournalLocked(j *journal) {
	if s.journals[j.peer] != j {
		return
	}
	delete(s.journals, j.peer)
	s.idle--
	s.idFloor = max(s.idFloor, j.lastID())
}

func (s *Server) dropPendingLocked(id [session.SessionIDSize]byte, p *pendingHandshake, outcome string) {
	p.resp.Abort()
	delete(s.pending, id)
	s.releasePeerLocked(p.peer)
	s.releaseAddrLocked(p.addr)
	s.met.handshakes.WithLabelValues(p.mode, outcome).Inc()
}

func (s *Server) releasePeerLocked(id cryptosuite.PeerID) {
	if s.perPeer[id]--; s.perPeer[id] <= 0 {
		delete(s.perPeer, id)
	}
}

func (s *Server) releaseAddrLocked(a netip.Prefix) {
	if s.perAddr[a]--; s.perAddr[a] <= 0 {
		delete(s.perAddr, a)
	}
}

// addrFull reports whether address a holds its maximum of pending
// handshakes and sessions.
func (s *Server) addrFullLocked(a netip.Prefix) bool {
	return s.cfg.MaxSessionsPerAddr > 0 && s.perAddr[a] >= s.cfg.MaxSessionsPerAddr
}

// addrKey is the unit per-address limits count by: an IPv4 address or an
// IPv6 /64 (node's rule).
func addrKey(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// ServeHTTP serves the shim's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux would redirect a path that is not clean ("/v1/./rooms"):
	// no endpoint has such a path, and a signed request must not move.
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		s.fail(w, newAPIError(codeNotFound, "no such endpoint (docs/HTTP.md lists them)"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// endpoint is one method of one route.
type endpoint struct {
	auth    bool
	maxBody int64
	serve   func(*request)
}

// request is one request being served.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	sess *httpSession // authenticated endpoints only
	body []byte
}

func (q *request) fail(e *apiError) { q.s.fail(q.w, e) }

func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	s.met.rejections.WithLabelValues(e.Code).Inc()
	writeError(w, e)
}

func (s *Server) handle(pattern string, methods map[string]endpoint) {
	allow := ""
	for m := range methods {
		if allow != "" {
			allow += ", "
		}
		allow += m
	}
	// Each method's latency series, looked up once.
	latency := make(map[string]prometheus.Observer, len(methods))
	for m := range methods {
		latency[m] = s.met.latency.WithLabelValues(pattern, m)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ep, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			s.fail(w, newAPIError(CodeMethodNotAllowed, "%s is not allowed here (allowed: %s)", r.Method, allow))
			return
		}
		obs := latency[r.Method]
		defer func() { obs.Observe(time.Since(start).Seconds()) }()
		if s.isClosed() {
			s.fail(w, newAPIError(codeBusy, "the listener is stopping"))
			return
		}
		q := &request{s: s, w: w, r: r}
		if ep.auth {
			if !s.authenticate(q, ep.maxBody) {
				return
			}
			defer q.sess.release(s.cfg.Now())
		} else if !s.readBody(q, ep.maxBody) {
			return
		}
		ep.serve(q)
	})
}

func (s *Server) isClosed() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// readBody checks the content type and reads the body within max bytes:
// a POST carries application/json, other methods carry nothing.
func (s *Server) readBody(q *request, max int64) bool {
	r := q.r
	if r.Method == http.MethodPost {
		ct := r.Header.Get("Content-Type")
		mt, err := "application/json", error(nil)
		if ct != mt { // parsed unless it is the plain type
			mt, _, err = mime.ParseMediaType(ct)
		}
		if err != nil || mt != "application/json" {
			q.fail(newAPIError(CodeUnsupportedMedia, "the body must be application/json"))
			return false
		}
	} else {
		max = 0
	}
	if r.ContentLength > max {
		if max == 0 {
			q.fail(newAPIError(codeProtocol, "%s requests have no body", r.Method))
		} else {
			q.fail(newAPIError(codeTooLarge, "the body is over %d bytes", max))
		}
		return false
	}
	body, err := readAll(http.MaxBytesReader(q.w, r.Body, max), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe) && max == 0:
			q.fail(newAPIError(codeProtocol, "%s requests have no body", r.Method))
		case errors.As(err, &mbe):
			q.fail(newAPIError(codeTooLarge, "the body is over %d bytes", max))
		default:
			q.fail(newAPIError(codeProtocol, "reading the body failed"))
		}
		return false
	}
	q.body = body
	return true
}

// readAll is io.ReadAll starting with room for the declared length, when
// it is small (a body that has not arrived yet holds no more than a
// bufio buffer's worth), so that reading a message does not grow its
// buffer. length was checked against the bound before.
func readAll(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > maxPrealloc {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, length+1) // +1: the read that sees EOF
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than declared: grow
		}
	}
}

// authenticate checks a request's authentication (docs/HTTP.md, "Request
// authentication") in the documented order and reads its body.
func (s *Server) authenticate(q *request, maxBody int64) bool {
	a, err := ParseAuthHeaders(q.r.Header)
	if err != nil {
		q.fail(newAPIError(CodeMissingAuth, "%s", trimPrefix(err.Error())))
		return false
	}
	s.mu.Lock()
	hs := s.sessions[a.Session]
	if hs != nil && !hs.acquire() {
		hs = nil
	}
	s.mu.Unlock()
	if hs == nil {
		q.fail(newAPIError(CodeUnknownSession, "no such session: it expired, ended, or never existed; make a new handshake"))
		return false
	}
	ok := false
	defer func() {
		if !ok {
			hs.release(s.cfg.Now())
		}
	}()
	now := s.cfg.Now()
	if !hs.allowRate(now, s.cfg.Rate, s.cfg.Burst) {
		q.fail(newAPIError(codeRateLimited, "the session is over its rate of %g requests a second", s.cfg.Rate))
		return false
	}
	if !s.readBody(q, maxBody) {
		return false
	}
	want := RequestMAC(hs.authKey[:], a.SessionText, q.r.Method, q.r.RequestURI, BodyHash(q.body), a.TimestampText, a.Nonce)
	if !hmac.Equal(want[:], a.MAC[:]) {
		q.fail(newAPIError(CodeBadMAC, "the request MAC does not verify"))
		return false
	}
	skew := s.cfg.RequestSkew
	if a.Timestamp.Before(now.Add(-skew)) || a.Timestamp.After(now.Add(skew)) {
		q.fail(newAPIError(codeStaleTimestamp, "the timestamp is more than %v from the listener's clock", skew))
		return false
	}
	switch hs.addNonce(a.Nonce, a.Timestamp.UnixMilli(), s.cfg.MaxNonces) {
	case errNonceReplay:
		q.fail(newAPIError(codeReplay, "the nonce was used before in this session"))
		return false
	case errNonceStale:
		q.fail(newAPIError(codeStaleTimestamp, "the timestamp is at or below the session's replay floor (%d requests came after it); sign the request again", s.cfg.MaxNonces))
		return false
	}
	q.sess = hs
	ok = true
	return true
}

// clientAddr is the request's remote address as a net.Addr.
func clientAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// handshakeInit serves POST /v1/handshake/init: flight 1 in, flight 2 out.
func (s *Server) handshakeInit(q *request) {
	now := s.cfg.Now()
	if s.hsLim != nil && !s.hsLim.Allow(clientAddr(q.r), now) {
		q.fail(newAPIError(codeRateLimited, "too many handshakes from this address"))
		return
	}
	var hj HelloJSON
	if err := decodeStrict(q.body, &hj, helloRequired, helloOptional); err != nil {
		s.met.handshakes.WithLabelValues(kexName(hj.KEX), codeProtocol).Inc()
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return
	}
	mode := kexName(hj.KEX)
	failHS := func(e *apiError) {
		s.met.handshakes.WithLabelValues(mode, e.Code).Inc()
		q.fail(e)
	}
	hello, err := helloToWire(&hj)
	if err != nil {
		if errors.Is(err, errBadJSON) {
			failHS(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
			return
		}
		failHS(handshakeError(err))
		return
	}
	// Capacity first: nothing costly for a request that cannot be kept.
	addr := addrKey(q.r)
	s.mu.Lock()
	if len(s.pending) >= s.cfg.MaxPending || len(s.pending)+len(s.sessions) >= s.cfg.MaxSessions || s.addrFullLocked(addr) {
		s.mu.Unlock()
		s.sweep(now)
		s.mu.Lock()
	}
	full := len(s.pending) >= s.cfg.MaxPending || len(s.pending)+len(s.sessions) >= s.cfg.MaxSessions
	addrFull := s.addrFullLocked(addr)
	s.mu.Unlock()
	if full {
		failHS(newAPIError(codeBusy, "too many pending handshakes or sessions"))
		return
	}
	if addrFull {
		failHS(newAPIError(codeBusy, "too many pending handshakes and sessions from this address"))
		return
	}
	var reserved *cryptosuite.PeerID
	scfg := s.scfg
	scfg.Policy = func(pk *cryptosuite.PublicKey) error {
		id := pk.PeerID()
		if s.allow != nil && !s.allow[id] {
			return node.ErrNotAllowed
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cfg.MaxSessionsPerPeer > 0 && s.perPeer[id] >= s.cfg.MaxSessionsPerPeer {
			return node.ErrTooManySessionsPerPeer
		}
		s.perPeer[id]++
		reserved = &id
		return nil
	}
	resp, err := session.NewResponder(&scfg, session.Params{Transport: session.TransportHTTP})
	if err != nil {
		failHS(newAPIError(codeInternal, "starting the handshake failed"))
		return
	}
	release := func() {
		if reserved != nil {
			s.mu.Lock()
			s.releasePeerLocked(*reserved)
			s.mu.Unlock()
		}
	}
	if err := resp.ConsumeHello(hello); err != nil {
		release()
		failHS(handshakeError(err))
		return
	}
	reply, err := resp.CreateReply()
	if err != nil {
		release()
		failHS(handshakeError(err))
		return
	}
	expires := now.Add(s.cfg.PendingTTL)
	out, err := helloReplyToJSON(reply, expires.UnixMilli())
	if err != nil {
		resp.Abort()
		release()
		failHS(newAPIError(codeInternal, "encoding the reply failed"))
		return
	}
	var sid [session.SessionIDSize]byte
	copy(sid[:], reply.SessionID)
	s.mu.Lock()
	if s.closed || len(s.pending) >= s.cfg.MaxPending || s.addrFullLocked(addr) {
		s.mu.Unlock()
		resp.Abort()
		release()
		failHS(newAPIError(codeBusy, "too many pending handshakes"))
		return
	}
	s.perAddr[addr]++
	s.pending[sid] = &pendingHandshake{resp: resp, peer: resp.Peer().PeerID(), addr: addr, mode: mode, expires: expires}
	s.mu.Unlock()
	writeJSON(q.w, http.StatusOK, out)
}

func kexName(id uint16) string {
	if s, ok := cryptosuite.KEXByID(cryptosuite.KEXID(id)); ok {
		return s.Name
	}
	return "unknown"
}

// handshakeFinish serves POST /v1/handshake/finish: flight 3 in, the
// session established.
func (s *Server) handshakeFinish(q *request) {
	var fj FinishJSON
	if err := decodeStrict(q.body, &fj, finishRequired, nil); err != nil {
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return
	}
	sidb, err := parseHexID("session", fj.Session, session.SessionIDSize)
	if err != nil {
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return
	}
	fin := &wire.Finished{MAC: fj.MAC}
	if err := fin.Validate(); err != nil {
		q.fail(handshakeError(err))
		return
	}
	sid := [session.SessionIDSize]byte(sidb)
	now := s.cfg.Now()
	s.mu.Lock()
	p := s.pending[sid]
	if p != nil {
		delete(s.pending, sid) // a finish is tried once: a failure ends it
	}
	s.mu.Unlock()
	if p == nil || !now.Before(p.expires) {
		if p != nil {
			s.mu.Lock()
			p.resp.Abort()
			s.releasePeerLocked(p.peer)
			s.releaseAddrLocked(p.addr)
			s.mu.Unlock()
			s.met.handshakes.WithLabelValues(p.mode, "expired").Inc()
		}
		q.fail(newAPIError(CodeUnknownHandshake, "no pending handshake with this session id: it expired (after %v) or failed; start again", s.cfg.PendingTTL))
		return
	}
	keys, err := p.resp.ConsumeFinished(fin)
	if err != nil {
		s.mu.Lock()
		s.releasePeerLocked(p.peer)
		s.releaseAddrLocked(p.addr)
		s.mu.Unlock()
		e := handshakeError(err)
		s.met.handshakes.WithLabelValues(p.mode, e.Code).Inc()
		q.fail(e)
		return
	}
	hs := newHTTPSession(keys, now)
	hs.addr = p.addr
	s.mu.Lock()
	if s.closed {
		s.releasePeerLocked(p.peer)
		s.releaseAddrLocked(p.addr)
		s.mu.Unlock()
		keys.Wipe()
		q.fail(newAPIError(codeBusy, "the listener is stopping"))
		return
	}
	j := s.journals[hs.peerID]
	if j == nil {
		j, err = s.newJournal(hs.peerID, max(uint64(now.UnixMicro()), s.idFloor+1))
		if err != nil {
			s.releasePeerLocked(p.peer)
			s.releaseAddrLocked(p.addr)
			s.mu.Unlock()
			keys.Wipe()
			q.fail(newAPIError(codeBusy, "the listener is stopping"))
			return
		}
		s.journals[hs.peerID] = j
	} else if j.refs == 0 {
		s.idle--
	}
	j.refs++
	hs.journal = j
	s.sessions[sid] = hs
	s.mu.Unlock()
	keys.Wipe() // the session keeps what it needs: the peer and the authentication key
	s.met.handshakes.WithLabelValues(p.mode, "ok").Inc()
	s.log.Info("HTTP session established", "peer", hs.peerID, "kex", p.mode)
	writeJSON(q.w, http.StatusOK, s.sessionJSON(hs))
}

func (s *Server) sessionJSON(hs *httpSession) *SessionJSON {
	return &SessionJSON{
		Session: hex.EncodeToString(hs.id[:]), Peer: hs.peerID.String(),
		KEX: uint16(hs.kex), AEAD: uint16(hs.aead), IdleTimeout: s.cfg.IdleTimeout.Milliseconds(),
	}
}

// endSession removes hs, ends its streams and wipes its key.
func (s *Server) endSession(hs *httpSession) {
	s.mu.Lock()
	if s.sessions[hs.id] != hs {
		s.mu.Unlock()
		return
	}
	delete(s.sessions, hs.id)
	s.releasePeerLocked(hs.peerID)
	s.releaseAddrLocked(hs.addr)
	// The peer's journal outlives its last session by EventRetention,
	// recording events for a session that resumes; the oldest idle one
	// goes when more than MaxIdleJournals are idle.
	j := hs.journal
	var drop *journal
	if j.refs--; j.refs == 0 {
		j.idleSince = s.cfg.Now()
		s.idle++
		switch {
		case s.cfg.EventRetention < 0 || s.closed:
			drop = j
		case s.idle > s.cfg.MaxIdleJournals:
			drop = s.oldestIdleLocked()
		}
		if drop != nil {
			s.dropJournalLocked(drop)
		}
	}
	s.mu.Unlock()
	hs.end()
	if drop != nil {
		drop.close()
	}
}

// oldestIdleLocked returns the journal idle the longest.
func (s *Server) oldestIdleLocked() *journal {
	var old *journal
	for _, j := range s.journals {
		if j.refs == 0 && (old == nil || j.idleSince.Before(old.idleSince)) {
			old = j
		}
	}
	return old
}

// opContext bounds one Service call.
func (s *Server) opContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.OpTimeout)
}

// maxCommitBody is the body bound of the commit endpoints: base64 of the
// host's largest commit, and room for the JSON around it.
func (s *Server) maxCommitBody() int64 {
	n := room.MaxCommitBlob(s.svc.Host().Limits().MaxMembers)
	return int64((n+2)/3*4 + 4<<10)
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	post := func(f func(*request)) map[string]endpoint {
		return map[string]endpoint{http.MethodPost: {auth: true, maxBody: MaxBody, serve: f}}
	}
	get := func(f func(*request)) map[string]endpoint {
		return map[string]endpoint{http.MethodGet: {auth: true, serve: f}}
	}
	s.handle("/v1/handshake/init", map[string]endpoint{http.MethodPost: {maxBody: MaxHandshakeBody, serve: s.handshakeInit}})
	s.handle("/v1/handshake/finish", map[string]endpoint{http.MethodPost: {maxBody: MaxHandshakeBody, serve: s.handshakeFinish}})
	s.handle("/v1/session", map[string]endpoint{
		http.MethodGet:    {auth: true, serve: func(q *request) { writeJSON(q.w, http.StatusOK, s.sessionJSON(q.sess)) }},
		http.MethodDelete: {auth: true, serve: s.deleteSession},
	})
	s.handle("/v1/key-packages", post(s.publishKeyPackage))
	s.handle("/v1/key-packages/{hash}", get(s.fetchKeyPackage))
	s.handle("/v1/peers/{peer}/key-package", get(s.latestKeyPackage))
	s.handle("/v1/rooms", map[string]endpoint{
		http.MethodGet:  {auth: true, serve: s.listRooms},
		http.MethodPost: {auth: true, maxBody: s.maxCommitBody(), serve: s.createRoom},
	})
	s.handle("/v1/rooms/{room}", map[string]endpoint{
		http.MethodGet:    {auth: true, serve: s.roomInfo},
		http.MethodDelete: {auth: true, serve: s.deleteRoom},
	})
	s.handle("/v1/rooms/{room}/commits", map[string]endpoint{
		http.MethodGet:  {auth: true, serve: s.fetchCommits},
		http.MethodPost: {auth: true, maxBody: s.maxCommitBody(), serve: s.commit},
	})
	s.handle("/v1/rooms/{room}/wrapped-keys", post(s.uploadWrappedKey))
	s.handle("/v1/rooms/{room}/wrapped-keys/{epoch}", get(s.fetchWrappedKey))
	s.handle("/v1/rooms/{room}/acks", post(s.ack))
	s.handle("/v1/rooms/{room}/leave", post(s.leave))
	s.handle("/v1/rooms/{room}/leaves/{peer}", get(s.fetchLeave))
	s.handle("/v1/rooms/{room}/messages", map[string]endpoint{
		http.MethodGet:  {auth: true, serve: s.readMessages},
		http.MethodPost: {auth: true, maxBody: MaxBody, serve: s.sendMessage},
	})
	s.handle("/v1/rooms/{room}/events", get(s.roomEvents))
	s.handle("/v1/events", get(s.sessionEvents))
	s.handle("/healthz", map[string]endpoint{http.MethodGet: {serve: func(q *request) {
		writeJSON(q.w, http.StatusOK, map[string]string{"status": "ok"})
	}}})
	metricsHandler := promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{})
	s.handle("/metrics", map[string]endpoint{http.MethodGet: {serve: func(q *request) { metricsHandler.ServeHTTP(q.w, q.r) }}})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, newAPIError(codeNotFound, "no such endpoint (docs/HTTP.md lists them)"))
	})
}

func (s *Server) deleteSession(q *request) {
	s.endSession(q.sess)
	writeJSON(q.w, http.StatusOK, struct{}{})
}
