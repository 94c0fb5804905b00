package wire

import "fmt"

// Specification constants (docs/PROTOCOL.md, "Constants"). Every bound the
// decoders and Validate enforce is here; sizes are in bytes.
const (
	// Version is the protocol version this package speaks. Hello and
	// HelloReply carry it; any other value is refused with ErrVersion.
	Version uint16 = 1

	PeerIDSize    = 32 // Hello.Responder when set: SHA-256 of the responder's SPKI
	SessionIDSize = 16 // HelloReply.SessionID
	NonceSize     = 32 // Hello.Nonce, HelloReply.Nonce
	MACSize       = 32 // Finished.MAC

	// MaxIdentityKeySize bounds an identity key in SPKI DER form. An
	// RSA-4096 SPKI is 550 bytes, an Ed25519 SPKI 44.
	MaxIdentityKeySize = 1024

	// MaxShareSize bounds a key share: an X25519 public key is 32 bytes, a
	// P-256 point 65, an X25519MLKEM768 share 1216 (requestor: ML-KEM-768
	// encapsulation key 1184 + 32) or 1120 (responder: ciphertext 1088 +
	// 32), an RSA-OAEP ciphertext at most 512. The session checks the exact
	// size for the negotiated mode.
	MaxShareSize = 1216

	MinAEADs = 1  // Hello.AEADs: at least one suite offered
	MaxAEADs = 16 // Hello.AEADs: at most this many

	// MaxSigSize bounds a signature: RSA-4096 PSS is 512 bytes, Ed25519 64.
	MaxSigSize = 512

	// MaxSealedAuthKeySize bounds HelloReply.SealedAuthKey: a 32-byte
	// authentication key sealed with A256CBC-HS512 is 16 + 48 + 32 = 96
	// bytes, a 64-byte key 16 + 80 + 32 = 128; the GCM and ChaCha20-Poly1305
	// seals are shorter.
	MaxSealedAuthKeySize = 128

	// MaxErrorMessageSize bounds Error.Message.
	MaxErrorMessageSize = 256

	// MaxDirectTextSize bounds the text of a direct message, in bytes of
	// UTF-8 (docs/PROTOCOL.md, "Direct messages").
	MaxDirectTextSize = 16384

	// MaxBoxSize bounds DirectMessage.Box: the largest text sealed with
	// the suite of most overhead, A256CBC-HS512 (a 16-byte IV, padding
	// of up to 16 bytes, a 32-byte tag). The GCM and ChaCha20-Poly1305
	// boxes are 12 + text + 16 bytes.
	MaxBoxSize = MaxDirectTextSize + 64

	// MaxSeq is the largest direct-message sequence number: 2^53-1, the
	// largest integer a JavaScript number holds exactly.
	MaxSeq = 1<<53 - 1
)

// maxKeySize bounds a map key. Every key is at most 3 bytes; a longer key
// is unknown and is refused without being read.
const maxKeySize = 8

// Type is a message's type number: the first byte of every frame payload.
type Type uint8

// Message types (docs/PROTOCOL.md, "Message types"). 0x00 is never a valid
// type.
const (
	TypeHello      Type = 0x01 // DESIGN.md §4 step 1, flight 1
	TypeHelloReply Type = 0x02 // DESIGN.md §4 step 2, flight 2
	TypeFinished   Type = 0x03 // DESIGN.md §4 step 3, flight 3
	TypeReady      Type = 0x04 // responder → requestor: key confirmation accepted

	// After the handshake, on yamux streams.
	TypeStreamOpen    Type = 0x10 // first frame of every stream: its kind
	TypeDirectMessage Type = 0x11 // direct stream: one sealed text
	TypeRekeyInit     Type = 0x12 // control stream, requestor → responder
	TypeRekeyReply    Type = 0x13 // control stream, responder → requestor
	TypeRekeyConfirm  Type = 0x14 // control stream, requestor → responder
	TypeRekeyRequest  Type = 0x15 // control stream, responder → requestor

	TypeError Type = 0xff // either direction, then the stream closes
)

// String returns the message type's name, or Type(0xNN) for an unknown
// type.
func (t Type) String() string {
	switch t {
	case TypeHello:
		return "Hello"
	case TypeHelloReply:
		return "HelloReply"
	case TypeFinished:
		return "Finished"
	case TypeReady:
		return "Ready"
	case TypeStreamOpen:
		return "StreamOpen"
	case TypeDirectMessage:
		return "DirectMessage"
	case TypeRekeyInit:
		return "RekeyInit"
	case TypeRekeyReply:
		return "RekeyReply"
	case TypeRekeyConfirm:
		return "RekeyConfirm"
	case TypeRekeyRequest:
		return "RekeyRequest"
	case TypeError:
		return "Error"
	}
	if rt, ok := roomTypes[t]; ok {
		return rt.name
	}
	return fmt.Sprintf("Type(0x%02x)", uint8(t))
}
