package httpshim

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Fuzz targets over the shim's untrusted input: the handshake bodies, the
// authentication headers, and every endpoint's body, target and headers
// on an authenticated session. Seeds are real requests, recorded by
// `go test ./httpshim -run TestFuzzSeeds -update-seeds`.

var updateSeeds = flag.Bool("update-seeds", false, "record real requests as the fuzz targets' seed corpora")

// fuzzHost is a listener tuned for fuzzing: no rate limit, short waits.
func fuzzHost(f *testing.F) *host {
	return startHost(f, hostOpts{tune: func(c *Config) {
		c.Rate, c.MaxNonces, c.MaxWait, c.PingInterval = -1, 1<<20, time.Millisecond, time.Millisecond
		c.MaxPending = 1 << 16
	}})
}

// serveOnce runs req through the shim in-process, within a short
// deadline (event streams end at it), and checks the answer's form: a
// JSON error has a known code whose one status is the response's.
func serveOnce(t *testing.T, h *host, req *http.Request) int {
	ctx, cancel := context.WithTimeout(req.Context(), 50*time.Millisecond)
	defer cancel()
	req = req.WithContext(ctx)
	rec := httptest.NewRecorder()
	h.shim.ServeHTTP(rec, req)
	st := rec.Code
	if st == http.StatusOK {
		return st
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
		t.Fatalf("status %d with a body that is not the error JSON: %q", st, rec.Body.String())
	}
	if _, known := statusOf[eb.Error.Code]; !known || StatusOf(eb.Error.Code) != st {
		t.Fatalf("status %d with code %q (whose status is %d)", st, eb.Error.Code, StatusOf(eb.Error.Code))
	}
	if st == http.StatusInternalServerError {
		t.Fatalf("internal error: %s", rec.Body.String())
	}
	return st
}

func post(target string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func FuzzHandshakeInit(f *testing.F) {
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		serveOnce(t, h, post("/v1/handshake/init", body))
	})
}

func FuzzHandshakeFinish(f *testing.F) {
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		serveOnce(t, h, post("/v1/handshake/finish", body))
	})
}

// FuzzAuthHeaders: the header parser never accepts a malformed value, and
// a request with fuzzed headers is refused with a 4xx or 503.
func FuzzAuthHeaders(f *testing.F) {
	h := fuzzHost(f)
	f.Fuzz(func(t *testing.T, sid, ts, nonce, mac string) {
		hd := http.Header{}
		for k, v := range map[string]string{HeaderSession: sid, HeaderTimestamp: ts, HeaderNonce: nonce, HeaderMAC: mac} {
			if v != "" {
				hd.Set(k, v)
			}
		}
		a, err := ParseAuthHeaders(hd)
		if err == nil {
			if !isLowerHex(a.SessionText, sessionHex) || !isNonce(a.Nonce) || strconv.FormatInt(a.Timestamp.UnixMilli(), 10) != a.TimestampText {
				t.Fatalf("accepted malformed headers %+v", a)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/v1/session", nil)
		for k, v := range hd {
			if !validHeader(v[0]) {
				return
			}
			req.Header[k] = v
		}
		if st := serveOnce(t, h, req); st == http.StatusOK {
			t.Fatal("a request with fuzzed authentication was served")
		}
	})
}

func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 && v[i] != '\t' || v[i] == 0x7f {
			return false
		}
	}
	return true
}

// FuzzEndpoint: any method, target and body, signed with a real session,
// gets a well-formed answer and never an internal error.
func FuzzEndpoint(f *testing.F) {
	h := fuzzHost(f)
	c := h.connect(f, nil)
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, method, target string, body []byte, lastEventID string) {
		if !strings.HasPrefix(target, "/") || len(method) == 0 || len(method) > 10 || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		req, err := http.NewRequest(method, "http://x"+target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.RequestURI = req.URL.RequestURI()
		req.Header.Set("Content-Type", "application/json")
		if lastEventID != "" && validHeader(lastEventID) {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		mu.Lock()
		err = c.Sign(req, body)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		serveOnce(t, h, req)
	})
}

