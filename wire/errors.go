package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Reasons for a [*DecodeError]. Test with errors.Is.
var (
	// ErrEmpty: the payload has no type byte.
	ErrEmpty = errors.New("wire: empty payload")
	// ErrUnknownType: the type byte names no message.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrTrailingBytes: bytes follow the message's map.
	ErrTrailingBytes = errors.New("wire: trailing bytes after the message")
	// ErrTruncated: the payload ends inside a value, or a declared length
	// or count exceeds the bytes left in it.
	ErrTruncated = errors.New("wire: message truncated")
	// ErrWrongType: a value has a msgpack type the field does not take
	// (including nested arrays or maps where none belong).
	ErrWrongType = errors.New("wire: wrong msgpack type")
	// ErrUnknownField: a map key the message does not define.
	ErrUnknownField = errors.New("wire: unknown field")
	// ErrDuplicateField: a map key that appears twice.
	ErrDuplicateField = errors.New("wire: duplicate field")
	// ErrMissingField: a key of the message is absent; every field is
	// required.
	ErrMissingField = errors.New("wire: missing field")
	// ErrTooLong: a byte string, text or list is longer than its spec
	// maximum.
	ErrTooLong = errors.New("wire: value exceeds its limit")
	// ErrLength: a byte string or list has a length its field does not
	// allow (a fixed size not met, or empty where a value is required).
	ErrLength = errors.New("wire: value has the wrong length")
	// ErrOutOfRange: an integer does not fit its field, or is a value the
	// field reserves.
	ErrOutOfRange = errors.New("wire: integer out of range")
	// ErrDuplicateValue: a list repeats an element.
	ErrDuplicateValue = errors.New("wire: list repeats a value")
	// ErrBadText: a text is not valid UTF-8 or holds a character other
	// than letters, marks, numbers, punctuation, symbols and the ASCII
	// space.
	ErrBadText = errors.New("wire: text is not printable UTF-8")
	// ErrVersion: Hello or HelloReply names a protocol version other than
	// [Version]. A responder answers it with [CodeVersion].
	ErrVersion = errors.New("wire: unsupported protocol version")
	// ErrMalformed: the msgpack data is malformed in a way none of the
	// other reasons describe.
	ErrMalformed = errors.New("wire: malformed msgpack")
)

// DecodeError reports a payload that Decode refused, or a message that
// Validate (and so Encode) refused. Reason is one of the sentinel errors
// above and is what errors.Is matches; Detail is for people: it quotes
// lengths and values, and of the peer's bytes at most an unknown key of up
// to 8 bytes, escaped. Never send it to the peer.
type DecodeError struct {
	Type   Type   // the message type, or 0 if the payload had none
	Field  string // the msgpack key ("ks", "ae", ...), or "" for the message as a whole
	Reason error  // a sentinel: ErrTooLong, ErrVersion, ...
	Detail string // e.g. "1300 bytes, max 1216"; may be empty
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("wire: ")
	if e.Type != 0 {
		b.WriteString(e.Type.String())
		if e.Field != "" {
			fmt.Fprintf(&b, " field %q", e.Field)
		}
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimPrefix(e.Reason.Error(), "wire: "))
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	return b.String()
}

// Unwrap returns Reason.
func (e *DecodeError) Unwrap() error { return e.Reason }

// Code returns the error code a receiver sends for this failure
// (docs/PROTOCOL.md, "Error"): CodeVersion for ErrVersion, CodeTooLarge
// for ErrTooLong, CodeProtocol for everything else.
func (e *DecodeError) Code() ErrorCode {
	switch {
	case errors.Is(e.Reason, ErrVersion):
		return CodeVersion
	case errors.Is(e.Reason, ErrTooLong):
		return CodeTooLarge
	}
	return CodeProtocol
}

func fieldError(t Type, field string, reason error, format string, args ...any) *DecodeError {
	e := &DecodeError{Type: t, Field: field, Reason: reason}
	if format != "" {
		e.Detail = fmt.Sprintf(format, args...)
	}
	return e
}
