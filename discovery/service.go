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
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
)

// Defaults, timers and limits (docs/PROTOCOL.md §16.5).
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

// Peer is one cache entry: what a verified announcement said, and where it
// came from. It is a hint: the handshake still checks that whoever answers
// at these addresses holds the key of ID.
type Peer struct {
	ID        cryptosuite.PeerID `json:"peer_id"`
	Name      string             `json:"name"`
	Instance  string             `json:"instance"` // hex; changes when the peer restarts
	TCPAddrs  []netip.AddrPort   `json:"tcp"`
	HTTPAddrs []netip.AddrPort   `json:"http"`
	// Interface is where the last accepted announcement arrived, Source the
	// address it came from.
	Interface string         `json:"interface"`
	Source    netip.AddrPort `json:"source"`
	// Announced is the announcement's signed timestamp, LastSeen the local
	// time it was accepted.
	Announced time.Time     `json:"announced"`
	LastSeen  time.Time     `json:"last_seen"`
	Interval  time.Duration `json:"interval_ns"`
}

// Age is how long ago the last announcement was accepted.
func (p *Peer) Age(now time.Time) time.Duration { return now.Sub(p.LastSeen) }

// Stats counts what a Service did. Every datagram it read (Received) is
// counted exactly once more: as Accepted, as a well-formed Query, or under
// one drop class (Oversized ... CacheFull).
type Stats struct {
	Received uint64
	// Accepted announcements added or refreshed a cache entry; Restarts of
	// them replaced a known peer's instance.
	Accepted, Restarts uint64
	// Queries counts well-formed queries received.
	Queries uint64

	// Drop classes.
	Oversized    uint64 // longer than MaxDatagram
	Malformed    uint64 // bad magic, unknown type, bad lengths or fields, query of the wrong size or padding
	Version      uint64 // another discovery version
	Unsigned     uint64 // announcement with an empty signature
	BadKey       uint64 // identity key refused (type, size, non-canonical encoding)
	KeyMismatch  uint64 // peer ID is not SHA-256 of the key carried
	BadSignature uint64 // signature does not verify
	Stale        uint64 // timestamp outside the accepted window
	Replayed     uint64 // not newer than what was seen from that peer, or from an instance it replaced
	Duplicate    uint64 // the announcement already accepted, again (answers, several interfaces)
	Self         uint64 // this peer's own announcements, looped back
	RateLimited  uint64 // the source had no token
	CacheFull    uint64 // a new peer while the cache held MaxPeers

	// QueueFull counts datagrams the socket readers dropped because the
	// Service lagged (not in Received).
	QueueFull uint64
	// AnswersDropped counts queries not answered because MaxPendingAnswers
	// answers were waiting; AnswersSent, AnnouncementsSent and QueriesSent
	// count datagrams sent, SendErrors sends that failed on every
	// interface.
	AnswersDropped, AnswersSent, AnnouncementsSent, QueriesSent, SendErrors uint64
}