// recorder is a RoundTripper that records the requests a client makes.
type recorder struct {
	mu   sync.Mutex
	next http.RoundTripper
	reqs []recorded
}

type recorded struct {
	method, target string
	body           []byte
	header         http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var buf bytes.Buffer
		buf.ReadFrom(req.Body)
		body = buf.Bytes()
		req.Body.Close()
		req.Body = http.NoBody
		if len(body) > 0 {
			req.Body = readCloser{bytes.NewReader(body)}
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.RequestURI(), body, req.Header.Clone()})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestFuzzSeeds checks that every fuzz target has a seed corpus of real
// requests, and with -update-seeds records one: a session's handshake and
// every room operation.
func TestFuzzSeeds(t *testing.T) {
	targets := []string{"FuzzHandshakeInit", "FuzzHandshakeFinish", "FuzzAuthHeaders", "FuzzEndpoint"}
	if !*updateSeeds {
		for _, name := range targets {
			es, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
			if err != nil || len(es) == 0 {
				t.Errorf("%s has no seed corpus (go test ./httpshim -run TestFuzzSeeds -update-seeds): %v", name, err)
			}
		}
		return
	}
	h := startHost(t, hostOpts{})
	rec := &recorder{next: http.DefaultTransport}
	alice := h.httpMember(t, "alice")
	alice.http.HTTPClient = &http.Client{Transport: rec}
	bob := h.client(t, nil)
	bob.HTTPClient = &http.Client{Transport: rec}
	bob.KEX = 3 // x25519-mlkem768: a large share
	if err := bob.Handshake(tctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		kex uint16
		rsa bool
	}{{1, false}, {2, false}, {4, true}} {
		c := h.client(t, nil)
		if k.rsa {
			c.Identity = rsaIdentity(t, "rsa2048")
		}
		c.HTTPClient, c.KEX = &http.Client{Transport: rec}, cryptosuiteKEX(k.kex)
		if err := c.Handshake(tctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	bobm := &member{name: "bob", id: bob.Identity, http: bob}
	bobm.secrets = newSecrets(t, bobm.id)
	if err := bob.PublishKeyPackage(tctx(t), bobm.secrets.KeyPackage().Blob()); err != nil {
		t.Fatal(err)
	}
	id := alice.createRoom(t, "seeds")
	alice.invite(t, bobm)
	bobm.join(t, id, alice)
	seq := alice.send(t, "seed message")
	bobm.read(t, seq-1)
	alice.http.RoomInfo(tctx(t), id)
	alice.http.ListRooms(tctx(t), id, 10)
	bob.Read(tctx(t), id, 0, 10, time.Millisecond)
	es, err := bob.RoomEvents(tctx(t), id, "1")
	if err == nil {
		es.Close()
	}
	leave, err := bobm.st.Leave(bobm.id, time.Now())
	if err == nil {
		bob.Leave(tctx(t), id, leave)
		alice.http.FetchLeave(tctx(t), id, bobm.id.PeerID())
	}
	alice.http.Delete(tctx(t), id)

	write := func(name string, i int, vals ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case string:
				fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
			}
		}
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("real-%02d", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range targets {
		os.RemoveAll(filepath.Join("testdata", "fuzz", name))
	}
	n := map[string]int{}
	for _, r := range rec.reqs {
		switch r.target {
		case "/v1/handshake/init":
			write("FuzzHandshakeInit", n["init"], r.body)
			n["init"]++
		case "/v1/handshake/finish":
			write("FuzzHandshakeFinish", n["finish"], r.body)
			n["finish"]++
		default:
			write("FuzzAuthHeaders", n["auth"], r.header.Get(HeaderSession), r.header.Get(HeaderTimestamp), r.header.Get(HeaderNonce), r.header.Get(HeaderMAC))
			n["auth"]++
			write("FuzzEndpoint", n["ep"], r.method, r.target, r.body, r.header.Get("Last-Event-ID"))
			n["ep"]++
		}
	}
	t.Logf("recorded %v", n)
}

func cryptosuiteKEX(id uint16) cryptosuite.KEXID { return cryptosuite.KEXID(id) }
