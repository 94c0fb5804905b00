package adversarial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/httpshim"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
)

// httpPeer is a peer serving the HTTP shim beside its TCP listener, over
// the same Service, as `lanpeer listen --http` does; the shim's
// http.Server is its HTTPServer, with its timeouts.
type httpPeer struct {
	*peer
	shim *httpshim.Server
	url  string
}

// startHTTPPeer starts p's shim on 127.0.0.1 until the test ends. tune
// adjusts the shim's configuration first; as in startPeer, the limits
// per address are off unless tune sets them.
func startHTTPPeer(t testing.TB, tune func(*httpshim.Config)) *httpPeer {
	t.Helper()
	p := startPeer(t, nil)
	cfg := httpshim.Config{Service: p.svc, Identity: p.id, HandshakeRate: -1, MaxSessionsPerAddr: -1}
	if tune != nil {
		tune(&cfg)
	}
	shim, err := httpshim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := shim.HTTPServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { // before the peer's cleanup: the shim uses its Service
		shim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("HTTP shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("HTTP Serve: %v", err)
		}
	})
	return &httpPeer{peer: p, shim: shim, url: "http://" + ln.Addr().String()}
}

// httpClient returns an HTTP client whose connections come from local
// address ip ("" for any); close its idle connections when done.
func httpClient(ip string) (*http.Client, *http.Transport) {
	d := &net.Dialer{Timeout: hang}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}
	return &http.Client{Transport: tr, Timeout: hang}, tr
}

// newHTTPClient is a shim client of id, pinned to hp's peer ID, from ip.
func (hp *httpPeer) newHTTPClient(t testing.TB, id *cryptosuite.Identity, ip string) *httpshim.Client {
	t.Helper()
	hc, tr := httpClient(ip)
	t.Cleanup(tr.CloseIdleConnections)
	return &httpshim.Client{BaseURL: hp.url, HTTPClient: hc, Identity: id, Expected: hp.id.PeerID()}
}

// serveHonestHTTP is an honest HTTP client from ip ("" for any): the
// handshake, a key package, a room list, then the session's end. It
// returns what went wrong, if anything.
func serveHonestHTTP(hp *httpPeer, ip string) error {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	hc, tr := httpClient(ip)
	defer tr.CloseIdleConnections()
	c := &httpshim.Client{BaseURL: hp.url, HTTPClient: hc, Identity: id, Expected: hp.id.PeerID()}
	if err := c.Handshake(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		return err
	}
	if err := c.PublishKeyPackage(ctx, secrets.KeyPackage().Blob()); err != nil {
		return fmt.Errorf("key package: %w", err)
	}
	if _, err := c.ListRooms(ctx, store.RoomID{}, 10); err != nil {
		return fmt.Errorf("list rooms: %w", err)
	}
	return c.Close(ctx)
}

// whileServingHTTP is whileServing for the shim: honest HTTP clients are
// served one after another (from ip, or each from its own address with
// spreadIPs) while attack runs, at least one after it began; after it, an
// honest HTTP client and an honest TCP client are served.
func whileServingHTTP(t *testing.T, hp *httpPeer, ip string, attack func()) {
	t.Helper()
	servedDuring(t, "HTTP client", ip, func(ip string) error { return serveHonestHTTP(hp, ip) }, attack)
	if err := serveHonestHTTP(hp, honestIP(ip, 1000)); err != nil {
		t.Fatalf("an honest HTTP client was not served after the attack: %v", err)
	}
	if err := serveHonest(hp.peer, honestIP(ip, 1001)); err != nil {
		t.Fatalf("an honest TCP client was not served after the attack: %v", err)
	}
}

// apiErr fails unless err is the shim's error with status and code (and
// reason, if not empty).
func apiErr(t testing.TB, what string, err error, status int, code, reason string) {
	t.Helper()
	var ae *httpshim.APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code || (reason != "" && ae.Reason != reason) {
		t.Errorf("%s: %v, want %d %s %s", what, err, status, code, reason)
	}
}
