package memory

import (
	"testing"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b, Options{}) })
}