// counters: received and the verdicts change together under mu, so a
// snapshot always adds up; the others are atomic.
type counters struct {
	mu       sync.Mutex
	received uint64
	verdicts [numVerdicts]uint64

	restarts, answersDropped, answersSent, announcements atomic.Uint64
	queriesSent, sendErrors                              atomic.Uint64
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

// entry is one cache record. An expired entry stays (not listed) until its
// last timestamp falls out of the accepted window, so replaying its last
// announcement cannot bring it back.
type entry struct {
	peer       Peer
	instance   [InstanceIDSize]byte
	millis     uint64
	interval   time.Duration
	superseded [maxSuperseded][InstanceIDSize]byte
	nSup       int
}

func (e *entry) live(now time.Time) bool {
	return now.Sub(e.peer.LastSeen) <= ExpiryIntervals*e.interval
}

func (e *entry) wasSuperseded(inst [InstanceIDSize]byte) bool {
	for i := 0; i < e.nSup && i < maxSuperseded; i++ {
		if e.superseded[i] == inst {
			return true
		}
	}
	return false
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
		peer: s.own, instance: s.instance, tcp: s.cfg.TCPAddrs, http: s.cfg.HTTPAddrs,
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

// handle processes one datagram and counts it once; it reports whether a
// new peer (or a new instance of a known one) was accepted.
func (s *Service) handle(d multicast.Datagram) bool {
	v, peer, fresh := s.judge(d)
	s.st.mu.Lock()
	s.st.received++
	s.st.verdicts[v]++
	s.st.mu.Unlock()
	if v != verdictAccepted && v != verdictQuery && v != dropSelf && v != dropDuplicate {
		if peer != nil {
			s.log.Debug("discovery: dropped", "class", v.String(), "from", d.From, "interface", d.Interface, "peer", *peer)
		} else {
			s.log.Debug("discovery: dropped", "class", v.String(), "from", d.From, "interface", d.Interface)
		}
	}
	return fresh
}

// judge decides what becomes of a datagram (and acts on it): the verdict,
// the peer it claims to be from once that is known, and whether it
// brought a new peer.
func (s *Service) judge(d multicast.Datagram) (verdict, *cryptosuite.PeerID, bool) {
	now := s.cfg.Now()
	if d.Truncated {
		return dropOversized, nil, false
	}
	if !s.lim.allow(d.From.Addr(), now) {
		return dropRateLimited, nil, false
	}
	typ, v := classify(d.Data)
	if v != dropNone {
		return v, nil, false
	}
	if typ == typeQuery {
		return s.onQuery(d), nil, false
	}
	return s.onAnnounce(d, now)
}

// onQuery schedules an answer to a well-formed query meant for this peer.
func (s *Service) onQuery(d multicast.Datagram) verdict {
	target, v := parseQuery(d.Data)
	if v != dropNone {
		return v
	}
	if !s.Announcing() || (!target.IsZero() && target != s.own) {
		return verdictQuery
	}
	if s.conn != nil {
		for _, i := range s.conn.Interfaces() {
			if i.Local == d.From {
				return verdictQuery // our own query, looped back
			}
		}
	}
	for _, p := range s.pending {
		if p.to == d.From {
			return verdictQuery // an answer to that address is already waiting
		}
	}
	if len(s.pending) >= MaxPendingAnswers {
		s.st.answersDropped.Add(1)
		return verdictQuery
	}
	due := time.Now().Add(mrand.N(MaxAnswerDelay + 1))
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].due.After(due) })
	s.pending = append(s.pending, pendingAnswer{})
	copy(s.pending[i+1:], s.pending[i:])
	s.pending[i] = pendingAnswer{due: due, to: d.From, ifIndex: d.IfIndex}
	return verdictQuery
}

