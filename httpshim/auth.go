package httpshim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/session"
)

// Request authentication headers (docs/HTTP.md, "Request authentication").
const (
	HeaderSession   = "Lanpeer-Session"
	HeaderTimestamp = "Lanpeer-Timestamp"
	HeaderNonce     = "Lanpeer-Nonce"
	HeaderMAC       = "Lanpeer-Mac"
)

// Bounds of the header values.
const (
	MinNonceLen = 16
	MaxNonceLen = 64
	macHexLen   = 2 * sha256.Size
	sessionHex  = 2 * session.SessionIDSize
	maxTSLen    = 16 // Unix milliseconds up to the year 316,000
)

// errMissingAuth is wrapped by every refusal of AuthHeaders.
var errMissingAuth = errors.New("httpshim: missing or malformed authentication header")

// AuthHeaders are the four authentication headers of one request, parsed
// and checked for form (not yet for validity).
type AuthHeaders struct {
	Session   [session.SessionIDSize]byte
	Timestamp time.Time
	MAC       [sha256.Size]byte
	// The header values as sent: the MAC covers the text.
	SessionText, TimestampText, Nonce string
}

// ParseAuthHeaders reads the authentication headers of h. Each must appear
// exactly once and be well formed; otherwise the error wraps
// errMissingAuth and names the header.
func ParseAuthHeaders(h http.Header) (*AuthHeaders, error) {
	get := func(name string) (string, error) {
		vs := h.Values(name)
		switch {
		case len(vs) == 0:
			return "", fmt.Errorf("%w: %s is missing", errMissingAuth, name)
		case len(vs) > 1:
			return "", fmt.Errorf("%w: %s appears %d times", errMissingAuth, name, len(vs))
		}
		return vs[0], nil
	}
	var a AuthHeaders
	var err error
	if a.SessionText, err = get(HeaderSession); err != nil {
		return nil, err
	}
	if !isLowerHex(a.SessionText, sessionHex) {
		return nil, fmt.Errorf("%w: %s must be %d lowercase hex characters", errMissingAuth, HeaderSession, sessionHex)
	}
	hex.Decode(a.Session[:], []byte(a.SessionText))
	if a.TimestampText, err = get(HeaderTimestamp); err != nil {
		return nil, err
	}
	ms, ok := parseMillis(a.TimestampText)
	if !ok {
		return nil, fmt.Errorf("%w: %s must be Unix milliseconds in decimal", errMissingAuth, HeaderTimestamp)
	}
	a.Timestamp = time.UnixMilli(ms)
	if a.Nonce, err = get(HeaderNonce); err != nil {
		return nil, err
	}
	if !isNonce(a.Nonce) {
		return nil, fmt.Errorf("%w: %s must be %d to %d characters of A-Z a-z 0-9 + / = _ -", errMissingAuth, HeaderNonce, MinNonceLen, MaxNonceLen)
	}
	mac, err := get(HeaderMAC)
	if err != nil {
		return nil, err
	}
	if !isLowerHex(mac, macHexLen) {
		return nil, fmt.Errorf("%w: %s must be %d lowercase hex characters", errMissingAuth, HeaderMAC, macHexLen)
	}
	hex.Decode(a.MAC[:], []byte(mac))
	return &a, nil
}

// parseMillis accepts a decimal without sign or leading zeros.
func parseMillis(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxTSLen || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isNonce(s string) bool {
	if len(s) < MinNonceLen || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '+' || c == '/' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// BodyHash returns the lowercase hex SHA-256 of body, as the MAC input
// holds it.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// RequestMAC computes the request MAC of docs/HTTP.md: HMAC-SHA256 under
// the session's authentication key over canon("lanpeer/v1 http request",
// session, method, raw request target, hex SHA-256 of the body,
// timestamp, nonce), each the text as sent.
func RequestMAC(authKey []byte, sessionText, method, target, bodyHashHex, timestampText, nonce string) [sha256.Size]byte {
	m := hmac.New(sha256.New, authKey)
	m.Write(canon.HTTPRequest(sessionText, method, target, bodyHashHex, timestampText, nonce))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}
