package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Datagram format (docs/PROTOCOL.md §19). Every size below is derived from
// the ones before it, so the bound on an answer and the size of a query
// cannot drift apart.
const (
	// Version is the discovery datagram version this package speaks.
	Version = 1

	typeAnnounce byte = 1
	typeQuery    byte = 2

	// HeaderSize is magic (4), version (1) and type (1).
	HeaderSize = 4 + 1 + 1
	// InstanceIDSize is the random id a process draws at start.
	InstanceIDSize = 16
	// MaxAddrs bounds each address list (TCP, HTTP) of an announcement.
	MaxAddrs = 4
	// AddrSize is one address: 16-byte IPv6 (IPv4-mapped for IPv4) and a
	// 2-byte port.
	AddrSize = 16 + 2
	// MaxNameSize bounds the display name, bytes of UTF-8.
	MaxNameSize = 64
	// MaxSPKISize is the largest identity key accepted: an RSA-4096
	// SubjectPublicKeyInfo is 550 bytes, Ed25519's 44.
	MaxSPKISize = 550
	// MaxSigSize is the largest signature: RSA-4096 PSS, 512 bytes.
	MaxSigSize = 512
	// MaxBlobSize is the largest signed blob: the canonical layout of
	// canon.Announce with full address lists and the longest name.
	MaxBlobSize = len(canon.LabelAnnounce) + 1 + // label, 0x00
		(4 + 32) + // peer ID
		(4 + InstanceIDSize) + // instance id
		2*(4+MaxAddrs*(4+AddrSize)) + // TCP and HTTP address lists
		(4 + len(schemeHTTPS)) + // HTTP scheme
		(4 + MaxNameSize) + // display name
		(4 + 8) + // interval, ms
		(4 + 8) // timestamp, ms
	// MaxAnnounceSize is the largest announcement datagram: header, then
	// the SPKI, the blob and the signature, each after a 2-byte length.
	MaxAnnounceSize = HeaderSize + 2 + MaxSPKISize + 2 + MaxBlobSize + 2 + MaxSigSize
	// QuerySize is the size of every query: that of the largest answer, so
	// a query never causes more bytes than it carries.
	QuerySize = MaxAnnounceSize
	// MaxDatagram is the largest datagram read; anything longer is dropped
	// as oversized.
	MaxDatagram = MaxAnnounceSize

	// minBlobSize is a blob with empty lists, scheme and name: what peek
	// needs.
	minBlobSize = len(canon.LabelAnnounce) + 1 + (4 + 32) + (4 + InstanceIDSize) + 4 + 4 + 4 + 4 + (4 + 8) + (4 + 8)
)

// magic starts every discovery datagram.
var magic = [4]byte{'l', 'a', 'n', 'p'}

// verdict is what became of a received datagram: accepted, a query, or
// dropped under one class. Each has one counter in Stats.
type verdict int

const (
	dropNone verdict = iota // parsing went well; not a final verdict
	dropOversized
	dropMalformed
	dropVersion
	dropUnsigned
	dropBadKey
	dropKeyMismatch
	dropBadSignature
	dropStale
	dropReplayed
	dropDuplicate
	dropSelf
	dropRateLimited
	dropCacheFull
	verdictAccepted
	verdictQuery
	numVerdicts
)

func (c verdict) String() string {
	switch c {
	case dropNone:
		return "none"
	case dropOversized:
		return "oversized"
	case dropMalformed:
		return "malformed"
	case dropVersion:
		return "version"
	case dropUnsigned:
		return "unsigned"
	case dropBadKey:
		return "bad key"
	case dropKeyMismatch:
		return "key mismatch"
	case dropBadSignature:
		return "bad signature"
	case dropStale:
		return "stale"
	case dropReplayed:
		return "replayed"
	case dropDuplicate:
		return "duplicate"
	case dropSelf:
		return "self"
	case dropRateLimited:
		return "rate limited"
	case dropCacheFull:
		return "cache full"
	case verdictAccepted:
		return "accepted"
	case verdictQuery:
		return "query"
	}
	return fmt.Sprintf("verdict(%d)", int(c))
}

// classify checks the header and returns the datagram's type.
func classify(b []byte) (byte, verdict) {
	switch {
	case len(b) > MaxDatagram:
		return 0, dropOversized
	case len(b) < HeaderSize || [4]byte(b[:4]) != magic:
		return 0, dropMalformed
	case b[4] != Version:
		return 0, dropVersion
	case b[5] != typeAnnounce && b[5] != typeQuery:
		return 0, dropMalformed
	}
	return b[5], dropNone
}

