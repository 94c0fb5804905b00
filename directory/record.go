package directory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// Bounds of a record (docs/HTTP.md, "Directory API").
const (
	// MaxAddrs bounds each address list (TCP, HTTP).
	MaxAddrs = 8
	// MaxAddrLen bounds one address, "host:port" or an HTTP URL, in
	// bytes.
	MaxAddrLen = 255
	// MaxTTL is the longest a record may be valid: a peer refreshes its
	// record well before it expires.
	MaxTTL = 24 * time.Hour
	// MaxClockSkew is how far in the verifier's future a record's issue
	// time may lie.
	MaxClockSkew = 5 * time.Minute
	// maxSig is the largest identity signature (RSA-4096).
	maxSig = 512
	// maxLayout is the largest layout the field bounds allow: label and
	// 0x00, peer ID, identity key, two address lists, two times.
	maxLayout = len(canon.LabelDirectoryRecord) + 1 + (4 + 32) + (4 + cryptosuite.MaxSPKI) +
		2*(4+MaxAddrs*(4+MaxAddrLen)) + 2*(4+8)
	// MaxRecordSize bounds a record blob: the largest layout and signature
	// with their two length prefixes.
	MaxRecordSize = 4 + maxLayout + 4 + maxSig
)

// A directory record must fit what every store keeps.
var _ [store.MaxDirectoryRecordSize - MaxRecordSize]struct{}

// Errors of BuildRecord, VerifyRecord and Client.Lookup; test with
// errors.Is.
var (
	// ErrMalformed: a record's framing or a field breaks its bound or rule.
	ErrMalformed = errors.New("directory: malformed record")
	// ErrBadSignature: the signature does not verify under the key the
	// record carries, or the blob is of another purpose.
	ErrBadSignature = errors.New("directory: bad record signature")
	// ErrExpired: the record has expired.
	ErrExpired = errors.New("directory: record expired")
	// ErrNotYetValid: the record was issued more than MaxClockSkew in the
	// verifier's future.
	ErrNotYetValid = errors.New("directory: record issued in the future")
	// ErrWrongPeer: the record is for another peer than the one asked
	// for or named (a poisoned answer, or a registration under another
	// peer's path).
	ErrWrongPeer = errors.New("directory: record is for another peer")
)

// Addrs are the addresses a record publishes. A TCP address is
// "host:port" with a host that is an IP address or a DNS name (not an
// unspecified address) and a port from 1 to 65535; an HTTP address is such
// a host:port after the scheme the shim serves, "http://" or "https://"
// (lower case; no user info, path, query or fragment), so a client knows
// whether to speak TLS. At least one address must be given.
type Addrs struct {
	TCP  []string // the peer's TCP listeners (lanpeer listen)
	HTTP []string // the peer's HTTP shim, "http://host:port" or "https://host:port"
}

// Record is a verified directory record. It is immutable and safe for
// concurrent use; make one with BuildRecord or VerifyRecord.
type Record struct {
	Peer    cryptosuite.PeerID
	Key     *cryptosuite.PublicKey
	Addrs   Addrs
	Issued  time.Time // to the millisecond
	Expires time.Time // to the millisecond
	blob    []byte
}

// Blob returns a copy of the signed record as it travels.
func (r *Record) Blob() []byte { return bytes.Clone(r.blob) }

// StoreRecord returns the record as a store keeps it.
func (r *Record) StoreRecord() store.DirectoryRecord {
	return store.DirectoryRecord{Peer: r.Peer, Blob: r.Blob(), Issued: r.Issued, Expires: r.Expires}
}

// BuildRecord signs a record for id's peer: addrs, issued at now, valid
// for ttl (more than 0, at most MaxTTL).
func BuildRecord(id *cryptosuite.Identity, addrs Addrs, ttl time.Duration, now time.Time) (*Record, error) {
	if ttl < time.Millisecond || ttl > MaxTTL {
		return nil, fmt.Errorf("directory: record lifetime %v must be from 1ms to %v", ttl, MaxTTL)
	}
	if err := checkAddrs(addrs); err != nil {
		return nil, err
	}
	issued := now.UnixMilli()
	if issued <= 0 {
		return nil, fmt.Errorf("directory: issue time %v is before 1970", now)
	}
	f := &canon.DirectoryRecordFields{
		Peer:          id.PeerID(),
		IdentityKey:   id.Public().SPKI(),
		TCPAddrs:      addrs.TCP,
		HTTPAddrs:     addrs.HTTP,
		IssuedMillis:  uint64(issued),
		ExpiresMillis: uint64(issued + ttl.Milliseconds()),
	}
	layout := canon.DirectoryRecord(f)
	sig, err := id.Sign(canon.LabelDirectoryRecord, layout)
	if err != nil {
		return nil, fmt.Errorf("directory: signing the record: %w", err)
	}
	blob := make([]byte, 0, 8+len(layout)+len(sig))
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(layout)))
	blob = append(blob, layout...)
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(sig)))
	blob = append(blob, sig...)
	// Verify what was built, so a local record breaks no rule a verifier
	// applies (a too-long address list, a key the verifier refuses).
	return VerifyRecord(blob, now)
}

// VerifyRecord checks a record blob at now: size and framing, the label,
// the signature by the identity key the record carries (whose SHA-256 must
// be the record's peer ID), then every field's bound, and that it is
// neither expired nor issued more than MaxClockSkew after now. Only the
// peer ID and the key are read before the signature is checked.
func VerifyRecord(blob []byte, now time.Time) (*Record, error) {
	r, err := verifySignedRecord(blob)
	if err != nil {
		return nil, err
	}
	if !now.Before(r.Expires) {
		return nil, fmt.Errorf("%w at %s", ErrExpired, r.Expires.UTC().Format(time.RFC3339Nano))
	}
	if r.Issued.Sub(now) > MaxClockSkew {
		return nil, fmt.Errorf("%w: issued at %s", ErrNotYetValid, r.Issued.UTC().Format(time.RFC3339Nano))
	}
	return r, nil
}

