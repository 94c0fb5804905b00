package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// do sends a request and returns the status and the error code of a JSON
// error body ("" for none).
func do(t *testing.T, c *http.Client, method, url, ctype string, body io.Reader) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e errorBody
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error with Content-Type %q", method, url, ct)
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s: error body %q is not {\"error\":{\"code\",\"message\"}}", method, url, b)
		}
	}
	return resp.StatusCode, e.Error.Code, b
}

func recordURL(base string, p cryptosuite.PeerID) string { return base + "/v1/records/" + p.String() }

func TestRegisterLookupRefresh(t *testing.T) { forEachStore(t, testRegisterLookupRefresh) }

func testRegisterLookupRefresh(t *testing.T, newEnv envMaker) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	id := ed25519Identity(t)

	if _, err := e.client.Lookup(ctx, id.PeerID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup before registering: %v, want ErrNotFound", err)
	}
	first := build(t, id, testAddrs, time.Hour, t0)
	if err := e.client.Register(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.Lookup(ctx, id.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Blob(), first.Blob()) {
		t.Fatal("lookup returned another blob")
	}
	// The identical record again is an idempotent retry.
	if err := e.client.Register(ctx, first); err != nil {
		t.Fatalf("identical retry: %v", err)
	}

	// A newer record replaces it.
	e.clk.Add(time.Minute)
	moved := Addrs{TCP: []string{"198.51.100.9:7450"}}
	second := build(t, id, moved, time.Hour, e.clk.Now())
	if err := e.client.Register(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.Lookup(ctx, id.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Addrs.TCP, moved.TCP) || !got.Issued.Equal(second.Issued) {
		t.Fatalf("after refresh: %v issued %v", got.Addrs, got.Issued)
	}

	// An older record, and another one issued at the same time, are
	// refused with 409 and leave the newer in place.
	older := build(t, id, Addrs{TCP: []string{"203.0.113.1:1"}}, 2*time.Hour, t0.Add(30*time.Second))
	same := build(t, id, Addrs{TCP: []string{"203.0.113.2:1"}}, 2*time.Hour, e.clk.Now())
	for name, rec := range map[string]*Record{"older": older, "same issue time": same} {
		err := e.client.Register(ctx, rec)
		var api *APIError
		if !errors.Is(err, ErrStale) || !errors.As(err, &api) || api.Status != http.StatusConflict || api.Code != CodeStale {
			t.Errorf("%s: %v, want 409 %s", name, err, CodeStale)
		}
	}
	got, err = e.client.Lookup(ctx, id.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), second.Blob()) {
		t.Fatalf("after refused registrations: %v", err)
	}

	// A peer's records are its own: another peer's lookup is not found.
	if _, err := e.client.Lookup(ctx, ed25519Identity(t).PeerID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another peer: %v", err)
	}
}

func TestRegisterRSA(t *testing.T) {
	e := newEnv(t, Config{})
	id := rsaIdentity(t)
	if err := e.client.Register(context.Background(), build(t, id, testAddrs, time.Hour, t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Lookup(context.Background(), id.PeerID()); err != nil {
		t.Fatal(err)
	}
}

func TestExpiry(t *testing.T) { forEachStore(t, testExpiry) }

func testExpiry(t *testing.T, newEnv envMaker) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	id := ed25519Identity(t)
	if err := e.client.Register(ctx, build(t, id, testAddrs, time.Hour, t0)); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour - time.Millisecond)
	if _, err := e.client.Lookup(ctx, id.PeerID()); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	if n := e.h.Sweep(ctx); n != 0 {
		t.Fatalf("swept %d unexpired records", n)
	}
	e.clk.Add(time.Millisecond)
	if _, err := e.client.Lookup(ctx, id.PeerID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("at expiry: %v, want ErrNotFound", err)
	}
	if n := e.h.Sweep(ctx); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	// A record that expired before it reaches the directory is refused.
	stale := build(t, id, testAddrs, time.Minute, t0)
	st, code, _ := do(t, e.srv.Client(), http.MethodPut, recordURL(e.srv.URL, id.PeerID()), contentBlob, bytes.NewReader(stale.Blob()))
	if st != http.StatusBadRequest || code != CodeExpired {
		t.Fatalf("expired registration: %d %s", st, code)
	}
	// So is one issued too far in the directory's future.
	future := build(t, id, testAddrs, time.Hour, e.clk.Now().Add(time.Hour))
	st, code, _ = do(t, e.srv.Client(), http.MethodPut, recordURL(e.srv.URL, id.PeerID()), contentBlob, bytes.NewReader(future.Blob()))
	if st != http.StatusBadRequest || code != CodeNotYetValid {
		t.Fatalf("future registration: %d %s", st, code)
	}
}

