package httpshim

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// The JSON bodies (docs/HTTP.md): each a thin mapping of one wire message.
// Identifiers are lowercase hex, other binary values standard base64 (Go's
// encoding of []byte), X25519 and P-256 shares SPKI DER.

// HelloJSON is wire.Hello as JSON (POST /v1/handshake/init).
type HelloJSON struct {
	Version     uint16   `json:"version"`
	Responder   string   `json:"responder,omitempty"`
	IdentityKey []byte   `json:"identity_key"`
	SigAlg      uint16   `json:"sig_alg"`
	KEX         uint16   `json:"kex"`
	Share       []byte   `json:"share"`
	AEADs       []uint16 `json:"aeads"`
	Nonce       []byte   `json:"nonce"`
	Time        int64    `json:"time"`
	Sig         []byte   `json:"sig"`
}

var (
	helloRequired = []string{"version", "identity_key", "sig_alg", "kex", "share", "aeads", "nonce", "time", "sig"}
	helloOptional = []string{"responder"}
)

// HelloReplyJSON is wire.HelloReply as JSON, with the pending handshake's
// expiry.
type HelloReplyJSON struct {
	Version       uint16 `json:"version"`
	Session       string `json:"session"`
	IdentityKey   []byte `json:"identity_key"`
	SigAlg        uint16 `json:"sig_alg"`
	KEX           uint16 `json:"kex"`
	Share         []byte `json:"share"`
	AEAD          uint16 `json:"aead"`
	Nonce         []byte `json:"nonce"`
	Time          int64  `json:"time"`
	SealedAuthKey []byte `json:"sealed_auth_key"`
	Sig           []byte `json:"sig"`
	Expires       int64  `json:"expires"`
}

// FinishJSON is wire.Finished as JSON, with the session it confirms.
type FinishJSON struct {
	Session string `json:"session"`
	MAC     []byte `json:"mac"`
}

var finishRequired = []string{"session", "mac"}

// SessionJSON describes an established session.
type SessionJSON struct {
	Session     string `json:"session"`
	Peer        string `json:"peer"`
	KEX         uint16 `json:"kex"`
	AEAD        uint16 `json:"aead"`
	IdleTimeout int64  `json:"idle_timeout"` // milliseconds
}

// RoomEntryJSON is wire.RoomEntry as JSON.
type RoomEntryJSON struct {
	Room    string `json:"room"`
	Name    string `json:"name"`
	Master  string `json:"master"`
	Suite   uint16 `json:"suite"`
	Epoch   uint64 `json:"epoch"`
	Head    string `json:"head"`
	Created int64  `json:"created"`
	Role    string `json:"role"`
	Left    bool   `json:"left"`
}

// MemberJSON is wire.MemberEntry as JSON. KeyPackageHash names the key
// package the member's room key is wrapped to (GET
// /v1/key-packages/{hash} serves it); a field named key_package is
// always the blob itself.
type MemberJSON struct {
	Peer           string `json:"peer"`
	Role           string `json:"role"`
	KeyPackageHash string `json:"key_package_hash"`
	Acked          uint64 `json:"acked"`
	Left           bool   `json:"left"`
}

// RoomInfoJSON is wire.RoomInfoReply as JSON, with the master's identity
// key (SPKI DER), which a member checks against Master (its SHA-256) and
// then verifies the commits with: the host vouches for nothing the
// client does not check.
type RoomInfoJSON struct {
	Room      string       `json:"room"`
	Name      string       `json:"name"`
	Master    string       `json:"master"`
	MasterKey []byte       `json:"master_key"`
	Suite     uint16       `json:"suite"`
	Epoch     uint64       `json:"epoch"`
	Head      string       `json:"head"`
	Created   int64        `json:"created"`
	First     uint64       `json:"first"`
	Last      uint64       `json:"last"`
	Members   []MemberJSON `json:"members"`
	More      bool         `json:"more"`
}

// CommitListJSON is wire.CommitList as JSON (GET
// /v1/rooms/{room}/commits), with the room's master and its identity key
// as RoomInfoJSON has them, so a member verifies the commits without
// another request.
type CommitListJSON struct {
	Commits   [][]byte `json:"commits"`
	Epoch     uint64   `json:"epoch"`
	Master    string   `json:"master"`
	MasterKey []byte   `json:"master_key"`
}

