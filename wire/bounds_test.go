package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/lanpeer/lanpeer/wire"
)

// allocated returns the bytes allocated by running f n times, divided by
// n, after one warm-up call. Like testing.AllocsPerRun it runs with
// GOMAXPROCS 1, so that other goroutines' allocations stay out of the
// count.
func allocated(n int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// hugeHeaders are msgpack headers declaring the largest lengths and counts
// their formats allow, in five (or three) bytes.
var hugeHeaders = []struct {
	name string
	b    []byte
}{
	{"array32 0xFFFFFFFF", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
	{"bin32 0xFFFFFFFF", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}},
	{"str32 0xFFFFFFFF", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}},
	{"map32 0xFFFFFFFF", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}},
	{"ext32 0xFFFFFFFF", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}},
	{"array16 0xFFFF", []byte{0xdc, 0xff, 0xff}},
	{"bin16 0xFFFF", []byte{0xc5, 0xff, 0xff}},
	{"str16 0xFFFF", []byte{0xda, 0xff, 0xff}},
	{"map16 0xFFFF", []byte{0xde, 0xff, 0xff}},
	{"bin32 0x7FFFFFFF", []byte{0xc6, 0x7f, 0xff, 0xff, 0xff}},
	{"array32 0x80000000", []byte{0xdd, 0x80, 0x00, 0x00, 0x00}},
}

// TestHugeHeaders writes every huge header into every field of every
// message, and over the message map itself, followed by nothing or by a
// whole frame's worth of filler: each gives a typed error, no message,
// and allocation far below what the header declares (DESIGN.md §11).
func TestHugeHeaders(t *testing.T) {
	fillers := map[string][]byte{
		"then EOF":           nil,
		"then 60 KiB zeros":  make([]byte, 60<<10),
		"then 60 KiB fixint": bytes.Repeat([]byte{0x01}, 60<<10),
	}
	const limit = 64 << 10 // per decode, far below 1 MiB and the declared GiBs
	checkOne := func(t *testing.T, payload []byte) {
		t.Helper()
		var (
			m   wire.Message
			err error
		)
		n := allocated(10, func() { m, err = wire.Decode(payload) })
		if m != nil || err == nil {
			t.Fatalf("decoded: %v, %v", m, err)
		}
		var de *wire.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
		}
		if n > limit {
			t.Fatalf("decode allocated %d bytes (%v), want < %d", n, err, limit)
		}
	}
	for _, s := range append([]namedMessage{
		{"Hello", sampleHello()}, {"HelloReply", sampleHelloReply()},
		{"Finished", sampleFinished()}, {"Ready", sampleReady()}, {"Error", sampleError()},
	}, streamSamples()...) {
		typ, kvs := entries(t, mustEncode(t, s.m))
		for _, h := range hugeHeaders {
			for fname, filler := range fillers {
				t.Run(fmt.Sprintf("%s/map/%s/%s", s.name, h.name, fname), func(t *testing.T) {
					p := append([]byte{byte(typ)}, h.b...)
					checkOne(t, append(p, filler...))
				})
				for _, e := range kvs {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", s.name, e.key, h.name, fname), func(t *testing.T) {
						v := append(bytes.Clone(h.b), filler...)
						checkOne(t, assemble(typ, replace(kvs, e.key, v)))
					})
				}
			}
		}
	}
}

