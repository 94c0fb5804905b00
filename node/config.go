package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// Defaults of the limits (docs/PROTOCOL.md, "17.8 Limits"). A zero field of
// Config selects its default.
const (
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultHandshakeRate        = 20 // new connections per second per remote address
	DefaultHandshakeBurst       = 10
	DefaultMaxTrackedAddrs      = 4096
	DefaultMaxPendingHandshakes = 128
	DefaultMaxSessions          = 4096
	DefaultMaxSessionsPerPeer   = 16
	DefaultMaxSessionsPerAddr   = 64
	DefaultMaxStreams           = session.DefaultMaxStreams
	DefaultMaxControlFrame      = framing.MaxControlFrame
	DefaultMaxRequestFrame      = 128 << 10 // fits a commit of 1,000 members (docs/PROTOCOL.md §18.1)
	DefaultDrainTimeout         = 5 * time.Second
	DefaultKeepAliveInterval    = 30 * time.Second
	DefaultWriteTimeout         = 10 * time.Second
)

// Handler serves one stream the other side opened. Both roles use it: a
// listening peer for the streams requestors open, a dialing peer for the
// notification streams the listening peer opens back.
//
// ServeStream owns s for as long as it runs; the stream is closed when it
// returns. It MUST return once ctx is done (the session is closing or the
// server is draining) or s fails: Conn.Close and Server.Close wait for it.
type Handler interface {
	ServeStream(ctx context.Context, s *Stream)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Stream)

// ServeStream calls f(ctx, s).
func (f HandlerFunc) ServeStream(ctx context.Context, s *Stream) { f(ctx, s) }

// TrustStore records which peer ID answers at which address, for trust on
// first use. *session.KnownPeers (the known_peers file) implements it.
type TrustStore interface {
	// Check returns nil if name is on record with id, an error wrapping
	// session.ErrUnknownPeer if name is not on record, and any other
	// error (a *session.KeyChangedError for another ID) to refuse.
	Check(name string, id cryptosuite.PeerID) error
	// Add records name with id.
	Add(name string, id cryptosuite.PeerID) error
}

var _ TrustStore = (*session.KnownPeers)(nil)

