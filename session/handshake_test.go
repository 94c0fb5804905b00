package session

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Identities: Ed25519 made per run (cheap), RSA from committed fixtures.
var (
	fixtureOnce sync.Once
	fixtures    map[string]*cryptosuite.Identity
)

func identity(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtures = map[string]*cryptosuite.Identity{}
		for _, n := range []string{"rsa2048", "rsa3072"} {
			b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", n+".pem"))
			if err != nil {
				panic(err)
			}
			id, err := cryptosuite.ParseIdentityPEM(b)
			if err != nil {
				panic(err)
			}
			fixtures[n] = id
		}
		for _, n := range []string{"ed-a", "ed-b", "ed-c"} {
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err != nil {
				panic(err)
			}
			fixtures[n] = id
		}
	})
	id, ok := fixtures[name]
	if !ok {
		t.Fatalf("no fixture %q", name)
	}
	return id
}

type result struct {
	keys *Keys
	err  error
}

// runPair runs both sides over net.Pipe and returns their results.
func runPair(t *testing.T, rq, rs *Config, rqp, rsp Params) (result, result) {
	t.Helper()
	a, b := net.Pipe()
	deadline := time.Now().Add(60 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	var wg sync.WaitGroup
	var r1, r2 result
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer a.Close()
		r1.keys, r1.err = RunRequestor(a, rq, rqp)
	}()
	go func() {
		defer wg.Done()
		defer b.Close()
		r2.keys, r2.err = RunResponder(b, rs, rsp)
	}()
	wg.Wait()
	return r1, r2
}

func binding(b byte) []byte { return bytes.Repeat([]byte{b}, BindingSize) }

func tlsParams(expected cryptosuite.PeerID) (Params, Params) {
	return Params{Transport: TransportTLS, ChannelBinding: binding(7), Expected: expected},
		Params{Transport: TransportTLS, ChannelBinding: binding(7)}
}

func TestHandshakeModes(t *testing.T) {
	type tc struct {
		kex        cryptosuite.KEXID
		rq, rs     string
		wantRefuse error
	}
	var cases []tc
	for _, k := range []cryptosuite.KEXID{cryptosuite.KEXX25519, cryptosuite.KEXP256, cryptosuite.KEXX25519MLKEM768} {
		cases = append(cases, tc{k, "ed-a", "ed-b", nil}, tc{k, "rsa2048", "ed-b", nil}, tc{k, "ed-a", "rsa3072", nil})
	}
	cases = append(cases,
		tc{cryptosuite.KEXRSAOAEPSHA256, "rsa2048", "rsa3072", nil},
		tc{cryptosuite.KEXRSAOAEPSHA256, "rsa3072", "ed-b", nil},
		tc{cryptosuite.KEXRSAOAEPSHA256, "ed-a", "ed-b", ErrKEXRefused},
	)
	for _, c := range cases {
		t.Run(c.kex.String()+"/"+c.rq+"-"+c.rs, func(t *testing.T) {
			rqID, rsID := identity(t, c.rq), identity(t, c.rs)
			rq := &Config{Identity: rqID, KEX: c.kex, AllowRSA: true}
			rs := &Config{Identity: rsID, AllowRSA: true, Replay: NewReplayCache(0, 0)}
			p1, p2 := tlsParams(rsID.PeerID())
			r1, r2 := runPair(t, rq, rs, p1, p2)
			if c.wantRefuse != nil {
				if !errors.Is(r1.err, c.wantRefuse) {
					t.Fatalf("requestor: %v, want %v", r1.err, c.wantRefuse)
				}
				return
			}
			if r1.err != nil || r2.err != nil {
				t.Fatalf("requestor: %v; responder: %v", r1.err, r2.err)
			}
			k1, k2 := r1.keys, r2.keys
			if k1.SessionID != k2.SessionID || k1.TranscriptHash != k2.TranscriptHash ||
				!bytes.Equal(k1.C2S, k2.C2S) || !bytes.Equal(k1.S2C, k2.S2C) || k1.AuthKey != k2.AuthKey {
				t.Fatal("the two sides derived different keys")
			}
			if bytes.Equal(k1.C2S, k1.S2C) {
				t.Fatal("both directions share a key")
			}
			if k1.Peer.PeerID() != rsID.PeerID() || k2.Peer.PeerID() != rqID.PeerID() {
				t.Fatal("peers not as authenticated")
			}
			if k1.AEAD.ID != cryptosuite.AEADA256CBCHS512 || k1.KEX.ID != c.kex {
				t.Fatalf("suite %v mode %v", k1.AEAD.ID, k1.KEX.ID)
			}
		})
	}
}

// TestKnownKey: a known key is taken only for a hello whose identity key
// has its bytes; another key in the hello is parsed and checked as
// without one, so a known key never stands in for the key a peer signs
// with.
func TestKnownKey(t *testing.T) {
	rqID, rsID, other := identity(t, "ed-a"), identity(t, "ed-b"), identity(t, "ed-c")
	rq := &Config{Identity: rqID}
	rs := &Config{Identity: rsID, Replay: NewReplayCache(0, 0)}

	// The same keys: both sides take them.
	p1, p2 := tlsParams(rsID.PeerID())
	p1.KnownKey, p2.KnownKey = rsID.Public(), rqID.Public()
	r1, r2 := runPair(t, rq, rs, p1, p2)
	if r1.err != nil || r2.err != nil {
		t.Fatalf("requestor: %v; responder: %v", r1.err, r2.err)
	}
	if r1.keys.Peer != p1.KnownKey || r2.keys.Peer != p2.KnownKey {
		t.Fatal("a known key with the hello's bytes was parsed again")
	}

	// Another key known on the responder's side: the hello's own key is
	// the session's peer, and its signature is what was verified.
	p1, p2 = tlsParams(rsID.PeerID())
	p2.KnownKey = other.Public()
	r1, r2 = runPair(t, rq, rs, p1, p2)
	if r1.err != nil || r2.err != nil {
		t.Fatalf("requestor: %v; responder: %v", r1.err, r2.err)
	}
	if r2.keys.Peer.PeerID() != rqID.PeerID() {
		t.Fatalf("responder's peer %v, want the hello's key %v", r2.keys.Peer.PeerID(), rqID.PeerID())
	}

	// Another key known on the requestor's side (no peer expected): the
	// reply's own key is the session's peer.
	p1, p2 = tlsParams(cryptosuite.PeerID{})
	p1.KnownKey = other.Public()
	r1, r2 = runPair(t, rq, rs, p1, p2)
	if r1.err != nil || r2.err != nil {
		t.Fatalf("requestor: %v; responder: %v", r1.err, r2.err)
	}
	if r1.keys.Peer.PeerID() != rsID.PeerID() {
		t.Fatalf("requestor's peer %v, want the reply's key %v", r1.keys.Peer.PeerID(), rsID.PeerID())
	}
}
