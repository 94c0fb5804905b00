package mongo

import (
	"testing"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/store/storetest"
)

// BenchmarkStore runs the store benchmarks on the memory store and on
// this one in the same run, so that their msgs/s compare directly.
func BenchmarkStore(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store {
			s, err := memory.New(memory.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
	b.Run("mongo", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return openTest(b, testURI, Options{}) })
	})
}
