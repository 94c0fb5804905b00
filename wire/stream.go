package wire

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// StreamKind says what a yamux stream carries (docs/PROTOCOL.md,
// "Streams"). It is the only field of [StreamOpen], the first frame of
// every stream.
type StreamKind uint16

// Stream kinds. 0 is reserved; any value not listed here is refused: the
// receiver resets the stream.
const (
	// StreamDirect carries the opener's direct messages, one way: one
	// stream per direction per session.
	StreamDirect StreamKind = 1
	// StreamControl carries the rekey exchanges of the session in both
	// directions; the requestor opens it.
	StreamControl StreamKind = 2
	// StreamNotify carries pushes from the responder to the requestor.
	StreamNotify StreamKind = 3
	// StreamRequest carries one request and its response.
	StreamRequest StreamKind = 4

	maxStreamKind = StreamRequest
)

// String returns the kind's name ("direct"), or StreamKind(N) for a kind
// this version does not define.
func (k StreamKind) String() string {
	switch k {
	case StreamDirect:
		return "direct"
	case StreamControl:
		return "control"
	case StreamNotify:
		return "notify"
	case StreamRequest:
		return "request"
	}
	return fmt.Sprintf("StreamKind(%d)", uint16(k))
}

// StreamOpen is the first frame on every yamux stream, sent by the peer
// that opened it (docs/PROTOCOL.md, "StreamOpen"). A stream whose first
// frame is anything else, or names a kind Decode refuses, is reset.
type StreamOpen struct {
	Kind StreamKind `msgpack:"k"` // 1..4
}

var streamOpenKeys = []string{"k"}

