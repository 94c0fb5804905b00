package httpshim

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkMessagePost measures an authenticated message POST over one
// keep-alive connection (MAC check, JSON decode, the room's rules, the
// store) against a bare net/http handler that does the same JSON decode
// of the same body, in the same run; "ratio" is shim time over bare time.
func BenchmarkMessagePost(b *testing.B) {
	h := startHost(b, hostOpts{tune: func(c *Config) { c.Rate = -1 }})
	alice := h.httpMember(b, "alice")
	id := alice.createRoom(b, "bench")

	var decoded atomic.Int64
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		var v struct {
			Message []byte `json:"message"`
		}
		if err := decodeStrict(body, &v, []string{"message"}, nil); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		decoded.Add(int64(len(v.Message)))
		writeJSON(w, http.StatusOK, struct {
			Seq    uint64 `json:"seq"`
			Stored int64  `json:"stored"`
		}{1, 1})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go bare.Serve(ln)
	defer bare.Close()
	bareURL := "http://" + ln.Addr().String() + "/"
	hc := alice.http.HTTPClient

	var shimTime, bareTime time.Duration
	ctx := tctx(b)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		blob := alice.seal(b, "benchmark message")
		body, _ := json.Marshal(map[string][]byte{"message": blob})
		b.StartTimer()

		t0 := time.Now()
		req, err := alice.http.NewRequest(ctx, http.MethodPost, roomPath(id, "/messages"), body)
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.http.do(req, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		breq, _ := http.NewRequestWithContext(ctx, http.MethodPost, bareURL, bytes.NewReader(body))
		breq.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(breq)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("bare handler: %d", resp.StatusCode)
		}
		t2 := time.Now()
		shimTime += t1.Sub(t0)
		bareTime += t2.Sub(t1)
	}
	if b.N > 0 && bareTime > 0 {
		b.ReportMetric(float64(b.N)/shimTime.Seconds(), "shim-req/s")
		b.ReportMetric(float64(b.N)/bareTime.Seconds(), "bare-req/s")
		b.ReportMetric(float64(shimTime)/float64(bareTime), "ratio")
	}
}