// MessageJSON is wire.StoredMessage as JSON: the signed message blob is
// "message" here as in the body of POST /v1/rooms/{room}/messages.
type MessageJSON struct {
	Seq     uint64 `json:"seq"`
	Stored  int64  `json:"stored"`
	Message []byte `json:"message"`
}

// errBadJSON is wrapped by every refusal of a request body's form.
var errBadJSON = errors.New("httpshim: malformed request body")

func badJSON(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errBadJSON, fmt.Sprintf(format, a...))
}

// maxJSONDepth bounds nesting in a request body; no body nests deeper
// than an array in an object.
const maxJSONDepth = 4

// decodeStrict decodes body, a JSON object, into v: every key of required
// present, no key outside required and optional, no key twice, nothing
// after the object. The body was bounded before it was read.
func decodeStrict(body []byte, v any, required, optional []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return badJSON("%v", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badJSON("the body must be a JSON object")
	}
	seen := make(map[string]bool, len(required)+len(optional))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badJSON("%v", jsonErr(err))
		}
		key, _ := tok.(string)
		if !contains(required, key) && !contains(optional, key) {
			return badJSON("unknown field %q", truncate(key, 32))
		}
		if seen[key] {
			return badJSON("field %q appears twice", key)
		}
		seen[key] = true
		if err := skipValue(dec, 1); err != nil {
			return badJSON("field %q: %v", key, jsonErr(err))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return badJSON("%v", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badJSON("data after the JSON object")
	}
	for _, k := range required {
		if !seen[k] {
			return badJSON("field %q is missing", k)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badJSON("field %q: wrong type (want %v)", te.Field, te.Type)
		}
		return badJSON("%v", jsonErr(err))
	}
	return nil
}

// decodeOneBytes is decodeStrict's fast path for a body of one base64
// field, name, in the form encoders write: exactly {"name":"BASE64"}, no
// whitespace, no escapes. It returns the field's value, or false for any
// other body (decodeStrict then judges it). Whatever it accepts,
// decodeStrict accepts with the same value. name needs no JSON escape.
func decodeOneBytes(body []byte, name string) ([]byte, bool) {
	n := len(name)
	if len(body) < n+7 || body[0] != '{' || body[1] != '"' || string(body[2:2+n]) != name ||
		string(body[2+n:5+n]) != `":"` || string(body[len(body)-2:]) != `"}` {
		return nil, false
	}
	enc := body[5+n : len(body)-2]
	// The decoder refuses every byte outside the alphabet but for CR and
	// LF, which it skips: in a JSON string they are an error.
	if bytes.IndexByte(enc, '\n') >= 0 || bytes.IndexByte(enc, '\r') >= 0 {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	k, err := base64.StdEncoding.Decode(out, enc)
	if err != nil {
		return nil, false
	}
	return out[:k], true
}

// skipValue reads one value, bounding its nesting.
func skipValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxJSONDepth {
		return errors.New("nested too deeply")
	}
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil { // key
				return err
			}
		}
		if err := skipValue(dec, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// jsonErr strips what encoding/json quotes of the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON ends early"
	}
	return "invalid JSON"
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// parseHexID decodes a lowercase hex identifier of n bytes.
func parseHexID(what, s string, n int) ([]byte, error) {
	if !isLowerHex(s, 2*n) {
		return nil, badJSON("%s must be %d lowercase hex characters", what, 2*n)
	}
	b, _ := hex.DecodeString(s)
	return b, nil
}