// Type returns TypeStreamOpen.
func (*StreamOpen) Type() Type { return TypeStreamOpen }
func (*StreamOpen) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *StreamOpen) DecodeMsgpack(d *msgpack.Decoder) error {
	var o StreamOpen
	fd := newFieldDecoder(d, TypeStreamOpen, streamOpenKeys)
	for fd.next() {
		switch fd.key {
		case "k":
			o.Kind = StreamKind(fd.uint16())
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = o
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "StreamOpen": the kind
// is one this version defines.
func (m *StreamOpen) Validate() error {
	if m.Kind == 0 || m.Kind > maxStreamKind {
		return fieldError(TypeStreamOpen, "k", ErrOutOfRange, "stream kind %d, want 1 to %d", m.Kind, maxStreamKind)
	}
	return nil
}

// DirectMessage is one direct message on a direct stream (DESIGN.md §5;
// docs/PROTOCOL.md, "DirectMessage"): a text sealed under the session's
// key for the sender's direction and epoch. Seq counts the messages of
// one direction from 0, across epochs.
type DirectMessage struct {
	Seq   uint64 `msgpack:"s"` // 0..MaxSeq
	Epoch uint32 `msgpack:"e"` // the key epoch: 0 for the handshake's keys, then one more per rekey
	Box   []byte `msgpack:"b"` // nonce or IV ‖ ciphertext ‖ tag, 1..MaxBoxSize bytes
}

var directMessageKeys = []string{"s", "e", "b"}

// Type returns TypeDirectMessage.
func (*DirectMessage) Type() Type { return TypeDirectMessage }
func (*DirectMessage) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the box bounded
// before allocation. It does not run Validate; use Decode.
func (m *DirectMessage) DecodeMsgpack(d *msgpack.Decoder) error {
	var dm DirectMessage
	fd := newFieldDecoder(d, TypeDirectMessage, directMessageKeys)
	for fd.next() {
		switch fd.key {
		case "s":
			dm.Seq = fd.uint(MaxSeq)
		case "e":
			dm.Epoch = fd.uint32()
		case "b":
			dm.Box = fd.bytes(MaxBoxSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = dm
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "DirectMessage".
func (m *DirectMessage) Validate() error {
	const t = TypeDirectMessage
	if m.Seq > MaxSeq {
		return fieldError(t, "s", ErrOutOfRange, "max %d", uint64(MaxSeq))
	}
	return checkBytes(t, "b", m.Box, 1, MaxBoxSize)
}

// checkRekeyEpoch requires a rekey message's epoch to be at least 1: epoch
// 0 is the handshake's and is never negotiated.
func checkRekeyEpoch(t Type, e uint32) error {
	if e == 0 {
		return fieldError(t, "e", ErrOutOfRange, "epoch 0 is the handshake's")
	}
	return nil
}

// RekeyInit starts a rekey exchange, requestor to responder on the control
// stream (docs/PROTOCOL.md, "Rekey"). Share is a fresh requestor share in
// the session's key-agreement mode (empty in the rsa mode).
type RekeyInit struct {
	Epoch uint32 `msgpack:"e"`  // the epoch the exchange creates: the current one plus 1
	Share []byte `msgpack:"ks"` // 0..MaxShareSize bytes; the session checks the exact size
}

var rekeyInitKeys = []string{"e", "ks"}

// Type returns TypeRekeyInit.
func (*RekeyInit) Type() Type { return TypeRekeyInit }
func (*RekeyInit) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the share bounded
// before allocation. It does not run Validate; use Decode.
func (m *RekeyInit) DecodeMsgpack(d *msgpack.Decoder) error {
	var r RekeyInit
	fd := newFieldDecoder(d, TypeRekeyInit, rekeyInitKeys)
	for fd.next() {
		switch fd.key {
		case "e":
			r.Epoch = fd.uint32()
		case "ks":
			r.Share = fd.bytes(MaxShareSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = r
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "RekeyInit".
func (m *RekeyInit) Validate() error {
	if err := checkRekeyEpoch(TypeRekeyInit, m.Epoch); err != nil {
		return err
	}
	return checkBytes(TypeRekeyInit, "ks", m.Share, 0, MaxShareSize)
}

// RekeyReply answers a RekeyInit, responder to requestor: the responder's
// share and its key-confirmation MAC under the new keys.
type RekeyReply struct {
	Epoch uint32 `msgpack:"e"`   // RekeyInit's epoch
	Share []byte `msgpack:"ks"`  // 1..MaxShareSize bytes
	MAC   []byte `msgpack:"mac"` // MACSize bytes
}

var rekeyReplyKeys = []string{"e", "ks", "mac"}

// Type returns TypeRekeyReply.
func (*RekeyReply) Type() Type { return TypeRekeyReply }
func (*RekeyReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *RekeyReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var r RekeyReply
	fd := newFieldDecoder(d, TypeRekeyReply, rekeyReplyKeys)
	for fd.next() {
		switch fd.key {
		case "e":
			r.Epoch = fd.uint32()
		case "ks":
			r.Share = fd.bytes(MaxShareSize)
		case "mac":
			r.MAC = fd.bytes(MACSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = r
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "RekeyReply".
func (m *RekeyReply) Validate() error {
	const t = TypeRekeyReply
	if err := checkRekeyEpoch(t, m.Epoch); err != nil {
		return err
	}
	if err := checkBytes(t, "ks", m.Share, 1, MaxShareSize); err != nil {
		return err
	}
	return checkBytes(t, "mac", m.MAC, MACSize, MACSize)
}

// RekeyConfirm ends a rekey exchange, requestor to responder: the
// requestor's key-confirmation MAC under the new keys.
type RekeyConfirm struct {
	Epoch uint32 `msgpack:"e"`   // RekeyInit's epoch
	MAC   []byte `msgpack:"mac"` // MACSize bytes
}

var rekeyConfirmKeys = []string{"e", "mac"}

// Type returns TypeRekeyConfirm.
func (*RekeyConfirm) Type() Type { return TypeRekeyConfirm }
func (*RekeyConfirm) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the MAC bounded
// before allocation. It does not run Validate; use Decode.
func (m *RekeyConfirm) DecodeMsgpack(d *msgpack.Decoder) error {
	var r RekeyConfirm
	fd := newFieldDecoder(d, TypeRekeyConfirm, rekeyConfirmKeys)
	for fd.next() {
		switch fd.key {
		case "e":
			r.Epoch = fd.uint32()
		case "mac":
			r.MAC = fd.bytes(MACSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = r
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "RekeyConfirm".
func (m *RekeyConfirm) Validate() error {
	if err := checkRekeyEpoch(TypeRekeyConfirm, m.Epoch); err != nil {
		return err
	}
	return checkBytes(TypeRekeyConfirm, "mac", m.MAC, MACSize, MACSize)
}

// RekeyRequest asks the requestor to start a rekey exchange, responder to
// requestor: only the requestor runs the key agreement's requestor side,
// as in the handshake.
type RekeyRequest struct {
	Epoch uint32 `msgpack:"e"` // the epoch asked for: the current one plus 1
}

var rekeyRequestKeys = []string{"e"}

// Type returns TypeRekeyRequest.
func (*RekeyRequest) Type() Type { return TypeRekeyRequest }
func (*RekeyRequest) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *RekeyRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	var r RekeyRequest
	fd := newFieldDecoder(d, TypeRekeyRequest, rekeyRequestKeys)
	for fd.next() {
		switch fd.key {
		case "e":
			r.Epoch = fd.uint32()
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = r
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "RekeyRequest".
func (m *RekeyRequest) Validate() error {
	return checkRekeyEpoch(TypeRekeyRequest, m.Epoch)
}
