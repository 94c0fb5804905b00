package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// Message is one protocol message: [*Hello], [*HelloReply], [*Finished],
// [*Ready], [*StreamOpen], [*DirectMessage], [*RekeyInit], [*RekeyReply],
// [*RekeyConfirm], [*RekeyRequest], [*Error], or one of the room
// operations' requests, replies and pushes (room.go). The interface is
// sealed; only this package's structs implement it.
type Message interface {
	// Type returns the message's type number.
	Type() Type
	// Validate checks every bound and fixed size of docs/PROTOCOL.md and
	// returns a *DecodeError naming the first field that breaks one.
	Validate() error

	message()
}

// Every message decodes itself; see fields.go.
var (
	_ msgpack.CustomDecoder = (*Hello)(nil)
	_ msgpack.CustomDecoder = (*HelloReply)(nil)
	_ msgpack.CustomDecoder = (*Finished)(nil)
	_ msgpack.CustomDecoder = (*Ready)(nil)
	_ msgpack.CustomDecoder = (*StreamOpen)(nil)
	_ msgpack.CustomDecoder = (*DirectMessage)(nil)
	_ msgpack.CustomDecoder = (*RekeyInit)(nil)
	_ msgpack.CustomDecoder = (*RekeyReply)(nil)
	_ msgpack.CustomDecoder = (*RekeyConfirm)(nil)
	_ msgpack.CustomDecoder = (*RekeyRequest)(nil)
	_ msgpack.CustomDecoder = (*Error)(nil)
)

// Encode returns the frame payload of m: its type byte followed by the
// msgpack map of its fields. It refuses a message that fails Validate,
// returning Validate's *DecodeError, so a peer never receives what it must
// reject.
func Encode(m Message) ([]byte, error) {
	if m == nil || reflect.ValueOf(m).IsNil() {
		return nil, errors.New("wire: cannot encode a nil message")
	}
	if err := m.Validate(); err != nil {
		return nil, err // a *DecodeError naming the message and field
	}
	var buf bytes.Buffer
	buf.WriteByte(byte(m.Type()))
	enc := msgpack.GetEncoder()
	enc.Reset(&buf) // clears any option a previous user of the pool set
	err := enc.Encode(m)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, fmt.Errorf("wire: encoding %v: %w", m.Type(), err)
	}
	return buf.Bytes(), nil
}

// Decode parses a frame payload into the concrete struct its type byte
// names and validates it. The payload must already be bounded by framing;
// Decode allocates no more than the payload's length for any field. The
// result does not alias payload.
//
// On error the Message is nil and the error is a *DecodeError whose
// Reason is ErrEmpty, ErrUnknownType, ErrTrailingBytes, ErrVersion or
// another of the package's sentinels.
func Decode(payload []byte) (Message, error) {
	if len(payload) == 0 {
		return nil, &DecodeError{Reason: ErrEmpty}
	}
	t := Type(payload[0])
	var (
		m   Message
		dec msgpack.CustomDecoder
	)
	switch t {
	case TypeHello:
		h := new(Hello)
		m, dec = h, h
	case TypeHelloReply:
		h := new(HelloReply)
		m, dec = h, h
	case TypeFinished:
		f := new(Finished)
		m, dec = f, f
	case TypeReady:
		r := new(Ready)
		m, dec = r, r
	case TypeStreamOpen:
		o := new(StreamOpen)
		m, dec = o, o
	case TypeDirectMessage:
		dm := new(DirectMessage)
		m, dec = dm, dm
	case TypeRekeyInit:
		ri := new(RekeyInit)
		m, dec = ri, ri
	case TypeRekeyReply:
		rr := new(RekeyReply)
		m, dec = rr, rr
	case TypeRekeyConfirm:
		rc := new(RekeyConfirm)
		m, dec = rc, rc
	case TypeRekeyRequest:
		rq := new(RekeyRequest)
		m, dec = rq, rq
	case TypeError:
		e := new(Error)
		m, dec = e, e
	default:
		rt, ok := roomTypes[t]
		if !ok {
			return nil, &DecodeError{Type: t, Reason: ErrUnknownType}
		}
		m = rt.make()
		dec = m.(msgpack.CustomDecoder)
	}
	r := bytes.NewReader(payload[1:])
	d := msgpack.GetDecoder()
	d.Reset(r) // a *bytes.Reader is used as is, without a bufio layer
	// The message decoders reject unknown keys themselves; the flag is
	// kept set in case a decoder ever delegates to msgpack's reflection.
	d.DisallowUnknownFields(true)
	err := dec.DecodeMsgpack(d)
	msgpack.PutDecoder(d)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fieldError(t, "", ErrTrailingBytes, "%d bytes", r.Len())
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Helpers for Validate.

// checkBytes requires minLen <= len(b) <= maxLen.
func checkBytes(t Type, key string, b []byte, minLen, maxLen int) error {
	switch {
	case len(b) > maxLen:
		return fieldError(t, key, ErrTooLong, "%d bytes, max %d", len(b), maxLen)
	case len(b) < minLen && minLen == maxLen:
		return fieldError(t, key, ErrLength, "%d bytes, want %d", len(b), minLen)
	case len(b) < minLen:
		return fieldError(t, key, ErrLength, "%d bytes, min %d", len(b), minLen)
	}
	return nil
}

func checkVersion(t Type, v uint16) error {
	if v != Version {
		return fieldError(t, "v", ErrVersion, "version %d, want %d", v, Version)
	}
	return nil
}
