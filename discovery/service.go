package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
)

// Defaults, timers and limits (docs/PROTOCOL.md §19.7).
const (
	// DefaultGroupIPv4 is the IPv4 group, in the IPv4 Local Scope
	// 239.255.0.0/16 (RFC 2365); "LP" is 76.80.
	DefaultGroupIPv4 = "239.255.76.80"
	// DefaultGroupIPv6 is the IPv6 group, link-local scope (ff02::/16).
	DefaultGroupIPv6 = "ff02::4c50"
	// DefaultPort is the group's UDP port. It has no IANA assignment and
	// lies below Linux's ephemeral range (32768-60999).
	DefaultPort = 27183

	// DefaultInterval is the time between periodic announcements.
	DefaultInterval = 30 * time.Second
	// MinInterval and MaxInterval bound Config.Interval and the interval an
	// announcement may carry.
	MinInterval = 50 * time.Millisecond
	MaxInterval = 10 * time.Minute
	// ExpiryIntervals: an entry expires this many of its sender's intervals
	// after the last announcement accepted from it.
	ExpiryIntervals = 3
	// ResignAfter is the oldest signed announcement an answer reuses; older
	// ones are signed again. Periodic and forced announcements are always
	// signed afresh.
	ResignAfter = 10 * time.Second
	// DefaultMaxClockSkew is how far a timestamp may be ahead of the
	// receiver's clock, and behind it on top of ResignAfter.
	DefaultMaxClockSkew = 2 * time.Minute
	// MaxAnswerDelay bounds the random delay before an answer.
	MaxAnswerDelay = 200 * time.Millisecond
	// ForcedAnnounceGap is the least time between two forced announcements
	// (at most half the interval).
	ForcedAnnounceGap = 2 * time.Second
	// MaxPendingAnswers bounds the answers waiting for their delay.
	MaxPendingAnswers = 32
	// DefaultLookupTimeout bounds a Lookup whose context has no deadline.
	DefaultLookupTimeout = 3 * time.Second
	// lookupQueries bounds the queries one Lookup sends; the gap doubles
	// from lookupFirstGap.
	lookupQueries  = 5
	lookupFirstGap = 200 * time.Millisecond
	// maxSuperseded is how many replaced instances an entry remembers.
	maxSuperseded = 4

	// DefaultMaxPeers bounds the cache.
	DefaultMaxPeers = 256
	// DefaultSourceRate and DefaultSourceBurst shape the token bucket of
	// one source address: datagrams per second, and the burst.
	DefaultSourceRate  = 8
	DefaultSourceBurst = 32
	// DefaultMaxSources bounds the token buckets held; sources beyond it
	// share one bucket.
	DefaultMaxSources = 256

	queueLen = 256
)

// Errors of New, Run, Query and Lookup.
var (
	// ErrBadConfig wraps every refusal of a Config.
	ErrBadConfig = errors.New("discovery: bad config")
	// ErrNotFound means no peer with that ID answered before the deadline.
	ErrNotFound = errors.New("discovery: peer not found on the LAN")
	// ErrStopped means Run has returned.
	ErrStopped = errors.New("discovery: service stopped")
	// ErrRunning means Run was called a second time.
	ErrRunning = errors.New("discovery: Run called twice")
)

// Limits bound what peers on the LAN can make a Service hold or do. Zero
// fields take the defaults.
type Limits struct {
	// MaxPeers bounds the cache (live entries and remembered expired ones).
	MaxPeers int
	// SourceRate (datagrams per second) and SourceBurst shape the token
	// bucket of each source address; a datagram without a token is
	// dropped before it is parsed.
	SourceRate  float64
	SourceBurst int
	// MaxSources bounds the buckets held.
	MaxSources int
	// MaxClockSkew bounds announcement timestamps (DefaultMaxClockSkew).
	MaxClockSkew time.Duration
}

