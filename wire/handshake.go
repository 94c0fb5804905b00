package wire

import (
	"github.com/vmihailenco/msgpack/v5"
)

// Hello is flight 1 of the handshake, requestor to responder (DESIGN.md §4
// step 1; docs/PROTOCOL.md, "Hello"). Sig covers the transcript of every
// other field; the session builds and checks it. The ids (SigAlg, KEX,
// AEADs) are cryptosuite's; wire checks only their encoding.
type Hello struct {
	Version uint16 `msgpack:"v"`
	// Responder is the peer ID the requestor means to reach (PeerIDSize
	// bytes), or empty for trust on first use.
	Responder   []byte   `msgpack:"r"`
	IdentityKey []byte   `msgpack:"ik"`  // SPKI DER, 1..MaxIdentityKeySize bytes
	SigAlg      uint16   `msgpack:"sa"`  // follows from the key type; checked by the session
	KEX         uint16   `msgpack:"kx"`  // key-agreement mode
	Share       []byte   `msgpack:"ks"`  // ephemeral public key, 0..MaxShareSize bytes (empty in the rsa mode)
	AEADs       []uint16 `msgpack:"ae"`  // accepted AEAD suites in preference order, MinAEADs..MaxAEADs, no repeats
	Nonce       []byte   `msgpack:"n"`   // NonceSize random bytes
	Time        int64    `msgpack:"t"`   // Unix milliseconds
	Sig         []byte   `msgpack:"sig"` // 1..MaxSigSize bytes
}

var helloKeys = []string{"v", "r", "ik", "sa", "kx", "ks", "ae", "n", "t", "sig"}

