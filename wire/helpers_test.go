package wire_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/lanpeer/lanpeer/wire"
)

// seq returns n bytes counting up from start, so that every field of a
// sample holds distinct bytes and a key decoded into the wrong field shows.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func sampleHello() *wire.Hello {
	return &wire.Hello{
		Version:     wire.Version,
		Responder:   seq(0x10, wire.PeerIDSize),
		IdentityKey: seq(0x20, 44),
		SigAlg:      0x0002,
		KEX:         0x0003,
		Share:       seq(0x30, 1216),
		AEADs:       []uint16{1, 2, 3},
		Nonce:       seq(0x40, wire.NonceSize),
		Time:        1_750_000_000_123,
		Sig:         seq(0x50, 64),
	}
}

func sampleHelloReply() *wire.HelloReply {
	return &wire.HelloReply{
		Version:       wire.Version,
		SessionID:     seq(0x60, wire.SessionIDSize),
		IdentityKey:   seq(0x70, 550),
		SigAlg:        0x0001,
		KEX:           0x0004,
		Share:         seq(0x80, 512),
		AEAD:          0x0002,
		Nonce:         seq(0x90, wire.NonceSize),
		Time:          1_750_000_000_456,
		SealedAuthKey: seq(0xa0, 96),
		Sig:           seq(0xb0, 512),
	}
}

func sampleFinished() *wire.Finished { return &wire.Finished{MAC: seq(0xc0, wire.MACSize)} }

func sampleReady() *wire.Ready { return &wire.Ready{MaxStreams: 64, MaxFrameKiB: 64} }

func sampleError() *wire.Error { return wire.NewError(wire.CodeStaleTimestamp) }

func sampleStreamOpen() *wire.StreamOpen { return &wire.StreamOpen{Kind: wire.StreamDirect} }

func sampleDirectMessage() *wire.DirectMessage {
	return &wire.DirectMessage{Seq: 41, Epoch: 2, Box: seq(0x11, 12+5+16)}
}

func sampleRekeyInit() *wire.RekeyInit { return &wire.RekeyInit{Epoch: 3, Share: seq(0x21, 32)} }

func sampleRekeyReply() *wire.RekeyReply {
	return &wire.RekeyReply{Epoch: 3, Share: seq(0x31, 32), MAC: seq(0x41, wire.MACSize)}
}

func sampleRekeyConfirm() *wire.RekeyConfirm {
	return &wire.RekeyConfirm{Epoch: 3, MAC: seq(0x51, wire.MACSize)}
}

func sampleRekeyRequest() *wire.RekeyRequest { return &wire.RekeyRequest{Epoch: 3} }

// streamSamples are one typical message of every post-handshake type.
func streamSamples() []namedMessage {
	return append([]namedMessage{
		{"StreamOpen", sampleStreamOpen()}, {"DirectMessage", sampleDirectMessage()},
		{"RekeyInit", sampleRekeyInit()}, {"RekeyReply", sampleRekeyReply()},
		{"RekeyConfirm", sampleRekeyConfirm()}, {"RekeyRequest", sampleRekeyRequest()},
	}, roomSamples()...)
}

type namedMessage struct {
	name string
	m    wire.Message
}

// samples returns valid messages of every type: typical, smallest and
// largest allowed.
func samples() []namedMessage {
	tofu := sampleHello()
	tofu.Responder = nil
	tofu.Share = nil // the rsa mode sends no share
	tofu.AEADs = []uint16{0xffff}
	tofu.Time = -1
	tofu.Sig = []byte{1}
	tofu.IdentityKey = []byte{2}

	maxHello := sampleHello()
	maxHello.IdentityKey = seq(0, wire.MaxIdentityKeySize)
	maxHello.Share = seq(1, wire.MaxShareSize)
	maxHello.AEADs = make([]uint16, wire.MaxAEADs)
	for i := range maxHello.AEADs {
		maxHello.AEADs[i] = uint16(0xfff0 + i)
	}
	maxHello.Sig = seq(2, wire.MaxSigSize)
	maxHello.SigAlg, maxHello.KEX = 0xffff, 0xffff
	maxHello.Time = 1<<63 - 1

	minReply := sampleHelloReply()
	minReply.IdentityKey, minReply.Share, minReply.SealedAuthKey, minReply.Sig = []byte{1}, []byte{2}, []byte{3}, []byte{4}
	minReply.SigAlg, minReply.KEX, minReply.AEAD, minReply.Time = 0, 0, 0, -1<<63

	maxReply := sampleHelloReply()
	maxReply.IdentityKey = seq(3, wire.MaxIdentityKeySize)
	maxReply.Share = seq(4, wire.MaxShareSize)
	maxReply.SealedAuthKey = seq(5, wire.MaxSealedAuthKeySize)
	maxReply.Sig = seq(6, wire.MaxSigSize)

	longError := &wire.Error{Code: 0xffff, Message: string(bytes.Repeat([]byte("é"), wire.MaxErrorMessageSize/2))}

	maxDirect := &wire.DirectMessage{Seq: wire.MaxSeq, Epoch: 1<<32 - 1, Box: seq(7, wire.MaxBoxSize)}
	minDirect := &wire.DirectMessage{Seq: 0, Epoch: 0, Box: []byte{1}}
	rsaInit := &wire.RekeyInit{Epoch: 1, Share: nil} // the rsa mode sends no share
	maxInit := &wire.RekeyInit{Epoch: 1<<32 - 1, Share: seq(8, wire.MaxShareSize)}
	maxRekeyReply := &wire.RekeyReply{Epoch: 1<<32 - 1, Share: seq(9, wire.MaxShareSize), MAC: seq(10, wire.MACSize)}

	return append([]namedMessage{
		{"Hello", sampleHello()},
		{"Hello/tofu-rsa-min", tofu},
		{"Hello/max", maxHello},
		{"Hello/realistic", realisticHello()},
		{"HelloReply", sampleHelloReply()},
		{"HelloReply/min", minReply},
		{"HelloReply/max", maxReply},
		{"Finished", sampleFinished()},
		{"Ready", sampleReady()},
		{"Ready/max", &wire.Ready{MaxStreams: 65535, MaxFrameKiB: 65535}},
		{"Error", sampleError()},
		{"Error/empty-message", &wire.Error{Code: wire.CodeInternal}},
		{"Error/unknown-code-max-message", longError},
		{"StreamOpen", sampleStreamOpen()},
		{"StreamOpen/control", &wire.StreamOpen{Kind: wire.StreamControl}},
		{"StreamOpen/notify", &wire.StreamOpen{Kind: wire.StreamNotify}},
		{"StreamOpen/request", &wire.StreamOpen{Kind: wire.StreamRequest}},
		{"DirectMessage", sampleDirectMessage()},
		{"DirectMessage/min", minDirect},
		{"DirectMessage/max", maxDirect},
		{"RekeyInit", sampleRekeyInit()},
		{"RekeyInit/rsa", rsaInit},
		{"RekeyInit/max", maxInit},
		{"RekeyReply", sampleRekeyReply()},
		{"RekeyReply/max", maxRekeyReply},
		{"RekeyConfirm", sampleRekeyConfirm()},
		{"RekeyRequest", sampleRekeyRequest()},
	}, append(roomSamples(), roomEdgeSamples()...)...)
}

