package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// Transport tags bind a transcript to how it travelled (DESIGN.md §4): over
// TLS the channel binding is the 32-byte exporter value; without TLS it is
// empty and the tag alone keeps the transports apart.
const (
	TransportTLS   = "tcp"
	TransportNoTLS = "tcp-notls"
	TransportHTTP  = "http"
)

// ExporterLabel is the TLS exporter label of the channel binding.
const ExporterLabel = canon.LabelChannelBinding

// Sizes fixed by the protocol.
const (
	NonceSize     = 32
	SessionIDSize = 16
	AuthKeySize   = 32
	BindingSize   = 32
)

// DefaultMaxClockSkew is how far a hello's timestamp may be from the
// receiver's clock.
const DefaultMaxClockSkew = 2 * time.Minute

// Handshake errors. Each is sent to the peer as a fixed error code (see
// Code), never with detail drawn from the peer's input.
var (
	ErrUnexpectedMessage = errors.New("session: unexpected handshake message")
	ErrVersion           = errors.New("session: unsupported protocol version")
	ErrStaleTimestamp    = errors.New("session: hello timestamp outside the allowed clock skew")
	ErrReplay            = errors.New("session: replayed hello")
	ErrWrongPeer         = errors.New("session: peer is not the one expected")
	ErrReflection        = errors.New("session: hello from this peer's own identity (reflected or connecting to self)")
	ErrKEXRefused        = errors.New("session: key-agreement mode refused")
	ErrNoCommonSuite     = errors.New("session: no AEAD suite in common")
	ErrPolicy            = errors.New("session: peer not allowed by policy")
	ErrBadKeyShare       = errors.New("session: bad key share")
	ErrBadAuthKey        = errors.New("session: sealed authentication key does not open")
	ErrBadFinished       = errors.New("session: key confirmation failed")
	ErrBadSignature      = errors.New("session: handshake signature does not verify")
	ErrBadIdentityKey    = errors.New("session: unsupported identity key")
	ErrBusy              = errors.New("session: too many pending handshakes")
)

// Config is a peer's handshake configuration. It is never modified by this
// package and may be shared between handshakes.
type Config struct {
	Identity *cryptosuite.Identity
	// KEX is the mode a requestor asks for (default x25519).
	KEX cryptosuite.KEXID
	// AEADs are the accepted suites in preference order (default: all, in
	// cryptosuite's order).
	AEADs []cryptosuite.AEADID
	// AllowRSA enables the rsa key-transport mode, which has no forward
	// secrecy. Both sides must enable it.
	AllowRSA bool
	// MaxClockSkew bounds hello timestamps (default DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Now and Rand default to time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
	// Policy, on a responder, decides whether a verified requestor may
	// open a session (known_peers, allow list). nil allows everyone. An
	// error wrapping ErrBusy (a capacity limit, such as sessions per
	// identity) is answered with code busy, any other with policy.
	Policy func(peer *cryptosuite.PublicKey) error
	// Replay is the responder's cache of hello nonces, shared by every
	// connection. nil disables replay detection (tests only).
	Replay *ReplayCache

	// MaxStreams and MaxFrameKiB are the limits a responder states in
	// Ready (defaults DefaultMaxStreams, DefaultMaxFrameKiB).
	MaxStreams  uint16
	MaxFrameKiB uint16

	// Seeds for golden transcripts: the ephemeral key-agreement seed.
	// Production leaves them nil.
	KEXSeed []byte
}

// Defaults of the limits a responder states in Ready.
const (
	DefaultMaxStreams  = 64
	DefaultMaxFrameKiB = 64
)

func (c *Config) ready() *wire.Ready {
	r := &wire.Ready{MaxStreams: c.MaxStreams, MaxFrameKiB: c.MaxFrameKiB}
	if r.MaxStreams == 0 {
		r.MaxStreams = DefaultMaxStreams
	}
	if r.MaxFrameKiB == 0 {
		r.MaxFrameKiB = DefaultMaxFrameKiB
	}
	return r
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) skew() time.Duration {
	if c.MaxClockSkew > 0 {
		return c.MaxClockSkew
	}
	return DefaultMaxClockSkew
}

func (c *Config) aeads() []cryptosuite.AEADID {
	if len(c.AEADs) > 0 {
		return c.AEADs
	}
	var ids []cryptosuite.AEADID
	for _, s := range cryptosuite.AEADs() {
		ids = append(ids, s.ID)
	}
	return ids
}

func (c *Config) kex() cryptosuite.KEXID {
	if c.KEX != 0 {
		return c.KEX
	}
	return cryptosuite.KEXX25519
}