func TestForgedRegistration(t *testing.T) { forEachStore(t, testForgedRegistration) }

func testForgedRegistration(t *testing.T, newEnv envMaker) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	victim, attacker := ed25519Identity(t), ed25519Identity(t)
	genuine := build(t, victim, testAddrs, time.Hour, t0)
	if err := e.client.Register(ctx, genuine); err != nil {
		t.Fatal(err)
	}
	evil := Addrs{TCP: []string{"203.0.113.66:7450"}}
	url := recordURL(e.srv.URL, victim.PeerID())

	// The attacker's own valid record, put under the victim's path.
	own := build(t, attacker, evil, time.Hour, t0.Add(time.Second))
	st, code, _ := do(t, e.srv.Client(), http.MethodPut, url, contentBlob, bytes.NewReader(own.Blob()))
	if st != http.StatusForbidden || code != CodePeerMismatch {
		t.Errorf("attacker's record under the victim's path: %d %s", st, code)
	}
	// A record naming the victim's peer ID and key, signed by the attacker.
	f := fieldsFor(victim, t0.Add(time.Second), time.Hour)
	f.TCPAddrs, f.HTTPAddrs = evil.TCP, nil
	st, code, _ = do(t, e.srv.Client(), http.MethodPut, url, contentBlob, bytes.NewReader(signRaw(t, attacker, f)))
	if st != http.StatusForbidden || code != CodeBadSignature {
		t.Errorf("forged signature: %d %s", st, code)
	}
	// A record naming the victim's peer ID with the attacker's key.
	f = fieldsFor(attacker, t0.Add(time.Second), time.Hour)
	f.Peer = victim.PeerID()
	st, code, _ = do(t, e.srv.Client(), http.MethodPut, url, contentBlob, bytes.NewReader(signRaw(t, attacker, f)))
	if st != http.StatusForbidden || code != CodeBadSignature {
		t.Errorf("victim's peer ID with the attacker's key: %d %s", st, code)
	}
	// Garbage.
	st, code, _ = do(t, e.srv.Client(), http.MethodPut, url, contentBlob, strings.NewReader("hello"))
	if st != http.StatusBadRequest || code != CodeMalformed {
		t.Errorf("garbage: %d %s", st, code)
	}
	got, err := e.client.Lookup(ctx, victim.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), genuine.Blob()) {
		t.Fatalf("the victim's record changed: %v", err)
	}
}

// poisoned serves answer to every lookup, whatever the peer asked for.
func poisoned(t *testing.T, answer []byte) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentBlob)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, HTTPClient: srv.Client(), Now: func() time.Time { return t0.Add(time.Minute) }}
}