// announcement is the content of a signed blob.
type announcement struct {
	peer      cryptosuite.PeerID
	instance  [InstanceIDSize]byte
	tcp, http []netip.AddrPort
	https     bool // http serves HTTPS; only with HTTP addresses
	name      string
	interval  uint64 // ms
	millis    uint64 // Unix ms
}

// errLocal reports an announcement this peer cannot send (a local bug or a
// Config that New should have refused).
var errLocal = errors.New("discovery: announcement out of bounds")

// encodeAnnouncement signs a and returns the datagram.
func encodeAnnouncement(id *cryptosuite.Identity, a *announcement) ([]byte, error) {
	if len(a.tcp) > MaxAddrs || len(a.http) > MaxAddrs || !validName(a.name) || (a.https && len(a.http) == 0) {
		return nil, errLocal
	}
	blob := canon.Announce(a.peer, a.instance, encodeAddrs(a.tcp), encodeAddrs(a.http), httpScheme(a),
		a.name, a.interval, a.millis)
	sig, err := id.Sign(canon.LabelAnnounce, blob)
	if err != nil {
		return nil, err
	}
	spki := id.Public().SPKI()
	if len(spki) > MaxSPKISize || len(sig) > MaxSigSize || len(blob) > MaxBlobSize {
		return nil, errLocal
	}
	return appendEnvelope(make([]byte, 0, HeaderSize+6+len(spki)+len(blob)+len(sig)), spki, blob, sig), nil
}

// appendEnvelope writes header, SPKI, blob and signature, each after a
// 2-byte big-endian length.
func appendEnvelope(b, spki, blob, sig []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, Version, typeAnnounce)
	for _, f := range [][]byte{spki, blob, sig} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

func encodeAddrs(as []netip.AddrPort) [][]byte {
	out := make([][]byte, len(as))
	for i, a := range as {
		e := make([]byte, AddrSize)
		ip := a.Addr().As16() // IPv4 becomes IPv4-mapped
		copy(e, ip[:])
		binary.BigEndian.PutUint16(e[16:], a.Port())
		out[i] = e
	}
	return out
}

// envelope is an announcement datagram split into its three fields, which
// alias the datagram.
type envelope struct {
	spki, blob, sig []byte
}

// splitEnvelope reads the three length-prefixed fields after the header.
func splitEnvelope(b []byte) (envelope, verdict) {
	var env envelope
	p := b[HeaderSize:]
	field := func(max int) ([]byte, bool) {
		if len(p) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(p))
		if n > max || n > len(p)-2 {
			return nil, false
		}
		f := p[2 : 2+n : 2+n]
		p = p[2+n:]
		return f, true
	}
	var ok1, ok2, ok3 bool
	env.spki, ok1 = field(MaxSPKISize)
	env.blob, ok2 = field(MaxBlobSize)
	env.sig, ok3 = field(MaxSigSize)
	if !ok1 || !ok2 || !ok3 || len(p) != 0 || len(env.spki) == 0 || len(env.blob) < minBlobSize {
		return envelope{}, dropMalformed
	}
	if len(env.sig) == 0 {
		return envelope{}, dropUnsigned
	}
	return env, dropNone
}

// peeked are the fields read from a blob before its signature is checked,
// only to decide whether it is worth checking: the peer ID and instance
// (the first two fields, at fixed offsets) and the timestamp (the last
// field). parseBlob confirms them after the signature.
type peeked struct {
	peer     cryptosuite.PeerID
	instance [InstanceIDSize]byte
	millis   uint64
}

func peekBlob(blob []byte) (peeked, verdict) {
	var pk peeked
	off := len(canon.LabelAnnounce) + 1
	if len(blob) < minBlobSize || string(blob[:off-1]) != canon.LabelAnnounce || blob[off-1] != 0 ||
		binary.BigEndian.Uint32(blob[off:]) != 32 ||
		binary.BigEndian.Uint32(blob[off+36:]) != InstanceIDSize ||
		binary.BigEndian.Uint32(blob[len(blob)-12:]) != 8 {
		return pk, dropMalformed
	}
	copy(pk.peer[:], blob[off+4:])
	copy(pk.instance[:], blob[off+40:])
	pk.millis = binary.BigEndian.Uint64(blob[len(blob)-8:])
	return pk, dropNone
}

