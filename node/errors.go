package node

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// Limit errors. The server logs them (at debug level: a peer can cause
// them at will) and counts each in Stats; the ones refused inside the
// handshake or on a stream also reach the peer as a wire error code.
var (
	// ErrRateLimited: a remote address opened connections faster than
	// Config.HandshakeRate. The connection is closed at accept, before
	// TLS.
	ErrRateLimited = errors.New("node: too many new connections from this address")
	// ErrTooManyPending: Config.MaxPendingHandshakes connections are
	// already handshaking. Closed at accept.
	ErrTooManyPending = errors.New("node: too many pending handshakes")
	// ErrTooManySessions: Config.MaxSessions sessions are established.
	// Closed at accept.
	ErrTooManySessions = errors.New("node: too many sessions")
	// ErrTooManySessionsPerAddr: the remote address already holds
	// Config.MaxSessionsPerAddr connections. Closed at accept.
	ErrTooManySessionsPerAddr = errors.New("node: too many sessions from this address")
	// ErrTooManySessionsPerPeer: the identity already holds
	// Config.MaxSessionsPerPeer sessions. Refused in the handshake, after
	// the requestor's signature is verified, with wire code busy.
	ErrTooManySessionsPerPeer = fmt.Errorf("node: too many sessions of this peer (%w)", session.ErrBusy)
	// ErrHandshakeTimeout: the handshake (TLS and lanpeer's) did not end
	// within Config.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("node: handshake deadline passed")
	// ErrTooManyStreams: the other side has Config.MaxStreams streams
	// open already; the new one is refused with wire code busy. On the
	// opening side, OpenStream returns it before opening a stream beyond
	// the limit the peer stated.
	ErrTooManyStreams = errors.New("node: too many streams on this session")
	// ErrStreamFlood: the other side keeps streams open that this side
	// refused or finished, beyond any honest use; the session is closed.
	ErrStreamFlood = errors.New("node: peer ignores stream refusals; session closed")
	// ErrUnknownKind: a stream's StreamOpen names a kind no handler
	// serves here; the stream is refused with wire code protocol.
	ErrUnknownKind = errors.New("node: no handler for this stream kind")
	// ErrStreamKindNotAllowed: a stream of a kind its opener's side may
	// not open, or a second direct or control stream from one side
	// (docs/PROTOCOL.md, "13.1 Stream kinds"). OpenStream refuses to
	// open one; the acceptor refuses it with wire code protocol.
	ErrStreamKindNotAllowed = errors.New("node: stream kind not allowed from this side")
	// ErrStreamHeaderTimeout: a stream's first frame did not arrive
	// within Config.HandshakeTimeout; the stream is refused with wire
	// code timeout.
	ErrStreamHeaderTimeout = errors.New("node: stream opened without naming its kind in time")
)

// Authentication errors.
var (
	// ErrBadCertificate: the peer's TLS certificate is refused: not
	// exactly one certificate, or a key that is not an allowed identity
	// key (cryptosuite.ParsePublicKey).
	ErrBadCertificate = errors.New("node: peer TLS certificate refused")
	// ErrIdentityMismatch: the identity the peer used in lanpeer's
	// handshake is not the key of its TLS certificate.
	ErrIdentityMismatch = errors.New("node: handshake identity differs from the TLS certificate's key")
	// ErrNotAllowed: the peer is not in Config.Allow. Sent as wire code
	// policy.
	ErrNotAllowed = errors.New("node: peer not on the allow list")
	// ErrClosedByServer: the server closed the connection before the TLS
	// handshake completed, which is how it refuses a connection at
	// accept (rate or connection limits).
	ErrClosedByServer = errors.New("node: the server closed the connection during the TLS handshake (it refuses connections beyond its rate and connection limits; see its log)")
)

// Other errors.
var (
	// ErrClosed is returned by operations on a closed Server or Conn.
	ErrClosed = errors.New("node: closed")
	// ErrBadTarget: a dial target is not HOST:PORT or PEERID@HOST:PORT.
	ErrBadTarget = errors.New("node: bad dial target")
)

// PeerMismatchError is Dial's refusal of a peer whose TLS certificate is
// not the pinned peer ID. It wraps session.ErrWrongPeer.
type PeerMismatchError struct {
	Target string
	Want   cryptosuite.PeerID
	Got    cryptosuite.PeerID
}