func TestPoisonedAnswers(t *testing.T) {
	ctx := context.Background()
	asked, other := ed25519Identity(t), ed25519Identity(t)
	valid := build(t, asked, testAddrs, time.Hour, t0).Blob()

	if _, err := poisoned(t, valid).Lookup(ctx, asked.PeerID()); err != nil {
		t.Fatalf("the genuine answer: %v", err)
	}
	cases := map[string]struct {
		answer []byte
		want   error
	}{
		"another peer's record":      {build(t, other, testAddrs, time.Hour, t0).Blob(), ErrWrongPeer},
		"an expired record":          {build(t, asked, testAddrs, 30*time.Second, t0).Blob(), ErrExpired},
		"a tampered record":          {append(bytes.Clone(valid[:len(valid)-1]), valid[len(valid)-1]^1), ErrBadSignature},
		"garbage":                    {[]byte("<html>hello</html>"), ErrMalformed},
		"an answer over the maximum": {make([]byte, 10*MaxRecordSize), ErrMalformed},
	}
	for name, c := range cases {
		if _, err := poisoned(t, c.answer).Lookup(ctx, asked.PeerID()); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Config{RegisterBurst: 100})
	id := ed25519Identity(t)
	rec := build(t, id, testAddrs, time.Hour, t0).Blob()
	url := recordURL(e.srv.URL, id.PeerID())
	c := e.srv.Client()
	cases := []struct {
		name, method, url, ctype string
		body                     io.Reader
		status                   int
		code                     string
	}{
		{"json body", http.MethodPut, url, "application/json", bytes.NewReader(rec), http.StatusUnsupportedMediaType, CodeUnsupportedMedia},
		{"no content type", http.MethodPut, url, "", bytes.NewReader(rec), http.StatusUnsupportedMediaType, CodeUnsupportedMedia},
		{"too large", http.MethodPut, url, contentBlob, bytes.NewReader(make([]byte, MaxRecordSize+1)), http.StatusRequestEntityTooLarge, CodeTooLarge},
		// Without a Content-Length (chunked), MaxBytesReader stops it.
		{"too large, chunked", http.MethodPut, url, contentBlob, io.MultiReader(bytes.NewReader(make([]byte, 4*MaxRecordSize))), http.StatusRequestEntityTooLarge, CodeTooLarge},
		{"bad peer id", http.MethodGet, e.srv.URL + "/v1/records/abc", "", nil, http.StatusBadRequest, CodeBadPeerID},
		{"bad peer id on put", http.MethodPut, e.srv.URL + "/v1/records/" + strings.Repeat("g", 64), contentBlob, bytes.NewReader(rec), http.StatusBadRequest, CodeBadPeerID},
		{"delete", http.MethodDelete, url, "", nil, http.StatusMethodNotAllowed, CodeMethod},
		{"post", http.MethodPost, url, contentBlob, bytes.NewReader(rec), http.StatusMethodNotAllowed, CodeMethod},
		{"unknown path", http.MethodGet, e.srv.URL + "/v2/records", "", nil, http.StatusNotFound, CodeNotFound},
	}
	for _, tc := range cases {
		st, code, _ := do(t, c, tc.method, tc.url, tc.ctype, tc.body)
		if st != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, code, tc.status, tc.code)
		}
	}
	// After all that, a good registration is served.
	if st, _, _ := do(t, c, http.MethodPut, url, contentBlob+"; charset=binary", bytes.NewReader(rec)); st != http.StatusOK {
		t.Fatalf("good registration after bad ones: %d", st)
	}
	st, _, body := do(t, c, http.MethodGet, url, "", nil)
	if st != http.StatusOK || !bytes.Equal(body, rec) {
		t.Fatalf("lookup: %d", st)
	}
	if st, _, body := do(t, c, http.MethodGet, e.srv.URL+"/healthz", "", nil); st != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz: %d %s", st, body)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{LookupRate: 0.001, LookupBurst: 3, RegisterRate: 0.001, RegisterBurst: 2})
	id := ed25519Identity(t)
	url := recordURL(e.srv.URL, id.PeerID())
	one, two := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	defer one.CloseIdleConnections()
	defer two.CloseIdleConnections()

	for i := range 3 {
		if st, _, _ := do(t, one, http.MethodGet, url, "", nil); st != http.StatusNotFound {
			t.Fatalf("lookup %d: %d", i, st)
		}
	}
	if st, code, _ := do(t, one, http.MethodGet, url, "", nil); st != http.StatusTooManyRequests || code != CodeRateLimited {
		t.Fatalf("fourth lookup: %d %s, want 429", st, code)
	}
	// Another address has its own bucket.
	if st, _, _ := do(t, two, http.MethodGet, url, "", nil); st != http.StatusNotFound {
		t.Fatalf("lookup from another address: %d", st)
	}
	// Registrations are limited apart from lookups.
	for i := range 2 {
		rec := build(t, id, testAddrs, time.Hour, t0.Add(time.Duration(i)*time.Second-time.Minute))
		if st, _, _ := do(t, one, http.MethodPut, url, contentBlob, bytes.NewReader(rec.Blob())); st != http.StatusOK {
			t.Fatalf("registration %d: %d", i, st)
		}
	}
	rec := build(t, id, testAddrs, time.Hour, t0)
	if st, code, _ := do(t, one, http.MethodPut, url, contentBlob, bytes.NewReader(rec.Blob())); st != http.StatusTooManyRequests || code != CodeRateLimited {
		t.Fatalf("third registration: %d %s, want 429", st, code)
	}
	// Tokens come back with time.
	e.clk.Add(time.Hour)
	if st, _, _ := do(t, one, http.MethodGet, url, "", nil); st != http.StatusNotFound {
		t.Fatalf("lookup after refill: %d", st)
	}
	c := &Client{BaseURL: e.srv.URL, HTTPClient: one, Now: e.clk.Now}
	for range 5 {
		_, err := c.Lookup(context.Background(), id.PeerID())
		if errors.Is(err, ErrRateLimited) {
			return
		}
	}
	t.Fatal("the client never saw ErrRateLimited")
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(1, 1, 2)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	if !l.allow(a, t0) || !l.allow(b, t0) {
		t.Fatal("first requests refused")
	}
	if l.allow(c, t0) {
		t.Fatal("a third client admitted past the bound while the others' buckets are empty")
	}
	if len(l.buckets) != 2 {
		t.Fatalf("%d buckets, want 2", len(l.buckets))
	}
	// Once the others have refilled, their buckets go and c gets one.
	if !l.allow(c, t0.Add(2*time.Second)) || len(l.buckets) != 1 {
		t.Fatalf("after refill: %d buckets", len(l.buckets))
	}
	// IPv6 clients share a bucket per /64.
	l = newLimiter(1, 1, 10)
	if !l.allow(netip.MustParseAddr("2001:db8::1"), t0) || l.allow(netip.MustParseAddr("2001:db8::2"), t0) {
		t.Fatal("two addresses of one /64 have two buckets")
	}
	if !l.allow(netip.MustParseAddr("2001:db8:0:1::1"), t0) {
		t.Fatal("another /64 shares the bucket")
	}
}

