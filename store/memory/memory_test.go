package memory

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/storetest"
)

// The conformance suite's concurrency tests run goroutines; none may
// outlive its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the suite on the default store (history of
// DefaultHistoryPerRoom, more than the 8,000 messages of the concurrency
// test) and on one whose history is a few messages, so that trimming meets
// every other test.
func TestConformance(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, Options{}) })
	})
	t.Run("history=5", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, Options{HistoryPerRoom: 5}) })
	})
}

func TestNewOptions(t *testing.T) {
	for _, opts := range []Options{
		{HistoryPerRoom: -1}, {MaxRooms: -1}, {MaxKeyPackages: -1}, {MaxDirectoryRecords: -1}, {MaxBytes: -1},
	} {
		if _, err := New(opts); !errors.Is(err, ErrBadOptions) {
			t.Errorf("New(%+v): got %v, want ErrBadOptions", opts, err)
		}
	}
	s := newStore(t, Options{})
	if s.HistoryPerRoom() != DefaultHistoryPerRoom || s.opts.MaxRooms != DefaultMaxRooms ||
		s.opts.MaxKeyPackages != DefaultMaxKeyPackages || s.opts.MaxDirectoryRecords != DefaultMaxDirectoryRecords ||
		s.opts.MaxBytes != DefaultMaxBytes {
		t.Errorf("New(Options{}) did not take the defaults: %+v", s.opts)
	}
	if s := newStore(t, Options{HistoryPerRoom: 7}); s.HistoryPerRoom() != 7 {
		t.Errorf("HistoryPerRoom() = %d, want 7", s.HistoryPerRoom())
	}
}
