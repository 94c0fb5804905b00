package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// TestCertificate: the certificate holds the identity key, is self-signed
// with PSS (RSA) or Ed25519, and TLS may sign only with that scheme.
func TestCertificate(t *testing.T) {
	for _, c := range []struct {
		id     string
		alg    x509.SignatureAlgorithm
		scheme tls.SignatureScheme
	}{
		{"ed-a", x509.PureEd25519, tls.Ed25519},
		{"rsa2048", x509.SHA256WithRSAPSS, tls.PSSWithSHA256},
		{"rsa3072", x509.SHA256WithRSAPSS, tls.PSSWithSHA256},
	} {
		t.Run(c.id, func(t *testing.T) {
			id := identity(t, c.id)
			cert, err := newCertificate(id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if leaf.SignatureAlgorithm != c.alg {
				t.Errorf("signed with %v, want %v", leaf.SignatureAlgorithm, c.alg)
			}
			if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
				t.Errorf("self-signature: %v", err)
			}
			if cryptosuite.PeerIDFromSPKI(leaf.RawSubjectPublicKeyInfo) != id.PeerID() {
				t.Error("certificate key is not the identity key")
			}
			if leaf.Subject.CommonName != id.PeerID().String() {
				t.Errorf("subject %q", leaf.Subject.CommonName)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.NotAfter.Year() != 9999 {
				t.Errorf("serial %v, not after %v", leaf.SerialNumber, leaf.NotAfter)
			}
			if len(cert.SupportedSignatureAlgorithms) != 1 || cert.SupportedSignatureAlgorithms[0] != c.scheme {
				t.Errorf("TLS schemes %v, want only %v", cert.SupportedSignatureAlgorithms, c.scheme)
			}
			other, err := newCertificate(id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				t.Error("two certificates with one serial")
			}
		})
	}
}

// TestTLSProfile: the server refuses TLS 1.2, a missing client
// certificate, a chain of two, and a key that is not an identity key; the
// client refuses a server showing a chain.
func TestTLSProfile(t *testing.T) {
	scfg := serverConfig(identity(t, "ed-s"))
	logs := &logStore{}
	scfg.Logger = logs.logger()
	srv := startServer(t, scfg)

	good, err := newCertificate(identity(t, "ed-a"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := newCertificate(identity(t, "ed-b"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain := good
	chain.Certificate = [][]byte{good.Certificate[0], other.Certificate[0]}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	ecDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := tls.Certificate{Certificate: [][]byte{ecDER}, PrivateKey: ecKey}

	for _, c := range []struct {
		name       string
		cfg        *tls.Config
		wantLogged error
	}{
		{"tls1.2", &tls.Config{MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{good}, InsecureSkipVerify: true}, nil},
		{"no certificate", &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}, nil},
		{"chain", &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{chain}, InsecureSkipVerify: true}, ErrBadCertificate},
		{"ecdsa key", &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ecCert}, InsecureSkipVerify: true}, cryptosuite.ErrUnsupportedKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := srv.Stats().TLSFailures
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: hang}, "tcp", srv.Addr().String(), c.cfg)
			if err == nil {
				// TLS 1.3 clients learn of a refused certificate on their
				// first read.
				conn.SetReadDeadline(time.Now().Add(hang))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || isTimeout(err) {
				t.Fatalf("connection not refused: %v", err)
			}
			waitFor(t, "the TLS failure to be counted", func() bool { return srv.Stats().TLSFailures == before+1 })
			if c.wantLogged != nil && !anyIs(logs.errorsLogged("TLS handshake failed"), c.wantLogged) {
				t.Fatalf("logged %v, want %v", logs.errorsLogged("TLS handshake failed"), c.wantLogged)
			}
		})
	}

	t.Run("server chain", func(t *testing.T) {
		serverChain, err := newCertificate(identity(t, "ed-m"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		serverChain.Certificate = append(serverChain.Certificate, other.Certificate[0])
		cfg := serverTLSConfig(serverChain)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(hang))
			c.(*tls.Conn).Handshake()
			c.Close()
		}()
		_, err = dial(t, ln.Addr().String(), clientConfig(identity(t, "ed-a")))
		if !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("dial: %v, want ErrBadCertificate", err)
		}
		<-accepted
	})
}

// TestKeyCache: a key parsed once is given again for the same bytes and
// only for them; bytes that do not parse are refused every time and never
// kept; the cache stays within its bound.
func TestKeyCache(t *testing.T) {
	var kc keyCache
	a, b := identity(t, "ed-a").Public(), identity(t, "rsa2048").Public()
	pa, err := kc.parse(a.SPKI())
	if err != nil || !pa.Equal(a) {
		t.Fatalf("parse: %v, %v", pa, err)
	}
	if again, _ := kc.parse(a.SPKI()); again != pa {
		t.Fatal("the same bytes were parsed again")
	}
	if pb, err := kc.parse(b.SPKI()); err != nil || !pb.Equal(b) || pb.PeerID() == pa.PeerID() {
		t.Fatalf("another key: %v, %v", pb, err)
	}
	bad := a.SPKI()
	bad[len(bad)-1] ^= 1 // another Ed25519 key: parses
	if pk, err := kc.parse(bad); err != nil || pk.PeerID() == pa.PeerID() {
		t.Fatalf("a changed key: %v, %v", pk, err)
	}
	trunc := a.SPKI()[:20]
	for range 2 {
		if _, err := kc.parse(trunc); err == nil {
			t.Fatal("truncated key accepted")
		}
	}
	if _, ok := kc.m[string(trunc)]; ok {
		t.Fatal("a key that did not parse was kept")
	}
	for range maxCachedKeys + 10 {
		id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kc.parse(id.Public().SPKI()); err != nil {
			t.Fatal(err)
		}
	}
	if len(kc.m) > maxCachedKeys {
		t.Fatalf("%d keys kept, bound %d", len(kc.m), maxCachedKeys)
	}
}

// recConn records the writes that reach the connection.
type recConn struct {
	net.Conn
	writes [][]byte
}

func (c *recConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (c *recConn) Read(p []byte) (int, error) { return 0, io.EOF }

// TestHoldConn: what the requestor writes during the handshake reaches
// the connection, in order and whole, before it reads the answer and
// when it is released; after release writes pass straight through.
func TestHoldConn(t *testing.T) {
	rc := &recConn{}
	hc := &holdConn{Conn: rc, hold: true}
	hc.Write([]byte("flight"))
	hc.Write([]byte("hello"))
	if len(rc.writes) != 0 {
		t.Fatalf("written before a read: %q", rc.writes)
	}
	if _, err := hc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	if len(rc.writes) != 1 || string(rc.writes[0]) != "flighthello" {
		t.Fatalf("writes before the read: %q, want one of both flights", rc.writes)
	}
	hc.Write([]byte("alert"))
	if err := hc.release(); err != nil {
		t.Fatal(err)
	}
	hc.Write([]byte("yamux"))
	if len(rc.writes) != 3 || string(rc.writes[1]) != "alert" || string(rc.writes[2]) != "yamux" {
		t.Fatalf("writes: %q", rc.writes)
	}
}
