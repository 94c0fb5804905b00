package httpshim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// decodeOneBytes may only take bodies that decodeStrict decodes to the
// same value: checked on a body json.Marshal writes (which it must take)
// and on near misses (which it must leave to decodeStrict).
func TestDecodeOneBytesAgreesWithDecodeStrict(t *testing.T) {
	blob := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 100)
	canonical, err := json.Marshal(map[string][]byte{"message": blob})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := decodeOneBytes(canonical, "message")
	if !ok || !bytes.Equal(got, blob) {
		t.Fatalf("the canonical body was not taken (ok %v)", ok)
	}
	if got, ok := decodeOneBytes([]byte(`{"message":""}`), "message"); !ok || got == nil || len(got) != 0 {
		t.Fatalf("an empty value: %v %v", got, ok)
	}
	for _, body := range []string{
		`{"message": "AAAA"}`,         // whitespace
		`{"message":"AA\nAA"}`,        // a raw LF, which base64 would skip
		`{"message":"AA\rAA"}`,        // a raw CR
		`{"message":"AA\\nAA"}`,       // an escape
		`{"message":"AAAA","x":"AA"}`, // a second field
		`{"x":"AAAA","message":"AA"}`, // another field first
		`{"Message":"AAAA"}`,          // json's case-insensitive match
		`{"message":"AAA"}`,           // bad padding
		`{"message":"AAAA"} `,         // trailing data
		`{"message":null}`,
		`{"message":"AA"AA"}`,
		`{"message":"`,
		`{"message"}`,
		``,
	} {
		if _, ok := decodeOneBytes([]byte(body), "message"); ok {
			t.Errorf("%q was taken by the fast path", body)
		}
	}
}

// FuzzDecodeOneBytes: whatever the fast path takes, decodeStrict takes
// with the same value.
func FuzzDecodeOneBytes(f *testing.F) {
	for _, s := range []string{`{"message":"AAAA"}`, `{"message":"AA\nAA"}`, `{"message":""}`, `{"message":"QUJD"}`, `{"message":"QUI="}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeOneBytes(body, "message")
		if !ok {
			return
		}
		var v struct {
			Message []byte `json:"message"`
		}
		if err := decodeStrict(body, &v, []string{"message"}, nil); err != nil {
			t.Fatalf("fast path took %q, decodeStrict refused it: %v", body, err)
		}
		if !bytes.Equal(got, v.Message) {
			t.Fatalf("%q: fast path %x, decodeStrict %x", body, got, v.Message)
		}
	})
}

// TestNonceWindow: the session remembers its last nonces; forgetting one
// raises the floor to its timestamp, so a replay is refused after it was
// forgotten as before, and the session admits any number of requests.
func TestNonceWindow(t *testing.T) {
	hs := &httpSession{nonces: map[string]int64{}, floor: math.MinInt64}
	const limit = 4
	nonce := func(i int) string { return fmt.Sprintf("nonce-%016d", i) }
	for i := 1; i <= 1000; i++ {
		if err := hs.addNonce(nonce(i), int64(i), limit); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		for j := max(1, i-limit+1); j <= i; j++ { // remembered
			if err := hs.addNonce(nonce(j), int64(j), limit); err != errNonceReplay {
				t.Fatalf("after %d: replay of %d: %v, want errNonceReplay", i, j, err)
			}
		}
		for j := max(1, i-limit-2); j <= i-limit; j++ { // forgotten
			if err := hs.addNonce(nonce(j), int64(j), limit); err != errNonceStale {
				t.Fatalf("after %d: replay of %d: %v, want errNonceStale", i, j, err)
			}
		}
	}
	if len(hs.nonces) != limit || len(hs.order) != limit || hs.floor != 1000-limit {
		t.Fatalf("%d nonces, a ring of %d, floor %d", len(hs.nonces), len(hs.order), hs.floor)
	}
	// A new nonce at or below the floor is refused too; out of order
	// above it is fine.
	if err := hs.addNonce("fresh-nonce-0000001", 1000-limit, limit); err != errNonceStale {
		t.Fatalf("a new nonce at the floor: %v", err)
	}
	if err := hs.addNonce("fresh-nonce-0000002", 1000-limit+1, limit); err != nil {
		t.Fatalf("a new nonce just above the floor: %v", err)
	}
}

// TestSustainedRequestRate: a session sends many times more requests
// within the timestamp window than it remembers nonces (which used to
// answer 503 once the cache was full), and a captured request is still
// refused after its nonce was forgotten.
func TestSustainedRequestRate(t *testing.T) {
	const limit = 16
	h := startHost(t, hostOpts{tune: func(c *Config) { c.Rate, c.MaxNonces = -1, limit }})
	c := h.connect(t, nil)
	// The client's clock moves a millisecond a request, within the
	// listener's window.
	base, n := time.Now(), 0
	c.Now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Millisecond) }
	sign := func() *http.Request {
		req, err := c.NewRequest(tctx(t), http.MethodGet, "/v1/session", nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	replay := func(req *http.Request) *http.Request {
		again, err := http.NewRequestWithContext(tctx(t), req.Method, req.URL.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		again.Header = req.Header.Clone()
		return again
	}
	first := sign()
	if st, e, _ := rawDo(t, first); st != 200 {
		t.Fatalf("first request: %d %+v", st, e)
	}
	var last *http.Request
	for i := range 20 * limit {
		last = sign()
		if st, e, _ := rawDo(t, last); st != 200 {
			t.Fatalf("request %d of a session that remembers %d nonces: %d %+v", i+2, limit, st, e)
		}
	}
	if st, e, _ := rawDo(t, replay(first)); st != 401 || e.Code != "stale-timestamp" {
		t.Fatalf("replay of a forgotten request: %d %+v, want 401 stale-timestamp", st, e)
	}
	if st, e, _ := rawDo(t, replay(last)); st != 401 || e.Code != "replay" {
		t.Fatalf("replay of a remembered request: %d %+v, want 401 replay", st, e)
	}
	if st, e, _ := rawDo(t, sign()); st != 200 {
		t.Fatalf("the session after the replays: %d %+v", st, e)
	}
}