// Config configures a peer for Listen and Dial. It is never modified by
// this package and may be shared. Limits: a zero value selects the
// default; for the counts and rates marked so, a negative value turns the
// limit off.
type Config struct {
	// Identity is this peer's identity key: it makes the TLS certificate
	// and signs the handshake. Required.
	Identity *cryptosuite.Identity

	// Handlers serve the streams the other side opens, by kind. A stream
	// of a kind not listed is refused (wire code protocol).
	Handlers map[StreamKind]Handler

	// Logger receives the package's logs and yamux's (default: discard).
	Logger *slog.Logger

	// Insecure turns TLS off (transport tcp-notls): the handshake runs on
	// plain TCP with an empty channel binding. For debugging only: the
	// multiplexed streams travel unencrypted. Both sides must agree.
	Insecure bool

	// AEADs are the accepted AEAD suites in preference order (default
	// all, in cryptosuite's order).
	AEADs []cryptosuite.AEADID
	// AllowRSA enables the rsa key-transport mode (no forward secrecy).
	// Both sides must enable it.
	AllowRSA bool
	// MaxClockSkew bounds handshake timestamps (default
	// session.DefaultMaxClockSkew).
	MaxClockSkew time.Duration

	// Dialing.

	// KEX is the key-agreement mode Dial asks for (default x25519).
	KEX cryptosuite.KEXID
	// Trust is consulted by Dial for a HOST:PORT target (trust on first
	// use) and updated after every successful dial. nil: every key is
	// accepted on first use and nothing is recorded.
	Trust TrustStore
	// LocalAddr, if set, is the local address Dial binds, e.g.
	// "127.0.0.3:0".
	LocalAddr string

	// Listening.

	// Allow, if not empty, lists the only peer IDs that may open
	// sessions; others are refused with the handshake's policy error.
	Allow []cryptosuite.PeerID
	// OnSession, if set, is called with every session the server
	// establishes, as its streams start being served. It runs on the
	// handshake's goroutine and must not block.
	OnSession func(*Conn)

	// Limits.

	// HandshakeTimeout bounds the whole handshake, TLS and lanpeer's,
	// from TCP accept (or connect) to Ready.
	HandshakeTimeout time.Duration
	// HandshakeRate and HandshakeBurst are the token bucket of new
	// connections per remote address (IPv4 address, IPv6 /64), enforced
	// at TCP accept before TLS. Negative rate: no limit.
	HandshakeRate  float64
	HandshakeBurst int
	// MaxTrackedAddrs bounds the addresses the rate limiter remembers.
	MaxTrackedAddrs int
	// MaxPendingHandshakes bounds the connections accepted but not yet
	// past the handshake.
	MaxPendingHandshakes int
	// MaxSessions bounds established sessions.
	MaxSessions int
	// MaxSessionsPerPeer bounds the sessions (with their handshakes past
	// the signature check) of one identity. Negative: no limit.
	MaxSessionsPerPeer int
	// MaxSessionsPerAddr bounds the connections, handshaking or
	// established, from one remote address. Negative: no limit.
	MaxSessionsPerAddr int
	// MaxStreams bounds the streams the other side may have open on one
	// session at once; the listening side states it in Ready. Streams
	// beyond it are refused (wire code busy).
	MaxStreams int
	// MaxControlFrame bounds a frame on a control stream, in bytes
	// (at most framing.MaxFrameCeiling). The listening side states it
	// in Ready, rounded down to KiB.
	MaxControlFrame int
	// MaxRequestFrame bounds a frame on a request stream the other side
	// opened, in bytes (at most wire.MaxRequestFrame): the request class,
	// whose frames carry commits. The opener writes up to
	// wire.MaxRequestFrame and learns of a lower bound from the Error
	// too-large; replies on request streams may be up to
	// wire.MaxRequestFrame.
	MaxRequestFrame int
	// DrainTimeout bounds how long Close waits for handlers to return
	// before it closes the sessions under them.
	DrainTimeout time.Duration
	// KeepAliveInterval is yamux's ping interval; WriteTimeout closes a
	// session whose connection accepts no bytes for that long.
	KeepAliveInterval time.Duration
	WriteTimeout      time.Duration

	// Now defaults to time.Now (handshake timestamps and rate limits).
	Now func() time.Time

	// testInnerIdentity, if set, signs the lanpeer handshake instead of
	// Identity (which still makes the TLS certificate): a test hook to
	// build a peer whose two identities differ.
	testInnerIdentity *cryptosuite.Identity
}

// limits are Config's limits resolved: defaults filled in, negative
// values turned into "off" (0 for counts).
type limits struct {
	handshakeTimeout     time.Duration
	rate                 float64 // 0: off
	burst                int
	maxTracked           int
	maxPending           int
	maxSessions          int
	maxPerPeer           int // 0: off
	maxPerAddr           int // 0: off
	maxStreams           int
	maxControlFrame      int
	maxRequestFrame      int
	drainTimeout         time.Duration
	keepAlive            time.Duration
	writeTimeout         time.Duration
	streamCloseTimeout   time.Duration
	streamOpenAckTimeout time.Duration
}

// ErrConfig is wrapped by every refusal of a Config.
var ErrConfig = errors.New("node: bad configuration")

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
}