func (e *PeerMismatchError) Error() string {
	return fmt.Sprintf("node: %s presented peer ID %s, not the pinned %s: someone else answers at that address, or the pinned ID is wrong (check it with 'lanpeer id' on that peer)",
		e.Target, e.Got, e.Want)
}

// Unwrap returns session.ErrWrongPeer.
func (e *PeerMismatchError) Unwrap() error { return session.ErrWrongPeer }

// StreamError reports an Error message the other side sent on a stream
// before closing it: a refusal (busy: too many streams; protocol: unknown
// kind; too-large: a frame over the limit) or a handler's error.
type StreamError struct {
	Code wire.ErrorCode
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("node: peer closed the stream: %s (%v)", e.Code.Text(), e.Code)
}

// Stats is a snapshot of a Server's counters. Counters only grow; the
// fields marked "now" are current values.
type Stats struct {
	Accepted uint64 // TCP connections accepted

	// Refused at accept, before TLS.
	RateLimited       uint64 // ErrRateLimited
	PendingLimited    uint64 // ErrTooManyPending
	SessionsLimited   uint64 // ErrTooManySessions
	AddrLimited       uint64 // ErrTooManySessionsPerAddr
	HandshakesStarted uint64 // connections that got as far as TLS (or the handshake, insecure)

	// Handshake outcomes.
	HandshakeTimeouts   uint64 // ErrHandshakeTimeout
	OversizedFrames     uint64 // a handshake frame above its maximum
	PeerLimited         uint64 // ErrTooManySessionsPerPeer
	NotAllowed          uint64 // ErrNotAllowed
	IdentityMismatches  uint64 // ErrIdentityMismatch
	TLSFailures         uint64 // ErrBadCertificate, a TLS version or any other TLS failure
	HandshakeFailures   uint64 // every other failed handshake (bad signature, replay, ...)
	SessionsEstablished uint64

	// Streams.
	StreamsAccepted  uint64
	StreamsRefused   uint64 // ErrTooManyStreams
	StreamFloods     uint64 // ErrStreamFlood (sessions closed)
	BadStreamOpens   uint64 // a first frame that is not a valid StreamOpen, or ErrStreamKindNotAllowed
	UnknownKinds     uint64 // ErrUnknownKind
	StreamTimeouts   uint64 // ErrStreamHeaderTimeout
	OversizedStreams uint64 // a stream frame above its class's maximum

	Pending  int // now: connections handshaking
	Sessions int // now: sessions established
}

// counters are the live values behind Stats. Conns of a server share the
// server's; a dialed Conn has its own.
type counters struct {
	accepted, rateLimited, pendingLimited, sessionsLimited, addrLimited, handshakesStarted      atomic.Uint64
	handshakeTimeouts, oversizedFrames, peerLimited, notAllowed, identityMismatches             atomic.Uint64
	tlsFailures, handshakeFailures, sessionsEstablished                                         atomic.Uint64
	streamsAccepted, streamsRefused, streamFloods, unknownKinds, streamTimeouts, badStreamOpens atomic.Uint64
	oversizedStreams                                                                            atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted:            c.accepted.Load(),
		RateLimited:         c.rateLimited.Load(),
		PendingLimited:      c.pendingLimited.Load(),
		SessionsLimited:     c.sessionsLimited.Load(),
		AddrLimited:         c.addrLimited.Load(),
		HandshakesStarted:   c.handshakesStarted.Load(),
		HandshakeTimeouts:   c.handshakeTimeouts.Load(),
		OversizedFrames:     c.oversizedFrames.Load(),
		PeerLimited:         c.peerLimited.Load(),
		NotAllowed:          c.notAllowed.Load(),
		IdentityMismatches:  c.identityMismatches.Load(),
		TLSFailures:         c.tlsFailures.Load(),
		HandshakeFailures:   c.handshakeFailures.Load(),
		SessionsEstablished: c.sessionsEstablished.Load(),
		StreamsAccepted:     c.streamsAccepted.Load(),
		StreamsRefused:      c.streamsRefused.Load(),
		StreamFloods:        c.streamFloods.Load(),
		BadStreamOpens:      c.badStreamOpens.Load(),
		UnknownKinds:        c.unknownKinds.Load(),
		StreamTimeouts:      c.streamTimeouts.Load(),
		OversizedStreams:    c.oversizedStreams.Load(),
	}
}
