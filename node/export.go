package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/wire"
)

// What the HTTP front end (package httpshim) shares with the TCP front
// end, so that a rule exists once.

// NewCertificate returns the self-signed TLS certificate of id that the
// TCP listener presents: its key is the identity key, so the SHA-256 of
// its SubjectPublicKeyInfo is the peer ID (what curl's --pinnedpubkey
// checks).
func NewCertificate(id *cryptosuite.Identity, now time.Time) (tls.Certificate, error) {
	return newCertificate(id, now)
}

// RoomErrorFor maps a Service operation's error to the refusal a host
// sends (docs/PROTOCOL.md §18.4): its code, reason and value. Errors no
// reason names are ReasonInternal.
func RoomErrorFor(err error) *wire.RoomError { return roomErrorFor(err) }

// RoomErrorFromWire turns a host's refusal into the client's *RoomError,
// which matches room's and store's errors with errors.Is and errors.As.
func RoomErrorFromWire(m *wire.RoomError) *RoomError { return roomErrorFromWire(m) }

// AddrRateLimiter is the TCP listener's per-address token bucket (an IPv4
// address, or an IPv6 /64), for other front ends. Safe for concurrent use.
type AddrRateLimiter struct{ r *rateLimiter }

// NewAddrRateLimiter returns a limiter of rate tokens a second up to
// burst per address, remembering at most max addresses.
func NewAddrRateLimiter(rate float64, burst, max int) *AddrRateLimiter {
	return &AddrRateLimiter{r: newRateLimiter(rate, burst, max)}
}

// Allow takes a token for a's address at now and reports whether there
// was one.
func (l *AddrRateLimiter) Allow(a net.Addr, now time.Time) bool { return l.r.allow(keyOf(a), now) }

// Handle runs one room request for caller with the dispatch the TCP front
// end uses, and returns its reply (the same wire message, with the same
// size budget for lists) or the operation's error, which RoomErrorFor
// maps to the refusal. m must be valid: wire.Decode checked it, or its
// Validate method did.
func (s *Service) Handle(ctx context.Context, caller *cryptosuite.PublicKey, m wire.Message) (wire.Message, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	if !wire.IsRoomRequest(m.Type()) {
		return nil, fmt.Errorf("%w: %v is not a room request", room.ErrBadRequest, m.Type())
	}
	return s.dispatch(ctx, caller, m)
}