// Config of a Service. New copies it; the caller may reuse it.
type Config struct {
	// Identity signs announcements. Nil makes a passive Service: it listens
	// and queries (lanpeer peers, lanpeer dial PEERID) but never announces
	// or answers, since announcing one's presence is a choice.
	Identity *cryptosuite.Identity
	// Name is the display name announced: at most MaxNameSize bytes of
	// printable UTF-8.
	Name string
	// TCPAddrs and HTTPAddrs are the addresses announced, at most MaxAddrs
	// each, no zones. An unspecified address (0.0.0.0:7000, [::]:7000)
	// tells receivers to use the address the announcement came from.
	TCPAddrs, HTTPAddrs []netip.AddrPort
	// HTTPS says the HTTP addresses serve HTTPS (lanpeer listen --https);
	// announcements carry the scheme, so receivers need not guess. It
	// requires HTTPAddrs.
	HTTPS bool
	// Interfaces names every interface to join and send on; required (see
	// DefaultInterfaces).
	Interfaces []string
	// Group is the multicast group: 239.255.0.0/16 or ff02::/16. Zero means
	// DefaultGroupIPv4.
	Group netip.Addr
	// Port is the group's UDP port; 0 means DefaultPort.
	Port uint16
	// Interval between periodic announcements; 0 means DefaultInterval.
	Interval time.Duration
	// Now is the clock of timestamps, expiry and rate limits; nil means
	// time.Now. Timers (announcements, answer delays) use the real clock.
	Now func() time.Time
	// Logger receives warnings (interfaces not joined, sends that failed)
	// and, at debug level, every drop; nil discards.
	Logger *slog.Logger
	// Limits bound the cache and the work a source can cause.
	Limits Limits
}

// Service announces this peer, answers queries and caches what others
// announce. Create it with New, then call Run once; Peers, Query, Lookup
// and Stats are safe for concurrent use, before, during and after Run.
type Service struct {
	cfg      Config
	log      *slog.Logger
	instance [InstanceIDSize]byte
	own      cryptosuite.PeerID
	window   time.Duration // how far behind the clock a timestamp may be

	started atomic.Bool
	ready   chan struct{} // closed once Run has joined (conn set) or failed (runErr set)
	stopped chan struct{} // closed when Run returns
	conn    *multicast.Conn
	runErr  error

	mu      sync.Mutex
	cache   map[cryptosuite.PeerID]*entry
	changed chan struct{} // closed and replaced on every accepted announcement

	st counters

	// Owned by Run's goroutine.
	lim           *limiter
	signed        []byte // the latest signed announcement
	signedMillis  uint64
	lastMillis    uint64
	pending       []pendingAnswer
	lastForced    time.Time
	forcedPending bool
}

type pendingAnswer struct {
	due     time.Time
	to      netip.AddrPort
	ifIndex int
}

// New checks cfg and returns a Service that has not started.
func New(cfg Config) (*Service, error) {
	if err := applyDefaults(&cfg); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		log:     cfg.Logger,
		window:  ResignAfter + cfg.Limits.MaxClockSkew,
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
		cache:   make(map[cryptosuite.PeerID]*entry),
		changed: make(chan struct{}),
		lim:     newLimiter(cfg.Limits.SourceRate, cfg.Limits.SourceBurst, cfg.Limits.MaxSources),
	}
	if cfg.Identity != nil {
		s.own = cfg.Identity.PeerID()
	}
	if _, err := rand.Read(s.instance[:]); err != nil {
		return nil, err
	}
	return s, nil
}