func (c *Config) resolve() (limits, error) {
	var l limits
	if c.Identity == nil {
		return l, configErr("no identity")
	}
	dur := func(name string, v, def time.Duration) (time.Duration, error) {
		switch {
		case v == 0:
			return def, nil
		case v < 0:
			return 0, configErr("%s must be positive", name)
		}
		return v, nil
	}
	count := func(name string, v, def int, canDisable bool) (int, error) {
		switch {
		case v == 0:
			return def, nil
		case v < 0 && canDisable:
			return 0, nil
		case v < 0:
			return 0, configErr("%s must be positive", name)
		}
		return v, nil
	}
	var err error
	if l.handshakeTimeout, err = dur("handshake timeout", c.HandshakeTimeout, DefaultHandshakeTimeout); err != nil {
		return l, err
	}
	if l.drainTimeout, err = dur("drain timeout", c.DrainTimeout, DefaultDrainTimeout); err != nil {
		return l, err
	}
	if l.keepAlive, err = dur("keepalive interval", c.KeepAliveInterval, DefaultKeepAliveInterval); err != nil {
		return l, err
	}
	if l.writeTimeout, err = dur("write timeout", c.WriteTimeout, DefaultWriteTimeout); err != nil {
		return l, err
	}
	switch {
	case c.HandshakeRate == 0:
		l.rate = DefaultHandshakeRate
	case c.HandshakeRate > 0:
		l.rate = c.HandshakeRate
	}
	if l.burst, err = count("handshake burst", c.HandshakeBurst, DefaultHandshakeBurst, false); err != nil {
		return l, err
	}
	if l.maxTracked, err = count("max tracked addresses", c.MaxTrackedAddrs, DefaultMaxTrackedAddrs, false); err != nil {
		return l, err
	}
	if l.maxPending, err = count("max pending handshakes", c.MaxPendingHandshakes, DefaultMaxPendingHandshakes, false); err != nil {
		return l, err
	}
	if l.maxSessions, err = count("max sessions", c.MaxSessions, DefaultMaxSessions, false); err != nil {
		return l, err
	}
	if l.maxPerPeer, err = count("max sessions per peer", c.MaxSessionsPerPeer, DefaultMaxSessionsPerPeer, true); err != nil {
		return l, err
	}
	if l.maxPerAddr, err = count("max sessions per address", c.MaxSessionsPerAddr, DefaultMaxSessionsPerAddr, true); err != nil {
		return l, err
	}
	if l.maxStreams, err = count("max streams", c.MaxStreams, DefaultMaxStreams, false); err != nil {
		return l, err
	}
	if l.maxStreams > 0xffff {
		return l, configErr("max streams %d above 65535", l.maxStreams)
	}
	if l.maxControlFrame, err = count("max control frame", c.MaxControlFrame, DefaultMaxControlFrame, false); err != nil {
		return l, err
	}
	if l.maxControlFrame < 1024 || l.maxControlFrame > framing.MaxFrameCeiling {
		return l, configErr("max control frame %d outside [1024, %d]", l.maxControlFrame, framing.MaxFrameCeiling)
	}
	if l.maxRequestFrame, err = count("max request frame", c.MaxRequestFrame, DefaultMaxRequestFrame, false); err != nil {
		return l, err
	}
	if l.maxRequestFrame < 1024 || l.maxRequestFrame > wire.MaxRequestFrame {
		return l, configErr("max request frame %d outside [1024, %d]", l.maxRequestFrame, wire.MaxRequestFrame)
	}
	// A stream this side closed waits this long for the peer's close
	// before yamux resets it; a stream this side opened waits this long
	// for the peer's acknowledgement before yamux gives up the session.
	l.streamCloseTimeout = 30 * time.Second
	l.streamOpenAckTimeout = 30 * time.Second
	return l, nil
}

// discardLogger is the default logger: its handler is disabled at every
// level, so that a log call costs a level check and formats nothing.
var discardLogger = slog.New(slog.DiscardHandler)

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return discardLogger
}

// addrValue is a net.Addr as a log value, turned into its string only if
// a handler records it.
type addrValue struct{ a net.Addr }

// LogValue returns the address as a string.
func (v addrValue) LogValue() slog.Value { return slog.StringValue(v.a.String()) }

// logAddr is the attribute key=addr, formatted only if logged.
func logAddr(key string, a net.Addr) slog.Attr { return slog.Any(key, addrValue{a}) }

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// sessionConfig is the handshake configuration common to both roles.
func (c *Config) sessionConfig(l *limits) *session.Config {
	id := c.Identity
	if c.testInnerIdentity != nil {
		id = c.testInnerIdentity
	}
	return &session.Config{
		Identity:     id,
		KEX:          c.KEX,
		AEADs:        c.AEADs,
		AllowRSA:     c.AllowRSA,
		MaxClockSkew: c.MaxClockSkew,
		Now:          c.Now,
		MaxStreams:   uint16(l.maxStreams),
		MaxFrameKiB:  uint16(min(l.maxControlFrame/1024, 0xffff)),
	}
}
