package wire_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/lanpeer/lanpeer/wire"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b := mustEncode(t, s.m)
			if wire.Type(b[0]) != s.m.Type() {
				t.Fatalf("type byte %#02x, want %v", b[0], s.m.Type())
			}
			got, err := wire.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, s.m) {
				t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, s.m)
			}
			if again := mustEncode(t, got); !bytes.Equal(again, b) {
				t.Fatal("re-encoding a decoded message gives different bytes")
			}
			if len(b) > maxPayload(s.m.Type()) {
				t.Fatalf("%d-byte payload does not fit its stream class's frame (%d)", len(b), maxPayload(s.m.Type()))
			}
		})
	}
}

func TestDecodedMessageDoesNotAliasPayload(t *testing.T) {
	b := mustEncode(t, sampleHello())
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if !reflect.DeepEqual(m, sampleHello()) {
		t.Fatal("overwriting the payload changed the decoded message")
	}
}

// TestEncodedLayout pins the byte layout of a small message, as
// docs/PROTOCOL.md shows it.
func TestEncodedLayout(t *testing.T) {
	got := mustEncode(t, &wire.Finished{MAC: seq(0, 32)})
	want := append([]byte{0x03, 0x81, 0xa3, 'm', 'a', 'c', 0xc4, 0x20}, seq(0, 32)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("Finished = %x\nwant       %x", got, want)
	}
	got = mustEncode(t, wire.NewError(wire.CodeBusy))
	want = append([]byte{0xff, 0x82, 0xa1, 'c', 0xcd, 0x00, 0x0b, 0xa1, 'm', 0xb1}, "busy, retry later"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("Error = %x\nwant    %x", got, want)
	}
}

func TestEncodeRefusesNil(t *testing.T) {
	for _, m := range []wire.Message{nil, (*wire.Hello)(nil), (*wire.Error)(nil)} {
		if b, err := wire.Encode(m); err == nil || b != nil {
			t.Fatalf("Encode(%#v) = %x, %v; want an error", m, b, err)
		}
	}
}

// boundCase breaks one bound of one message.
type boundCase struct {
	name   string
	m      wire.Message
	field  string
	reason error
}