func TestStoreUnavailable(t *testing.T) {
	e := newEnvStore(t, nil, downStore{}, Config{})
	id := ed25519Identity(t)
	ctx := context.Background()
	err := e.client.Register(ctx, build(t, id, testAddrs, time.Hour, t0))
	var api *APIError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &api) || api.Code != CodeUnavailable {
		t.Fatalf("register: %v, want 503 %s", err, CodeUnavailable)
	}
	if _, err := e.client.Lookup(ctx, id.PeerID()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lookup: %v", err)
	}
	if st, code, _ := do(t, e.srv.Client(), http.MethodGet, e.srv.URL+"/healthz", "", nil); st != http.StatusServiceUnavailable || code != CodeUnavailable {
		t.Fatalf("healthz: %d %s", st, code)
	}
	if n := e.h.Sweep(ctx); n != 0 {
		t.Fatalf("sweep of a down store: %d", n)
	}
}

func TestServe(t *testing.T) {
	st := newEnv(t, Config{SweepInterval: time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.h.Serve(ctx, ln) }()

	id := ed25519Identity(t)
	c := &Client{BaseURL: "http://" + ln.Addr().String(), HTTPClient: &http.Client{Timeout: 30 * time.Second}, Now: st.clk.Now}
	defer c.HTTPClient.CloseIdleConnections()
	if err := c.Register(ctx, build(t, id, testAddrs, time.Hour, t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, id.PeerID()); err != nil {
		t.Fatal(err)
	}
	// The sweeper runs: once the record has expired it is deleted, so the
	// store no longer finds it even when asked as of before its expiry.
	st.clk.Add(2 * time.Hour)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.store.GetDirectoryRecord(context.Background(), id.PeerID(), t0)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never deleted the expired record")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
