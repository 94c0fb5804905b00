package bench

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// handshakeCase is one key agreement with one identity key type, both
// sides' keys of that type.
type handshakeCase struct {
	kex cryptosuite.KEXID
	key cryptosuite.KeyType
}

func (c handshakeCase) name() string {
	s, _ := cryptosuite.KEXByID(c.kex)
	return s.CLIName + "/" + string(c.key)
}

// handshakeCases: every key agreement with Ed25519 identities, and with
// RSA-3072 ones; the rsa mode only with RSA identities.
var handshakeCases = []handshakeCase{
	{cryptosuite.KEXX25519, cryptosuite.KeyEd25519},
	{cryptosuite.KEXP256, cryptosuite.KeyEd25519},
	{cryptosuite.KEXX25519MLKEM768, cryptosuite.KeyEd25519},
	{cryptosuite.KEXX25519, cryptosuite.KeyRSA3072},
	{cryptosuite.KEXRSAOAEPSHA256, cryptosuite.KeyRSA3072},
}

// HandshakeCases returns the handshake scenario's case names.
func HandshakeCases() []string {
	out := make([]string, len(handshakeCases))
	for i, c := range handshakeCases {
		out[i] = c.name()
	}
	return out
}

// Handshake measures full sessions per second — TCP connect, TLS 1.3,
// the lanpeer handshake, yamux, close, both sides in this process — with
// 4×GOMAXPROCS dialers at once, and beside it the bound: both sides' work
// without sockets or protocol (a TLS 1.3 handshake over an in-memory pipe
// with the same tls.Config and keys, the channel binding, and the
// handshake's signatures, verifications, key agreement, HKDF, sealing and
// MACs) by as many workers, at the same GOMAXPROCS. ratio_to_bound = handshakes_per_s /
// bound_per_s.
func Handshake(ctx context.Context, o *Options) ([]Result, error) {
	var out []Result
	for _, c := range handshakeCases {
		if len(o.Cases) > 0 && !slices.Contains(o.Cases, c.name()) {
			continue
		}
		o.logger().Info("handshake", "case", c.name())
		r, err := handshakeCase1(ctx, o, c)
		if err != nil {
			return nil, fmt.Errorf("bench: handshake %s: %w", c.name(), err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no handshake case named %q (cases: %v)", o.Cases, HandshakeCases())
	}
	return out, nil
}

func handshakeCase1(ctx context.Context, o *Options, c handshakeCase) (Result, error) {
	rq, err := cryptosuite.GenerateIdentity(c.key)
	if err != nil {
		return nil, err
	}
	rs, err := cryptosuite.GenerateIdentity(c.key)
	if err != nil {
		return nil, err
	}
	// Several handshakes per CPU at once, on both sides, so that a CPU is
	// not idle while one waits for the other side's flight.
	workers := 4 * runtime.GOMAXPROCS(0)
	h, err := startHost(ctx, o, rs, nil)
	if err != nil {
		return nil, err
	}
	defer h.close()
	bt, err := node.NewBareTransport(rs, rq, nil)
	if err != nil {
		return nil, err
	}
	// Alternate the two in rounds: on a machine whose load changes, each
	// gets its share of every period.
	per := o.duration() / handshakeRounds
	var fullN, boundN, errs int64
	var fullT, boundT time.Duration
	for range handshakeRounds {
		n, e, d, err := fullHandshakes(ctx, h, c, rq, workers, per)
		if err != nil {
			return nil, err
		}
		fullN, errs, fullT = fullN+n, errs+e, fullT+d
		n, d, err = boundHandshakes(ctx, bt, c, rq, rs, workers, per)
		if err != nil {
			return nil, err
		}
		boundN, boundT = boundN+n, boundT+d
	}
	full, bound := float64(fullN)/fullT.Seconds(), float64(boundN)/boundT.Seconds()
	return Result{
		{"kex", mustKEX(c.kex).CLIName},
		{"key", string(c.key)},
		{"workers", workers},
		{"handshakes_per_s", full},
		{"bound_per_s", bound},
		{"ratio_to_bound", ratio(full, bound)},
		{"errors", errs},
	}, nil
}

func mustKEX(id cryptosuite.KEXID) *cryptosuite.KEXSuite {
	s, ok := cryptosuite.KEXByID(id)
	if !ok {
		panic("bench: unknown key agreement")
	}
	return s
}

// handshakeRounds is how many times the scenario alternates between
// full handshakes and the bound.
const handshakeRounds = 4

// fullHandshakes runs sessions against host h for d with workers dialers
// and returns how many completed, how many failed, and the time taken.
func fullHandshakes(ctx context.Context, h *host, c handshakeCase, rq *cryptosuite.Identity, workers int, d time.Duration) (int64, int64, time.Duration, error) {
	target := h.target()
	var done, errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &node.Config{Identity: rq, KEX: c.kex, AllowRSA: true, LocalAddr: loopbackAddr(w) + ":0"}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				conn, err := node.Dial(ctx, target, cfg)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					if errs.Load() > 100 {
						return
					}
					continue
				}
				conn.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil && done.Load() == 0 {
		return 0, errs.Load(), 0, err
	}
	return done.Load(), errs.Load(), elapsed, ctx.Err()
}

// boundHandshakes runs the bare work of handshakes for d with workers
// goroutines and returns how many completed and the time taken.
func boundHandshakes(ctx context.Context, bt *node.BareTransport, c handshakeCase, rq, rs *cryptosuite.Identity, workers int, d time.Duration) (int64, time.Duration, error) {
	var done atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBareHandshake(c, rq, rs)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := b.run(bt); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, err
	}
	return done.Load(), time.Since(start), ctx.Err()
}

