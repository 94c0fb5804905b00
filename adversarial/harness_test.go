package adversarial

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hang bounds every wait: far above the milliseconds each step takes, so
// only a hang reaches it.
const hang = 60 * time.Second

// peer is a real lanpeer peer on loopback: node.Listen with TLS and yamux,
// serving the room operations over a memory store, as `lanpeer listen`
// does.
type peer struct {
	id  *cryptosuite.Identity
	cfg *node.Config
	srv *node.Server
	svc *node.Service
}

// newID makes a fresh Ed25519 identity.
func newID(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rsaID loads a committed RSA fixture (tests never generate RSA keys).
func rsaID(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startPeer listens on 127.0.0.1 until the test ends. tune adjusts the
// configuration first; limits left alone are the defaults, except that
// the per-address ones are off unless tune sets them (every test client
// comes from loopback).
func startPeer(t testing.TB, tune func(*node.Config)) *peer {
	t.Helper()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := node.NewService(node.ServiceConfig{Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{id: newID(t), svc: svc}
	p.cfg = &node.Config{Identity: p.id, HandshakeRate: -1, MaxSessionsPerAddr: -1}
	if tune != nil {
		tune(p.cfg)
	}
	svc.Configure(p.cfg)
	p.srv, err = node.Listen("127.0.0.1:0", p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		p.srv.Close()
		if err := <-served; err != nil && !errors.Is(err, node.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
		svc.Close()
		mem.Close()
	})
	return p
}

// target is the pinned dial target of p.
func (p *peer) target() string { return p.id.PeerID().String() + "@" + p.srv.Addr().String() }

// serveHonest dials p as a fresh honest client from local address ip
// ("" for any) and runs a room request round trip (publish a key package,
// list rooms). It returns what went wrong, if anything.
func serveHonest(p *peer, ip string) error {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	cfg := &node.Config{Identity: id, Insecure: p.cfg.Insecure}
	if ip != "" {
		cfg.LocalAddr = ip + ":0"
	}
	c, err := node.Dial(ctx, p.target(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		return err
	}
	rc := node.NewRoomClient(c)
	if err := rc.PublishKeyPackage(ctx, secrets.KeyPackage().Blob()); err != nil {
		return err
	}
	_, err = rc.ListRooms(ctx, [16]byte{}, 10)
	return err
}

// whileServing runs attack while honest clients keep being served by p,
// one after another from 127.0.0.1 (or ip; spreadIPs gives each its own
// address in 127.0.1.0/24, clear of per-address limits), and fails the
// test unless
// every honest client was served, at least one of them after the attack
// began and one after it ended.
func whileServing(t *testing.T, p *peer, ip string, attack func()) {
	t.Helper()
	servedDuring(t, "client", ip, func(ip string) error { return serveHonest(p, ip) }, attack)
	if err := serveHonest(p, honestIP(ip, 1000)); err != nil {
		t.Fatalf("an honest client was not served after the attack: %v", err)
	}
}

// servedDuring runs attack while honest clients of one kind (what) are
// served one after another by serve, each from honestIP(ip, i); it fails
// the test unless every one of them was served and at least one after the
// attack began.
func servedDuring(t *testing.T, what, ip string, serve func(ip string) error, attack func()) {
	t.Helper()
	var stop atomic.Bool
	var served atomic.Int64
	errc := make(chan error, 1)
	go func() {
		var first error
		for i := 0; i < 1000 && (!stop.Load() || i == 0); i++ {
			if err := serve(honestIP(ip, i)); err != nil && first == nil {
				first = err
			} else if err == nil {
				served.Add(1)
			}
		}
		errc <- first
	}()
	attack()
	stop.Store(true)
	if err := <-errc; err != nil {
		t.Fatalf("an honest %s was not served during the attack: %v", what, err)
	}
	if served.Load() == 0 {
		t.Fatalf("no honest %s was served during the attack", what)
	}
}

// spreadIPs, as whileServing's ip, gives every honest client an address
// of its own.
const spreadIPs = "spread"

func honestIP(ip string, i int) string {
	if ip != spreadIPs {
		return ip
	}
	return fmt.Sprintf("127.0.1.%d", 1+i%250)
}

// certificate makes the self-signed certificate lanpeer peers show: the
// identity key, signed by itself with Ed25519 or RSA-PSS.
func certificate(t testing.TB, id *cryptosuite.Identity) tls.Certificate {
	t.Helper()
	name := pkix.Name{CommonName: id.PeerID().String()}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name, Issuer: name,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	schemes := []tls.SignatureScheme{tls.Ed25519}
	if _, ok := id.Public().CryptoPublicKey().(ed25519.PublicKey); !ok {
		tmpl.SignatureAlgorithm = x509.SHA256WithRSAPSS
		schemes = []tls.SignatureScheme{tls.PSSWithSHA256}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public().CryptoPublicKey(), id.Signer())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Signer(), SupportedSignatureAlgorithms: schemes}
}

// rawConn is an attacker's connection to a peer, past TLS (with the
// attacker's own certificate) and before lanpeer's handshake, on which the
// test writes whatever frames it likes.
type rawConn struct {
	net.Conn
	binding []byte // the TLS exporter value; nil without TLS
	r       *framing.Reader
	w       *framing.Writer
}

// dialRaw connects to p as id from local address ip ("" for any).
func dialRaw(t testing.TB, p *peer, id *cryptosuite.Identity, ip string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: hang}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	nc, err := d.Dial("tcp", p.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(hang))
	rc := &rawConn{Conn: nc}
	if !p.cfg.Insecure {
		tc := tls.Client(nc, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{certificate(t, id)},
			InsecureSkipVerify: true, NextProtos: []string{node.ALPN}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		cs := tc.ConnectionState()
		if rc.binding, err = cs.ExportKeyingMaterial(session.ExporterLabel, nil, session.BindingSize); err != nil {
			t.Fatal(err)
		}
		rc.Conn = tc
	}
	rc.r = framing.NewReader(rc.Conn, framing.MaxControlFrame)
	rc.w = framing.NewWriter(rc.Conn, framing.MaxFrameCeiling)
	return rc
}

// params are the requestor's Params for this connection to p.
func (c *rawConn) params(p *peer) session.Params {
	if c.binding == nil {
		return session.Params{Transport: session.TransportNoTLS, Expected: p.id.PeerID()}
	}
	return session.Params{Transport: session.TransportTLS, ChannelBinding: c.binding, Expected: p.id.PeerID()}
}

func (c *rawConn) send(t testing.TB, m wire.Message) {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.w.WriteFrame(b); err != nil {
		t.Fatal(err)
	}
}

// recv reads the peer's next message.
func (c *rawConn) recv(t testing.TB) wire.Message {
	t.Helper()
	p, err := c.r.ReadFrame()
	if err != nil {
		t.Fatalf("reading the peer's answer: %v", err)
	}
	m, err := wire.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refusedWith reads the peer's answer and fails unless it is an Error with
// code want, after which the peer closes the connection.
func (c *rawConn) refusedWith(t testing.TB, want wire.ErrorCode) {
	t.Helper()
	m := c.recv(t)
	e, ok := m.(*wire.Error)
	if !ok || e.Code != want {
		t.Fatalf("the peer answered %#v, want an Error %v", m, want)
	}
	if _, err := c.r.ReadFrame(); err == nil {
		t.Fatal("the peer kept the connection open after refusing")
	}
}

// waitFor polls cond until it holds or the hang deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// parallelDo runs n copies of f and waits for them.
func parallelDo(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

func newFrameReader(c net.Conn) *framing.Reader { return framing.NewReader(c, framing.MaxControlFrame) }

// startRelay is a man in the middle on plain TCP: it accepts connections
// on loopback, dials target for each, and passes the handshake's frames
// (two each way) through hook, which returns the payload to send instead;
// after them it copies bytes as they come. It returns its address.
func startRelay(t testing.TB, target string, hook func(toPeer bool, i int, payload []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, hang)
			if err != nil {
				in.Close()
				continue
			}
			for _, c := range []net.Conn{in, out} {
				c.SetDeadline(time.Now().Add(hang))
			}
			pipe := func(toPeer bool, src, dst net.Conn) {
				defer wg.Done()
				defer src.Close()
				defer dst.Close()
				r := framing.NewReader(src, framing.MaxFrameCeiling)
				w := framing.NewWriter(dst, framing.MaxFrameCeiling)
				for i := range 2 {
					p, err := r.ReadFrame()
					if err != nil {
						return
					}
					if w.WriteFrame(hook(toPeer, i, p)) != nil {
						return
					}
				}
				io.Copy(dst, src)
			}
			wg.Add(2)
			go pipe(true, in, out)
			go pipe(false, out, in)
		}
	}()
	return ln.Addr().String()
}