func applyDefaults(c *Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	if !c.Group.IsValid() {
		c.Group = netip.MustParseAddr(DefaultGroupIPv4)
	}
	if c.Group.Is4In6() || c.Group.Zone() != "" ||
		!(netip.MustParsePrefix("239.255.0.0/16").Contains(c.Group) || netip.MustParsePrefix("ff02::/16").Contains(c.Group)) {
		return bad("group %v is neither in 239.255.0.0/16 nor in ff02::/16", c.Group)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < MinInterval || c.Interval > MaxInterval || c.Interval%time.Millisecond != 0 {
		return bad("interval %v (want whole milliseconds from %v to %v)", c.Interval, MinInterval, MaxInterval)
	}
	if len(c.Interfaces) == 0 {
		return bad("no interface named (announcements leave only by interfaces named explicitly)")
	}
	c.Interfaces = append([]string(nil), c.Interfaces...)
	if !validName(c.Name) {
		return bad("name must be at most %d bytes of printable UTF-8", MaxNameSize)
	}
	for _, l := range [][]netip.AddrPort{c.TCPAddrs, c.HTTPAddrs} {
		if len(l) > MaxAddrs {
			return bad("%d addresses of one kind (max %d)", len(l), MaxAddrs)
		}
		for _, a := range l {
			if !a.IsValid() || a.Port() == 0 || a.Addr().Zone() != "" || a.Addr().IsMulticast() {
				return bad("address %v (want IP:port, port not 0, no zone, not multicast)", a)
			}
		}
	}
	if c.HTTPS && len(c.HTTPAddrs) == 0 {
		return bad("HTTPS without HTTP addresses")
	}
	c.TCPAddrs = append([]netip.AddrPort(nil), c.TCPAddrs...)
	c.HTTPAddrs = append([]netip.AddrPort(nil), c.HTTPAddrs...)
	if c.Identity != nil && len(c.Identity.Public().SPKI()) > MaxSPKISize {
		return bad("identity key too large to announce")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	l := &c.Limits
	if l.MaxPeers == 0 {
		l.MaxPeers = DefaultMaxPeers
	}
	if l.SourceRate == 0 {
		l.SourceRate = DefaultSourceRate
	}
	if l.SourceBurst == 0 {
		l.SourceBurst = DefaultSourceBurst
	}
	if l.MaxSources == 0 {
		l.MaxSources = DefaultMaxSources
	}
	if l.MaxClockSkew == 0 {
		l.MaxClockSkew = DefaultMaxClockSkew
	}
	if l.MaxPeers < 1 || l.MaxPeers > 1<<16 || l.SourceRate <= 0 || l.SourceBurst < 1 ||
		l.MaxSources < 1 || l.MaxSources > 1<<16 || l.MaxClockSkew < 0 || l.MaxClockSkew > time.Hour {
		return bad("limits %+v out of range", *l)
	}
	return nil
}

// DefaultInterfaces lists the interfaces that are up, can multicast and are
// neither loopback nor point-to-point: what `--iface` means when it is not
// given. It fails when there is none.
func DefaultInterfaces() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("discovery: listing interfaces: %w", err)
	}
	var names []string
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 &&
			i.Flags&(net.FlagLoopback|net.FlagPointToPoint) == 0 {
			names = append(names, i.Name)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("discovery: no interface is up and multicast-capable; name one with --iface")
	}
	return names, nil
}

// Announcing reports whether the Service announces and answers (it has an
// identity).
func (s *Service) Announcing() bool { return s.cfg.Identity != nil }

// Instance returns this process's instance id, hex.
func (s *Service) Instance() string { return hex.EncodeToString(s.instance[:]) }

// Interfaces lists the interfaces joined; empty until Run has joined.
func (s *Service) Interfaces() []multicast.Interface {
	select {
	case <-s.ready:
		if s.conn != nil {
			return s.conn.Interfaces()
		}
	default:
	}
	return nil
}

// Ready is closed once Run has joined the group, or has failed to.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run joins the group and serves until ctx is done, then returns nil. It
// fails at once (with an error wrapping multicast.ErrNoInterface) when no
// interface can be joined. An announcing Service announces at once, asks
// who is there, and announces again every Interval less up to a quarter
// (jitter). Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(s.stopped)
	conn, err := multicast.Listen(ctx, multicast.Config{
		Group: s.cfg.Group, Port: s.cfg.Port, Interfaces: s.cfg.Interfaces,
		MaxDatagram: MaxDatagram, QueueLen: queueLen,
	})
	if err != nil {
		s.runErr = fmt.Errorf("discovery: %w", err)
		close(s.ready)
		return s.runErr
	}
	defer conn.Close()
	for _, f := range conn.Failed() {
		s.log.Warn("discovery: interface not joined", "interface", f.Interface, "err", f.Err)
	}
	s.conn = conn
	close(s.ready)

	announceT := time.NewTimer(0)
	if !s.Announcing() {
		announceT.Stop()
	}
	sweepT := time.NewTicker(s.cfg.Interval)
	forcedT := time.NewTimer(0)
	forcedT.Stop()
	answerT := time.NewTimer(0)
	answerT.Stop()
	defer func() { announceT.Stop(); sweepT.Stop(); forcedT.Stop(); answerT.Stop() }()
	first := true

	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-conn.Recv():
			if !ok {
				return nil // closed: ctx is done
			}
			if s.handle(d) && s.Announcing() && !s.forcedPending {
				// A new peer: announce soon, so it learns of us.
				s.forcedPending = true
				gap := min(ForcedAnnounceGap, s.cfg.Interval/2)
				forcedT.Reset(max(0, time.Until(s.lastForced.Add(gap))))
			}
			if len(s.pending) > 0 {
				answerT.Reset(max(0, time.Until(s.pending[0].due)))
			}
		case <-announceT.C:
			s.announce()
			if first {
				first = false
				s.query(cryptosuite.PeerID{})
			}
			announceT.Reset(s.cfg.Interval - mrand.N(s.cfg.Interval/4))
		case <-forcedT.C:
			s.forcedPending = false
			s.lastForced = time.Now()
			s.announce()
		case <-answerT.C:
			s.answerDue()
			if len(s.pending) > 0 {
				answerT.Reset(max(0, time.Until(s.pending[0].due)))
			}
		case <-sweepT.C:
			s.mu.Lock()
			s.purgeLocked(s.cfg.Now())
			s.mu.Unlock()
		}
	}
}