// bareHandshake is the cryptography of one lanpeer handshake, both
// sides, with layouts of the real sizes, as session's own benchmark
// does it.
type bareHandshake struct {
	rq, rs *cryptosuite.Identity
	suite  *cryptosuite.KEXSuite
	aead   *cryptosuite.AEADSuite
	sid    []byte
}

func newBareHandshake(c handshakeCase, rq, rs *cryptosuite.Identity) *bareHandshake {
	aead, _ := cryptosuite.AEADByID(cryptosuite.AEADA256CBCHS512)
	return &bareHandshake{rq: rq, rs: rs, suite: mustKEX(c.kex), aead: aead, sid: make([]byte, session.SessionIDSize)}
}

// run does one TLS 1.3 handshake over an in-memory pipe with bt's
// profiles, then the lanpeer handshake's cryptography in the order its
// flights need it.
func (h *bareHandshake) run(bt *node.BareTransport) error {
	binding, err := bareTLS(bt)
	if err != nil {
		return err
	}
	rsPeer := h.rs.PeerID()
	// Flight 1: the requestor's ephemeral key and signature.
	kex, err := h.suite.NewRequestor(cryptosuite.RequestorKEXConfig{Identity: h.rq})
	if err != nil {
		return err
	}
	nonce := make([]byte, session.NonceSize)
	rand.Read(nonce)
	l1 := canon.RequestorHello(&canon.RequestorHelloFields{
		Version: uint64(wire.Version), Transport: session.TransportTLS, ChannelBinding: binding,
		Requestor: h.rq.PeerID(), Responder: rsPeer[:], IdentityKey: h.rq.Public().SPKI(),
		SigAlg: uint16(h.rq.Public().Alg()), KEX: uint16(h.suite.ID), Share: kex.Share(),
		AEADs: []uint16{1, 2, 3}, Nonce: nonce, TimeMillis: uint64(time.Now().UnixMilli()),
	})
	sig1, err := h.rq.Sign(canon.LabelRequestorHello, l1)
	if err != nil {
		return err
	}
	// Flight 2: parse the key, verify, agree, derive, seal, sign.
	rqKey, err := cryptosuite.ParsePublicKey(h.rq.Public().SPKI())
	if err != nil {
		return err
	}
	if err := rqKey.Verify(canon.LabelRequestorHello, l1, sig1); err != nil {
		return err
	}
	share, shared, err := h.suite.Respond(kex.Share(), rqKey, cryptosuite.ResponderKEXConfig{})
	if err != nil {
		return err
	}
	l2 := canon.ResponderHello(&canon.ResponderHelloFields{
		RequestorHelloHash: sha256.Sum256(l1), RequestorSig: sig1, SessionID: h.sid, Responder: rsPeer,
		IdentityKey: h.rs.Public().SPKI(), SigAlg: uint16(h.rs.Public().Alg()), KEX: uint16(h.suite.ID),
		Share: share, AEAD: uint16(h.aead.ID), Nonce: nonce, TimeMillis: uint64(time.Now().UnixMilli()),
	})
	th := sha256.Sum256(l2)
	rsSched, err := schedule(shared, th, h.aead)
	if err != nil {
		return err
	}
	authKey := make([]byte, session.AuthKeySize)
	rand.Read(authKey)
	a, err := h.aead.New(rsSched[2])
	if err != nil {
		return err
	}
	sealed, err := cryptosuite.SealRandom(a, nil, nil, authKey, canon.AuthKeySealAAD(th, h.sid))
	if err != nil {
		return err
	}
	sig2, err := h.rs.Sign(canon.LabelResponderHello, l2)
	if err != nil {
		return err
	}
	// Flight 3: parse the key, verify, agree, derive, open, MAC.
	rsKey, err := cryptosuite.ParsePublicKey(h.rs.Public().SPKI())
	if err != nil {
		return err
	}
	if err := rsKey.Verify(canon.LabelResponderHello, l2, sig2); err != nil {
		return err
	}
	shared2, err := kex.Finish(share)
	if err != nil {
		return err
	}
	rqSched, err := schedule(shared2, th, h.aead)
	if err != nil {
		return err
	}
	a2, err := h.aead.New(rqSched[2])
	if err != nil {
		return err
	}
	opened, err := cryptosuite.OpenPrefixed(a2, nil, sealed, canon.AuthKeySealAAD(th, h.sid))
	if err != nil {
		return err
	}
	mac := finished(rqSched[3], th, sig2, sealed, opened)
	// The responder checks it.
	if !hmac.Equal(mac, finished(rsSched[3], th, sig2, sealed, authKey)) {
		return fmt.Errorf("bench: finished MACs differ")
	}
	return nil
}

