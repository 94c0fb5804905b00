package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
)

// Target is a parsed dial target.
type Target struct {
	// Addr is HOST:PORT as given, for the TCP dial.
	Addr string
	// Name is Addr in canonical form (session.CanonicalPeerName): the
	// name known_peers records.
	Name string
	// Pin is the peer ID of a PEERID@HOST:PORT target; zero for a
	// HOST:PORT target (trust on first use).
	Pin cryptosuite.PeerID
}

// String returns the target as PEERID@HOST:PORT or HOST:PORT.
func (t Target) String() string {
	if t.Pin.IsZero() {
		return t.Addr
	}
	return t.Pin.String() + "@" + t.Addr
}

// ParseTarget reads HOST:PORT or PEERID@HOST:PORT. HOST is a host name,
// an IPv4 address or a bracketed IPv6 address; PEERID is the 64 hex
// characters 'lanpeer id' prints. Errors wrap ErrBadTarget.
func ParseTarget(s string) (Target, error) {
	var t Target
	addr := s
	if pin, rest, ok := strings.Cut(s, "@"); ok {
		id, err := cryptosuite.ParsePeerID(pin)
		if err != nil {
			return t, fmt.Errorf("%w %q: before '@' comes the peer ID, 64 hex characters ('lanpeer id' on that peer prints it)", ErrBadTarget, truncate(s, 100))
		}
		t.Pin, addr = id, rest
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return Target{}, fmt.Errorf("%w %q: want HOST:PORT or PEERID@HOST:PORT (an IPv6 host in brackets: [::1]:7700)", ErrBadTarget, truncate(s, 100))
	}
	name, err := session.CanonicalPeerName(addr)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	t.Addr, t.Name = addr, name
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Dial connects to target (HOST:PORT or PEERID@HOST:PORT), runs TLS and
// the requestor's handshake within Config.HandshakeTimeout (and ctx), and
// returns the established session.
//
// The server's key is checked during TLS, before anything of lanpeer's is
// sent: against the pinned peer ID of a PEERID@HOST:PORT target (a
// *PeerMismatchError if it differs), else against Config.Trust under the
// target's name (a *session.KeyChangedError, whose message says how to
// resolve it, if the name is on record with another key; accepted and
// recorded if the name is new). A pinned dial records the name too, and
// only warns if the record holds another key.
func Dial(ctx context.Context, target string, cfg *Config) (*Conn, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	lim, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cc := *cfg
	log := cc.logger()
	if cc.Insecure {
		log.Warn("TLS is off (--tls=false): streams travel in clear text and only the lanpeer handshake authenticates the server; use this for debugging only", "component", "node", "target", t.String())
	}

	ctx, cancel := context.WithTimeout(ctx, lim.handshakeTimeout)
	defer cancel()
	// No TCP keepalive: yamux pings every KeepAliveInterval and ends a
	// session whose ping goes unanswered (four system calls saved per
	// connection).
	d := net.Dialer{KeepAlive: -1}
	if cc.LocalAddr != "" {
		la, err := net.ResolveTCPAddr("tcp", cc.LocalAddr)
		if err != nil {
			return nil, fmt.Errorf("node: local address: %w", err)
		}
		d.LocalAddr = la
	}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			// Refused at accept so fast that connect saw the reset.
			err = fmt.Errorf("%w: %w", ErrClosedByServer, err)
		}
		return nil, fmt.Errorf("node: dial %s: %w", t.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// A cancelled ctx interrupts whatever read or write is blocked.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })

	raw, keys, err := requestorHandshake(nc, t, &cc, &lim)
	if err == nil && !stop() {
		keys.Wipe()
		err = ctx.Err()
	}
	if err != nil {
		stop()
		if raw == nil {
			raw = nc
		}
		raw.Close()
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		case isTimeout(err): // the deadline set from ctx (it may pass before ctx's own timer)
			err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
		}
		return nil, fmt.Errorf("node: dial %s: %w", t, err)
	}
	_ = nc.SetDeadline(time.Time{})

	peer := keys.Peer.PeerID()
	if cc.Trust != nil {
		if err := cc.Trust.Add(t.Name, peer); err != nil {
			var changed *session.KeyChangedError
			if errors.As(err, &changed) && t.Pin.IsZero() {
				// Recorded by someone else since the check: refuse.
				keys.Wipe()
				raw.Close()
				return nil, fmt.Errorf("node: dial %s: %w", t, err)
			}
			log.Warn("known_peers not updated", "component", "node", "target", t.String(), "err", err)
		}
	}
	c, err := newConn(raw, keys, &cc, &lim, &counters{}, log, []any{"component", "node"}, nil)
	if err != nil {
		keys.Wipe()
		raw.Close()
		return nil, err
	}
	if log.Enabled(context.Background(), slog.LevelInfo) {
		log.Info("session established", "component", "node", "target", t.String(), "peer", peer, "kex", keys.KEX, "aead", keys.AEAD.ID)
	}
	c.start()
	return c, nil
}

