package adversarial

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// helloFor builds a hello from id to p on connection c, signed by signer
// over the transcript as the responder rebuilds it, so the only thing
// wrong with it is what the test changes: kex and share, or sig after
// signing (resign = false leaves a given Sig).
func helloFor(t testing.TB, id *cryptosuite.Identity, c *rawConn, p *peer, kex cryptosuite.KEXID, share []byte) *wire.Hello {
	t.Helper()
	nonce := make([]byte, session.NonceSize)
	rand.Read(nonce)
	pid := p.id.PeerID()
	h := &wire.Hello{Version: wire.Version, Responder: pid[:], IdentityKey: id.Public().SPKI(),
		SigAlg: uint16(id.Public().Alg()), KEX: uint16(kex), Share: share,
		AEADs: []uint16{uint16(cryptosuite.AEADA256CBCHS512), uint16(cryptosuite.AEADAES256GCM)},
		Nonce: nonce, Time: time.Now().UnixMilli()}
	sig, err := id.Sign(canon.LabelRequestorHello, helloLayout(h, id, c))
	if err != nil {
		t.Fatal(err)
	}
	h.Sig = sig
	return h
}

// helloLayout is what the requestor signs (docs/PROTOCOL.md §6).
func helloLayout(h *wire.Hello, id *cryptosuite.Identity, c *rawConn) []byte {
	transport := session.TransportTLS
	if c.binding == nil {
		transport = session.TransportNoTLS
	}
	return canon.RequestorHello(&canon.RequestorHelloFields{Version: uint64(h.Version), Transport: transport,
		ChannelBinding: c.binding, Requestor: id.PeerID(), Responder: h.Responder, IdentityKey: h.IdentityKey,
		SigAlg: h.SigAlg, KEX: h.KEX, Share: h.Share, AEADs: h.AEADs, Nonce: h.Nonce, TimeMillis: uint64(h.Time)})
}

func x25519Share(t testing.TB) []byte {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestAdversarialHandshakeReplay (THREATS.md H1): a hello recorded on one
// connection and sent again on another is refused as a replay by the
// responder's nonce cache, which it consults before any signature work,
// with TLS and without. (Over TLS the signature would fail as well: it
// covers the first connection's channel binding; session's
// TestChannelBinding shows that check alone.)
func TestAdversarialHandshakeReplay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		insecure bool
		want     wire.ErrorCode
	}{{"tls", false, wire.CodeReplay}, {"tcp-notls", true, wire.CodeReplay}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPeer(t, func(c *node.Config) { c.Insecure = tc.insecure })
			eve := newID(t)
			whileServing(t, p, "", func() {
				first := dialRaw(t, p, eve, "")
				h, err := session.NewRequestor(&session.Config{Identity: eve}, first.params(p))
				if err != nil {
					t.Fatal(err)
				}
				hello, err := h.CreateHello()
				if err != nil {
					t.Fatal(err)
				}
				first.send(t, hello)
				if m := first.recv(t); m.Type() != wire.TypeHelloReply {
					t.Fatalf("the recorded hello was answered %#v", m)
				}
				first.Close()
				again := dialRaw(t, p, eve, "")
				again.send(t, hello)
				again.refusedWith(t, tc.want)
			})
			if st := p.srv.Stats(); st.HandshakeFailures < 2 || st.SessionsEstablished == 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestAdversarialReflection (THREATS.md H4): the peer's own hello, recorded
// when it dialed the attacker, is sent back to the peer's listener. Over
// TLS the attacker's certificate does not match the hello's identity;
// without TLS the peer sees its own identity. Both are refused (policy).
func TestAdversarialReflection(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		name := map[bool]string{false: "tls", true: "tcp-notls"}[insecure]
		t.Run(name, func(t *testing.T) {
			p := startPeer(t, func(c *node.Config) { c.Insecure = insecure })
			eve := newID(t)
			hello := captureHello(t, p, eve, insecure)
			whileServing(t, p, "", func() {
				c := dialRaw(t, p, eve, "")
				if err := c.w.WriteFrame(hello); err != nil {
					t.Fatal(err)
				}
				c.refusedWith(t, wire.CodePolicy)
			})
		})
	}
}

// captureHello makes p dial a listener of eve's and returns the payload
// of the hello p sends there.
func captureHello(t *testing.T, p *peer, eve *cryptosuite.Identity, insecure bool) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(hang))
		conn := net.Conn(nc)
		if !insecure {
			tc := tls.Server(nc, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{certificate(t, eve)},
				ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{node.ALPN}})
			if tc.Handshake() != nil {
				return
			}
			conn = tc
		}
		rc := &rawConn{Conn: conn}
		rc.r = newFrameReader(conn)
		if b, err := rc.r.ReadFrame(); err == nil {
			got <- bytes.Clone(b)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	// The peer dials out with its own identity, as `lanpeer dial` on the
	// same home does; it fails once eve hangs up.
	if c, err := node.Dial(ctx, ln.Addr().String(), &node.Config{Identity: p.id, Insecure: insecure}); err == nil {
		c.Close()
		t.Fatal("the dial to eve completed")
	}
	b := <-got
	if b == nil {
		t.Fatal("eve recorded no hello")
	}
	return b
}