// nextMillis returns the signing time: now, but always after the last one,
// so every fresh announcement is strictly newer than the one before.
func (s *Service) nextMillis() uint64 {
	ms := uint64(max(s.cfg.Now().UnixMilli(), 0))
	if ms <= s.lastMillis {
		ms = s.lastMillis + 1
	}
	s.lastMillis = ms
	return ms
}

// sign builds and signs a fresh announcement.
func (s *Service) sign() ([]byte, error) {
	a := &announcement{
		peer: s.own, instance: s.instance, tcp: s.cfg.TCPAddrs, http: s.cfg.HTTPAddrs, https: s.cfg.HTTPS,
		name: s.cfg.Name, interval: uint64(s.cfg.Interval / time.Millisecond), millis: s.nextMillis(),
	}
	b, err := encodeAnnouncement(s.cfg.Identity, a)
	if err != nil {
		return nil, err
	}
	s.signed, s.signedMillis = b, a.millis
	return b, nil
}

// announce signs afresh and sends to the group.
func (s *Service) announce() {
	b, err := s.sign()
	if err != nil {
		s.log.Warn("discovery: cannot sign announcement", "err", err)
		return
	}
	if s.send(b) {
		s.st.announcements.Add(1)
	}
}

// send sends b to the group; it reports whether b left by any interface.
func (s *Service) send(b []byte) bool {
	err := s.conn.Send(b)
	if err == nil {
		return true
	}
	if errors.Is(err, net.ErrClosed) {
		return false // shutting down
	}
	var se *multicast.SendError
	if errors.As(err, &se) && se.Sent > 0 {
		s.log.Warn("discovery: send failed on some interfaces", "err", err)
		return true
	}
	s.st.sendErrors.Add(1)
	s.log.Warn("discovery: send failed", "err", err)
	return false
}

func (s *Service) query(target cryptosuite.PeerID) error {
	if !s.send(encodeQuery(target)) {
		return fmt.Errorf("discovery: query not sent on any interface")
	}
	s.st.queriesSent.Add(1)
	return nil
}

// answerDue sends every answer whose delay has passed, by unicast from the
// interface the query came in on.
func (s *Service) answerDue() {
	now := time.Now()
	n := 0
	for n < len(s.pending) && !s.pending[n].due.After(now) {
		n++
	}
	due := s.pending[:n]
	s.pending = append(s.pending[:0:0], s.pending[n:]...)
	if len(due) == 0 {
		return
	}
	b := s.signed
	if b == nil || s.cfg.Now().UnixMilli()-int64(s.signedMillis) > ResignAfter.Milliseconds() {
		var err error
		if b, err = s.sign(); err != nil {
			s.log.Warn("discovery: cannot sign announcement", "err", err)
			return
		}
	}
	for _, p := range due {
		// No amplification: an answer is never larger than a query
		// (QuerySize is the largest announcement).
		if len(b) > QuerySize {
			s.st.answersDropped.Add(1)
			continue
		}
		if err := s.conn.SendTo(b, p.to, p.ifIndex); err != nil {
			s.st.sendErrors.Add(1)
			s.log.Debug("discovery: answer not sent", "to", p.to, "err", err)
			continue
		}
		s.st.answersSent.Add(1)
	}
}