// onAnnounce runs the checks from cheapest to dearest; nothing is stored
// before the signature verifies, and the blob is parsed in full only after.
func (s *Service) onAnnounce(d multicast.Datagram, now time.Time) (verdict, *cryptosuite.PeerID, bool) {
	env, v := splitEnvelope(d.Data)
	if v != dropNone {
		return v, nil, false
	}
	pk, v := peekBlob(env.blob)
	if v != dropNone {
		return v, nil, false
	}
	if cryptosuite.PeerIDFromSPKI(env.spki) != pk.peer {
		return dropKeyMismatch, nil, false
	}
	if s.Announcing() && pk.peer == s.own {
		return dropSelf, nil, false
	}
	// A timestamp past int64 reads as negative: stale.
	ts := time.UnixMilli(int64(pk.millis))
	if pk.millis > 1<<62 || ts.Before(now.Add(-s.window)) || ts.After(now.Add(s.cfg.Limits.MaxClockSkew)) {
		return dropStale, &pk.peer, false
	}

	s.mu.Lock()
	e := s.cache[pk.peer]
	full := false
	if e == nil && len(s.cache) >= s.cfg.Limits.MaxPeers {
		s.purgeLocked(now)
		full = len(s.cache) >= s.cfg.Limits.MaxPeers
	}
	judged := dropNone
	switch {
	case full:
		judged = dropCacheFull
	case e == nil:
	case e.wasSuperseded(pk.instance):
		judged = dropReplayed
	case pk.millis > e.millis:
	case pk.millis == e.millis && pk.instance == e.instance:
		judged = dropDuplicate
	default:
		judged = dropReplayed
	}
	s.mu.Unlock()
	if judged != dropNone {
		return judged, &pk.peer, false
	}

	key, err := cryptosuite.ParsePublicKey(env.spki)
	if err != nil {
		return dropBadKey, &pk.peer, false
	}
	if key.Verify(canon.LabelAnnounce, env.blob, env.sig) != nil {
		return dropBadSignature, &pk.peer, false
	}
	a, ok := parseBlob(env.blob)
	if !ok || a.peer != pk.peer || a.instance != pk.instance || a.millis != pk.millis {
		return dropMalformed, &pk.peer, false
	}
	return verdictAccepted, &pk.peer, s.commit(a, d, now)
}

// commit stores a verified announcement.
func (s *Service) commit(a *announcement, d multicast.Datagram, now time.Time) bool {
	s.mu.Lock()
	e := s.cache[a.peer]
	fresh := e == nil || !e.live(now)
	restart := e != nil && e.instance != a.instance
	if e == nil {
		e = &entry{}
		s.cache[a.peer] = e
	}
	if restart {
		e.superseded[e.nSup%maxSuperseded] = e.instance
		e.nSup++
	}
	e.instance, e.millis = a.instance, a.millis
	e.interval = time.Duration(a.interval) * time.Millisecond
	e.peer = Peer{
		ID: a.peer, Name: a.name, Instance: hex.EncodeToString(a.instance[:]),
		TCPAddrs: substitute(a.tcp, d.From), HTTPAddrs: substitute(a.http, d.From),
		Interface: d.Interface, Source: d.From,
		Announced: time.UnixMilli(int64(a.millis)), LastSeen: now, Interval: e.interval,
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if restart {
		s.st.restarts.Add(1)
	}
	if fresh || restart {
		s.log.Debug("discovery: peer seen", "peer", a.peer, "name", a.name, "from", d.From, "restart", restart)
	}
	return fresh || restart
}

// substitute replaces unspecified addresses by the datagram's source
// address (keeping the announced port) and drops repeats.
func substitute(as []netip.AddrPort, from netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(as))
	for _, a := range as {
		if a.Addr().IsUnspecified() {
			a = netip.AddrPortFrom(from.Addr(), a.Port())
		}
		dup := false
		for _, o := range out {
			dup = dup || o == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// purgeLocked forgets expired entries whose last timestamp is out of the
// accepted window (a replay of it would be stale anyway).
func (s *Service) purgeLocked(now time.Time) {
	for id, e := range s.cache {
		if !e.live(now) && now.Sub(time.UnixMilli(int64(e.millis))) > s.window {
			delete(s.cache, id)
		}
	}
}

// Peers returns the live entries, sorted by peer ID. The slice and
// everything in it belong to the caller.
func (s *Service) Peers() []Peer {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Peer, 0, len(s.cache))
	for _, e := range s.cache {
		if e.live(now) {
			out = append(out, e.peer.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].ID[:]) < string(out[j].ID[:]) })
	return out
}

func (p Peer) clone() Peer {
	p.TCPAddrs = append([]netip.AddrPort(nil), p.TCPAddrs...)
	p.HTTPAddrs = append([]netip.AddrPort(nil), p.HTTPAddrs...)
	return p
}

// livePeer returns the live entry for id and the channel that closes on the
// next change.
func (s *Service) livePeer(id cryptosuite.PeerID) (Peer, bool, <-chan struct{}) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cache[id]; e != nil && e.live(now) {
		return e.peer.clone(), true, s.changed
	}
	return Peer{}, false, s.changed
}

