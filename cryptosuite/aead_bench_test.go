package cryptosuite

import (
	"fmt"
	"testing"
)

// aeadBenchSizes are the message sizes of the AEAD benchmarks: a chat
// line, a page, and a large attachment chunk.
var aeadBenchSizes = []int{256, 4 << 10, 64 << 10}

// BenchmarkAEADSeal seals under a fixed nonce (the nonce source is not
// what is measured) into a reused buffer.
func BenchmarkAEADSeal(b *testing.B) {
	for _, s := range AEADs() {
		for _, n := range aeadBenchSizes {
			b.Run(fmt.Sprintf("%s/%d", s.Name, n), func(b *testing.B) {
				a := aeadNew(b, s)
				nonce := aeadPattern(a.NonceSize(), 1)
				pt, aad := aeadPattern(n, 2), aeadPattern(32, 3)
				buf := make([]byte, 0, n+a.Overhead())
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					buf = a.Seal(buf[:0], nonce, pt, aad)
				}
			})
		}
	}
}

// BenchmarkAEADOpen opens one sealed message into a reused buffer.
func BenchmarkAEADOpen(b *testing.B) {
	for _, s := range AEADs() {
		for _, n := range aeadBenchSizes {
			b.Run(fmt.Sprintf("%s/%d", s.Name, n), func(b *testing.B) {
				a := aeadNew(b, s)
				nonce := aeadPattern(a.NonceSize(), 1)
				pt, aad := aeadPattern(n, 2), aeadPattern(32, 3)
				ct := a.Seal(nil, nonce, pt, aad)
				buf := make([]byte, 0, len(ct))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = a.Open(buf[:0], nonce, ct, aad); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
