package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/httpshim"
)

// TestListenHTTPS: listen --http --https serves the shim with the
// identity certificate; a client pinning the peer ID (what curl's
// --pinnedpubkey checks) completes the handshake and a signed request; a
// wrong pin is refused; the listener still exits 0 when stopped.
func TestListenHTTPS(t *testing.T) {
	lhome, lid := fixtureHome(t, "ed25519")
	l, _, _ := startListen(t, lhome, "--http", "127.0.0.1:0", "--https")
	url := waitMatch(t, l.stderr, `lanpeer: serving HTTP on (https://127\.0\.0\.1:\d+)\n`)[1]
	pinned := func(pin string) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // self-signed: the pin below is the check, as curl -k --pinnedpubkey
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				cert, err := x509.ParseCertificate(raw[0])
				if err != nil {
					return err
				}
				sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
				if hex.EncodeToString(sum[:]) != pin {
					return errors.New("pin mismatch")
				}
				return nil
			},
		}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	c := &httpshim.Client{BaseURL: url, HTTPClient: pinned(lid), Identity: id}
	if err := c.Handshake(ctx); err != nil {
		t.Fatalf("handshake over HTTPS pinned to the peer ID: %v", err)
	}
	if c.Peer().PeerID().String() != lid {
		t.Fatalf("the handshake's listener is %s, want %s", c.Peer().PeerID(), lid)
	}
	var sj httpshim.SessionJSON
	if err := c.Do(ctx, http.MethodGet, "/v1/session", nil, &sj); err != nil || sj.Peer != id.PeerID().String() {
		t.Fatalf("a signed request: %+v %v", sj, err)
	}
	wrong := &httpshim.Client{BaseURL: url, HTTPClient: pinned(hex.EncodeToString(make([]byte, 32))), Identity: id}
	if err := wrong.Handshake(ctx); err == nil {
		t.Fatal("a client pinning another key completed the handshake")
	}
	l.cancel()
	if code := l.wait(t); code != exitOK {
		t.Fatalf("listen: exit %d, %s", code, l.stderr.String())
	}
}

// TestListenHTTPFlags: --https alone is a usage error; a bare port is a
// loopback address.
func TestListenHTTPFlags(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	l := start(t, "listen", "--home", home, "--tcp", "127.0.0.1:0", "--https")
	if code := l.wait(t); code != exitUsage {
		t.Fatalf("--https without --http: exit %d, %s", code, l.stderr.String())
	}
	for in, want := range map[string]string{"8080": "127.0.0.1:8080", ":8080": "127.0.0.1:8080", "0.0.0.0:80": "0.0.0.0:80", "[::1]:80": "[::1]:80"} {
		if got := httpAddr(in); got != want {
			t.Errorf("httpAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