// Params describe one connection.
type Params struct {
	// Transport is TransportTLS, TransportNoTLS or TransportHTTP.
	Transport string
	// ChannelBinding is the TLS exporter value (TransportTLS), else empty.
	ChannelBinding []byte
	// Expected is, on a requestor, the peer it means to reach. Over TLS
	// it is the peer ID of the certificate the responder showed. Zero
	// means "learn it" (trust on first use over HTTP). On a responder it
	// is the peer ID of the requestor's TLS client certificate: a hello
	// signed by any other identity is refused with ErrWrongPeer. Zero
	// there means no certificate (HTTP, no TLS).
	Expected cryptosuite.PeerID
	// KnownKey, if set, is a key the caller has parsed already (the
	// peer's TLS certificate's): a hello whose identity key has the same
	// bytes takes it instead of parsing them again. It decides nothing:
	// every check is made on the key as on a parsed one.
	KnownKey *cryptosuite.PublicKey
}

func (p *Params) check() error {
	switch p.Transport {
	case TransportTLS:
		if len(p.ChannelBinding) != BindingSize {
			return fmt.Errorf("session: TLS channel binding must be %d bytes", BindingSize)
		}
	case TransportNoTLS, TransportHTTP:
		if len(p.ChannelBinding) != 0 {
			return errors.New("session: channel binding without TLS must be empty")
		}
	default:
		return fmt.Errorf("session: unknown transport %q", p.Transport)
	}
	return nil
}

// Role is the side of a session.
type Role uint8

// Roles.
const (
	RoleRequestor Role = 1
	RoleResponder Role = 2
)

// Keys is what a completed handshake yields.
type Keys struct {
	Role      Role
	SessionID [SessionIDSize]byte
	Peer      *cryptosuite.PublicKey
	KEX       *cryptosuite.KEXSuite
	AEAD      *cryptosuite.AEADSuite
	// TranscriptHash identifies the session's key schedule uniquely.
	TranscriptHash [32]byte
	// C2S and S2C are the direct-message keys, requestor to responder and
	// back.
	C2S, S2C []byte
	// RekeySecret chains this session's secret into its first rekey
	// (k_rekey of the key schedule; NewRekey takes it over).
	RekeySecret []byte
	// AuthKey is the responder's random authentication key, delivered
	// sealed (it keys HTTP request MACs).
	AuthKey [AuthKeySize]byte
	// PeerMaxStreams and PeerMaxFrameKiB are the limits the responder
	// stated in Ready (requestor side), or this side's own (responder).
	PeerMaxStreams  uint16
	PeerMaxFrameKiB uint16
}

// Wipe zeroes the key material.
func (k *Keys) Wipe() {
	clear(k.C2S)
	clear(k.S2C)
	clear(k.RekeySecret)
	clear(k.AuthKey[:])
}

func checkTime(c *Config, ms int64) error {
	now := c.now()
	t := time.UnixMilli(ms)
	if ms < 0 || t.Before(now.Add(-c.skew())) || t.After(now.Add(c.skew())) {
		return ErrStaleTimestamp
	}
	return nil
}

func randBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("session: reading randomness: %w", err)
	}
	return b, nil
}

func aeadIDs(ids []uint16) []cryptosuite.AEADID {
	out := make([]cryptosuite.AEADID, len(ids))
	for i, id := range ids {
		out[i] = cryptosuite.AEADID(id)
	}
	return out
}

func wireIDs(ids []cryptosuite.AEADID) []uint16 {
	out := make([]uint16, len(ids))
	for i, id := range ids {
		out[i] = uint16(id)
	}
	return out
}

// parseIdentity parses a peer's SPKI (or takes known, if it has the same
// bytes) and checks that its signature algorithm is the one its key type
// implies.
func parseIdentity(spki []byte, alg uint16, known *cryptosuite.PublicKey) (*cryptosuite.PublicKey, error) {
	pk := known
	if pk == nil || !bytes.Equal(pk.SPKI(), spki) {
		var err error
		if pk, err = cryptosuite.ParsePublicKey(spki); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadIdentityKey, err)
		}
	}
	if uint16(pk.Alg()) != alg {
		return nil, ErrBadSignature
	}
	return pk, nil
}

func finishedMAC(key []byte, th [32]byte, responderSig, sealed []byte, authKey []byte) []byte {
	akh := sha256.Sum256(authKey)
	m := hmac.New(sha256.New, key)
	m.Write(canon.RequestorFinished(th, responderSig, sealed, akh))
	return m.Sum(nil)
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
