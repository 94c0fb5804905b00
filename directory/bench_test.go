package directory

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkLookup measures lookups a second: over loopback HTTP with the
// client's verification (what a dialling peer pays), and the handler
// alone (what one directory instance can answer).
func BenchmarkLookup(b *testing.B) {
	e := newEnv(b, Config{LookupRate: 1e12, LookupBurst: 1 << 30})
	id := ed25519Identity(b)
	if err := e.client.Register(context.Background(), build(b, id, testAddrs, time.Hour, t0)); err != nil {
		b.Fatal(err)
	}
	// Keep a connection per goroutine (the default keeps 2 idle).
	e.client.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	b.Run("client-loopback", func(b *testing.B) {
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.client.Lookup(context.Background(), id.PeerID()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("handler", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, recordURL("", id.PeerID()), nil)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Errorf("status %d", w.Code)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	e.client.HTTPClient.CloseIdleConnections()
}
