package adversarial

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/httpshim"
	"github.com/lanpeer/lanpeer/session"
)

// trickle writes b to c one byte a second until the peer stops taking
// them or all are written, and returns how many were written.
func trickle(c net.Conn, b []byte) int {
	n := 0
	for ; n < len(b); n++ {
		if _, err := c.Write(b[n : n+1]); err != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return n
}

// TestAdversarialHTTPSlowloris (THREATS.md F4): a client that sends a
// request's headers one byte a second is cut off at the shim's
// ReadHeaderTimeout (net/http answers 400 at most), and one that sends its headers and then the body one
// byte a second at its ReadTimeout (the handler answers 400 protocol and
// the connection closes), each long before its request is complete,
// while honest HTTP clients are served.
func TestAdversarialHTTPSlowloris(t *testing.T) {
	hp := startHTTPPeer(t, func(c *httpshim.Config) {
		c.ReadHeaderTimeout, c.ReadTimeout = 2*time.Second, 3*time.Second
	})
	addr := strings.TrimPrefix(hp.url, "http://")
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, hang)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	whileServingHTTP(t, hp, "", func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the headers, a byte a second
			defer wg.Done()
			c := dial()
			req := []byte("GET /healthz HTTP/1.1\r\nHost: lanpeer\r\nUser-Agent: slowloris\r\n\r\n")
			sent := make(chan int, 1)
			go func() { sent <- trickle(c, req) }()
			c.SetReadDeadline(time.Now().Add(hang))
			got, err := io.ReadAll(c)
			c.Close()
			// net/http closes the connection, answering at most a plain
			// 400 for the partial request line.
			if n := <-sent; n >= len(req) || (len(got) != 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400 "))) || isTimeout(err) {
				t.Errorf("headers one byte a second: %d of %d bytes sent, %q answered (%v); want the connection cut",
					n, len(req), got, err)
			}
		}()
		go func() { // the headers at once, then the body a byte a second
			defer wg.Done()
			c := dial()
			body := bytes.Repeat([]byte(" "), 1000)
			hdr := fmt.Sprintf("POST /v1/handshake/init HTTP/1.1\r\nHost: lanpeer\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
			if _, err := c.Write([]byte(hdr)); err != nil {
				t.Error(err)
				return
			}
			sent := make(chan int, 1)
			go func() { sent <- trickle(c, body) }()
			c.SetReadDeadline(time.Now().Add(hang))
			got, err := io.ReadAll(c)
			c.Close()
			if n := <-sent; n >= len(body) || !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) ||
				!bytes.Contains(got, []byte(`"code":"protocol"`)) || isTimeout(err) {
				t.Errorf("a body one byte a second: %d of %d bytes sent, answered %q (%v); want 400 protocol and the connection cut",
					n, len(body), got, err)
			}
		}()
		wg.Wait()
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestAdversarialHTTPHandshakeFlood (THREATS.md F5): handshake inits from
// one address beyond its token bucket get 429 rate-limited before their
// body is read as JSON (let alone a signature checked), while clients from
// other addresses are served.
func TestAdversarialHTTPHandshakeFlood(t *testing.T) {
	hp := startHTTPPeer(t, func(c *httpshim.Config) { c.HandshakeRate, c.HandshakeBurst = 2, 3 })
	const flood = 200
	hc, tr := httpClient("127.0.0.2")
	defer tr.CloseIdleConnections()
	var limited, parsed int
	start := time.Now()
	whileServingHTTP(t, hp, spreadIPs, func() {
		for range flood {
			// An empty object: past the limiter it is a 400 (fields
			// missing), so the two outcomes tell where it was stopped.
			resp, err := hc.Post(hp.url+"/v1/handshake/init", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusTooManyRequests && bytes.Contains(b, []byte(`"rate-limited"`)) && resp.Header.Get("Retry-After") != "":
				limited++
			case resp.StatusCode == http.StatusBadRequest:
				parsed++
			default:
				t.Fatalf("a flooding init got %d %s", resp.StatusCode, b)
			}
		}
	})
	allowed := 3 + int(math.Ceil(time.Since(start).Seconds()*2))
	if parsed > allowed || limited < flood-allowed {
		t.Fatalf("flood of %d from one address: %d read, %d rate-limited; at most %d may pass", flood, parsed, limited, allowed)
	}
}

// initHTTP sends a signed hello of a fresh identity from client hc and
// returns the status and error code (empty on 200).
func initHTTP(t testing.TB, hp *httpPeer, hc *http.Client) (int, string) {
	t.Helper()
	id := newID(t)
	r, err := session.NewRequestor(&session.Config{Identity: id}, session.Params{Transport: session.TransportHTTP, Expected: hp.id.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Abort()
	hello, err := r.CreateHello()
	if err != nil {
		t.Fatal(err)
	}
	hj, err := httpshim.HelloToJSON(hello)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(hj)
	resp, err := hc.Post(hp.url+"/v1/handshake/init", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&eb)
	return resp.StatusCode, eb.Error.Code
}

// TestAdversarialHTTPPendingExhaustion (THREATS.md F5): Eve starts
// handshakes and never finishes them, each under an identity made for it.
// From one address she holds at most MaxSessionsPerAddr pending (503
// busy beyond), so clients from other addresses are served; from many
// addresses she fills MaxPending and no more (503 busy), and the slots
// come back when her handshakes expire after PendingTTL.
func TestAdversarialHTTPPendingExhaustion(t *testing.T) {
	const perAddr, maxPending = 4, 12
	hp := startHTTPPeer(t, func(c *httpshim.Config) {
		c.MaxSessionsPerAddr, c.MaxPending, c.PendingTTL = perAddr, maxPending, 2*time.Second
	})
	eve, tr := httpClient("127.0.0.2")
	defer tr.CloseIdleConnections()
	whileServingHTTP(t, hp, spreadIPs, func() {
		for i := range 3 * perAddr {
			st, code := initHTTP(t, hp, eve)
			if i < perAddr && st != http.StatusOK {
				t.Fatalf("init %d from eve's address: %d %s", i, st, code)
			}
			if i >= perAddr && (st != http.StatusServiceUnavailable || code != "busy") {
				t.Fatalf("init %d from eve's address: %d %s, want 503 busy", i, st, code)
			}
		}
	})
	// From one address after another until the shim is full.
	full := false
	for a := 3; a < 3+2*maxPending/perAddr && !full; a++ {
		hc, tr := httpClient(fmt.Sprintf("127.0.0.%d", a))
		for range perAddr {
			if st, code := initHTTP(t, hp, hc); st == http.StatusServiceUnavailable && code == "busy" {
				full = true
				break
			} else if st != http.StatusOK {
				t.Fatalf("init from 127.0.0.%d: %d %s", a, st, code)
			}
		}
		tr.CloseIdleConnections()
	}
	if st := hp.shim.Stats(); !full || st.Pending > maxPending {
		t.Fatalf("eve from many addresses: full %v, %d pending (max %d)", full, st.Pending, maxPending)
	}
	waitFor(t, "eve's handshakes to expire", func() bool { return hp.shim.Stats().Pending == 0 })
	if err := serveHonestHTTP(hp, "127.0.1.1"); err != nil {
		t.Fatalf("an honest client after the expiry: %v", err)
	}
}

// TestAdversarialHTTPSessionExhaustion (THREATS.md F5): Eve completes
// sessions and keeps them. One identity holds at most MaxSessionsPerPeer
// (refused beyond), one address at most MaxSessionsPerAddr whatever the
// identities (503 busy beyond), so clients from other addresses are
// served; from many addresses she fills MaxSessions and no more (503
// busy), and each session she ends frees its slot.
func TestAdversarialHTTPSessionExhaustion(t *testing.T) {
	const perPeer, perAddr, maxSessions = 2, 4, 10
	hp := startHTTPPeer(t, func(c *httpshim.Config) {
		c.MaxSessionsPerPeer, c.MaxSessionsPerAddr, c.MaxSessions = perPeer, perAddr, maxSessions
	})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	var kept []*httpshim.Client
	whileServingHTTP(t, hp, spreadIPs, func() {
		eve := newID(t)
		for i := range perPeer + 1 {
			c := hp.newHTTPClient(t, eve, "127.0.0.2")
			err := c.Handshake(ctx)
			if i < perPeer && err != nil {
				t.Fatalf("eve's session %d: %v", i, err)
			}
			if i < perPeer {
				kept = append(kept, c)
				continue
			}
			apiErr(t, "a third session of one identity", err, http.StatusServiceUnavailable, "busy", "")
		}
		for i := range perAddr {
			c := hp.newHTTPClient(t, newID(t), "127.0.0.2")
			err := c.Handshake(ctx)
			if len(kept) < perAddr && err != nil {
				t.Fatalf("eve's session from her address under identity %d: %v", i, err)
			}
			if len(kept) < perAddr {
				kept = append(kept, c)
				continue
			}
			apiErr(t, "a session beyond the address's limit", err, http.StatusServiceUnavailable, "busy", "")
		}
	})
	// From other addresses until the shim is full.
	var err error
	for a := 3; a < 3+maxSessions && err == nil; a++ {
		for range perAddr {
			c := hp.newHTTPClient(t, newID(t), fmt.Sprintf("127.0.0.%d", a))
			if err = c.Handshake(ctx); err != nil {
				break
			}
			kept = append(kept, c)
		}
	}
	apiErr(t, "a session beyond MaxSessions", err, http.StatusServiceUnavailable, "busy", "")
	if st := hp.shim.Stats(); len(kept) != maxSessions || st.Sessions != maxSessions {
		t.Fatalf("eve holds %d sessions, the shim %d (max %d)", len(kept), st.Sessions, maxSessions)
	}
	if err := serveHonestHTTP(hp, "127.0.1.1"); err == nil {
		t.Fatal("an honest client was served beyond MaxSessions")
	}
	// Eve's sessions still work, and one she ends frees a slot.
	if _, err := kept[0].ListRooms(ctx, [16]byte{}, 1); err != nil {
		t.Fatalf("eve's first session: %v", err)
	}
	if err := kept[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := serveHonestHTTP(hp, "127.0.1.1"); err != nil {
		t.Fatalf("an honest client after a session ended: %v", err)
	}
}

// TestAdversarialHTTPNonceExhaustion (THREATS.md F1): a session that
// sends request after request with fresh nonces, many times more within
// the timestamp window than it remembers (MaxNonces), cannot grow the
// listener's memory and is not cut off: the session forgets its oldest
// nonce and raises its replay floor to that nonce's timestamp, so it is
// served all the while, and a replay is refused whether its nonce is
// remembered (401 replay) or forgotten (401 stale-timestamp, at or below
// the floor). Other sessions are served all the while.
func TestAdversarialHTTPNonceExhaustion(t *testing.T) {
	const maxNonces = 32
	hp := startHTTPPeer(t, func(c *httpshim.Config) {
		c.MaxNonces, c.Rate, c.RequestSkew = maxNonces, -1, 3*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	eve := hp.newHTTPClient(t, newID(t), "")
	if err := eve.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	// Eve's timestamps increase by a millisecond a request (within the
	// window), as a clock's do at this rate.
	base, n := time.Now(), 0
	eve.Now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Millisecond) }
	whileServingHTTP(t, hp, "", func() {
		var first, last *http.Request
		for i := range 8 * maxNonces {
			req, err := eve.NewRequest(ctx, http.MethodGet, "/v1/session", nil)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = req.Clone(ctx)
			}
			last = req.Clone(ctx)
			resp, err := eve.HTTPClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("eve's request %d: %s", i, resp.Status)
			}
		}
		for _, c := range []struct {
			req  *http.Request
			code string
		}{{first, "stale-timestamp"}, {last, "replay"}} {
			resp, err := eve.HTTPClient.Do(c.req)
			if err != nil {
				t.Fatal(err)
			}
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != c.code {
				t.Fatalf("a replay: %s %q, want 401 %s", resp.Status, eb.Error.Code, c.code)
			}
		}
	})
	if err := eve.Do(ctx, http.MethodGet, "/v1/session", nil, nil); err != nil {
		t.Fatalf("eve's session after the replays: %v", err)
	}
}