// Type returns TypeHello.
func (*Hello) Type() Type { return TypeHello }
func (*Hello) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length and
// count bounded before allocation. It does not run Validate; use Decode.
func (m *Hello) DecodeMsgpack(d *msgpack.Decoder) error {
	var h Hello
	fd := newFieldDecoder(d, TypeHello, helloKeys)
	for fd.next() {
		switch fd.key {
		case "v":
			h.Version = fd.version()
		case "r":
			h.Responder = fd.bytes(PeerIDSize)
		case "ik":
			h.IdentityKey = fd.bytes(MaxIdentityKeySize)
		case "sa":
			h.SigAlg = fd.uint16()
		case "kx":
			h.KEX = fd.uint16()
		case "ks":
			h.Share = fd.bytes(MaxShareSize)
		case "ae":
			h.AEADs = fd.uint16s(MaxAEADs)
		case "n":
			h.Nonce = fd.bytes(NonceSize)
		case "t":
			h.Time = fd.int64()
		case "sig":
			h.Sig = fd.bytes(MaxSigSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = h
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "Hello".
func (m *Hello) Validate() error {
	const t = TypeHello
	if err := checkVersion(t, m.Version); err != nil {
		return err
	}
	if len(m.Responder) != 0 {
		if err := checkBytes(t, "r", m.Responder, PeerIDSize, PeerIDSize); err != nil {
			return err
		}
	}
	if err := checkBytes(t, "ik", m.IdentityKey, 1, MaxIdentityKeySize); err != nil {
		return err
	}
	if err := checkBytes(t, "ks", m.Share, 0, MaxShareSize); err != nil {
		return err
	}
	if err := checkAEADs(t, m.AEADs); err != nil {
		return err
	}
	if err := checkBytes(t, "n", m.Nonce, NonceSize, NonceSize); err != nil {
		return err
	}
	return checkBytes(t, "sig", m.Sig, 1, MaxSigSize)
}

func checkAEADs(t Type, ids []uint16) error {
	switch {
	case len(ids) > MaxAEADs:
		return fieldError(t, "ae", ErrTooLong, "%d suites, max %d", len(ids), MaxAEADs)
	case len(ids) < MinAEADs:
		return fieldError(t, "ae", ErrLength, "%d suites, min %d", len(ids), MinAEADs)
	}
	for i, id := range ids {
		for _, prev := range ids[:i] {
			if id == prev {
				return fieldError(t, "ae", ErrDuplicateValue, "suite %#04x repeated", id)
			}
		}
	}
	return nil
}

// HelloReply is flight 2 of the handshake, responder to requestor
// (DESIGN.md §4 step 2; docs/PROTOCOL.md, "HelloReply"). Sig covers the
// transcript, which includes everything the requestor offered.
type HelloReply struct {
	Version     uint16 `msgpack:"v"`
	SessionID   []byte `msgpack:"sid"` // SessionIDSize random bytes
	IdentityKey []byte `msgpack:"ik"`  // SPKI DER, 1..MaxIdentityKeySize bytes
	SigAlg      uint16 `msgpack:"sa"`
	KEX         uint16 `msgpack:"kx"` // the requestor's mode, echoed
	// Share is the responder's ephemeral public key, the ML-KEM
	// ciphertext with its X25519 key, or in the rsa mode the RSA-OAEP
	// ciphertext (at most 512 bytes): 1..MaxShareSize bytes.
	Share         []byte `msgpack:"ks"`
	AEAD          uint16 `msgpack:"ae"`  // the chosen suite, one of Hello.AEADs
	Nonce         []byte `msgpack:"n"`   // NonceSize random bytes
	Time          int64  `msgpack:"t"`   // Unix milliseconds
	SealedAuthKey []byte `msgpack:"ak"`  // 1..MaxSealedAuthKeySize bytes
	Sig           []byte `msgpack:"sig"` // 1..MaxSigSize bytes
}

var helloReplyKeys = []string{"v", "sid", "ik", "sa", "kx", "ks", "ae", "n", "t", "ak", "sig"}

// Type returns TypeHelloReply.
func (*HelloReply) Type() Type { return TypeHelloReply }
func (*HelloReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *HelloReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var h HelloReply
	fd := newFieldDecoder(d, TypeHelloReply, helloReplyKeys)
	for fd.next() {
		switch fd.key {
		case "v":
			h.Version = fd.version()
		case "sid":
			h.SessionID = fd.bytes(SessionIDSize)
		case "ik":
			h.IdentityKey = fd.bytes(MaxIdentityKeySize)
		case "sa":
			h.SigAlg = fd.uint16()
		case "kx":
			h.KEX = fd.uint16()
		case "ks":
			h.Share = fd.bytes(MaxShareSize)
		case "ae":
			h.AEAD = fd.uint16()
		case "n":
			h.Nonce = fd.bytes(NonceSize)
		case "t":
			h.Time = fd.int64()
		case "ak":
			h.SealedAuthKey = fd.bytes(MaxSealedAuthKeySize)
		case "sig":
			h.Sig = fd.bytes(MaxSigSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = h
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "HelloReply".
func (m *HelloReply) Validate() error {
	const t = TypeHelloReply
	if err := checkVersion(t, m.Version); err != nil {
		return err
	}
	if err := checkBytes(t, "sid", m.SessionID, SessionIDSize, SessionIDSize); err != nil {
		return err
	}
	if err := checkBytes(t, "ik", m.IdentityKey, 1, MaxIdentityKeySize); err != nil {
		return err
	}
	if err := checkBytes(t, "ks", m.Share, 1, MaxShareSize); err != nil {
		return err
	}
	if err := checkBytes(t, "n", m.Nonce, NonceSize, NonceSize); err != nil {
		return err
	}
	if err := checkBytes(t, "ak", m.SealedAuthKey, 1, MaxSealedAuthKeySize); err != nil {
		return err
	}
	return checkBytes(t, "sig", m.Sig, 1, MaxSigSize)
}

// Finished is flight 3 of the handshake, requestor to responder: key
// confirmation (DESIGN.md §4 step 3; docs/PROTOCOL.md, "Finished"). Until
// a valid Finished arrives the responder holds the session as pending
// state only.
type Finished struct {
	MAC []byte `msgpack:"mac"` // MACSize bytes: the key-confirmation MAC over the transcript
}

var finishedKeys = []string{"mac"}

// Type returns TypeFinished.
func (*Finished) Type() Type { return TypeFinished }
func (*Finished) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the length bounded
// before allocation. It does not run Validate; use Decode.
func (m *Finished) DecodeMsgpack(d *msgpack.Decoder) error {
	var f Finished
	fd := newFieldDecoder(d, TypeFinished, finishedKeys)
	for fd.next() {
		switch fd.key {
		case "mac":
			f.MAC = fd.bytes(MACSize)
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = f
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "Finished".
func (m *Finished) Validate() error {
	return checkBytes(TypeFinished, "mac", m.MAC, MACSize, MACSize)
}

// Ready ends the handshake: the responder sends it, instead of an Error,
// once a valid Finished has arrived (docs/PROTOCOL.md, "Ready"). The
// multiplexer starts on the connection right after it, on both sides. It
// states the limits the responder applies to this session.
type Ready struct {
	MaxStreams  uint16 `msgpack:"ms"` // concurrent streams the requestor may open, 1..
	MaxFrameKiB uint16 `msgpack:"mf"` // largest frame on a request stream, in KiB, 1..
}

var readyKeys = []string{"ms", "mf"}

// Type returns TypeReady.
func (*Ready) Type() Type { return TypeReady }
func (*Ready) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *Ready) DecodeMsgpack(d *msgpack.Decoder) error {
	var r Ready
	fd := newFieldDecoder(d, TypeReady, readyKeys)
	for fd.next() {
		switch fd.key {
		case "ms":
			r.MaxStreams = fd.uint16()
		case "mf":
			r.MaxFrameKiB = fd.uint16()
		}
	}
	if fd.err != nil {
		return fd.err
	}
	*m = r
	return nil
}

// Validate checks the bounds of docs/PROTOCOL.md, "Ready".
func (m *Ready) Validate() error {
	if m.MaxStreams == 0 {
		return fieldError(TypeReady, "ms", ErrOutOfRange, "must be at least 1")
	}
	if m.MaxFrameKiB == 0 {
		return fieldError(TypeReady, "mf", ErrOutOfRange, "must be at least 1")
	}
	return nil
}