func boundCases() []boundCase {
	hello := func(f func(*wire.Hello)) wire.Message { h := sampleHello(); f(h); return h }
	reply := func(f func(*wire.HelloReply)) wire.Message { h := sampleHelloReply(); f(h); return h }
	return append([]boundCase{
		{"Hello version 0", hello(func(h *wire.Hello) { h.Version = 0 }), "v", wire.ErrVersion},
		{"Hello version 2", hello(func(h *wire.Hello) { h.Version = 2 }), "v", wire.ErrVersion},
		{"Hello responder 31", hello(func(h *wire.Hello) { h.Responder = seq(0, 31) }), "r", wire.ErrLength},
		{"Hello responder 1", hello(func(h *wire.Hello) { h.Responder = seq(0, 1) }), "r", wire.ErrLength},
		{"Hello responder 33", hello(func(h *wire.Hello) { h.Responder = seq(0, 33) }), "r", wire.ErrTooLong},
		{"Hello identity key empty", hello(func(h *wire.Hello) { h.IdentityKey = nil }), "ik", wire.ErrLength},
		{"Hello identity key max+1", hello(func(h *wire.Hello) { h.IdentityKey = seq(0, wire.MaxIdentityKeySize+1) }), "ik", wire.ErrTooLong},
		{"Hello share max+1", hello(func(h *wire.Hello) { h.Share = seq(0, wire.MaxShareSize+1) }), "ks", wire.ErrTooLong},
		{"Hello no AEADs", hello(func(h *wire.Hello) { h.AEADs = nil }), "ae", wire.ErrLength},
		{"Hello AEADs max+1", hello(func(h *wire.Hello) { h.AEADs = make([]uint16, wire.MaxAEADs+1) }), "ae", wire.ErrTooLong},
		{"Hello AEADs repeated", hello(func(h *wire.Hello) { h.AEADs = []uint16{1, 2, 1} }), "ae", wire.ErrDuplicateValue},
		{"Hello nonce 31", hello(func(h *wire.Hello) { h.Nonce = seq(0, 31) }), "n", wire.ErrLength},
		{"Hello nonce 33", hello(func(h *wire.Hello) { h.Nonce = seq(0, 33) }), "n", wire.ErrTooLong},
		{"Hello nonce empty", hello(func(h *wire.Hello) { h.Nonce = nil }), "n", wire.ErrLength},
		{"Hello sig empty", hello(func(h *wire.Hello) { h.Sig = nil }), "sig", wire.ErrLength},
		{"Hello sig max+1", hello(func(h *wire.Hello) { h.Sig = seq(0, wire.MaxSigSize+1) }), "sig", wire.ErrTooLong},

		{"HelloReply version 2", reply(func(h *wire.HelloReply) { h.Version = 2 }), "v", wire.ErrVersion},
		{"HelloReply session id 15", reply(func(h *wire.HelloReply) { h.SessionID = seq(0, 15) }), "sid", wire.ErrLength},
		{"HelloReply session id 17", reply(func(h *wire.HelloReply) { h.SessionID = seq(0, 17) }), "sid", wire.ErrTooLong},
		{"HelloReply session id empty", reply(func(h *wire.HelloReply) { h.SessionID = nil }), "sid", wire.ErrLength},
		{"HelloReply identity key empty", reply(func(h *wire.HelloReply) { h.IdentityKey = nil }), "ik", wire.ErrLength},
		{"HelloReply identity key max+1", reply(func(h *wire.HelloReply) { h.IdentityKey = seq(0, wire.MaxIdentityKeySize+1) }), "ik", wire.ErrTooLong},
		{"HelloReply share empty", reply(func(h *wire.HelloReply) { h.Share = nil }), "ks", wire.ErrLength},
		{"HelloReply share max+1", reply(func(h *wire.HelloReply) { h.Share = seq(0, wire.MaxShareSize+1) }), "ks", wire.ErrTooLong},
		{"HelloReply nonce 31", reply(func(h *wire.HelloReply) { h.Nonce = seq(0, 31) }), "n", wire.ErrLength},
		{"HelloReply nonce 33", reply(func(h *wire.HelloReply) { h.Nonce = seq(0, 33) }), "n", wire.ErrTooLong},
		{"HelloReply sealed auth key empty", reply(func(h *wire.HelloReply) { h.SealedAuthKey = nil }), "ak", wire.ErrLength},
		{"HelloReply sealed auth key max+1", reply(func(h *wire.HelloReply) { h.SealedAuthKey = seq(0, wire.MaxSealedAuthKeySize+1) }), "ak", wire.ErrTooLong},
		{"HelloReply sig empty", reply(func(h *wire.HelloReply) { h.Sig = nil }), "sig", wire.ErrLength},
		{"HelloReply sig max+1", reply(func(h *wire.HelloReply) { h.Sig = seq(0, wire.MaxSigSize+1) }), "sig", wire.ErrTooLong},

		{"Finished MAC empty", &wire.Finished{}, "mac", wire.ErrLength},
		{"Finished MAC 31", &wire.Finished{MAC: seq(0, 31)}, "mac", wire.ErrLength},
		{"Finished MAC 33", &wire.Finished{MAC: seq(0, 33)}, "mac", wire.ErrTooLong},

		{"Error code 0", &wire.Error{Code: 0, Message: "x"}, "c", wire.ErrOutOfRange},
		{"Error message max+1", &wire.Error{Code: 1, Message: strings.Repeat("a", wire.MaxErrorMessageSize+1)}, "m", wire.ErrTooLong},
		{"Error message invalid UTF-8", &wire.Error{Code: 1, Message: "bad \xff byte"}, "m", wire.ErrBadText},
		{"Error message newline", &wire.Error{Code: 1, Message: "forged\nlog line"}, "m", wire.ErrBadText},
		{"Error message escape", &wire.Error{Code: 1, Message: "\x1b[31mred"}, "m", wire.ErrBadText},
		{"Error message DEL", &wire.Error{Code: 1, Message: "a\x7fb"}, "m", wire.ErrBadText},
		{"Error message C1", &wire.Error{Code: 1, Message: "a\u0085b"}, "m", wire.ErrBadText},
		{"Error message bidi override", &wire.Error{Code: 1, Message: "abc\u202edef"}, "m", wire.ErrBadText},
		{"Error message tab", &wire.Error{Code: 1, Message: "a\tb"}, "m", wire.ErrBadText},
		{"Error message NBSP", &wire.Error{Code: 1, Message: "a\u00a0b"}, "m", wire.ErrBadText},

		{"StreamOpen kind 0", &wire.StreamOpen{Kind: 0}, "k", wire.ErrOutOfRange},
		{"StreamOpen kind 5", &wire.StreamOpen{Kind: 5}, "k", wire.ErrOutOfRange},
		{"StreamOpen kind max", &wire.StreamOpen{Kind: 0xffff}, "k", wire.ErrOutOfRange},

		{"DirectMessage seq 2^53", &wire.DirectMessage{Seq: wire.MaxSeq + 1, Box: []byte{1}}, "s", wire.ErrOutOfRange},
		{"DirectMessage seq 2^64-1", &wire.DirectMessage{Seq: math.MaxUint64, Box: []byte{1}}, "s", wire.ErrOutOfRange},
		{"DirectMessage box empty", &wire.DirectMessage{Seq: 1}, "b", wire.ErrLength},
		{"DirectMessage box max+1", &wire.DirectMessage{Seq: 1, Box: seq(0, wire.MaxBoxSize+1)}, "b", wire.ErrTooLong},

		{"RekeyInit epoch 0", &wire.RekeyInit{Epoch: 0, Share: seq(0, 32)}, "e", wire.ErrOutOfRange},
		{"RekeyInit share max+1", &wire.RekeyInit{Epoch: 1, Share: seq(0, wire.MaxShareSize+1)}, "ks", wire.ErrTooLong},

		{"RekeyReply epoch 0", &wire.RekeyReply{Epoch: 0, Share: seq(0, 32), MAC: seq(0, 32)}, "e", wire.ErrOutOfRange},
		{"RekeyReply share empty", &wire.RekeyReply{Epoch: 1, MAC: seq(0, 32)}, "ks", wire.ErrLength},
		{"RekeyReply share max+1", &wire.RekeyReply{Epoch: 1, Share: seq(0, wire.MaxShareSize+1), MAC: seq(0, 32)}, "ks", wire.ErrTooLong},
		{"RekeyReply MAC empty", &wire.RekeyReply{Epoch: 1, Share: seq(0, 32)}, "mac", wire.ErrLength},
		{"RekeyReply MAC 31", &wire.RekeyReply{Epoch: 1, Share: seq(0, 32), MAC: seq(0, 31)}, "mac", wire.ErrLength},
		{"RekeyReply MAC 33", &wire.RekeyReply{Epoch: 1, Share: seq(0, 32), MAC: seq(0, 33)}, "mac", wire.ErrTooLong},

		{"RekeyConfirm epoch 0", &wire.RekeyConfirm{Epoch: 0, MAC: seq(0, 32)}, "e", wire.ErrOutOfRange},
		{"RekeyConfirm MAC empty", &wire.RekeyConfirm{Epoch: 1}, "mac", wire.ErrLength},
		{"RekeyConfirm MAC 31", &wire.RekeyConfirm{Epoch: 1, MAC: seq(0, 31)}, "mac", wire.ErrLength},
		{"RekeyConfirm MAC 33", &wire.RekeyConfirm{Epoch: 1, MAC: seq(0, 33)}, "mac", wire.ErrTooLong},

		{"RekeyRequest epoch 0", &wire.RekeyRequest{Epoch: 0}, "e", wire.ErrOutOfRange},
	}, roomBoundCases()...)
}

