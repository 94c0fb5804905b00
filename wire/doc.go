// Package wire defines lanpeer's protocol messages as Go structs, their
// type numbers, the error codes and the protocol version, and the one
// encoding every frame payload uses (docs/PROTOCOL.md; DESIGN.md §3, §4).
//
// # Encoding
//
// A frame payload is one byte of message [Type] followed by the msgpack
// encoding of that message's struct: a map with short string keys (the
// structs' msgpack tags). Nothing may follow the map. [Encode] and
// [Decode] are the only entry points; Decode returns a concrete struct
// per type ([*Hello], [*HelloReply], [*Finished], [*Ready], [*StreamOpen],
// [*DirectMessage], [*RekeyInit], [*RekeyReply], [*RekeyConfirm],
// [*RekeyRequest], [*Error], and the room operations' requests, replies
// and pushes of room.go) and never decodes into interface{}.
//
// # Untrusted input
//
// Decode expects a payload that framing has already bounded. msgpack
// headers can declare up to 2^32-1 bytes or elements in five bytes, and
// vmihailenco/msgpack v5.4.1 allocates byte strings and slices from the
// declared length (DESIGN.md §11), so every message implements
// msgpack.CustomDecoder: each length or count is checked against its spec
// maximum ([MaxShareSize], [MaxAEADs], ...) and against the bytes left in
// the payload before anything is allocated. The decoders never skip or
// recurse into values they do not expect: unknown keys, duplicate keys,
// missing keys, wrong msgpack types and nesting beyond the message's own
// shape are errors. After decoding, Decode runs the message's Validate.
//
// # Errors
//
// Every decoding or validation failure is a [*DecodeError] naming the
// message type and the msgpack key, whose Reason is one of the sentinel
// errors ([ErrVersion], [ErrTooLong], [ErrTrailingBytes], ...), so callers
// test with errors.Is. On error Decode returns a nil Message.
// [DecodeError.Code] gives the error code to answer with.
//
// Encode and Decode are safe for concurrent use.
//
// Wire structs stay in the protocol layers: node, room and store convert
// them to their own types and never import this package's tags.
package wire