// helloToWire turns the JSON hello into wire.Hello, the share into its
// raw wire form, and checks wire's bounds.
func helloToWire(h *HelloJSON) (*wire.Hello, error) {
	m := &wire.Hello{
		Version: h.Version, IdentityKey: h.IdentityKey, SigAlg: h.SigAlg, KEX: h.KEX,
		AEADs: h.AEADs, Nonce: h.Nonce, Time: h.Time, Sig: h.Sig,
	}
	if h.Responder != "" {
		r, err := parseHexID("responder", h.Responder, wire.PeerIDSize)
		if err != nil {
			return nil, err
		}
		m.Responder = r
	}
	share, err := shareFromJSON(cryptosuite.KEXID(h.KEX), h.Share)
	if err != nil {
		return nil, err
	}
	m.Share = share
	if len(m.AEADs) == 0 {
		m.AEADs = nil
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// errBadShare: a share whose SPKI form does not parse.
var errBadShare = errors.New("httpshim: bad key share")

// shareFromJSON returns the raw wire share: X25519 and P-256 keys come as
// SPKI DER (re-encoded and compared, so one key has one form), other
// modes' shares as they travel over TCP.
func shareFromJSON(kex cryptosuite.KEXID, b []byte) ([]byte, error) {
	var curve ecdh.Curve
	switch kex {
	case cryptosuite.KEXX25519:
		curve = ecdh.X25519()
	case cryptosuite.KEXP256:
		curve = ecdh.P256()
	default:
		return b, nil
	}
	if len(b) > wire.MaxShareSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadShare, len(b))
	}
	pub, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not an SPKI DER public key", errBadShare)
	}
	var pk *ecdh.PublicKey
	switch k := pub.(type) {
	case *ecdh.PublicKey:
		pk = k
	case *ecdsa.PublicKey:
		if pk, err = k.ECDH(); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadShare, err)
		}
	default:
		return nil, fmt.Errorf("%w: not an ECDH key", errBadShare)
	}
	if pk.Curve() != curve {
		return nil, fmt.Errorf("%w: a key of another curve than the mode's", errBadShare)
	}
	again, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not the canonical SPKI encoding", errBadShare)
	}
	return pk.Bytes(), nil
}

// shareToJSON is shareFromJSON's inverse, for the responder's share.
func shareToJSON(kex cryptosuite.KEXID, raw []byte) ([]byte, error) {
	var curve ecdh.Curve
	switch kex {
	case cryptosuite.KEXX25519:
		curve = ecdh.X25519()
	case cryptosuite.KEXP256:
		curve = ecdh.P256()
	default:
		return raw, nil
	}
	pk, err := curve.NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadShare, err)
	}
	return x509.MarshalPKIXPublicKey(pk)
}

func helloReplyToJSON(m *wire.HelloReply, expires int64) (*HelloReplyJSON, error) {
	share, err := shareToJSON(cryptosuite.KEXID(m.KEX), m.Share)
	if err != nil {
		return nil, err
	}
	return &HelloReplyJSON{
		Version: m.Version, Session: hex.EncodeToString(m.SessionID), IdentityKey: m.IdentityKey,
		SigAlg: m.SigAlg, KEX: m.KEX, Share: share, AEAD: m.AEAD, Nonce: m.Nonce, Time: m.Time,
		SealedAuthKey: m.SealedAuthKey, Sig: m.Sig, Expires: expires,
	}, nil
}

// helloReplyFromJSON is the client's side of helloReplyToJSON.
func helloReplyFromJSON(j *HelloReplyJSON) (*wire.HelloReply, error) {
	sid, err := parseHexID("session", j.Session, 16)
	if err != nil {
		return nil, err
	}
	share, err := shareFromJSON(cryptosuite.KEXID(j.KEX), j.Share)
	if err != nil {
		return nil, err
	}
	m := &wire.HelloReply{
		Version: j.Version, SessionID: sid, IdentityKey: j.IdentityKey, SigAlg: j.SigAlg, KEX: j.KEX,
		Share: share, AEAD: j.AEAD, Nonce: j.Nonce, Time: j.Time, SealedAuthKey: j.SealedAuthKey, Sig: j.Sig,
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// HelloToJSON returns a requestor's hello (session.Requestor.CreateHello)
// as the body of POST /v1/handshake/init, for clients that run the
// handshake's round trips themselves (Client.Handshake runs both).
func HelloToJSON(m *wire.Hello) (*HelloJSON, error) { return helloToJSON(m) }

// helloToJSON is the client's side of helloToWire.
func helloToJSON(m *wire.Hello) (*HelloJSON, error) {
	share, err := shareToJSON(cryptosuite.KEXID(m.KEX), m.Share)
	if err != nil {
		return nil, err
	}
	j := &HelloJSON{
		Version: m.Version, IdentityKey: m.IdentityKey, SigAlg: m.SigAlg, KEX: m.KEX, Share: share,
		AEADs: m.AEADs, Nonce: m.Nonce, Time: m.Time, Sig: m.Sig,
	}
	if len(m.Responder) != 0 {
		j.Responder = hex.EncodeToString(m.Responder)
	}
	if j.Share == nil {
		j.Share = []byte{}
	}
	return j, nil
}

func roleName(master bool) string {
	if master {
		return "master"
	}
	return "member"
}