// requestorHandshake runs TLS (unless insecure) and the requestor's
// handshake on nc. raw is the connection to close or to run yamux on.
func requestorHandshake(nc net.Conn, t Target, cfg *Config, lim *limits) (raw net.Conn, keys *session.Keys, err error) {
	params := session.Params{Transport: session.TransportNoTLS, Expected: t.Pin}
	raw = nc
	var certKey *cryptosuite.PublicKey
	if !cfg.Insecure {
		cert, err := certificateFor(cfg.Identity, cfg.now())
		if err != nil {
			return raw, nil, err
		}
		hc := &holdConn{Conn: nc, hold: true}
		// Whatever is held goes out before the connection is closed or
		// handed to yamux: a refusal's Error message or TLS alert too.
		defer func() {
			if ferr := hc.release(); ferr != nil && err == nil {
				keys.Wipe()
				keys, err = nil, ferr
			}
		}()
		tc := tls.Client(hc, clientTLSConfig(cert, func(pk *cryptosuite.PublicKey) error {
			return checkServerKey(t, cfg.Trust, pk)
		}))
		raw = tc
		// Not HandshakeContext: Dial's AfterFunc already interrupts the
		// connection when ctx ends, without a goroutine per dial.
		if err := tc.Handshake(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				err = fmt.Errorf("%w: %w", ErrClosedByServer, err)
			}
			return raw, nil, err
		}
		cs := tc.ConnectionState()
		if certKey, err = peerKey(&cs); err != nil {
			return raw, nil, err
		}
		if params.ChannelBinding, err = channelBinding(&cs); err != nil {
			return raw, nil, err
		}
		params.Transport, params.Expected, params.KnownKey = session.TransportTLS, certKey.PeerID(), certKey
	}
	keys, err = session.RunRequestor(raw, cfg.sessionConfig(lim), params)
	if err != nil {
		return raw, nil, err
	}
	switch {
	case certKey != nil && !keys.Peer.Equal(certKey):
		// RunRequestor already refuses this (Expected); kept as the
		// rule's own check.
		err = ErrIdentityMismatch
	case certKey == nil:
		// Without TLS the handshake is the first sight of the key.
		err = checkServerKey(t, cfg.Trust, keys.Peer)
	}
	if err != nil {
		keys.Wipe()
		return raw, nil, err
	}
	return raw, keys, nil
}

// checkServerKey decides on the server's identity key: the pin if there
// is one, else the trust store's record, else trust on first use.
func checkServerKey(t Target, trust TrustStore, pk *cryptosuite.PublicKey) error {
	got := pk.PeerID()
	if !t.Pin.IsZero() {
		if got != t.Pin {
			return &PeerMismatchError{Target: t.Addr, Want: t.Pin, Got: got}
		}
		return nil
	}
	if trust == nil {
		return nil
	}
	if err := trust.Check(t.Name, got); err != nil && !errors.Is(err, session.ErrUnknownPeer) {
		return err
	}
	return nil
}

// certCache keeps the TLS certificates made for identities, so that a
// process dialing many times signs one certificate per identity (an RSA
// signature costs milliseconds). Bounded: a process has a few identities.
var certCache struct {
	sync.Mutex
	m map[*cryptosuite.Identity]tls.Certificate
}

const maxCachedCerts = 8

func certificateFor(id *cryptosuite.Identity, now time.Time) (tls.Certificate, error) {
	certCache.Lock()
	defer certCache.Unlock()
	if c, ok := certCache.m[id]; ok {
		return c, nil
	}
	c, err := newCertificate(id, now)
	if err != nil {
		return c, err
	}
	if certCache.m == nil || len(certCache.m) >= maxCachedCerts {
		certCache.m = map[*cryptosuite.Identity]tls.Certificate{}
	}
	certCache.m[id] = c
	return c, nil
}

// holdConn is the requestor's connection under TLS during the handshake:
// it holds what is written until the next Read, so that the client's
// last TLS flight and the Hello after it leave in one write (one TCP
// segment, one wake-up of the server) instead of two. The bytes and their
// order are unchanged, and nothing waits: every write of the handshake is
// followed by a read of the answer, or by release.
type holdConn struct {
	net.Conn
	buf  []byte
	hold bool
}

func (c *holdConn) Write(p []byte) (int, error) {
	if !c.hold {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *holdConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *holdConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// release writes what is held and passes every later write through. It
// must be called before the connection is used by more than one
// goroutine.
func (c *holdConn) release() error {
	err := c.flush()
	c.hold, c.buf = false, nil
	return err
}