func verifySignedRecord(blob []byte) (*Record, error) {
	layout, sig, err := splitBlob(blob)
	if err != nil {
		return nil, err
	}
	rd := canon.NewReader(canon.LabelDirectoryRecord, layout)
	peer := rd.Fixed(32)
	spki := rd.Bytes()
	if rd.Err() != nil || len(spki) > cryptosuite.MaxSPKI {
		return nil, fmt.Errorf("%w: peer ID or identity key", ErrMalformed)
	}
	key, err := cryptosuite.ParsePublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: identity key: %v", ErrMalformed, err)
	}
	pid := key.PeerID()
	if !bytes.Equal(pid[:], peer) {
		return nil, fmt.Errorf("%w: peer ID is not the SHA-256 of the identity key", ErrBadSignature)
	}
	if len(sig) > maxSig || key.Verify(canon.LabelDirectoryRecord, layout, sig) != nil {
		return nil, ErrBadSignature
	}
	tcp := rd.List(MaxAddrs)
	web := rd.List(MaxAddrs)
	issued := rd.Uint64()
	expires := rd.Uint64()
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	const maxMillis = uint64(1) << 62 // far past any real date; keeps time.UnixMilli exact
	switch {
	case issued == 0 || issued > maxMillis || expires > maxMillis:
		return nil, fmt.Errorf("%w: time out of range", ErrMalformed)
	case expires <= issued:
		return nil, fmt.Errorf("%w: expires before it is issued", ErrMalformed)
	case expires-issued > uint64(MaxTTL/time.Millisecond):
		return nil, fmt.Errorf("%w: valid for longer than %v", ErrMalformed, MaxTTL)
	}
	addrs := Addrs{TCP: strs(tcp), HTTP: strs(web)}
	if err := checkAddrs(addrs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &Record{
		Peer:    pid,
		Key:     key,
		Addrs:   addrs,
		Issued:  time.UnixMilli(int64(issued)).UTC(),
		Expires: time.UnixMilli(int64(expires)).UTC(),
		blob:    bytes.Clone(blob),
	}, nil
}

// splitBlob splits blob = len(layout) ‖ layout ‖ len(sig) ‖ sig, refusing
// an oversized blob, a length past the end, trailing bytes and a layout of
// another purpose. The slices alias blob.
func splitBlob(blob []byte) (layout, sig []byte, err error) {
	if len(blob) > MaxRecordSize {
		return nil, nil, fmt.Errorf("%w: %d bytes (max %d)", ErrMalformed, len(blob), MaxRecordSize)
	}
	rest := blob
	field := func() []byte {
		if len(rest) < 4 {
			return nil
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil
		}
		f := rest[4 : 4+n : 4+n]
		rest = rest[4+n:]
		return f
	}
	if layout = field(); layout == nil {
		return nil, nil, fmt.Errorf("%w: layout length", ErrMalformed)
	}
	if sig = field(); sig == nil {
		return nil, nil, fmt.Errorf("%w: signature length", ErrMalformed)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the signature", ErrMalformed, len(rest))
	}
	label := canon.LabelDirectoryRecord
	if len(layout) < len(label)+1 || string(layout[:len(label)]) != label || layout[len(label)] != 0 {
		return nil, nil, fmt.Errorf("%w: not a directory record", ErrBadSignature)
	}
	return layout, sig, nil
}

func strs(bs [][]byte) []string {
	if len(bs) == 0 {
		return nil
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// checkAddrs applies the address rules of Addrs.
func checkAddrs(a Addrs) error {
	if len(a.TCP)+len(a.HTTP) == 0 {
		return errors.New("directory: a record needs at least one address")
	}
	for _, list := range []struct {
		what  string
		addrs []string
	}{{"TCP", a.TCP}, {"HTTP", a.HTTP}} {
		if len(list.addrs) > MaxAddrs {
			return fmt.Errorf("directory: %d %s addresses (max %d)", len(list.addrs), list.what, MaxAddrs)
		}
		for i, s := range list.addrs {
			check := checkAddr
			if list.what == "HTTP" {
				check = checkHTTPURL
			}
			if err := check(s); err != nil {
				return fmt.Errorf("directory: %s address %d: %w", list.what, i+1, err)
			}
		}
	}
	return nil
}

// checkHTTPURL accepts "http://" or "https://" and a host:port that
// checkAddr accepts, at most MaxAddrLen bytes in all.
func checkHTTPURL(s string) error {
	if len(s) > MaxAddrLen {
		return fmt.Errorf("length %d (max %d)", len(s), MaxAddrLen)
	}
	for _, scheme := range []string{"http://", "https://"} {
		if rest, ok := strings.CutPrefix(s, scheme); ok {
			return checkAddr(rest)
		}
	}
	return errors.New("not an http:// or https:// URL")
}

func checkAddr(s string) error {
	if len(s) == 0 || len(s) > MaxAddrLen {
		return fmt.Errorf("length %d (1 to %d)", len(s), MaxAddrLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errors.New("not printable ASCII")
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || strconv.FormatUint(p, 10) != port {
		return errors.New("port is not a number from 1 to 65535")
	}
	if host == "" {
		return errors.New("empty host")
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return errors.New("unspecified host address")
		}
		return nil
	}
	if !validHostname(host) {
		return errors.New("host is neither an IP address nor a DNS name")
	}
	return nil
}

// validHostname accepts DNS names of letters, digits, hyphens and dots,
// labels of 1 to 63 bytes.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0 || h[len(h)-1] == '.'
}
