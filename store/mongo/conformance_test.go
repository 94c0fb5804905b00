package mongo

import (
	"testing"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/storetest"
)

// TestConformance runs the conformance suite, unchanged, with a fresh
// database for each of its tests.
func TestConformance(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, testURI, Options{}) })
}