// inspect runs the checks of an announcement datagram that need no state
// and no public-key operation: the envelope's bounds, the blob's fixed
// fields, and that the peer ID is the SHA-256 of the key carried.
func inspect(data []byte) (envelope, peeked, verdict) {
	env, v := splitEnvelope(data)
	if v != dropNone {
		return envelope{}, peeked{}, v
	}
	pk, v := peekBlob(env.blob)
	if v != dropNone {
		return envelope{}, peeked{}, v
	}
	if cryptosuite.PeerIDFromSPKI(env.spki) != pk.peer {
		return envelope{}, peeked{}, dropKeyMismatch
	}
	return env, pk, dropNone
}

// verify checks the key and the signature, then parses the blob in full
// and confirms what was peeked.
func verify(env envelope, pk peeked) (*announcement, verdict) {
	key, err := cryptosuite.ParsePublicKey(env.spki)
	if err != nil {
		return nil, dropBadKey
	}
	if key.Verify(canon.LabelAnnounce, env.blob, env.sig) != nil {
		return nil, dropBadSignature
	}
	a, ok := parseBlob(env.blob)
	if !ok || a.peer != pk.peer || a.instance != pk.instance || a.millis != pk.millis {
		return nil, dropMalformed
	}
	return a, dropNone
}

// parseBlob reads a verified blob completely, with every bound.
func parseBlob(blob []byte) (*announcement, bool) {
	r := canon.NewReader(canon.LabelAnnounce, blob)
	a := &announcement{}
	copy(a.peer[:], r.Fixed(32))
	copy(a.instance[:], r.Fixed(InstanceIDSize))
	tcp, http := r.List(MaxAddrs), r.List(MaxAddrs)
	scheme := r.Bytes()
	name := r.Bytes()
	a.interval = r.Uint64()
	a.millis = r.Uint64()
	if r.Done() != nil || len(name) > MaxNameSize || !validName(string(name)) {
		return nil, false
	}
	if a.interval < uint64(MinInterval/time.Millisecond) || a.interval > uint64(MaxInterval/time.Millisecond) {
		return nil, false
	}
	a.name = string(name)
	switch {
	case len(http) == 0 && len(scheme) == 0:
	case len(http) > 0 && string(scheme) == schemeHTTP:
	case len(http) > 0 && string(scheme) == schemeHTTPS:
		a.https = true
	default:
		return nil, false
	}
	var ok1, ok2 bool
	a.tcp, ok1 = decodeAddrs(tcp)
	a.http, ok2 = decodeAddrs(http)
	return a, ok1 && ok2
}

// The schemes an announcement's HTTP addresses serve.
const (
	schemeHTTP  = "http"
	schemeHTTPS = "https"
)

// httpScheme is the scheme field of a: empty without HTTP addresses.
func httpScheme(a *announcement) string {
	switch {
	case len(a.http) == 0:
		return ""
	case a.https:
		return schemeHTTPS
	}
	return schemeHTTP
}

func decodeAddrs(elems [][]byte) ([]netip.AddrPort, bool) {
	out := make([]netip.AddrPort, 0, len(elems))
	for _, e := range elems {
		if len(e) != AddrSize {
			return nil, false
		}
		ip := netip.AddrFrom16([16]byte(e[:16])).Unmap()
		port := binary.BigEndian.Uint16(e[16:])
		if port == 0 || ip.IsMulticast() {
			return nil, false
		}
		out = append(out, netip.AddrPortFrom(ip, port))
	}
	return out, true
}

// validName: at most MaxNameSize bytes of UTF-8, every character printable
// (letters, marks, numbers, punctuation, symbols and the ASCII space; no
// control or format characters, so no bidirectional overrides).
func validName(s string) bool {
	if len(s) > MaxNameSize || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// encodeQuery returns a query for target (the zero ID asks everyone): the
// header, the 32-byte target and zeros up to QuerySize.
func encodeQuery(target cryptosuite.PeerID) []byte {
	b := make([]byte, QuerySize)
	copy(b, magic[:])
	b[4], b[5] = Version, typeQuery
	copy(b[HeaderSize:], target[:])
	return b
}

// parseQuery checks a query's size and padding and returns its target.
func parseQuery(b []byte) (cryptosuite.PeerID, verdict) {
	var target cryptosuite.PeerID
	if len(b) != QuerySize {
		return target, dropMalformed
	}
	for _, x := range b[HeaderSize+32:] {
		if x != 0 {
			return target, dropMalformed
		}
	}
	copy(target[:], b[HeaderSize:])
	return target, dropNone
}
