package node

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// benchServerConfig lifts the limits a benchmark would hit: every session
// comes from one address and one identity, faster than any rate a real
// peer needs.
func benchServerConfig(id *cryptosuite.Identity) *Config {
	cfg := serverConfig(id)
	cfg.AllowRSA = true
	cfg.HandshakeRate = -1
	cfg.MaxSessionsPerPeer = -1
	cfg.MaxSessionsPerAddr = -1
	return cfg
}

// BenchmarkSession measures whole sessions, one after the other: TCP
// connect, TLS 1.3, the lanpeer handshake, yamux, close. "bare" is the
// same TCP, TLS profile and yamux without the lanpeer handshake, the floor
// the handshake adds to.
func BenchmarkSession(b *testing.B) {
	for _, c := range []struct {
		name   string
		kex    cryptosuite.KEXID
		rq, rs string
	}{
		{"x25519/ed25519", cryptosuite.KEXX25519, "ed-a", "ed-s"},
		{"p256/ed25519", cryptosuite.KEXP256, "ed-a", "ed-s"},
		{"x25519-mlkem768/ed25519", cryptosuite.KEXX25519MLKEM768, "ed-a", "ed-s"},
		{"x25519/rsa2048-rsa3072", cryptosuite.KEXX25519, "rsa2048", "rsa3072"},
		{"rsa/rsa2048-rsa3072", cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072"},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := startServer(b, benchServerConfig(identity(b, c.rs)))
			ccfg := clientConfig(identity(b, c.rq))
			ccfg.KEX, ccfg.AllowRSA = c.kex, true
			target := pinned(srv)
			ctx := context.Background()
			for b.Loop() {
				conn, err := Dial(ctx, target, ccfg)
				if err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
	for _, c := range []struct{ name, rq, rs string }{{"bare/ed25519", "ed-a", "ed-s"}, {"bare/rsa2048-rsa3072", "rsa2048", "rsa3072"}} {
		b.Run(c.name, func(b *testing.B) { benchBare(b, identity(b, c.rq), identity(b, c.rs)) })
	}
}

// benchBare runs TCP, TLS and yamux sessions with the same certificates and
// TLS profile as the node, without the lanpeer handshake. A yamux ping
// makes each side wait for the other, as the handshake's last flight does.
func benchBare(b *testing.B, rq, rs *cryptosuite.Identity) {
	cert, err := newCertificate(rs, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ccert, err := certificateFor(rq, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	lim, err := (&Config{Identity: rs}).resolve()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLSConfig(cert))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				if nc.(*tls.Conn).Handshake() != nil {
					return
				}
				mux, err := yamux.Server(nc, yamuxConfig(&lim, testLogger))
				if err != nil {
					return
				}
				<-mux.CloseChan()
			}()
		}
	}()
	ccfg := clientTLSConfig(ccert, func(*cryptosuite.PublicKey) error { return nil })
	for b.Loop() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(nc, ccfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		cs := tc.ConnectionState()
		if _, err := channelBinding(&cs); err != nil {
			b.Fatal(err)
		}
		mux, err := yamux.Client(tc, yamuxConfig(&lim, testLogger))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mux.Ping(); err != nil {
			b.Fatal(err)
		}
		mux.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	ln.Close()
	wg.Wait()
}

// BenchmarkStreamRoundTrip measures one frame out and back on an open
// stream of an established session.
func BenchmarkStreamRoundTrip(b *testing.B) {
	srv := startServer(b, benchServerConfig(identity(b, "ed-s")))
	conn := mustDial(b, pinned(srv), clientConfig(identity(b, "ed-a")))
	s, err := conn.OpenStream(context.Background(), kindEcho)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	msg := make([]byte, 256)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := s.WriteFrame(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