// waitReady waits until Run has joined the group.
func (s *Service) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		if s.runErr != nil {
			return s.runErr
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.stopped:
		return ErrStopped
	default:
		return nil
	}
}

// Query asks who is there (what `lanpeer peers` does): it waits until Run
// has joined, sends a query to the group (and a second one halfway through
// a timeout of at least 500 ms, in case the first was lost), waits for the
// timeout, and returns Peers. Peers answer by unicast after a random delay
// of at most MaxAnswerDelay; a timeout of a second or two is plenty.
func (s *Service) Query(ctx context.Context, timeout time.Duration) ([]Peer, error) {
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := s.query(cryptosuite.PeerID{}); err != nil {
		return nil, err
	}
	end := time.NewTimer(timeout)
	defer end.Stop()
	again := time.NewTimer(timeout / 2)
	defer again.Stop()
	if timeout < 500*time.Millisecond {
		again.Stop()
	}
	for {
		select {
		case <-again.C:
			s.query(cryptosuite.PeerID{})
		case <-end.C:
			return s.Peers(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopped:
			return nil, ErrStopped
		}
	}
}

// Lookup returns the live entry for id (what `lanpeer dial PEERID` does).
// When the cache has none it waits until Run has joined and asks that peer
// alone, again after 200 ms and with doubling gaps (at most five queries),
// until an announcement from it is accepted or ctx is done; a ctx without
// deadline gets DefaultLookupTimeout. It fails with an error wrapping
// ErrNotFound and the context's error.
func (s *Service) Lookup(ctx context.Context, id cryptosuite.PeerID) (Peer, error) {
	if p, ok, _ := s.livePeer(id); ok {
		return p, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLookupTimeout)
		defer cancel()
	}
	if err := s.waitReady(ctx); err != nil {
		return Peer{}, fmt.Errorf("%w: %v: %w", ErrNotFound, id, err)
	}
	next := time.NewTimer(0)
	defer next.Stop()
	gap, sent := lookupFirstGap, 0
	for {
		p, ok, changed := s.livePeer(id)
		if ok {
			return p, nil
		}
		select {
		case <-changed:
		case <-next.C:
			if sent < lookupQueries {
				s.query(id)
				sent++
				next.Reset(gap)
				gap *= 2
			}
		case <-ctx.Done():
			return Peer{}, fmt.Errorf("%w: %v: %w", ErrNotFound, id, ctx.Err())
		case <-s.stopped:
			return Peer{}, ErrStopped
		}
	}
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.st.mu.Lock()
	v := s.st.verdicts
	st := Stats{Received: s.st.received}
	s.st.mu.Unlock()
	st.Accepted, st.Queries = v[verdictAccepted], v[verdictQuery]
	st.Oversized, st.Malformed, st.Version, st.Unsigned = v[dropOversized], v[dropMalformed], v[dropVersion], v[dropUnsigned]
	st.BadKey, st.KeyMismatch, st.BadSignature = v[dropBadKey], v[dropKeyMismatch], v[dropBadSignature]
	st.Stale, st.Replayed, st.Duplicate, st.Self = v[dropStale], v[dropReplayed], v[dropDuplicate], v[dropSelf]
	st.RateLimited, st.CacheFull = v[dropRateLimited], v[dropCacheFull]
	st.Restarts = s.st.restarts.Load()
	st.AnswersDropped, st.AnswersSent = s.st.answersDropped.Load(), s.st.answersSent.Load()
	st.AnnouncementsSent, st.QueriesSent = s.st.announcements.Load(), s.st.queriesSent.Load()
	st.SendErrors = s.st.sendErrors.Load()
	select {
	case <-s.ready:
		if s.conn != nil {
			st.QueueFull = s.conn.Stats().Dropped
		}
	default:
	}
	return st
}
