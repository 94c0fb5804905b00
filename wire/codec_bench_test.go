package wire_test

import (
	"testing"

	"github.com/lanpeer/lanpeer/wire"
)

// typicalSamples is one typical message of every type: the handshake's
// and every stream message, room requests, replies and pushes included.
func typicalSamples() []namedMessage {
	return append([]namedMessage{
		{"Hello", realisticHello()}, {"HelloReply", sampleHelloReply()}, {"Finished", sampleFinished()},
		{"Ready", sampleReady()}, {"Error", sampleError()},
	}, streamSamples()...)
}

// BenchmarkEncode encodes one typical message of each type (msgpack and
// its type byte, after Validate).
func BenchmarkEncode(b *testing.B) {
	for _, s := range typicalSamples() {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.Encode(s.m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode decodes one typical message of each type (bounded
// msgpack decoding and Validate).
func BenchmarkDecode(b *testing.B) {
	for _, s := range typicalSamples() {
		b.Run(s.name, func(b *testing.B) {
			p := mustEncode(b, s.m)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.Decode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
