package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/httpshim"
	"github.com/lanpeer/lanpeer/node"
)

// The HTTP shim of `lanpeer listen --http` (docs/HTTP.md, "Peer HTTP
// shim"): beside the TCP listener, over the same Service.

func httpFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "http", Usage: "also serve the HTTP shim (docs/HTTP.md) on `ADDR`; a bare PORT or :PORT means 127.0.0.1:PORT"},
		&cli.BoolFlag{Name: "https", DisableDefaultText: true,
			Usage: "serve the HTTP shim over TLS with the identity certificate (curl: -k --pinnedpubkey sha256//BASE64 of the peer ID)"},
		&cli.DurationFlag{Name: "http-pending-ttl", Value: httpshim.DefaultPendingTTL, Usage: "`D`uration an HTTP handshake may take between init and finish"},
		&cli.IntFlag{Name: "http-max-pending", Value: httpshim.DefaultMaxPending, Usage: "`N` HTTP handshakes between init and finish"},
		&cli.IntFlag{Name: "http-max-sessions", Value: httpshim.DefaultMaxSessions, Usage: "`N` HTTP sessions"},
		&cli.IntFlag{Name: "http-max-sessions-per-addr", Value: httpshim.DefaultMaxSessionsPerAddr,
			Usage: "`N` HTTP sessions and pending handshakes begun from one client address (IPv4, or IPv6 /64); negative: no limit"},
		&cli.DurationFlag{Name: "http-idle", Value: httpshim.DefaultIdleTimeout, Usage: "an HTTP session without requests for this `D`uration ends"},
		&cli.Float64Flag{Name: "http-rate", Value: httpshim.DefaultRate, Usage: "`N` requests a second per HTTP session (bursts of twice that); negative: no limit"},
		&cli.DurationFlag{Name: "http-skew", Value: httpshim.DefaultRequestSkew, Usage: "an HTTP request's timestamp may be this `D`uration from this clock"},
	}
}

// httpAddr makes a bare port, or :PORT, a loopback address.
func httpAddr(s string) string {
	if !strings.Contains(s, ":") {
		return "127.0.0.1:" + s
	}
	if strings.HasPrefix(s, ":") {
		return "127.0.0.1" + s
	}
	return s
}

// httpShim is a running shim.
type httpShim struct {
	shim *httpshim.Server
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Addr returns the shim's address, nil without --http.
func (h *httpShim) Addr() net.Addr {
	if h == nil {
		return nil
	}
	return h.addr
}

// startHTTP starts the shim if --http is set (nil otherwise).
func startHTTP(c *cli.Context, p *peerSetup, id *cryptosuite.Identity, svc *node.Service, cfg *node.Config) (*httpShim, error) {
	if !c.IsSet("http") {
		if c.Bool("https") {
			return nil, usagef("--https needs --http ADDR")
		}
		return nil, nil
	}
	rate := c.Float64("http-rate")
	burst := 0
	if rate > 0 {
		burst = max(1, int(2*rate))
	}
	shim, err := httpshim.New(httpshim.Config{
		Service: svc, Identity: id, AEADs: cfg.AEADs, AllowRSA: cfg.AllowRSA, MaxClockSkew: cfg.MaxClockSkew,
		Allow: cfg.Allow, MaxSessionsPerPeer: cfg.MaxSessionsPerPeer,
		HandshakeRate: cfg.HandshakeRate, HandshakeBurst: cfg.HandshakeBurst,
		PendingTTL: c.Duration("http-pending-ttl"), MaxPending: c.Int("http-max-pending"),
		MaxSessions: c.Int("http-max-sessions"), IdleTimeout: c.Duration("http-idle"),
		MaxSessionsPerAddr: c.Int("http-max-sessions-per-addr"),
		Rate:               rate, Burst: burst, RequestSkew: c.Duration("http-skew"), Logger: p.log,
	})
	if err != nil {
		return nil, usagef("%v", err)
	}
	ln, err := net.Listen("tcp", httpAddr(c.String("http")))
	if err != nil {
		shim.Close()
		return nil, err
	}
	scheme := "http"
	srv := shim.HTTPServer()
	if c.Bool("https") {
		cert, err := node.NewCertificate(id, time.Now())
		if err != nil {
			shim.Close()
			ln.Close()
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	h := &httpShim{shim: shim, srv: srv, addr: ln.Addr(), done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(ln) }()
	p.notef("serving HTTP on %s://%s", scheme, ln.Addr())
	return h, nil
}

// stop ends the shim's streams and sessions, then shuts the server down
// within d.
func (h *httpShim) stop(d time.Duration) {
	if h == nil {
		return
	}
	h.shim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.srv.Close()
	}
	<-h.done // http.ErrServerClosed, or the listener's failure
}