// TestAdversarialInvalidShares (THREATS.md K2): a correctly signed hello
// whose ephemeral share is a small-order X25519 point (the all-zero
// shared secret), a point off the P-256 curve, or an ML-KEM key with
// unreduced coefficients is refused as a bad key share (code
// bad-signature) before the peer signs or seals anything. The control:
// the same hello with a real share is answered.
func TestAdversarialInvalidShares(t *testing.T) {
	p := startPeer(t, nil)
	eve := newID(t)
	p256, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := p256.PublicKey().Bytes()
	offCurve[len(offCurve)-1] ^= 1
	hybrid := append(bytes.Repeat([]byte{0xff}, 1184), x25519Share(t)...)
	cases := []struct {
		name  string
		kex   cryptosuite.KEXID
		share []byte
	}{
		{"x25519 zero (all-zero secret)", cryptosuite.KEXX25519, make([]byte, 32)},
		{"x25519 one", cryptosuite.KEXX25519, append([]byte{1}, make([]byte, 31)...)},
		{"x25519 order 8", cryptosuite.KEXX25519, mustHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")},
		{"x25519 short", cryptosuite.KEXX25519, make([]byte, 31)},
		{"p256 off the curve", cryptosuite.KEXP256, offCurve},
		{"p256 infinity", cryptosuite.KEXP256, []byte{0}},
		{"mlkem768 unreduced", cryptosuite.KEXX25519MLKEM768, hybrid},
	}
	whileServing(t, p, "", func() {
		c := dialRaw(t, p, eve, "")
		c.send(t, helloFor(t, eve, c, p, cryptosuite.KEXX25519, x25519Share(t)))
		if m := c.recv(t); m.Type() != wire.TypeHelloReply {
			t.Fatalf("control: a good hello was answered %#v", m)
		}
		for _, tc := range cases {
			c := dialRaw(t, p, eve, "")
			c.send(t, helloFor(t, eve, c, p, tc.kex, tc.share))
			c.refusedWith(t, wire.CodeBadSignature)
		}
	})
}

// TestAdversarialRSABadPadding (THREATS.md K1, finding 4): a hello from an
// RSA identity signed with anything but RSASSA-PSS (SHA-256, 32-byte
// salt) is refused: PKCS #1 v1.5 over the very same input, PSS with
// another salt length, a PSS signature with one bit flipped, a signature
// one byte short. The control: the right PSS signature is answered.
func TestAdversarialRSABadPadding(t *testing.T) {
	p := startPeer(t, nil)
	eve := rsaID(t, "rsa2048")
	priv := eve.Signer().(*rsa.PrivateKey)
	sign := func(h *wire.Hello, c *rawConn, f func(digest []byte) []byte) {
		in, err := canon.SignatureInput(canon.LabelRequestorHello, helloLayout(h, eve, c))
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(in)
		h.Sig = f(d[:])
	}
	pss := func(salt int) func([]byte) []byte {
		return func(d []byte) []byte {
			s, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d, &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	cases := map[string]func([]byte) []byte{
		"pkcs1v15": func(d []byte) []byte {
			s, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"pss salt 0":  pss(0),
		"pss salt 64": pss(64),
		"pss bit flipped": func(d []byte) []byte {
			s := pss(32)(d)
			s[len(s)/2] ^= 0x10
			return s
		},
		"pss one byte short": func(d []byte) []byte { return pss(32)(d)[1:] },
	}
	whileServing(t, p, "", func() {
		c := dialRaw(t, p, eve, "")
		h := helloFor(t, eve, c, p, cryptosuite.KEXX25519, x25519Share(t))
		sign(h, c, pss(32))
		c.send(t, h)
		if m := c.recv(t); m.Type() != wire.TypeHelloReply {
			t.Fatalf("control: the PSS-signed hello was answered %#v", m)
		}
		for name, f := range cases {
			c := dialRaw(t, p, eve, "")
			h := helloFor(t, eve, c, p, cryptosuite.KEXX25519, x25519Share(t))
			sign(h, c, f)
			c.send(t, h)
			t.Run(name, func(t *testing.T) { c.refusedWith(t, wire.CodeBadSignature) })
		}
	})
}

// TestAdversarialDowngrade (THREATS.md H7): a man in the middle of a
// tcp-notls connection (the one transport where it can reach the
// handshake: TLS pins both keys) strips the requestor's suite list to
// the one it prefers. The peer refuses the hello (bad-signature: the
// offer is signed) and the requestor's dial fails with the peer's code;
// nothing settles on the weaker suite.
func TestAdversarialDowngrade(t *testing.T) {
	p := startPeer(t, func(c *node.Config) { c.Insecure = true })
	relay := startRelay(t, p.srv.Addr().String(), func(toPeer bool, i int, payload []byte) []byte {
		if !toPeer || i != 0 {
			return payload
		}
		m, err := wire.Decode(payload)
		if err != nil {
			t.Errorf("relay: %v", err)
			return payload
		}
		h := m.(*wire.Hello)
		h.AEADs = h.AEADs[len(h.AEADs)-1:]
		b, err := wire.Encode(h)
		if err != nil {
			t.Errorf("relay: %v", err)
		}
		return b
	})
	whileServing(t, p, "", func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		_, err := node.Dial(ctx, p.id.PeerID().String()+"@"+relay, &node.Config{Identity: newID(t), Insecure: true,
			AEADs: []cryptosuite.AEADID{cryptosuite.AEADA256CBCHS512, cryptosuite.AEADChaCha20Poly1305}})
		var pe *session.PeerError
		if !errors.As(err, &pe) || pe.Code != wire.CodeBadSignature {
			t.Fatalf("dial through the stripping relay: %v, want the peer's bad-signature", err)
		}
	})
}