// TestCollectionBoundedByBytesLeft: a count or length within the spec
// maximum but beyond the bytes left fails before anything is allocated
// for it.
func TestCollectionBoundedByBytesLeft(t *testing.T) {
	typ, kvs := entries(t, mustEncode(t, sampleHello()))
	// Put the field under test last, so the bytes after it are the only
	// bytes left.
	last := func(key string, val []byte) []byte {
		var rest []kv
		for _, e := range kvs {
			if e.key != key {
				rest = append(rest, e)
			}
		}
		return assemble(typ, append(rest, kv{key, val}))
	}

	// Byte strings: the declared length dwarfs the noise in byte counts.
	for _, tc := range []struct {
		key      string
		val      []byte // declares more than is left
		small    []byte // declares one byte more than is left
		declared uint64
	}{
		{"ks", []byte{0xc5, 0x04, 0xc0, 0x01}, []byte{0xc4, 0x02, 0x01}, wire.MaxShareSize},
		{"ik", []byte{0xc6, 0x00, 0x00, 0x04, 0x00}, []byte{0xc4, 0x01}, wire.MaxIdentityKeySize},
	} {
		var err error
		p := last(tc.key, tc.small)
		base := allocated(100, func() { _, err = wire.Decode(p) })
		wantDecodeError(t, err, typ, tc.key, wire.ErrTruncated)
		p = last(tc.key, tc.val)
		n := allocated(100, func() { _, err = wire.Decode(p) })
		wantDecodeError(t, err, typ, tc.key, wire.ErrTruncated)
		if n >= base+tc.declared/2 {
			t.Errorf("%s: allocated %d bytes per decode (%d when declaring one byte more than is left): the length was not checked against the bytes left", tc.key, n, base)
		}
	}

	// The AEAD list allocates at most 32 bytes, too little to see in byte
	// counts: check that the count was refused as such, before any
	// element was read, rather than by running out of elements.
	_, err := wire.Decode(last("ae", []byte{0xdc, 0x00, 0x10, 0x01, 0x02}))
	wantDecodeError(t, err, typ, "ae", wire.ErrTruncated)
	if de := err.(*wire.DecodeError); de.Detail != "16 declared, 2 bytes left" {
		t.Errorf("ae: detail %q: the count was not checked against the bytes left before reading elements", de.Detail)
	}
}

// TestLibraryAllocatesFromDeclaredLength records the premise of the
// custom decoders: msgpack v5.4.1, decoding into plain []byte and []uint16
// fields, allocates whatever a header declares. If this test starts to
// fail after a library upgrade, the upgrade fixed it; the custom decoders
// stay anyway, since they also bound lengths by the spec.
func TestLibraryAllocatesFromDeclaredLength(t *testing.T) {
	const declared = 16 << 20
	type plain struct {
		B []byte   `msgpack:"b"`
		S []uint16 `msgpack:"s"`
	}
	n32 := binary.BigEndian.AppendUint32(nil, declared)
	bin := append([]byte{0x81, 0xa1, 'b', 0xc6}, n32...)
	n := allocated(1, func() {
		if err := msgpack.Unmarshal(bin, new(plain)); err == nil {
			t.Fatal("no error")
		}
	})
	if n < declared {
		t.Fatalf("plain []byte decode of a 8-byte input allocated %d bytes; expected the declared %d", n, declared)
	}
	arr := append([]byte{0x81, 0xa1, 's', 0xdd}, n32...)
	n = allocated(1, func() {
		if err := msgpack.Unmarshal(arr, new(plain)); err == nil {
			t.Fatal("no error")
		}
	})
	if n < declared*2 {
		t.Fatalf("plain []uint16 decode of a 8-byte input allocated %d bytes; expected 2×%d", n, declared)
	}
}

// TestNestingBombs: 100,000 nested arrays or maps, in any field or over
// the message, are refused at the first level that does not belong, with
// no recursion and no allocation proportional to the depth.
func TestNestingBombs(t *testing.T) {
	const depth = 100_000
	arrays := append(bytes.Repeat([]byte{0x91}, depth), 0x01)
	maps := append(bytes.Repeat([]byte{0x81, 0xa1, 'x'}, depth), 0x01)
	typ, kvs := entries(t, mustEncode(t, sampleHello()))
	for name, bomb := range map[string][]byte{"arrays": arrays, "maps": maps} {
		for _, key := range []string{"", "ae", "ks", "v"} {
			var p []byte
			if key == "" {
				p = append([]byte{byte(typ)}, bomb...)
			} else {
				p = assemble(typ, replace(kvs, key, bomb))
			}
			var err error
			n := allocated(1, func() { _, err = wire.Decode(p) })
			var de *wire.DecodeError
			if !errors.As(err, &de) || !(errors.Is(err, wire.ErrWrongType) || errors.Is(err, wire.ErrUnknownField)) {
				t.Fatalf("%s in %q: error %v, want ErrWrongType or ErrUnknownField", name, key, err)
			}
			if n > 64<<10 {
				t.Fatalf("%s in %q: allocated %d bytes", name, key, n)
			}
		}
	}
}