// TestBounds breaks each bound once and checks all three places that
// enforce it: Validate, Encode (refuses), and Decode of the same message
// put on the wire without validation.
func TestBounds(t *testing.T) {
	for _, tc := range boundCases() {
		t.Run(tc.name, func(t *testing.T) {
			wantDecodeError(t, tc.m.Validate(), tc.m.Type(), tc.field, tc.reason)

			b, err := wire.Encode(tc.m)
			if b != nil {
				t.Fatal("Encode returned bytes for an invalid message")
			}
			wantDecodeError(t, err, tc.m.Type(), tc.field, tc.reason)

			decodeFails(t, rawEncode(tc.m), tc.m.Type(), tc.field, tc.reason)
		})
	}
}

func TestDecodeErrorCode(t *testing.T) {
	code := func(m wire.Message) wire.ErrorCode {
		t.Helper()
		_, err := wire.Decode(rawEncode(m))
		var de *wire.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v is not a *DecodeError", err)
		}
		return de.Code()
	}
	h := sampleHello()
	h.Version = 7
	if c := code(h); c != wire.CodeVersion {
		t.Errorf("wrong version answered with %v", c)
	}
	h = sampleHello()
	h.Sig = seq(0, wire.MaxSigSize+1)
	if c := code(h); c != wire.CodeTooLarge {
		t.Errorf("over-long signature answered with %v", c)
	}
	h = sampleHello()
	h.Nonce = seq(0, 12)
	if c := code(h); c != wire.CodeProtocol {
		t.Errorf("short nonce answered with %v", c)
	}
	_, err := wire.Decode([]byte{0x42})
	if de := (*wire.DecodeError)(nil); !errors.As(err, &de) || de.Code() != wire.CodeProtocol {
		t.Errorf("unknown type answered with %v", err)
	}
}