// realisticHello is an Ed25519 requestor offering x25519 with real key
// bytes from fixed seeds (wire checks no signature; the bytes only look
// like the real thing).
func realisticHello() *wire.Hello {
	idKey := ed25519.NewKeyFromSeed(seq(1, ed25519.SeedSize))
	spki, err := x509.MarshalPKIXPublicKey(idKey.Public())
	if err != nil {
		panic(err)
	}
	eph, err := ecdh.X25519().NewPrivateKey(seq(2, 32))
	if err != nil {
		panic(err)
	}
	h := &wire.Hello{
		Version:     wire.Version,
		Responder:   seq(0xe0, wire.PeerIDSize),
		IdentityKey: spki,
		SigAlg:      0x0002,
		KEX:         0x0001,
		Share:       eph.PublicKey().Bytes(),
		AEADs:       []uint16{1, 2, 3},
		Nonce:       seq(0x33, wire.NonceSize),
		Time:        1_767_225_600_000,
	}
	h.Sig = ed25519.Sign(idKey, append(h.Nonce, h.Share...))
	return h
}

func mustEncode(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatalf("Encode(%T): %v", m, err)
	}
	return b
}

// kv is one map entry of an encoded message: its key and the raw msgpack
// encoding of its value.
type kv struct {
	key string
	val []byte
}

// entries splits an encoded payload into its type and map entries, with
// msgpack's own generic decoder (trusted input: our encodings).
func entries(t testing.TB, payload []byte) (wire.Type, []kv) {
	t.Helper()
	d := msgpack.NewDecoder(bytes.NewReader(payload[1:]))
	n, err := d.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]kv, n)
	for i := range out {
		if out[i].key, err = d.DecodeString(); err != nil {
			t.Fatal(err)
		}
		raw, err := d.DecodeRaw()
		if err != nil {
			t.Fatal(err)
		}
		out[i].val = raw
	}
	return wire.Type(payload[0]), out
}

// assemble builds a payload from a type and entries, with a fixmap/map16
// header of the entries' count.
func assemble(t wire.Type, kvs []kv) []byte {
	return assembleN(t, len(kvs), kvs)
}

// assembleN is assemble with a map header declaring n entries.
func assembleN(t wire.Type, n int, kvs []kv) []byte {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(n); err != nil {
		panic(err)
	}
	for _, e := range kvs {
		if err := enc.EncodeString(e.key); err != nil {
			panic(err)
		}
		buf.Write(e.val)
	}
	return buf.Bytes()
}

// replace returns kvs with key's value replaced by val.
func replace(kvs []kv, key string, val []byte) []kv {
	out := make([]kv, len(kvs))
	copy(out, kvs)
	for i := range out {
		if out[i].key == key {
			out[i].val = val
			return out
		}
	}
	panic("no key " + key)
}

// mp encodes one msgpack value with the library's encoder.
func mp(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// rawEncode encodes m as Encode does but without Validate, to put invalid
// messages on the wire.
func rawEncode(m wire.Message) []byte {
	return append([]byte{byte(m.Type())}, mp(m)...)
}

// wantDecodeError checks that err is a *DecodeError for typ and field
// whose Reason is reason.
func wantDecodeError(t testing.TB, err error, typ wire.Type, field string, reason error) {
	t.Helper()
	var de *wire.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want *DecodeError", err, err)
	}
	if !errors.Is(err, reason) || de.Type != typ || de.Field != field {
		t.Fatalf("error = %v\n  = {Type %v, Field %q, Reason %v}, want {%v, %q, %v}", err, de.Type, de.Field, de.Reason, typ, field, reason)
	}
}

// decodeFails checks that payload is refused with reason at field and
// that no message comes back.
func decodeFails(t testing.TB, payload []byte, typ wire.Type, field string, reason error) {
	t.Helper()
	m, err := wire.Decode(payload)
	if m != nil {
		t.Fatalf("Decode returned a message (%T) with error %v", m, err)
	}
	wantDecodeError(t, err, typ, field, reason)
}
