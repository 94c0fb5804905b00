package wire

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrorCode is a stable numeric error code carried by an [Error] message
// (docs/PROTOCOL.md, "Error codes"). Its String form is the stable name
// the HTTP shim's JSON errors use too.
type ErrorCode uint16

// Error codes. 0 is reserved and never sent. A receiver MUST accept codes
// it does not know and treat them as CodeProtocol.
const (
	CodeProtocol       ErrorCode = 1  // malformed or unexpected message
	CodeVersion        ErrorCode = 2  // unsupported protocol version
	CodeTooLarge       ErrorCode = 3  // a frame, field or list exceeds its limit
	CodeBadSignature   ErrorCode = 4  // a signature or MAC did not verify
	CodeReplay         ErrorCode = 5  // a nonce was seen before
	CodeStaleTimestamp ErrorCode = 6  // a timestamp is outside the accepted window
	CodePolicy         ErrorCode = 7  // the peer is not allowed, or unknown where known peers are required
	CodeNoCommonSuite  ErrorCode = 8  // no AEAD suite in common
	CodeKEXRefused     ErrorCode = 9  // the key-agreement mode is refused (e.g. rsa for an Ed25519 identity)
	CodeRateLimited    ErrorCode = 10 // too many requests; retry later
	CodeBusy           ErrorCode = 11 // the server is at a capacity limit; retry later
	CodeTimeout        ErrorCode = 12 // a deadline passed
	CodeInternal       ErrorCode = 13 // the sender failed; not the receiver's fault
	CodeUnauthorized   ErrorCode = 14 // not allowed to do this (room role, membership)
	CodeNotFound       ErrorCode = 15 // no such room, message or peer
	CodeConflict       ErrorCode = 16 // conflicts with the current state (e.g. an older epoch)
)

var errorCodes = []struct {
	code       ErrorCode
	name, text string
}{
	{CodeProtocol, "protocol", "protocol error"},
	{CodeVersion, "version", "unsupported protocol version"},
	{CodeTooLarge, "too-large", "message too large"},
	{CodeBadSignature, "bad-signature", "verification failed"},
	{CodeReplay, "replay", "replayed message"},
	{CodeStaleTimestamp, "stale-timestamp", "timestamp outside the accepted window"},
	{CodePolicy, "policy", "peer not allowed"},
	{CodeNoCommonSuite, "no-common-suite", "no cipher suite in common"},
	{CodeKEXRefused, "kex-refused", "key agreement mode refused"},
	{CodeRateLimited, "rate-limited", "rate limited, retry later"},
	{CodeBusy, "busy", "busy, retry later"},
	{CodeTimeout, "timeout", "timed out"},
	{CodeInternal, "internal", "internal error"},
	{CodeUnauthorized, "unauthorized", "not authorized"},
	{CodeNotFound, "not-found", "not found"},
	{CodeConflict, "conflict", "conflict with the current state"},
}

// String returns the code's stable name ("too-large"), or
// ErrorCode(N) for a code this version does not define.
func (c ErrorCode) String() string {
	for _, e := range errorCodes {
		if e.code == c {
			return e.name
		}
	}
	return fmt.Sprintf("ErrorCode(%d)", uint16(c))
}

// Text returns the fixed message a sender puts in [Error.Message] for c,
// or "unknown error" for a code this version does not define.
func (c ErrorCode) Text() string {
	for _, e := range errorCodes {
		if e.code == c {
			return e.text
		}
	}
	return "unknown error"
}

// ParseErrorCode returns the code whose String is name.
func ParseErrorCode(name string) (ErrorCode, bool) {
	for _, e := range errorCodes {
		if e.name == name {
			return e.code, true
		}
	}
	return 0, false
}

// Error tells the peer why the sender is about to close the stream or
// connection (DESIGN.md §3; sent in place of any handshake flight of §4;
// docs/PROTOCOL.md, "Error"). It is unauthenticated during the handshake:
// Message is a hint for people, never a basis for decisions. A sender
// puts fixed texts in Message ([NewError] uses [ErrorCode.Text]) and
// never echoes peer input.
type Error struct {
	Code    ErrorCode `msgpack:"c"` // any value but 0
	Message string    `msgpack:"m"` // 0..MaxErrorMessageSize bytes of printable UTF-8
}

var errorKeys = []string{"c", "m"}

// NewError returns an Error message with code's fixed text.
func NewError(code ErrorCode) *Error { return &Error{Code: code, Message: code.Text()} }

// Type returns TypeError.
func (*Error) Type() Type { return TypeError }
func (*Error) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the text bounded
// before allocation. It does not run Validate; use Decode.
func (m *Error) DecodeMsgpack(d *msgpack.Decoder) error {
	var e Error
	fd := newFieldDecoder(d, TypeError, errorKeys)
	for fd.next() {
		switch fd.key {
		case "c":
			e.Code = ErrorCode(fd.uint16())
		case "m":
			e.Message = fd.text(MaxErrorMessageSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = e
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "Error".
func (m *Error) Validate() error {
	if m.Code == 0 {
		return fieldError(TypeError, "c", ErrOutOfRange, "code 0 is reserved")
	}
	if len(m.Message) > MaxErrorMessageSize {
		return fieldError(TypeError, "m", ErrTooLong, "%d bytes, max %d", len(m.Message), MaxErrorMessageSize)
	}
	if err := checkText([]byte(m.Message)); err != nil {
		return fieldError(TypeError, "m", err, "")
	}
	return nil
}