func TestDecodeErrorText(t *testing.T) {
	h := sampleHello()
	h.Share = seq(0, 1300)
	_, err := wire.Decode(rawEncode(h))
	const want = `wire: Hello field "ks": value exceeds its limit (1300 declared, max 1216)`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	_, err = wire.Decode(nil)
	if err == nil || err.Error() != "wire: empty payload" {
		t.Fatalf("error = %q", err)
	}
}

func TestDecodeEnvelope(t *testing.T) {
	good := mustEncode(t, sampleFinished())
	t.Run("empty", func(t *testing.T) { decodeFails(t, nil, 0, "", wire.ErrEmpty) })
	for _, typ := range []byte{0x00, 0x05, 0x0f, 0x16, 0x7f, 0x80, 0xfe} {
		t.Run("unknown type "+wire.Type(typ).String(), func(t *testing.T) {
			p := append([]byte{typ}, good[1:]...)
			decodeFails(t, p, wire.Type(typ), "", wire.ErrUnknownType)
		})
	}
	t.Run("type byte only", func(t *testing.T) {
		decodeFails(t, []byte{byte(wire.TypeHello)}, wire.TypeHello, "", wire.ErrTruncated)
	})
	for _, extra := range [][]byte{{0x00}, {0xc0}, {0x80}, good[1:]} {
		t.Run("trailing bytes", func(t *testing.T) {
			decodeFails(t, append(bytes.Clone(good), extra...), wire.TypeFinished, "", wire.ErrTrailingBytes)
		})
	}
	for name, body := range map[string][]byte{
		"array":  mp([]any{mp(seq(0, 32))}),
		"nil":    {0xc0},
		"int":    {0x01},
		"bin":    mp(seq(0, 32)),
		"ext":    {0xd4, 0x01, 0x00},
		"fixstr": {0xa3, 'm', 'a', 'c'},
	} {
		t.Run("not a map: "+name, func(t *testing.T) {
			decodeFails(t, append([]byte{byte(wire.TypeFinished)}, body...), wire.TypeFinished, "", wire.ErrWrongType)
		})
	}
}

func TestDecodeEveryPrefixFails(t *testing.T) {
	for _, s := range samples() {
		b := mustEncode(t, s.m)
		// Every prefix of the first 4 KiB and the last 64 bytes; between
		// them about 100 prefixes spread evenly (each decode is linear in
		// what it reads, so all of them would be quadratic).
		stride := max(1, (len(b)-4096)/100)
		step := func(i int) int {
			if i < 4096 || i >= len(b)-64 {
				return 1
			}
			return min(stride, len(b)-64-i)
		}
		for i := 0; i < len(b); i += step(i) {
			m, err := wire.Decode(b[:i])
			if err == nil || m != nil {
				t.Fatalf("%s: %d-byte prefix of %d decoded: %v, %v", s.name, i, len(b), m, err)
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%s: prefix %d: error %v is not a *DecodeError", s.name, i, err)
			}
		}
	}
}

