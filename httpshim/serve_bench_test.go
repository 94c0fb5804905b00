package httpshim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

// BenchmarkServeMessage measures the shim's own work for one
// authenticated message POST, without sockets or net/http's parsing: the
// authentication (headers, MAC, body hash, nonce, rate), the JSON decode,
// the room's rules with (host=verifies) or without (host=skips) the
// message's signature check, the store, the fan-out, the answer. The
// requests are signed and their messages sealed with the timer stopped,
// in batches.
func BenchmarkServeMessage(b *testing.B) {
	for _, skip := range []bool{false, true} {
		name := "host=verifies"
		if skip {
			name = "host=skips"
		}
		b.Run(name, func(b *testing.B) { benchServeMessage(b, skip) })
	}
}

func benchServeMessage(b *testing.B, skipSigs bool) {
	h := startHost(b, hostOpts{tune: func(c *Config) { c.Rate = -1 }, skipSigs: skipSigs})
	alice := h.httpMember(b, "alice")
	id := alice.createRoom(b, "bench")
	ctx := tctx(b)
	text := strings.Repeat("x", 256)
	const batch = 512
	var reqs []*http.Request
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(reqs) == 0 {
			b.StopTimer()
			for range batch {
				body, _ := json.Marshal(map[string][]byte{"message": alice.seal(b, text)})
				req, err := alice.http.NewRequest(ctx, http.MethodPost, roomPath(id, "/messages"), body)
				if err != nil {
					b.Fatal(err)
				}
				req.RequestURI = req.URL.RequestURI()
				reqs = append(reqs, req)
			}
			b.StartTimer()
		}
		req := reqs[len(reqs)-1]
		reqs = reqs[:len(reqs)-1]
		clear(w.h)
		w.status = 0
		h.shim.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