// schedule derives the handshake's five keys (docs/PROTOCOL.md, "Key
// schedule"): c2s, s2c, auth key seal, finished, rekey.
func schedule(shared []byte, th [32]byte, aead *cryptosuite.AEADSuite) ([5][]byte, error) {
	var out [5][]byte
	prk, err := cryptosuite.HKDFExtract(shared, th[:])
	if err != nil {
		return out, err
	}
	for i, k := range []struct {
		label string
		n     int
	}{
		{canon.LabelC2S, aead.KeySize}, {canon.LabelS2C, aead.KeySize}, {canon.LabelAuthKeySeal, aead.KeySize},
		{canon.LabelFinishedKey, 32}, {canon.LabelRekey, 32},
	} {
		if out[i], err = cryptosuite.HKDFExpand(prk, []byte(k.label), k.n); err != nil {
			return out, err
		}
	}
	return out, nil
}

func finished(key []byte, th [32]byte, sig, sealed, authKey []byte) []byte {
	akh := sha256.Sum256(authKey)
	m := hmac.New(sha256.New, key)
	m.Write(canon.RequestorFinished(th, sig, sealed, akh))
	return m.Sum(nil)
}

// bareTLS runs one TLS 1.3 handshake with bt's profiles over net.Pipe
// (no socket) and returns the client's channel binding; the server
// computes its own, as the responder does.
func bareTLS(bt *node.BareTransport) ([]byte, error) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(c2, bt.Server)
		err := s.Handshake()
		if err == nil {
			cs := s.ConnectionState()
			_, err = node.ChannelBinding(&cs)
		}
		srvErr <- err
	}()
	cl := tls.Client(c1, bt.Client)
	err := cl.Handshake()
	var binding []byte
	if err == nil {
		cs := cl.ConnectionState()
		binding, err = node.ChannelBinding(&cs)
	}
	if err != nil {
		c1.Close() // unblocks the server
		<-srvErr
		return nil, err
	}
	if err := <-srvErr; err != nil {
		return nil, err
	}
	return binding, nil
}