func TestDecodeFieldStructure(t *testing.T) {
	typ, kvs := entries(t, mustEncode(t, sampleHello()))
	if typ != wire.TypeHello {
		t.Fatal(typ)
	}
	t.Run("entries helper reassembles", func(t *testing.T) {
		if _, err := wire.Decode(assemble(typ, kvs)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("keys in any order", func(t *testing.T) {
		rev := make([]kv, len(kvs))
		for i := range kvs {
			rev[i] = kvs[len(kvs)-1-i]
		}
		m, err := wire.Decode(assemble(typ, rev))
		if err != nil || !reflect.DeepEqual(m, sampleHello()) {
			t.Fatalf("reversed keys: %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		p := assemble(typ, append(kvs[:len(kvs):len(kvs)], kv{"x", []byte{0x01}}))
		decodeFails(t, p, typ, "", wire.ErrUnknownField)
	})
	t.Run("unknown key first", func(t *testing.T) {
		p := assemble(typ, append([]kv{{"zz", []byte{0x01}}}, kvs...))
		decodeFails(t, p, typ, "", wire.ErrUnknownField)
	})
	t.Run("long key", func(t *testing.T) {
		p := assemble(typ, append([]kv{{strings.Repeat("k", 100), []byte{0x01}}}, kvs...))
		decodeFails(t, p, typ, "", wire.ErrUnknownField)
	})
	t.Run("empty key", func(t *testing.T) {
		p := assemble(typ, append([]kv{{"", []byte{0x01}}}, kvs...))
		decodeFails(t, p, typ, "", wire.ErrUnknownField)
	})
	t.Run("key of another message", func(t *testing.T) {
		p := assemble(typ, append(kvs[:len(kvs):len(kvs)], kv{"sid", mp(seq(0, 16))}))
		decodeFails(t, p, typ, "", wire.ErrUnknownField)
	})
	t.Run("duplicate key", func(t *testing.T) {
		p := assemble(typ, append(kvs[:len(kvs):len(kvs)], kvs[3]))
		decodeFails(t, p, typ, kvs[3].key, wire.ErrDuplicateField)
	})
	for i := range kvs {
		t.Run("missing "+kvs[i].key, func(t *testing.T) {
			rest := append(append([]kv{}, kvs[:i]...), kvs[i+1:]...)
			decodeFails(t, assemble(typ, rest), typ, kvs[i].key, wire.ErrMissingField)
		})
	}
	t.Run("map header declares fewer entries", func(t *testing.T) {
		// The last entry becomes trailing bytes.
		decodeFails(t, assembleN(typ, len(kvs)-1, kvs), typ, kvs[len(kvs)-1].key, wire.ErrMissingField)
	})
	t.Run("map header declares more entries", func(t *testing.T) {
		decodeFails(t, assembleN(typ, len(kvs)+1, kvs), typ, "", wire.ErrTruncated)
	})
	t.Run("non-string key", func(t *testing.T) {
		var buf bytes.Buffer
		buf.Write([]byte{byte(typ), 0x81, 0x01, 0x01})
		decodeFails(t, buf.Bytes(), typ, "", wire.ErrWrongType)
	})
	t.Run("key as bin", func(t *testing.T) {
		decodeFails(t, []byte{byte(wire.TypeFinished), 0x81, 0xc4, 0x03, 'm', 'a', 'c', 0xc4, 0x00}, wire.TypeFinished, "", wire.ErrWrongType)
	})
	t.Run("empty map", func(t *testing.T) {
		decodeFails(t, []byte{byte(wire.TypeFinished), 0x80}, wire.TypeFinished, "mac", wire.ErrMissingField)
	})
}

// TestVersionFirst: a peer of another version that puts "v" first, as
// PROTOCOL.md asks, gets ErrVersion even when the rest of its message has
// a shape this version does not know.
func TestVersionFirst(t *testing.T) {
	for _, tc := range []struct {
		typ wire.Type
		m   wire.Message
	}{{wire.TypeHello, sampleHello()}, {wire.TypeHelloReply, sampleHelloReply()}} {
		_, kvs := entries(t, mustEncode(t, tc.m))
		if kvs[0].key != "v" {
			t.Fatalf("%v: first key %q, want v", tc.typ, kvs[0].key)
		}
		v2 := []kv{{"v", mp(uint16(2))}, {"new", mp("field")}, kvs[2]}
		decodeFails(t, assemble(tc.typ, v2), tc.typ, "v", wire.ErrVersion)
	}
}

func TestDecodeValueTypes(t *testing.T) {
	typ, kvs := entries(t, mustEncode(t, sampleHello()))
	bad := func(key string, val []byte, reason error) {
		t.Helper()
		decodeFails(t, assemble(typ, replace(kvs, key, val)), typ, key, reason)
	}
	ok := func(key string, val []byte, check func(*wire.Hello) bool) {
		t.Helper()
		m, err := wire.Decode(assemble(typ, replace(kvs, key, val)))
		if err != nil {
			t.Fatalf("%s = %x: %v", key, val, err)
		}
		if !check(m.(*wire.Hello)) {
			t.Fatalf("%s = %x decoded to %+v", key, val, m)
		}
	}

	// Integers: any msgpack integer encoding whose value fits.
	for _, enc := range [][]byte{{0x02}, {0xcc, 0x02}, {0xcd, 0x00, 0x02}, {0xce, 0, 0, 0, 2}, {0xcf, 0, 0, 0, 0, 0, 0, 0, 2}, {0xd0, 0x02}, {0xd3, 0, 0, 0, 0, 0, 0, 0, 2}} {
		ok("sa", enc, func(h *wire.Hello) bool { return h.SigAlg == 2 })
	}
	ok("kx", []byte{0xcd, 0xff, 0xff}, func(h *wire.Hello) bool { return h.KEX == 0xffff })
	bad("kx", []byte{0xce, 0x00, 0x01, 0x00, 0x00}, wire.ErrOutOfRange) // 65536 must not wrap to 0
	bad("kx", []byte{0xff}, wire.ErrOutOfRange)                         // -1
	bad("kx", []byte{0xd1, 0xff, 0xff}, wire.ErrOutOfRange)             // int16 -1
	bad("kx", []byte{0xc0}, wire.ErrWrongType)                          // nil is not 0
	bad("kx", []byte{0xc3}, wire.ErrWrongType)                          // true
	bad("kx", []byte{0xca, 0, 0, 0, 0}, wire.ErrWrongType)              // float32
	bad("kx", mp("1"), wire.ErrWrongType)
	bad("v", []byte{0xcd, 0x01, 0x01}, wire.ErrVersion)

	ok("t", []byte{0xe0}, func(h *wire.Hello) bool { return h.Time == -32 })
	ok("t", []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, func(h *wire.Hello) bool { return h.Time == math.MinInt64 })
	ok("t", []byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(h *wire.Hello) bool { return h.Time == math.MaxInt64 })
	bad("t", []byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, wire.ErrOutOfRange)
	bad("t", []byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, wire.ErrWrongType) // float64

	// Byte strings are bin; nil and empty bin mean empty.
	ok("r", []byte{0xc0}, func(h *wire.Hello) bool { return h.Responder == nil })
	ok("r", []byte{0xc4, 0x00}, func(h *wire.Hello) bool { return h.Responder == nil })
	ok("r", append([]byte{0xc6, 0, 0, 0, 32}, seq(9, 32)...), func(h *wire.Hello) bool { return bytes.Equal(h.Responder, seq(9, 32)) })
	bad("r", mp(string(seq('a', 32))), wire.ErrWrongType) // str is not bin
	bad("r", []byte{0x00}, wire.ErrWrongType)
	bad("r", mp([]uint16{1}), wire.ErrWrongType)
	bad("r", []byte{0xc4, 0x21}, wire.ErrTooLong)                 // over the max before the length is even compared with what is left
	bad("sig", []byte{0xc5, 0x01, 0xf4, 1, 2}, wire.ErrTruncated) // the last entry: 500 declared, 2 left

	// The AEAD list is an array of integers.
	ok("ae", mp([]int{3, 1}), func(h *wire.Hello) bool { return reflect.DeepEqual(h.AEADs, []uint16{3, 1}) })
	ok("ae", []byte{0xdd, 0, 0, 0, 1, 0x07}, func(h *wire.Hello) bool { return reflect.DeepEqual(h.AEADs, []uint16{7}) })
	bad("ae", []byte{0xc0}, wire.ErrLength)
	bad("ae", []byte{0x90}, wire.ErrLength)
	bad("ae", []byte{0x01}, wire.ErrWrongType)
	bad("ae", mp(seq(1, 2)), wire.ErrWrongType) // bin is not an array
	bad("ae", []byte{0x91, 0x91, 0x01}, wire.ErrWrongType)
	bad("ae", []byte{0x91, 0x81, 0xa1, 'x', 0x01}, wire.ErrWrongType)
	bad("ae", []byte{0x92, 0x01, 0xc0}, wire.ErrWrongType)
	bad("ae", []byte{0x91, 0xce, 0x00, 0x01, 0x00, 0x00}, wire.ErrOutOfRange)
	bad("ae", []byte{0xdc, 0x00, 0x11}, wire.ErrTooLong)

	// Error.Message is str.
	etyp, ekvs := entries(t, mustEncode(t, sampleError()))
	decodeFails(t, assemble(etyp, replace(ekvs, "m", mp([]byte("bytes")))), etyp, "m", wire.ErrWrongType)
	decodeFails(t, assemble(etyp, replace(ekvs, "m", []byte{0xa2, 'a', '\n'})), etyp, "m", wire.ErrBadText)
	m, err := wire.Decode(assemble(etyp, replace(ekvs, "m", []byte{0xc0})))
	if err != nil || m.(*wire.Error).Message != "" {
		t.Fatalf("nil message: %v %v", m, err)
	}
}

// TestUnmarshalUsesBoundedDecoder: code that hands a wire struct to
// msgpack.Unmarshal directly still gets the bounded decoder.
func TestUnmarshalUsesBoundedDecoder(t *testing.T) {
	body := []byte{0x81, 0xa3, 'm', 'a', 'c', 0xc6, 0xff, 0xff, 0xff, 0xff}
	var f wire.Finished
	err := msgpack.Unmarshal(body, &f)
	wantDecodeError(t, err, wire.TypeFinished, "mac", wire.ErrTooLong)
	// A reader that cannot tell the bytes left still gets the spec maximum.
	err = msgpack.NewDecoder(strings.NewReader(string(body))).Decode(&f)
	wantDecodeError(t, err, wire.TypeFinished, "mac", wire.ErrTooLong)
	err = msgpack.NewDecoder(onlyReader{bytes.NewReader([]byte{0x81, 0xa3, 'm', 'a', 'c', 0xc4, 0x20, 1})}).Decode(&f)
	wantDecodeError(t, err, wire.TypeFinished, "mac", wire.ErrTruncated)
}

// onlyReader hides every method but Read, so msgpack adds its bufio layer.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestTypeString(t *testing.T) {
	for typ, want := range map[wire.Type]string{
		wire.TypeHello: "Hello", wire.TypeHelloReply: "HelloReply", wire.TypeFinished: "Finished",
		wire.TypeError: "Error", 0: "Type(0x00)", 0x42: "Type(0x42)",
		wire.TypeStreamOpen: "StreamOpen", wire.TypeDirectMessage: "DirectMessage",
		wire.TypeRekeyInit: "RekeyInit", wire.TypeRekeyReply: "RekeyReply",
		wire.TypeRekeyConfirm: "RekeyConfirm", wire.TypeRekeyRequest: "RekeyRequest",
	} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestStreamKindString(t *testing.T) {
	for k, want := range map[wire.StreamKind]string{
		wire.StreamDirect: "direct", wire.StreamControl: "control", wire.StreamNotify: "notify",
		wire.StreamRequest: "request", 0: "StreamKind(0)", 5: "StreamKind(5)",
	} {
		if got := k.String(); got != want {
			t.Errorf("StreamKind(%d).String() = %q, want %q", uint16(k), got, want)
		}
	}
}

// TestDecodeStreamValueTypes: the counters of the post-handshake messages
// take any integer encoding whose value fits, and nothing else: Seq stops
// at 2^53-1 (JavaScript's exact integers) and Epoch at 2^32-1, refused
// rather than truncated.
func TestDecodeStreamValueTypes(t *testing.T) {
	typ, kvs := entries(t, mustEncode(t, sampleDirectMessage()))
	ok := func(key string, val []byte, check func(*wire.DirectMessage) bool) {
		t.Helper()
		m, err := wire.Decode(assemble(typ, replace(kvs, key, val)))
		if err != nil {
			t.Fatalf("%s = %x: %v", key, val, err)
		}
		if !check(m.(*wire.DirectMessage)) {
			t.Fatalf("%s = %x decoded to %+v", key, val, m)
		}
	}
	bad := func(key string, val []byte, reason error) {
		t.Helper()
		decodeFails(t, assemble(typ, replace(kvs, key, val)), typ, key, reason)
	}
	ok("s", []byte{0x00}, func(m *wire.DirectMessage) bool { return m.Seq == 0 })
	ok("s", []byte{0xd3, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(m *wire.DirectMessage) bool { return m.Seq == wire.MaxSeq })
	ok("s", []byte{0xcf, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(m *wire.DirectMessage) bool { return m.Seq == wire.MaxSeq })
	bad("s", []byte{0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0}, wire.ErrOutOfRange) // 2^53
	bad("s", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wire.ErrOutOfRange)
	bad("s", []byte{0xff}, wire.ErrOutOfRange) // -1
	bad("s", []byte{0xc0}, wire.ErrWrongType)
	bad("s", []byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, wire.ErrWrongType) // float64
	ok("e", []byte{0xce, 0xff, 0xff, 0xff, 0xff}, func(m *wire.DirectMessage) bool { return m.Epoch == 1<<32-1 })
	bad("e", []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, wire.ErrOutOfRange) // 2^32 must not wrap to 0
	bad("e", []byte{0xe0}, wire.ErrOutOfRange)                         // -32
	bad("b", mp("text"), wire.ErrWrongType)                            // str is not bin
	bad("b", []byte{0xc5, 0x40, 0x41}, wire.ErrTooLong)                // 16449 declared: over the max before the bytes left
	bad("b", []byte{0xc0}, wire.ErrLength)                             // nil is empty, and a box is never empty

	// A kind this version does not define is refused however it is
	// encoded, so the receiver resets the stream.
	otyp, okvs := entries(t, mustEncode(t, sampleStreamOpen()))
	for _, enc := range [][]byte{{0x05}, {0xcd, 0x01, 0x01}, {0x00}} {
		decodeFails(t, assemble(otyp, replace(okvs, "k", enc)), otyp, "k", wire.ErrOutOfRange)
	}
	decodeFails(t, assemble(otyp, replace(okvs, "k", []byte{0xce, 0, 1, 0, 1})), otyp, "k", wire.ErrOutOfRange)
}

func TestErrorCodes(t *testing.T) {
	names := map[string]bool{}
	for c := wire.ErrorCode(1); c <= wire.CodeConflict; c++ {
		name := c.String()
		if names[name] || strings.HasPrefix(name, "ErrorCode(") {
			t.Fatalf("code %d: name %q missing or repeated", c, name)
		}
		names[name] = true
		if back, ok := wire.ParseErrorCode(name); !ok || back != c {
			t.Fatalf("ParseErrorCode(%q) = %v, %v", name, back, ok)
		}
		e := wire.NewError(c)
		if e.Message != c.Text() || e.Message == "" || e.Message == "unknown error" {
			t.Fatalf("NewError(%v).Message = %q", c, e.Message)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("NewError(%v): %v", c, err)
		}
	}
	if len(names) != 16 {
		t.Fatalf("%d codes, want 16", len(names))
	}
	if got := wire.ErrorCode(999).String(); got != "ErrorCode(999)" {
		t.Fatal(got)
	}
	if _, ok := wire.ParseErrorCode("ErrorCode(999)"); ok {
		t.Fatal("parsed an unknown code name")
	}
	// A receiver accepts codes it does not know.
	m, err := wire.Decode(mustEncode(t, &wire.Error{Code: 999, Message: "from the future"}))
	if err != nil || m.(*wire.Error).Code != 999 {
		t.Fatalf("unknown code: %v, %v", m, err)
	}
}

func BenchmarkEncodeHello(b *testing.B) {
	h := realisticHello()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Encode(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHello(b *testing.B) {
	p := mustEncode(b, realisticHello())
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}
