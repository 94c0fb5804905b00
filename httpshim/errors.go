package httpshim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// Error codes of the shim that the TCP protocol does not have
// (docs/HTTP.md, "Errors"); the others are wire.ErrorCode names.
const (
	CodeMissingAuth       = "missing-auth"
	CodeUnknownSession    = "unknown-session"
	CodeBadMAC            = "bad-mac"
	CodeUnknownHandshake  = "unknown-handshake"
	CodeMethodNotAllowed  = "method-not-allowed"
	CodeUnsupportedMedia  = "unsupported-media-type"
	codeProtocol          = "protocol"
	codeTooLarge          = "too-large"
	codeRateLimited       = "rate-limited"
	codeBusy              = "busy"
	codeInternal          = "internal"
	codeNotFound          = "not-found"
	codeReplay            = "replay"
	codeStaleTimestamp    = "stale-timestamp"
	codeBadSignature      = "bad-signature"
	codeTimeout           = "timeout"
	codeVersion           = "version"
	codeNoCommonSuite     = "no-common-suite"
	codePolicy            = "policy"
	codeKEXRefused        = "kex-refused"
	codeUnauthorized      = "unauthorized"
	codeConflict          = "conflict"
	retryAfterRateLimited = "1"
	retryAfterBusy        = "5"
)

// statusOf is the one status of each code.
var statusOf = map[string]int{
	codeProtocol:         http.StatusBadRequest,
	codeVersion:          http.StatusBadRequest,
	codeNoCommonSuite:    http.StatusBadRequest,
	CodeMissingAuth:      http.StatusUnauthorized,
	CodeUnknownSession:   http.StatusUnauthorized,
	CodeBadMAC:           http.StatusUnauthorized,
	codeStaleTimestamp:   http.StatusUnauthorized,
	codeReplay:           http.StatusUnauthorized,
	codeBadSignature:     http.StatusForbidden,
	codePolicy:           http.StatusForbidden,
	codeKEXRefused:       http.StatusForbidden,
	codeUnauthorized:     http.StatusForbidden,
	codeNotFound:         http.StatusNotFound,
	CodeUnknownHandshake: http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	codeConflict:         http.StatusConflict,
	codeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	codeRateLimited:      http.StatusTooManyRequests,
	codeInternal:         http.StatusInternalServerError,
	codeBusy:             http.StatusServiceUnavailable,
	codeTimeout:          http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status of an error code (500 for a code the
// shim does not define).
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// apiError is an error response: a code, a message for people, and for
// room refusals the reason and its value.
type apiError struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Value   uint64 `json:"value,omitempty"`
	Message string `json:"message"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

func newAPIError(code, format string, a ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// writeError answers e with its status and the headers its code asks for.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	switch e.Code {
	case codeRateLimited:
		h.Set("Retry-After", retryAfterRateLimited)
	case codeBusy, codeTimeout:
		h.Set("Retry-After", retryAfterBusy)
	}
	status := StatusOf(e.Code)
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Lanpeer-HMAC")
	}
	writeJSON(w, status, errorBody{Error: *e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// writeJSONBytes answers b, a JSON value and its newline, with status.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

// handshakeError maps a handshake refusal to its code, with the session
// package's fixed text (never the peer's input).
func handshakeError(err error) *apiError {
	var de *wire.DecodeError
	switch {
	case errors.Is(err, errBadShare):
		return newAPIError(codeBadSignature, "%s", "the key share is not a canonical SPKI DER key of the mode's curve")
	case errors.As(err, &de):
		return newAPIError(codeForWire(de.Code()), "%s", de.Error())
	}
	code := session.Code(err)
	return newAPIError(codeForWire(code), "%s", trimPrefix(err.Error()))
}

// codeForWire is the shim's code of a wire error code.
func codeForWire(c wire.ErrorCode) string {
	name := c.String()
	if _, ok := statusOf[name]; ok {
		return name
	}
	return codeInternal
}

func trimPrefix(s string) string {
	for _, p := range []string{"session: ", "node: ", "httpshim: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

// roomError maps a Service operation's error to the room refusal the TCP
// front end sends, with the reason and its value.
func roomError(err error) *apiError {
	var de *wire.DecodeError
	switch {
	case errors.As(err, &de):
		return newAPIError(codeForWire(de.Code()), "%s", de.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return newAPIError(codeTimeout, "the store did not answer in time")
	case errors.Is(err, node.ErrClosed):
		return newAPIError(codeBusy, "the listener is stopping")
	case errors.Is(err, store.ErrUnavailable):
		return newAPIError(codeTimeout, "the store is unavailable")
	}
	re := node.RoomErrorFor(err)
	return &apiError{Code: codeForWire(re.Code), Reason: re.Reason.String(), Value: re.Value, Message: re.Message}
}
