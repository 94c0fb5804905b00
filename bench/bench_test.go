package bench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRelayOne runs the relay scenario's smallest case and checks that
// every message reached the member and the figures are there.
func TestRelayOne(t *testing.T) {
	res, err := Relay(context.Background(), &Options{Duration: 100 * time.Millisecond, Members: []int{1}, Sizes: []int{256}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	if v, _ := res[0].Get("errors"); v != int64(0) {
		t.Errorf("errors = %v, want 0", v)
	}
	for _, f := range []string{"delivered_per_s", "transport_per_s", "p99_ms", "transport_p99_ms"} {
		if v, ok := res[0].Get(f); !ok || v.(float64) <= 0 {
			t.Errorf("%s = %v, want a positive figure", f, v)
		}
	}
	t.Log(res)
}
