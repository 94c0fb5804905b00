package httpshim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
)

// TestHandshakeModes runs the handshake over real HTTP in every
// key-agreement mode, with Ed25519 and RSA identities, and uses the
// session: a request MAC under the authentication key the handshake
// delivered verifies at the listener.
func TestHandshakeModes(t *testing.T) {
	h := startHost(t, hostOpts{})
	ids := map[string]*cryptosuite.Identity{"ed25519": edIdentity(t), "rsa2048": rsaIdentity(t, "rsa2048"), "rsa3072": rsaIdentity(t, "rsa3072")}
	for _, idName := range []string{"ed25519", "rsa2048", "rsa3072"} {
		for _, kex := range []cryptosuite.KEXID{cryptosuite.KEXX25519, cryptosuite.KEXP256, cryptosuite.KEXX25519MLKEM768, cryptosuite.KEXRSAOAEPSHA256} {
			t.Run(fmt.Sprintf("%s/%s", idName, kexName(uint16(kex))), func(t *testing.T) {
				c := h.client(t, ids[idName])
				c.KEX = kex
				err := c.Handshake(tctx(t))
				if kex == cryptosuite.KEXRSAOAEPSHA256 && idName == "ed25519" {
					// The client refuses before sending; the listener
					// refuses too (below, TestHandshakeRefusals).
					if !errors.Is(err, session.ErrKEXRefused) {
						t.Fatalf("rsa mode with an Ed25519 identity: %v, want ErrKEXRefused", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Peer().PeerID() != h.id.PeerID() {
					t.Fatal("the client learned another listener identity")
				}
				var sj SessionJSON
				if err := c.Do(tctx(t), http.MethodGet, "/v1/session", nil, &sj); err != nil {
					t.Fatal(err)
				}
				if sj.Peer != ids[idName].PeerID().String() || sj.KEX != uint16(kex) || sj.Session != c.SessionID() {
					t.Fatalf("session %+v: want peer %s, mode %d", sj, ids[idName].PeerID(), kex)
				}
				if err := c.Close(tctx(t)); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// postJSON posts raw JSON to an unauthenticated endpoint.
func postJSON(t testing.TB, url string, body []byte) (int, *apiError) {
	t.Helper()
	req, err := http.NewRequestWithContext(tctx(t), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return resp.StatusCode, &eb.Error
}

// manualHello makes a signed hello as JSON for the listener of h.
func manualHello(t testing.TB, h *host, id *cryptosuite.Identity, kex cryptosuite.KEXID, now func() time.Time) (*session.Requestor, []byte) {
	t.Helper()
	r, err := session.NewRequestor(&session.Config{Identity: id, KEX: kex, AllowRSA: true, Now: now},
		session.Params{Transport: session.TransportHTTP, Expected: h.id.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	hello, err := r.CreateHello()
	if err != nil {
		t.Fatal(err)
	}
	hj, err := helloToJSON(hello)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(hj)
	return r, b
}

// TestHandshakeRefusals: each refusal of the handshake gets its status and
// code, and the listener then completes a good handshake.
func TestHandshakeRefusals(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := startHost(t, hostOpts{tune: func(c *Config) { c.Now = clock.now; c.MaxPending = 3 }})
	ed := edIdentity(t)

	// A replayed hello.
	_, hello := manualHello(t, h, ed, cryptosuite.KEXX25519, nil)
	if st, e := postJSON(t, h.url+"/v1/handshake/init", hello); st != 200 {
		t.Fatalf("first hello: %d %+v", st, e)
	}
	if st, e := postJSON(t, h.url+"/v1/handshake/init", hello); st != 401 || e.Code != "replay" {
		t.Fatalf("replayed hello: %d %+v, want 401 replay", st, e)
	}
	// An altered hello: the signature fails.
	var hj map[string]any
	_, hello = manualHello(t, h, ed, cryptosuite.KEXX25519, nil)
	json.Unmarshal(hello, &hj)
	hj["time"] = hj["time"].(float64) + 1
	b, _ := json.Marshal(hj)
	if st, e := postJSON(t, h.url+"/v1/handshake/init", b); st != 403 || e.Code != "bad-signature" {
		t.Fatalf("altered hello: %d %+v, want 403 bad-signature", st, e)
	}
	// rsa for an Ed25519 identity, built by hand (the client refuses it).
	json.Unmarshal(hello, &hj)
	hj["kex"], hj["share"] = 4, ""
	b, _ = json.Marshal(hj)
	if st, e := postJSON(t, h.url+"/v1/handshake/init", b); st != 403 || e.Code != "kex-refused" {
		t.Fatalf("rsa for Ed25519: %d %+v, want 403 kex-refused", st, e)
	}
	// A stale hello.
	_, hello = manualHello(t, h, ed, cryptosuite.KEXX25519, func() time.Time { return clock.now().Add(-time.Hour) })
	if st, e := postJSON(t, h.url+"/v1/handshake/init", hello); st != 401 || e.Code != "stale-timestamp" {
		t.Fatalf("stale hello: %d %+v, want 401 stale-timestamp", st, e)
	}
	// A raw X25519 share where SPKI DER belongs.
	json.Unmarshal(hello, &hj)
	hj["share"] = make([]byte, 32)
	b, _ = json.Marshal(hj)
	if st, e := postJSON(t, h.url+"/v1/handshake/init", b); st != 403 || e.Code != "bad-signature" {
		t.Fatalf("raw share: %d %+v, want 403 bad-signature", st, e)
	}
	// Finish for no pending handshake.
	fin, _ := json.Marshal(FinishJSON{Session: strings.Repeat("ab", 16), MAC: make([]byte, 32)})
	if st, e := postJSON(t, h.url+"/v1/handshake/finish", fin); st != 404 || e.Code != CodeUnknownHandshake {
		t.Fatalf("unknown finish: %d %+v, want 404 unknown-handshake", st, e)
	}

	// A pending handshake expires after PendingTTL.
	r, hello := manualHello(t, h, ed, cryptosuite.KEXX25519, clock.now)
	sid, mac := initManually(t, h, r, hello)
	clock.advance(DefaultPendingTTL + time.Second)
	fin, _ = json.Marshal(FinishJSON{Session: sid, MAC: mac})
	if st, e := postJSON(t, h.url+"/v1/handshake/finish", fin); st != 404 || e.Code != CodeUnknownHandshake {
		t.Fatalf("expired pending handshake: %d %+v, want 404", st, e)
	}
	// A wrong Finished MAC ends the pending handshake.
	r, hello = manualHello(t, h, ed, cryptosuite.KEXX25519, clock.now)
	sid, mac = initManually(t, h, r, hello)
	mac[0] ^= 1
	fin, _ = json.Marshal(FinishJSON{Session: sid, MAC: mac})
	if st, e := postJSON(t, h.url+"/v1/handshake/finish", fin); st != 403 || e.Code != "bad-signature" {
		t.Fatalf("bad Finished: %d %+v, want 403 bad-signature", st, e)
	}
	mac[0] ^= 1
	fin, _ = json.Marshal(FinishJSON{Session: sid, MAC: mac})
	if st, e := postJSON(t, h.url+"/v1/handshake/finish", fin); st != 404 {
		t.Fatalf("finish after a failed one: %d %+v, want 404", st, e)
	}
	// Pending handshakes are bounded.
	for i := range 4 {
		r, hello := manualHello(t, h, edIdentity(t), cryptosuite.KEXX25519, clock.now)
		st, e := postJSON(t, h.url+"/v1/handshake/init", hello)
		r.Abort()
		if i < 3 && st != 200 || i == 3 && (st != 503 || e.Code != "busy") {
			t.Fatalf("pending handshake %d: %d %+v", i+1, st, e)
		}
	}
	clock.advance(DefaultPendingTTL + time.Second)

	// The listener still serves a good client.
	c := h.client(t, ed)
	c.Now = clock.now
	if err := c.Handshake(tctx(t)); err != nil {
		t.Fatalf("good handshake after the refusals: %v", err)
	}
}

// initManually posts a hello and returns the session id and the Finished
// MAC the requestor computes.
func initManually(t testing.TB, h *host, r *session.Requestor, hello []byte) (string, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(tctx(t), http.MethodPost, h.url+"/v1/handshake/init", bytes.NewReader(hello))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rj HelloReplyJSON
	if err := json.NewDecoder(resp.Body).Decode(&rj); err != nil || resp.StatusCode != 200 {
		t.Fatalf("init: %d %v", resp.StatusCode, err)
	}
	reply, err := helloReplyFromJSON(&rj)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ConsumeReply(reply); err != nil {
		t.Fatal(err)
	}
	fin, keys, err := r.CreateFinished()
	if err != nil {
		t.Fatal(err)
	}
	keys.Wipe()
	return rj.Session, fin.MAC
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestHTTPAndTCPShareRoom: an HTTP client and a TCP client in one room
// read each other's messages, with the same wrapped keys and message
// format.
func TestHTTPAndTCPShareRoom(t *testing.T) {
	h := startHost(t, hostOpts{tcp: true})
	alice := h.httpMember(t, "alice (HTTP)")
	bob := h.tcpMember(t, "bob (TCP)")
	id := alice.createRoom(t, "mixed")
	alice.invite(t, bob)
	bob.join(t, id, alice)

	s1 := alice.send(t, "hello from HTTP")
	s2 := bob.send(t, "hello from TCP")
	if s1 != 1 || s2 != 2 {
		t.Fatalf("sequence numbers %d, %d", s1, s2)
	}
	for _, m := range []*member{alice, bob} {
		got := m.read(t, 0)
		if len(got) != 2 || got[0] != "hello from HTTP" || got[1] != "hello from TCP" {
			t.Fatalf("%s reads %q", m.name, got)
		}
	}
	// The same authorization: a stranger over HTTP is refused as over TCP.
	stranger := h.connect(t, nil)
	_, err := stranger.Read(tctx(t), id, 0, 10, 0)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "unauthorized" || ae.Reason != "not-member" || !errors.Is(err, room.ErrNotMember) {
		t.Fatalf("stranger reads: %v, want 403 unauthorized not-member matching room.ErrNotMember", err)
	}
	// A TCP member cannot delete the HTTP master's room, over either front end.
	if err := bob.tcp.Delete(tctx(t), id); !errors.Is(err, room.ErrNotMaster) {
		t.Fatalf("member deletes over TCP: %v", err)
	}
	if err := alice.http.Delete(tctx(t), id); err != nil {
		t.Fatalf("master deletes over HTTP: %v", err)
	}
}

// rawDo sends req and returns the status and error body.
func rawDo(t testing.TB, req *http.Request) (int, *apiError, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return 200, nil, resp.Header
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("status %d with body %q, want the error JSON", resp.StatusCode, b)
	}
	return resp.StatusCode, &eb.Error, resp.Header
}

// TestRequestRejections: every bad request gets its status and code, and
// the listener, and the session, keep serving.
func TestRequestRejections(t *testing.T) {
	h := startHost(t, hostOpts{})
	alice := h.httpMember(t, "alice")
	id := alice.createRoom(t, "r")
	c := alice.http
	path := roomPath(id, "/messages")
	good := func() []byte {
		b, _ := json.Marshal(map[string][]byte{"message": alice.seal(t, "x")})
		return b
	}
	sign := func(method, target string, body []byte) *http.Request {
		req, err := c.NewRequest(tctx(t), method, target, body)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	type tc struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}
	var replayed *http.Request
	var replayBody []byte
	cases := []tc{
		{"replayed request", func() *http.Request {
			replayBody = good()
			replayed = sign(http.MethodPost, path, replayBody)
			if st, e, _ := rawDo(t, replayed); st != 200 {
				t.Fatalf("first send: %d %+v", st, e)
			}
			again, _ := http.NewRequestWithContext(tctx(t), http.MethodPost, replayed.URL.String(), bytes.NewReader(replayBody))
			again.Header = replayed.Header.Clone()
			return again
		}, 401, "replay"},
		{"altered body", func() *http.Request {
			req := sign(http.MethodPost, path, good())
			req.Body = io.NopCloser(bytes.NewReader(good()))
			return req
		}, 401, CodeBadMAC},
		{"another path", func() *http.Request {
			req := sign(http.MethodGet, roomPath(id, "/messages?after=0"), nil)
			req.URL.RawQuery = "after=1"
			return req
		}, 401, CodeBadMAC},
		{"wrong HMAC", func() *http.Request {
			req := sign(http.MethodPost, path, good())
			mac := []byte(req.Header.Get(HeaderMAC))
			mac[0] = "01"[(mac[0]-'0'+1)%2]
			if mac[0] == req.Header.Get(HeaderMAC)[0] {
				mac[0] = 'f'
			}
			req.Header.Set(HeaderMAC, string(mac))
			return req
		}, 401, CodeBadMAC},
		{"expired timestamp", func() *http.Request {
			old := c.Now
			c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
			defer func() { c.Now = old }()
			return sign(http.MethodPost, path, good())
		}, 401, "stale-timestamp"},
		{"unknown session", func() *http.Request {
			req := sign(http.MethodPost, path, good())
			req.Header.Set(HeaderSession, strings.Repeat("0", 32))
			return req
		}, 401, CodeUnknownSession},
		{"missing auth header", func() *http.Request {
			req := sign(http.MethodPost, path, good())
			req.Header.Del(HeaderNonce)
			return req
		}, 401, CodeMissingAuth},
		{"oversized body", func() *http.Request {
			b, _ := json.Marshal(map[string][]byte{"message": make([]byte, MaxBody)})
			return sign(http.MethodPost, path, b)
		}, 413, "too-large"},
		{"oversized body, chunked", func() *http.Request {
			b, _ := json.Marshal(map[string][]byte{"message": make([]byte, MaxBody)})
			req := sign(http.MethodPost, path, b)
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader(b))
			return req
		}, 413, "too-large"},
		{"malformed JSON", func() *http.Request { return sign(http.MethodPost, path, []byte(`{"message":`)) }, 400, "protocol"},
		{"unknown field", func() *http.Request {
			return sign(http.MethodPost, path, []byte(`{"message":"AA==","extra":1}`))
		}, 400, "protocol"},
		{"field twice", func() *http.Request {
			return sign(http.MethodPost, path, []byte(`{"message":"AA==","message":"AA=="}`))
		}, 400, "protocol"},
		{"missing field", func() *http.Request { return sign(http.MethodPost, path, []byte(`{}`)) }, 400, "protocol"},
		{"bad base64", func() *http.Request { return sign(http.MethodPost, path, []byte(`{"message":"!!"}`)) }, 400, "protocol"},
		{"wrong content type", func() *http.Request {
			req := sign(http.MethodPost, path, good())
			req.Header.Set("Content-Type", "text/plain")
			return req
		}, 415, CodeUnsupportedMedia},
		{"bad room id", func() *http.Request { return sign(http.MethodGet, "/v1/rooms/xyz/messages", nil) }, 400, "protocol"},
		{"unknown query parameter", func() *http.Request { return sign(http.MethodGet, path+"?x=1", nil) }, 400, "protocol"},
		{"wait too long", func() *http.Request { return sign(http.MethodGet, path+"?wait=99999999", nil) }, 400, "protocol"},
		{"no such room", func() *http.Request {
			return sign(http.MethodGet, "/v1/rooms/"+strings.Repeat("0", 32)+"/messages", nil)
		}, 404, "not-found"},
		{"no such endpoint", func() *http.Request { return sign(http.MethodGet, "/v1/nothing", nil) }, 404, "not-found"},
		{"wrong method", func() *http.Request { return sign(http.MethodPut, path, good()) }, 405, CodeMethodNotAllowed},
		{"a message that does not verify", func() *http.Request {
			blob := alice.seal(t, "y")
			blob[len(blob)-1] ^= 1
			b, _ := json.Marshal(map[string][]byte{"message": blob})
			return sign(http.MethodPost, path, b)
		}, 403, "bad-signature"},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			st, e, hdr := rawDo(t, k.req())
			if st != k.status || e == nil || e.Code != k.code {
				t.Fatalf("%d %+v, want %d %s", st, e, k.status, k.code)
			}
			if st == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The session and the listener keep serving.
	seq := alice.send(t, "still here")
	got := alice.read(t, 0)
	if len(got) != int(seq) || got[len(got)-1] != "still here" {
		t.Fatalf("after the rejections: %q (seq %d)", got, seq)
	}
	other := h.httpMember(t, "other")
	if _, err := other.http.ListRooms(tctx(t), [16]byte{}, 10); err != nil {
		t.Fatalf("a new client after the rejections: %v", err)
	}
}

// TestSessionLimits: the session's rate limit, idle expiry and delete.
func TestSessionLimits(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := startHost(t, hostOpts{tune: func(c *Config) { c.Now = clock.now; c.Rate = 1; c.Burst = 2 }})
	c := h.client(t, nil)
	c.Now = clock.now
	if err := c.Handshake(tctx(t)); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	var err error
	for range 3 {
		err = c.Do(tctx(t), http.MethodGet, "/v1/session", nil, nil)
	}
	if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != "rate-limited" {
		t.Fatalf("third request in a burst of 2: %v, want 429", err)
	}
	clock.advance(2 * time.Second)
	if err := c.Do(tctx(t), http.MethodGet, "/v1/session", nil, nil); err != nil {
		t.Fatalf("after the bucket refilled: %v", err)
	}
	clock.advance(DefaultIdleTimeout + time.Second)
	h.shim.sweep(clock.now())
	if err := c.Do(tctx(t), http.MethodGet, "/v1/session", nil, nil); !errors.As(err, &ae) || ae.Code != CodeUnknownSession {
		t.Fatalf("an idle session: %v, want 401 unknown-session", err)
	}
	// The peer's events are still recorded for a session that resumes,
	// for EventRetention.
	if st := h.shim.Stats(); st.Sessions != 0 || st.Journals != 1 {
		t.Fatalf("after expiry: %+v, want no session and the peer's journal", st)
	}
	clock.advance(DefaultEventRetention)
	h.shim.sweep(clock.now())
	if st := h.shim.Stats(); st.Sessions != 0 || st.Journals != 0 {
		t.Fatalf("after the event retention: %+v", st)
	}
	if err := c.Handshake(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := h.shim.Stats(); st.Sessions != 0 {
		t.Fatalf("after DELETE /v1/session: %+v", st)
	}
}

// TestLongPoll: a long poll returns when a message is posted.
func TestLongPoll(t *testing.T) {
	h := startHost(t, hostOpts{tune: func(c *Config) { c.MaxWait = 10 * time.Minute }})
	alice := h.httpMember(t, "alice")
	bob := h.httpMember(t, "bob")
	id := alice.createRoom(t, "poll")
	alice.invite(t, bob)
	bob.join(t, id, alice)
	if ms, err := bob.http.Read(tctx(t), id, 0, 10, 0); err != nil || len(ms) != 0 {
		t.Fatalf("empty room: %v %v", ms, err)
	}
	type result struct {
		ms  []MessageJSON
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Waits far longer than the hang deadline unless the message
		// wakes it.
		ms, err := bob.http.Read(tctx(t), id, 0, 10, 10*time.Minute)
		done <- result{ms, err}
	}()
	alice.send(t, "wake up")
	select {
	case r := <-done:
		if r.err != nil || len(r.ms) != 1 || bob.open(t, r.ms[0].Message) != "wake up" {
			t.Fatalf("long poll: %v %v", r.ms, r.err)
		}
	case <-time.After(hang):
		t.Fatal("the long poll did not return when a message was posted")
	}
}

// TestRoomEvents: the room's event stream delivers in order, and resumes
// from Last-Event-ID with no gap.
func TestRoomEvents(t *testing.T) {
	h := startHost(t, hostOpts{tcp: true})
	alice := h.httpMember(t, "alice")
	bob := h.tcpMember(t, "bob")
	id := alice.createRoom(t, "sse")
	alice.invite(t, bob)
	bob.join(t, id, alice)
	alice.send(t, "m1")

	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	es, err := alice.http.RoomEvents(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	want := func(es *EventStream, seq int, text string) {
		t.Helper()
		ev, err := es.Next()
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		var m MessageJSON
		if ev.Kind != "message" || ev.ID != fmt.Sprint(seq) || json.Unmarshal(ev.Data, &m) != nil || m.Seq != uint64(seq) {
			t.Fatalf("event %+v, want message %d", ev, seq)
		}
		if got := alice.open(t, m.Message); got != text {
			t.Fatalf("event %d holds %q, want %q", seq, got, text)
		}
	}
	want(es, 1, "m1")
	bob.send(t, "m2")
	bob.send(t, "m3")
	want(es, 2, "m2")
	want(es, 3, "m3")
	es.Close()
	bob.send(t, "m4")
	alice.send(t, "m5")
	es, err = alice.http.RoomEvents(ctx, id, "3")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	want(es, 4, "m4")
	want(es, 5, "m5")
	bob.send(t, "m6")
	want(es, 6, "m6")
}

// TestSessionEvents: key-sync and membership events with the peer's event
// counter, resumed from Last-Event-ID with no gap.
func TestSessionEvents(t *testing.T) {
	h := startHost(t, hostOpts{})
	alice := h.httpMember(t, "alice")
	bob := h.httpMember(t, "bob")
	carol := h.httpMember(t, "carol")
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	es, err := bob.http.Events(ctx, "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	id := alice.createRoom(t, "ev")
	alice.invite(t, bob) // bob: membership invite, key-sync
	first := nextEvent(t, es, "", "membership", id, 2)
	base, err := strconv.ParseUint(first, 10, 64)
	if err != nil {
		t.Fatalf("event id %q", first)
	}
	evID := func(n uint64) string { return strconv.FormatUint(base+n-1, 10) }
	nextEvent(t, es, evID(2), "key-sync", id, 2)
	es.Close()
	bob.join(t, id, alice)
	alice.invite(t, carol) // bob: membership (3), key-sync (4) while no stream is open
	es, err = bob.http.Events(ctx, "/v1/events", evID(2))
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	nextEvent(t, es, evID(3), "membership", id, 3)
	nextEvent(t, es, evID(4), "key-sync", id, 3)

	// An id the journal never gave: a lost event, then live events.
	es2, err := bob.http.Events(ctx, "/v1/events", evID(999))
	if err != nil {
		t.Fatal(err)
	}
	defer es2.Close()
	ev, err := es2.Next()
	if err != nil || ev.Kind != "lost" || ev.ID != evID(4) {
		t.Fatalf("resume from an unknown id: %+v %v, want lost with id %s", ev, err, evID(4))
	}
}

// nextEvent reads the next session event and checks it (wantID "": any).
func nextEvent(t *testing.T, es *EventStream, wantID, kind string, id store.RoomID, epoch uint64) string {
	t.Helper()
	ev, err := es.Next()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Room  string `json:"room"`
		Epoch uint64 `json:"epoch"`
	}
	json.Unmarshal(ev.Data, &d)
	if (wantID != "" && ev.ID != wantID) || ev.Kind != kind || d.Room != id.String() || d.Epoch != epoch {
		t.Fatalf("event %+v %s, want id %s %s epoch %d", ev, ev.Data, wantID, kind, epoch)
	}
	return ev.ID
}

// TestSessionEventsAcrossSessions: a peer's event counter outlives its
// sessions. A new session resumes from the last id of one that ended with
// no gap, events included that came while the peer had no session; after
// the retention, or once the idle journals overflow, a resume gets "lost"
// and the counter goes on above every id given, never restarting.
func TestSessionEventsAcrossSessions(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := startHost(t, hostOpts{tune: func(c *Config) { c.Now = clock.now; c.MaxIdleJournals = 1; c.IdleTimeout = 24 * time.Hour }})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	alice := h.httpMember(t, "alice")
	alice.http.Now = clock.now
	bobID := edIdentity(t)
	bobSecrets := newSecrets(t, bobID)
	session := func() *Client { // a new session of bob's
		t.Helper()
		c := h.client(t, bobID)
		c.Now = clock.now
		if err := c.Handshake(tctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.PublishKeyPackage(tctx(t), bobSecrets.KeyPackage().Blob()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	bob := &member{name: "bob", id: bobID, secrets: bobSecrets, http: session()}
	id := alice.createRoom(t, "ev")

	es, err := bob.http.Events(ctx, "/v1/events", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.invite(t, bob)
	nextEvent(t, es, "", "membership", id, 2)
	last := nextEvent(t, es, "", "key-sync", id, 2)
	es.Close()
	if err := bob.http.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := h.shim.Stats(); st.Sessions != 1 || st.Journals != 2 {
		t.Fatalf("after bob's session ended: %+v, want alice's session and both journals", st)
	}

	// While bob has no session: alice rotates the room twice.
	rotate := func() {
		t.Helper()
		epoch, _ := alice.st.Head()
		ms, err := alice.st.Members(epoch)
		if err != nil {
			t.Fatal(err)
		}
		var kps []*room.KeyPackage
		for _, x := range ms {
			kps = append(kps, alice.latestKeyPackage(t, x.Peer))
		}
		prop, err := alice.st.Rotate(alice.id, kps, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		alice.propose(t, prop)
		if err := alice.st.ApplyProposal(prop, alice.secrets); err != nil {
			t.Fatal(err)
		}
	}
	rotate()
	clock.advance(DefaultEventRetention / 2)
	h.shim.sweep(clock.now())

	// A new session resumes with no gap: the rotation's events follow.
	bob.http = session()
	es, err = bob.http.Events(ctx, "/v1/events", last)
	if err != nil {
		t.Fatal(err)
	}
	lastN, _ := strconv.ParseUint(last, 10, 64)
	nextEvent(t, es, strconv.FormatUint(lastN+1, 10), "membership", id, 3)
	last = nextEvent(t, es, strconv.FormatUint(lastN+2, 10), "key-sync", id, 3)
	es.Close()
	if err := bob.http.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}

	// Past the retention the journal is gone: a resume gets "lost" with
	// an id above every id given, and events go on from there.
	clock.advance(DefaultEventRetention)
	h.shim.sweep(clock.now())
	if st := h.shim.Stats(); st.Journals != 1 {
		t.Fatalf("after the retention: %+v, want alice's journal only", st)
	}
	clock.t = clock.t.Add(-time.Hour) // a clock set back cannot bring the ids back either
	bob.http = session()
	es, err = bob.http.Events(ctx, "/v1/events", last)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := es.Next()
	lastN, _ = strconv.ParseUint(last, 10, 64)
	if n, perr := strconv.ParseUint(ev.ID, 10, 64); err != nil || ev.Kind != "lost" || perr != nil || n <= lastN {
		t.Fatalf("resume after the retention: %+v %v, want lost with an id above %d", ev, err, lastN)
	}
	rotate()
	got, _ := strconv.ParseUint(nextEvent(t, es, "", "membership", id, 4), 10, 64)
	if lostN, _ := strconv.ParseUint(ev.ID, 10, 64); got != lostN+1 {
		t.Fatalf("the next event has id %d, after lost %d", got, lostN)
	}
	es.Close()

	// Idle journals beyond MaxIdleJournals (1): the one idle longest goes.
	if err := bob.http.Close(tctx(t)); err != nil { // bob's journal idle
		t.Fatal(err)
	}
	clock.advance(time.Second)
	if err := alice.http.Close(tctx(t)); err != nil { // alice's too: bob's goes
		t.Fatal(err)
	}
	h.shim.mu.Lock()
	_, bobKept := h.shim.journals[bobID.PeerID()]
	_, aliceKept := h.shim.journals[alice.id.PeerID()]
	h.shim.mu.Unlock()
	if bobKept || !aliceKept {
		t.Fatalf("with two idle journals and room for one: bob's kept %v, alice's %v; want alice's only", bobKept, aliceKept)
	}
}

// TestMetrics: /metrics exposes the named series.
func TestMetrics(t *testing.T) {
	h := startHost(t, hostOpts{})
	alice := h.httpMember(t, "alice")
	alice.createRoom(t, "m")
	alice.send(t, "counted")
	alice.read(t, 0)
	req, _ := alice.http.NewRequest(tctx(t), http.MethodGet, "/v1/session", nil)
	req.Header.Set(HeaderMAC, strings.Repeat("0", 64))
	rawDo(t, req)
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"lanpeer_http_sessions 1",
		`lanpeer_http_handshakes_total{mode="x25519",outcome="ok"} 1`,
		"lanpeer_http_messages_in_total 1",
		"lanpeer_http_messages_out_total 1",
		`lanpeer_http_rejections_total{reason="bad-mac"} 1`,
		`lanpeer_http_request_duration_seconds_bucket{method="POST",route="/v1/rooms/{room}/messages"`,
		"lanpeer_http_pending_handshakes 0",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if resp, err := http.Get(h.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestSessionsPerAddr: one client address holds at most
// MaxSessionsPerAddr sessions and pending handshakes, whatever identities
// it makes; one ending frees its slot.
func TestSessionsPerAddr(t *testing.T) {
	h := startHost(t, hostOpts{tune: func(c *Config) { c.MaxSessionsPerAddr = 2 }})
	a := h.connect(t, nil)
	h.connect(t, nil)
	var ae *APIError
	if err := h.client(t, nil).Handshake(tctx(t)); !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "busy" {
		t.Fatalf("a third session from one address: %v, want 503 busy", err)
	}
	if err := a.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}
	h.connect(t, nil)
	if st := h.shim.Stats(); st.Sessions != 2 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
