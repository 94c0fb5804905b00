package cryptosuite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"testing"
)

func mustSuite(tb testing.TB, id KEXID) *KEXSuite {
	tb.Helper()
	s, ok := KEXByID(id)
	if !ok {
		tb.Fatalf("suite %v missing", id)
	}
	return s
}

// kexRun runs one full exchange and returns both shares and both secrets.
func kexRun(tb testing.TB, s *KEXSuite, rcfg RequestorKEXConfig, scfg ResponderKEXConfig, requestor *PublicKey) (reqShare, respShare, reqSecret, respSecret []byte) {
	tb.Helper()
	r, err := s.NewRequestor(rcfg)
	if err != nil {
		tb.Fatalf("%v: NewRequestor: %v", s, err)
	}
	reqShare = r.Share()
	respShare, respSecret, err = s.Respond(reqShare, requestor, scfg)
	if err != nil {
		tb.Fatalf("%v: Respond: %v", s, err)
	}
	reqSecret, err = r.Finish(respShare)
	if err != nil {
		tb.Fatalf("%v: Finish: %v", s, err)
	}
	return reqShare, respShare, reqSecret, respSecret
}

// kexRequestorConfig gives the config a real requestor of suite s would use:
// rsa needs the requestor's RSA identity.
func kexRequestorConfig(tb testing.TB, s *KEXSuite) (RequestorKEXConfig, *PublicKey) {
	if s.ID == KEXRSAOAEPSHA256 {
		id := sigFixture(tb, "rsa2048")
		return RequestorKEXConfig{Identity: id}, id.Public()
	}
	return RequestorKEXConfig{}, nil
}

func TestKEXTable(t *testing.T) {
	want := []struct {
		id            KEXID
		name, cli     string
		fs            bool
		req, resp, ss int
	}{
		{KEXX25519, "x25519", "x25519", true, 32, 32, 32},
		{KEXP256, "p256", "p256", true, 65, 65, 32},
		{KEXX25519MLKEM768, "x25519-mlkem768", "x25519-mlkem768", true, 1184 + 32, 1088 + 32, 64},
		{KEXRSAOAEPSHA256, "rsa-oaep-sha256", "rsa", false, 0, 512, 32},
	}
	got := KEXs()
	if len(got) != len(want) {
		t.Fatalf("KEXs() has %d suites, want %d", len(got), len(want))
	}
	for i, w := range want {
		s := got[i]
		if s.ID != w.id || s.Name != w.name || s.CLIName != w.cli || s.ForwardSecret != w.fs ||
			s.RequestorShareSize != w.req || s.ResponderShareSize != w.resp || s.SharedSize != w.ss {
			t.Errorf("suite %d = %+v, want %+v", i, *s, w)
		}
		if b, ok := KEXByID(w.id); !ok || b != s {
			t.Errorf("KEXByID(%#04x) = %v, %v", uint16(w.id), b, ok)
		}
		if b, ok := KEXByCLIName(w.cli); !ok || b != s {
			t.Errorf("KEXByCLIName(%q) = %v, %v", w.cli, b, ok)
		}
		if w.id.String() != w.name || s.String() != w.name {
			t.Errorf("String() = %q / %q, want %q", w.id.String(), s.String(), w.name)
		}
	}
	if got[0].ID != KEXX25519 {
		t.Errorf("default (first) suite is %v, want x25519", got[0])
	}
	// KEXs returns a copy: changing it must not reorder the table.
	got[0] = got[1]
	if KEXs()[0].ID != KEXX25519 {
		t.Error("KEXs() exposes the package table")
	}
	if _, ok := KEXByID(0x0009); ok {
		t.Error("KEXByID(9) found a suite")
	}
	if _, ok := KEXByCLIName("rsa-oaep-sha256"); ok {
		t.Error("KEXByCLIName accepts the suite name; the CLI spells it rsa")
	}
	if _, ok := KEXByCLIName("X25519"); ok {
		t.Error("KEXByCLIName is not case-sensitive")
	}
	if s := KEXID(0x0009).String(); s != "KEXID(0x0009)" {
		t.Errorf("unknown id String() = %q", s)
	}
	var zero KEXSuite
	if _, err := zero.NewRequestor(RequestorKEXConfig{}); err == nil {
		t.Error("zero KEXSuite made a requestor")
	}
	if _, _, err := zero.Respond(make([]byte, 32), nil, ResponderKEXConfig{}); err == nil {
		t.Error("zero KEXSuite responded")
	}
}

func TestKEXExchange(t *testing.T) {
	for _, s := range KEXs() {
		t.Run(s.Name, func(t *testing.T) {
			rcfg, rpub := kexRequestorConfig(t, s)
			reqShare, respShare, a, b := kexRun(t, s, rcfg, ResponderKEXConfig{}, rpub)
			if !bytes.Equal(a, b) {
				t.Fatalf("secrets differ:\n%x\n%x", a, b)
			}
			if len(a) != s.SharedSize {
				t.Errorf("secret of %d bytes, want %d", len(a), s.SharedSize)
			}
			if len(reqShare) != s.RequestorShareSize {
				t.Errorf("requestor share of %d bytes, want %d", len(reqShare), s.RequestorShareSize)
			}
			wantResp := s.ResponderShareSize
			if s.ID == KEXRSAOAEPSHA256 {
				wantResp = 2048 / 8 // the requestor's modulus
			}
			if len(respShare) != wantResp {
				t.Errorf("responder share of %d bytes, want %d", len(respShare), wantResp)
			}
		})
	}
}

// TestKEXRSAKeySizes runs the rsa mode with every accepted RSA size: the
// responder share is exactly the modulus size, and never above the suite's
// declared maximum.
func TestKEXRSAKeySizes(t *testing.T) {
	s := mustSuite(t, KEXRSAOAEPSHA256)
	for _, name := range []string{"rsa2048", "rsa3072", "rsa4096"} {
		id := sigFixture(t, name)
		_, resp, a, b := kexRun(t, s, RequestorKEXConfig{Identity: id}, ResponderKEXConfig{}, id.Public())
		if !bytes.Equal(a, b) {
			t.Errorf("%s: secrets differ", name)
		}
		if want := id.Public().CryptoPublicKey().(interface{ Size() int }).Size(); len(resp) != want || len(resp) > s.ResponderShareSize {
			t.Errorf("%s: responder share of %d bytes, want %d (max %d)", name, len(resp), want, s.ResponderShareSize)
		}
	}
}

func TestKEXFresh(t *testing.T) {
	for _, s := range KEXs() {
		t.Run(s.Name, func(t *testing.T) {
			rcfg, rpub := kexRequestorConfig(t, s)
			seenSecret := map[string]bool{}
			seenShare := map[string]bool{}
			for range 4 {
				reqShare, respShare, secret, _ := kexRun(t, s, rcfg, ResponderKEXConfig{}, rpub)
				if seenSecret[string(secret)] {
					t.Fatalf("secret repeated: %x", secret)
				}
				seenSecret[string(secret)] = true
				// rsa's requestor share is always empty; every other share
				// is a fresh ephemeral key.
				for _, sh := range [][]byte{reqShare, respShare} {
					if len(sh) > 0 && seenShare[string(sh)] {
						t.Fatalf("share repeated: %x", sh[:16])
					}
					seenShare[string(sh)] = true
				}
			}
		})
	}
}

// TestKEXSeededGolden pins the seeded code paths. x25519 uses RFC 7748 §6.1's
// keys, so its golden values are the RFC's. The p256 values were checked
// with `openssl pkeyutl -derive` (OpenSSL 3.0) from the same scalars.
func TestKEXSeededGolden(t *testing.T) {
	cases := []struct {
		id                      KEXID
		reqSeed, respSeed       string
		reqShare, respShare, ss string
	}{
		{
			KEXX25519,
			"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
		},
		{
			// Seeds: SHA-256("lanpeer p256 requestor seed"), SHA-256("lanpeer p256 responder seed").
			KEXP256,
			"f8aa9b6524f644717e15d27c9fe9a2547a665994ba1d5f9b0a919bea85306ddf",
			"9cb743a7d5ea4b976a69b6024615be4a39dc65b21aacadd047de172aca3ccfa6",
			"047d00cc5c2567c5304e737ddeffc6c1440b9fe4278eaca40ed615e7907047c91098f28db5358725d2a225cc4e49bfc3ff4d02fcfd01259f98bd3af0a83a392f00",
			"04c6722cf54dd3e87722248b95afdd9041246439b23ae1516f964921775ad39b7c2d9bf09e063e4d585679bd27af7b893320b70bba132dd4f2faae9ce8968a9d83",
			"f09529d831c09cd8b079f53fabbce31adb84a65a9c1d9f9418b184f4ce983fd3",
		},
	}
	for _, c := range cases {
		s := mustSuite(t, c.id)
		for run := range 2 {
			reqShare, respShare, a, b := kexRun(t, s,
				RequestorKEXConfig{Seed: kexMustHex(t, c.reqSeed)},
				ResponderKEXConfig{Seed: kexMustHex(t, c.respSeed)}, nil)
			for _, v := range []struct {
				what string
				got  []byte
				want string
			}{
				{"requestor share", reqShare, c.reqShare},
				{"responder share", respShare, c.respShare},
				{"requestor secret", a, c.ss},
				{"responder secret", b, c.ss},
			} {
				if hex.EncodeToString(v.got) != v.want {
					t.Errorf("%v run %d: %s = %x, want %s", s, run, v.what, v.got, v.want)
				}
			}
		}
	}
}

// kexDeterministicEncapsulation makes ML-KEM encapsulation use fixed
// randomness for the rest of the test (not parallel: it swaps a package
// variable).
func kexDeterministicEncapsulation(t *testing.T, random []byte) {
	old := mlkemEncapsulate
	mlkemEncapsulate = func(ek *mlkem.EncapsulationKey768) ([]byte, []byte, error) {
		return mlkemtest.Encapsulate768(ek, random)
	}
	t.Cleanup(func() { mlkemEncapsulate = old })
}

// TestKEXHybridLayout checks the seeded hybrid path against its parts, built
// independently with crypto/mlkem and crypto/ecdh: requestor share = ek ‖
// X25519 public, responder share = ciphertext ‖ X25519 public, secret =
// ML-KEM secret ‖ X25519 secret (TLS X25519MLKEM768 order, no combiner).
func TestKEXHybridLayout(t *testing.T) {
	mlkemSeed := bytes.Repeat([]byte{0x5a}, mlkem.SeedSize)
	encRandom := bytes.Repeat([]byte{0xa5}, 32)
	dh := struct{ a, b, ss string }{ // RFC 7748 §6.1
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
	}
	kexDeterministicEncapsulation(t, encRandom)

	dk, err := mlkem.NewDecapsulationKey768(mlkemSeed)
	if err != nil {
		t.Fatal(err)
	}
	wantK, wantCT, err := mlkemtest.Encapsulate768(dk.EncapsulationKey(), encRandom)
	if err != nil {
		t.Fatal(err)
	}
	xa, _ := ecdh.X25519().NewPrivateKey(kexMustHex(t, dh.a))
	xb, _ := ecdh.X25519().NewPrivateKey(kexMustHex(t, dh.b))

	s := mustSuite(t, KEXX25519MLKEM768)
	var golden [][]byte
	for run := range 2 {
		reqShare, respShare, a, b := kexRun(t, s,
			RequestorKEXConfig{Seed: append(bytes.Clone(mlkemSeed), kexMustHex(t, dh.a)...)},
			ResponderKEXConfig{Seed: kexMustHex(t, dh.b)}, nil)
		if want := append(dk.EncapsulationKey().Bytes(), xa.PublicKey().Bytes()...); !bytes.Equal(reqShare, want) {
			t.Errorf("requestor share is not ek ‖ X25519 public")
		}
		if want := append(bytes.Clone(wantCT), xb.PublicKey().Bytes()...); !bytes.Equal(respShare, want) {
			t.Errorf("responder share is not ciphertext ‖ X25519 public")
		}
		want := append(bytes.Clone(wantK), kexMustHex(t, dh.ss)...)
		if !bytes.Equal(a, want) || !bytes.Equal(b, want) {
			t.Errorf("secret is not ML-KEM secret ‖ X25519 secret:\n got %x / %x\nwant %x", a, b, want)
		}
		parts := [][]byte{reqShare, respShare, a}
		if golden == nil {
			golden = parts
		} else {
			for i := range parts {
				if !bytes.Equal(parts[i], golden[i]) {
					t.Errorf("seeded run %d differs from the first in part %d", run, i)
				}
			}
		}
	}
}

func TestKEXFinishOnce(t *testing.T) {
	for _, s := range KEXs() {
		t.Run(s.Name, func(t *testing.T) {
			rcfg, rpub := kexRequestorConfig(t, s)
			r, err := s.NewRequestor(rcfg)
			if err != nil {
				t.Fatal(err)
			}
			resp, _, err := s.Respond(r.Share(), rpub, ResponderKEXConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Finish(resp); err != nil {
				t.Fatal(err)
			}
			if r.st != nil {
				t.Error("private key still held after Finish")
			}
			if _, err := r.Finish(resp); !errors.Is(err, ErrKEXFinished) {
				t.Errorf("second Finish: %v, want ErrKEXFinished", err)
			}

			// A failed Finish also consumes the requestor, so a bad share
			// cannot be followed by retries against the same key.
			r, err = s.NewRequestor(rcfg)
			if err != nil {
				t.Fatal(err)
			}
			resp, _, err = s.Respond(r.Share(), rpub, ResponderKEXConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Finish(resp[:len(resp)-1]); !errors.Is(err, ErrBadKeyShare) {
				t.Fatalf("short share: %v, want ErrBadKeyShare", err)
			}
			if _, err := r.Finish(resp); !errors.Is(err, ErrKEXFinished) {
				t.Errorf("Finish after a failed Finish: %v, want ErrKEXFinished", err)
			}
		})
	}
}

// x25519 points that force the all-zero secret: u = 0, u = 1, and a point
// of order 8 (from the Wycheproof and libsodium low-order lists).
var kexX25519LowOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p - 1
}

// kexBadShares returns malformed shares for suite s, as the requestor would
// send them (requestor == true) or as the responder would.
func kexBadShares(t *testing.T, s *KEXSuite, requestor bool) map[string][]byte {
	size := s.ResponderShareSize
	if requestor {
		size = s.RequestorShareSize
	}
	bad := map[string][]byte{
		"empty":     {},
		"one short": make([]byte, max(size-1, 0)),
		"one long":  make([]byte, size+1),
	}
	if size == 0 { // rsa's requestor share: only "nothing" is right
		delete(bad, "empty")
		delete(bad, "one short")
	}
	switch s.ID {
	case KEXX25519:
		for i, u := range kexX25519LowOrder {
			bad["low order "+string(rune('a'+i))] = kexMustHex(t, u)
		}
	case KEXP256:
		k, _ := ecdh.P256().GenerateKey(rand.Reader)
		pt := k.PublicKey().Bytes()
		compressed := append([]byte{0x02 | pt[64]&1}, pt[1:33]...)
		bad["compressed"] = compressed
		bad["compressed, padded to 65"] = append(bytes.Clone(compressed), make([]byte, 32)...)
		offCurve := bytes.Clone(pt)
		offCurve[64] ^= 1
		bad["not on curve"] = offCurve
		wrongPrefix := bytes.Clone(pt)
		wrongPrefix[0] = 0x06 // hybrid encoding
		bad["hybrid prefix"] = wrongPrefix
		bad["all zero"] = make([]byte, 65)
		bad["infinity"] = []byte{0x00}
		// x = p: coordinates must be reduced.
		unreduced := bytes.Clone(pt)
		copy(unreduced[1:33], elliptic.P256().Params().P.FillBytes(make([]byte, 32)))
		bad["x = p"] = unreduced
	case KEXX25519MLKEM768:
		good := kexHybridShare(t, requestor)
		for i, u := range kexX25519LowOrder {
			b := bytes.Clone(good)
			copy(b[len(b)-32:], kexMustHex(t, u))
			bad["x25519 part low order "+string(rune('a'+i))] = b
		}
		if requestor {
			// The first coefficient set to 0xfff (>= q = 3329): not a
			// canonical ML-KEM-768 encapsulation key.
			b := bytes.Clone(good)
			b[0] = 0xff
			b[1] |= 0x0f
			bad["unreduced ML-KEM coefficient"] = b
		}
	}
	return bad
}

// kexHybridShare returns a well-formed hybrid share of either side.
func kexHybridShare(t *testing.T, requestor bool) []byte {
	s := mustSuite(t, KEXX25519MLKEM768)
	r, err := s.NewRequestor(RequestorKEXConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if requestor {
		return r.Share()
	}
	resp, _, err := s.Respond(r.Share(), nil, ResponderKEXConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestKEXBadShares(t *testing.T) {
	for _, s := range KEXs() {
		t.Run(s.Name, func(t *testing.T) {
			rcfg, rpub := kexRequestorConfig(t, s)
			for name, share := range kexBadShares(t, s, true) {
				if resp, ss, err := s.Respond(share, rpub, ResponderKEXConfig{}); !errors.Is(err, ErrBadKeyShare) || resp != nil || ss != nil {
					t.Errorf("Respond(%s): %v, want ErrBadKeyShare and no output", name, err)
				}
			}
			for name, share := range kexBadShares(t, s, false) {
				r, err := s.NewRequestor(rcfg)
				if err != nil {
					t.Fatal(err)
				}
				if ss, err := r.Finish(share); !errors.Is(err, ErrBadKeyShare) || ss != nil {
					t.Errorf("Finish(%s): %v, want ErrBadKeyShare and no secret", name, err)
				}
			}
		})
	}
}

// TestKEXRSAOneError: every responder share of the right length that does
// not decrypt to a 32-byte session secret gives the same error value, which
// is both ErrBadKeyShare and ErrDecrypt.
func TestKEXRSAOneError(t *testing.T) {
	s := mustSuite(t, KEXRSAOAEPSHA256)
	id := sigFixture(t, "rsa2048")
	pub := id.Public().CryptoPublicKey().(*rsa.PublicKey)
	_, good, _, _ := kexRun(t, s, RequestorKEXConfig{Identity: id}, ResponderKEXConfig{}, id.Public())

	oaep := func(key *rsa.PublicKey, msg, label []byte) []byte {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, key, msg, label)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	// Another 2048-bit key: the Wycheproof OAEP vector key.
	var f kexWycheproofFile[sigOAEPGroup]
	kexReadJSON(t, "wycheproof/testvectors_v1/rsa_oaep_2048_sha256_mgf1sha256_test.json", &f)
	otherID, err := ParseIdentityPEM([]byte(f.TestGroups[0].PrivateKeyPem))
	if err != nil {
		t.Fatal(err)
	}
	other := otherID.Public().CryptoPublicKey().(*rsa.PublicKey)
	secret := bytes.Repeat([]byte{1}, 32)

	bad := map[string][]byte{
		"all 0xff":       bytes.Repeat([]byte{0xff}, len(good)),
		"all zero":       make([]byte, len(good)),
		"to another key": oaep(other, secret, nil),
		"with a label":   oaep(pub, secret, []byte("lanpeer")),
		"31-byte secret": oaep(pub, secret[:31], nil),
		"33-byte secret": oaep(pub, append(bytes.Clone(secret), 0), nil),
		"empty secret":   oaep(pub, nil, nil),
	}
	// A spread of single-bit flips: each costs an RSA decryption.
	for i := 0; i < len(good); i += 31 {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		bad[fmt.Sprintf("bit flip at %d", i)] = b
	}
	for name, share := range bad {
		r, err := s.NewRequestor(RequestorKEXConfig{Identity: id})
		if err != nil {
			t.Fatal(err)
		}
		if ss, err := r.Finish(share); err != errRSAShare || ss != nil {
			t.Errorf("%s: %v, want the one rsa share error", name, err)
		}
	}
	if !errors.Is(errRSAShare, ErrBadKeyShare) || !errors.Is(errRSAShare, ErrDecrypt) {
		t.Error("rsa share error is not both ErrBadKeyShare and ErrDecrypt")
	}
}

func TestKEXRSANeedsRSA(t *testing.T) {
	s := mustSuite(t, KEXRSAOAEPSHA256)
	ed := sigEd25519(t)
	if _, _, err := s.Respond(nil, ed.Public(), ResponderKEXConfig{}); !errors.Is(err, ErrKEXNeedsRSA) {
		t.Errorf("Respond to an Ed25519 requestor: %v, want ErrKEXNeedsRSA", err)
	}
	if _, _, err := s.Respond(nil, nil, ResponderKEXConfig{}); !errors.Is(err, ErrKEXNeedsRSA) {
		t.Errorf("Respond without a requestor key: %v, want ErrKEXNeedsRSA", err)
	}
	if _, err := s.NewRequestor(RequestorKEXConfig{Identity: ed}); !errors.Is(err, ErrKEXNeedsRSA) {
		t.Errorf("NewRequestor with an Ed25519 identity: %v, want ErrKEXNeedsRSA", err)
	}
	if _, err := s.NewRequestor(RequestorKEXConfig{}); !errors.Is(err, ErrKEXNeedsRSA) {
		t.Errorf("NewRequestor without an identity: %v, want ErrKEXNeedsRSA", err)
	}
	// The ephemeral modes do not care what the identity key is.
	for _, id := range []KEXID{KEXX25519, KEXP256, KEXX25519MLKEM768} {
		kexRun(t, mustSuite(t, id), RequestorKEXConfig{Identity: ed}, ResponderKEXConfig{}, ed.Public())
	}
}

func TestKEXRSASeed(t *testing.T) {
	s := mustSuite(t, KEXRSAOAEPSHA256)
	id := sigFixture(t, "rsa2048")
	secret := bytes.Repeat([]byte{7}, 32)
	_, resp1, a, b := kexRun(t, s, RequestorKEXConfig{Identity: id}, ResponderKEXConfig{Seed: secret}, id.Public())
	_, resp2, _, _ := kexRun(t, s, RequestorKEXConfig{Identity: id}, ResponderKEXConfig{Seed: secret}, id.Public())
	if !bytes.Equal(a, secret) || !bytes.Equal(b, secret) {
		t.Errorf("seeded rsa secret %x / %x, want %x", a, b, secret)
	}
	if bytes.Equal(resp1, resp2) {
		t.Error("OAEP ciphertexts of the same secret are equal: padding is not random")
	}
	if _, _, err := s.Respond(nil, id.Public(), ResponderKEXConfig{Seed: secret[:31]}); err == nil {
		t.Error("31-byte rsa seed accepted")
	}
	if _, err := s.NewRequestor(RequestorKEXConfig{Identity: id, Seed: secret}); err == nil {
		t.Error("rsa requestor accepted a seed")
	}
}

func TestKEXBadSeeds(t *testing.T) {
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	cases := []struct {
		id   KEXID
		seed []byte
	}{
		{KEXX25519, make([]byte, 31)},
		{KEXX25519, make([]byte, 33)},
		{KEXX25519, []byte{}},
		{KEXP256, make([]byte, 32)}, // zero scalar
		{KEXP256, n},                // scalar = n
		{KEXP256, make([]byte, 31)},
		{KEXX25519MLKEM768, make([]byte, 64)},
		{KEXX25519MLKEM768, make([]byte, 97)},
		{KEXX25519MLKEM768, []byte{}},
	}
	for _, c := range cases {
		s := mustSuite(t, c.id)
		if _, err := s.NewRequestor(RequestorKEXConfig{Seed: c.seed}); err == nil || errors.Is(err, ErrBadKeyShare) {
			t.Errorf("%v: requestor seed of %d bytes: %v, want a config error", s, len(c.seed), err)
		}
		if c.id == KEXX25519MLKEM768 {
			continue // the responder's hybrid seed is the 32-byte X25519 key
		}
		r, _ := s.NewRequestor(RequestorKEXConfig{})
		if _, _, err := s.Respond(r.Share(), nil, ResponderKEXConfig{Seed: c.seed}); err == nil || errors.Is(err, ErrBadKeyShare) {
			t.Errorf("%v: responder seed of %d bytes: %v, want a config error", s, len(c.seed), err)
		}
	}
	s := mustSuite(t, KEXX25519MLKEM768)
	r, _ := s.NewRequestor(RequestorKEXConfig{})
	if _, _, err := s.Respond(r.Share(), nil, ResponderKEXConfig{Seed: make([]byte, 96)}); err == nil {
		t.Error("hybrid responder accepted a 96-byte seed (it takes the 32-byte X25519 key)")
	}
}

// RFC 7748 through the x25519 suite's seeded code path: the scalar is the
// requestor's (or responder's) seed and u the peer's share.

func kexX25519(t *testing.T, scalar, u []byte) []byte {
	t.Helper()
	s := mustSuite(t, KEXX25519)
	r, err := s.NewRequestor(RequestorKEXConfig{Seed: scalar})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Finish(u)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return out
}

func TestKEXRFC7748(t *testing.T) {
	var v kexRFC7748
	kexReadJSON(t, "rfc/rfc7748_x25519.json", &v)
	s := mustSuite(t, KEXX25519)
	if len(v.X25519) != 2 || len(v.Iterated.After) != 3 {
		t.Fatalf("unexpected vector file shape")
	}
	for _, c := range v.X25519 {
		if got := kexX25519(t, c.Scalar, c.U); !bytes.Equal(got, c.Output) {
			t.Errorf("%s requestor: %x, want %x", c.Section, got, c.Output)
		}
		_, got, err := s.Respond(c.U, nil, ResponderKEXConfig{Seed: c.Scalar})
		if err != nil || !bytes.Equal(got, c.Output) {
			t.Errorf("%s responder: %x, %v, want %x", c.Section, got, err, c.Output)
		}
	}

	k, u := bytes.Clone(v.Iterated.Initial), bytes.Clone(v.Iterated.Initial)
	done := 0
	for _, a := range v.Iterated.After {
		if a.Iterations > 1000 && os.Getenv("LANPEER_SLOW_VECTORS") != "1" {
			t.Logf("skipping the %d-iteration vector (set LANPEER_SLOW_VECTORS=1)", a.Iterations)
			continue
		}
		for ; done < a.Iterations; done++ {
			k, u = kexX25519(t, k, u), k
		}
		if !bytes.Equal(k, a.K) {
			t.Errorf("after %d iterations: %x, want %x", a.Iterations, k, a.K)
		}
	}

	dh := v.DH
	r, err := s.NewRequestor(RequestorKEXConfig{Seed: dh.AlicePrivate})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Share(), dh.AlicePublic) {
		t.Errorf("§6.1 Alice's public key %x, want %x", r.Share(), dh.AlicePublic)
	}
	resp, bobK, err := s.Respond(r.Share(), nil, ResponderKEXConfig{Seed: dh.BobPrivate})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp, dh.BobPublic) {
		t.Errorf("§6.1 Bob's public key %x, want %x", resp, dh.BobPublic)
	}
	aliceK, err := r.Finish(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(aliceK, dh.Shared) || !bytes.Equal(bobK, dh.Shared) {
		t.Errorf("§6.1 K = %x / %x, want %x", aliceK, bobK, dh.Shared)
	}
}

// TestKEXWycheproofX25519: valid cases give the exact secret through both
// sides; acceptable cases that force the all-zero secret are refused with
// ErrBadKeyShare (lanpeer's rule); the other acceptable cases (twist points,
// non-canonical u) are accepted as RFC 7748 asks, with the exact secret.
func TestKEXWycheproofX25519(t *testing.T) {
	f := kexLoadWycheproof[kexXDHGroup](t, "x25519_test.json", "xdh_comp_schema_v1.json")
	s := mustSuite(t, KEXX25519)
	var tally kexTally
	zeroRefused := 0
	for _, g := range f.TestGroups {
		if g.Curve != "curve25519" {
			t.Fatalf("curve %q", g.Curve)
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			r, err := s.NewRequestor(RequestorKEXConfig{Seed: c.Private})
			if err != nil {
				t.Fatalf("tcId %d: seed: %v", c.TcID, err)
			}
			got, errReq := r.Finish(c.Public)
			_, gotResp, errResp := s.Respond(c.Public, nil, ResponderKEXConfig{Seed: c.Private})
			mustReject := c.Result == "invalid" || c.hasFlag("ZeroSharedSecret")
			if mustReject {
				if !errors.Is(errReq, ErrBadKeyShare) || !errors.Is(errResp, ErrBadKeyShare) {
					t.Errorf("tcId %d (%s %v): accepted (%v / %v)", c.TcID, c.Result, c.Flags, errReq, errResp)
				}
				if c.hasFlag("ZeroSharedSecret") {
					zeroRefused++
				}
				continue
			}
			if errReq != nil || errResp != nil || !bytes.Equal(got, c.Shared) || !bytes.Equal(gotResp, c.Shared) {
				t.Errorf("tcId %d (%s %v): %x / %x (%v / %v), want %x", c.TcID, c.Result, c.Flags, got, gotResp, errReq, errResp, c.Shared)
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "acceptable")
	if zeroRefused == 0 {
		t.Error("no all-zero-secret case ran")
	}
}

// kexP256Scalar turns Wycheproof's big-endian private integer (which may
// carry a sign byte or be short) into the 32-byte seed.
func kexP256Scalar(t *testing.T, b []byte) []byte {
	d := new(big.Int).SetBytes(b)
	if d.BitLen() > 256 {
		t.Fatalf("private key of %d bits", d.BitLen())
	}
	return d.FillBytes(make([]byte, 32))
}

// kexP256Check runs one P-256 case through both sides with the raw point
// (nil point: refused before the suite, e.g. by SPKI parsing) and reports
// the secrets and errors.
func kexP256Check(t *testing.T, private, point []byte) (got [2][]byte, errs [2]error) {
	s := mustSuite(t, KEXP256)
	seed := kexP256Scalar(t, private)
	r, err := s.NewRequestor(RequestorKEXConfig{Seed: seed})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	got[0], errs[0] = r.Finish(point)
	_, got[1], errs[1] = s.Respond(point, nil, ResponderKEXConfig{Seed: seed})
	return got, errs
}

// TestKEXWycheproofP256Point: raw X9.62 points through the p256 suite.
// Valid cases give the exact secret; invalid ones and compressed points
// (the one acceptable case) are ErrBadKeyShare.
func TestKEXWycheproofP256Point(t *testing.T) {
	f := kexLoadWycheproof[kexECDHGroup](t, "ecdh_secp256r1_ecpoint_test.json", "ecdh_ecpoint_test_schema_v1.json")
	var tally kexTally
	for _, g := range f.TestGroups {
		if g.Curve != "secp256r1" || g.Encoding != "ecpoint" {
			t.Fatalf("group %s/%s", g.Curve, g.Encoding)
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			got, errs := kexP256Check(t, c.Private, c.Public)
			switch {
			case c.Result == "valid":
				for i := range 2 {
					if errs[i] != nil || !bytes.Equal(got[i], c.Shared) {
						t.Errorf("tcId %d side %d: %x, %v, want %x", c.TcID, i, got[i], errs[i], c.Shared)
					}
				}
			case c.Result == "invalid" || c.hasFlag("CompressedPoint"):
				for i := range 2 {
					if !errors.Is(errs[i], ErrBadKeyShare) {
						t.Errorf("tcId %d (%s %v) side %d: %v, want ErrBadKeyShare", c.TcID, c.Result, c.Flags, i, errs[i])
					}
				}
			default:
				t.Errorf("tcId %d: unexpected acceptable case %v", c.TcID, c.Flags)
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid", "acceptable")
}

// TestKEXWycheproofP256SPKI: the same exchange with the public key in SPKI
// form, as a peer's key would reach an X.509 parser: ParsePKIXPublicKey,
// then the uncompressed point into the p256 suite. Valid: exact secret.
// Invalid: refused somewhere on that path. Acceptable (odd ASN.1, explicit
// curve parameters): either, but if accepted then with the exact secret;
// compressed points are always refused.
func TestKEXWycheproofP256SPKI(t *testing.T) {
	f := kexLoadWycheproof[kexECDHGroup](t, "ecdh_secp256r1_test.json", "ecdh_test_schema_v1.json")
	var tally kexTally
	for _, g := range f.TestGroups {
		if g.Curve != "secp256r1" || g.Encoding != "asn" {
			t.Fatalf("group %s/%s", g.Curve, g.Encoding)
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			var point []byte
			if k, err := x509.ParsePKIXPublicKey(c.Public); err == nil {
				if ek, ok := k.(*ecdsa.PublicKey); ok && ek.Curve == elliptic.P256() {
					point, _ = ek.Bytes()
				}
			}
			got, errs := kexP256Check(t, c.Private, point)
			accepted := errs[0] == nil && errs[1] == nil
			if errs[0] != nil && point != nil && !errors.Is(errs[0], ErrBadKeyShare) {
				t.Errorf("tcId %d: suite error %v is not ErrBadKeyShare", c.TcID, errs[0])
			}
			if (errs[0] == nil) != (errs[1] == nil) {
				t.Errorf("tcId %d: sides disagree: %v / %v", c.TcID, errs[0], errs[1])
			}
			switch {
			case c.Result == "valid" && !accepted:
				t.Errorf("tcId %d: valid case refused: %v / %v", c.TcID, errs[0], errs[1])
			case (c.Result == "invalid" || c.hasFlag("CompressedPoint")) && accepted:
				t.Errorf("tcId %d (%s %v): accepted", c.TcID, c.Result, c.Flags)
			case accepted && (!bytes.Equal(got[0], c.Shared) || !bytes.Equal(got[1], c.Shared)):
				t.Errorf("tcId %d: %x / %x, want %x", c.TcID, got[0], got[1], c.Shared)
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid", "acceptable")
}

// TestKEXWycheproofMLKEM768 drives the ML-KEM half of the hybrid suite with
// the vectors: the seed (d ‖ z) is the first 64 bytes of the requestor's
// seed, so the share must start with the vector's ek; decapsulating c (the
// first 1088 bytes of the responder's share) must give K as the first half
// of the secret. Malformed seeds must be refused by NewRequestor and
// ciphertexts of the wrong length with ErrBadKeyShare. For a sample of the
// valid keys the responder side must accept ek and its encapsulation must
// decapsulate.
func TestKEXWycheproofMLKEM768(t *testing.T) {
	f := kexLoadWycheproof[kexMLKEMGroup](t, "mlkem_768_test.json", "mlkem_test_schema.json")
	s := mustSuite(t, KEXX25519MLKEM768)
	kexDeterministicEncapsulation(t, bytes.Repeat([]byte{0x3c}, 32))
	// RFC 7748 §6.1 keys for the X25519 half.
	xa := kexMustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	xbPub := kexMustHex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	xK := kexMustHex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
	var tally kexTally
	for _, g := range f.TestGroups {
		if g.ParameterSet != "ML-KEM-768" {
			t.Fatalf("parameter set %q", g.ParameterSet)
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			r, err := s.NewRequestor(RequestorKEXConfig{Seed: append(bytes.Clone(c.Seed), xa...)})
			if len(c.Seed) != mlkem.SeedSize {
				if c.Result != "invalid" {
					t.Errorf("tcId %d: %d-byte seed in a %s case", c.TcID, len(c.Seed), c.Result)
				}
				if err == nil {
					t.Errorf("tcId %d: %d-byte ML-KEM seed accepted", c.TcID, len(c.Seed))
				}
				continue
			}
			if err != nil {
				t.Fatalf("tcId %d: %v", c.TcID, err)
			}
			share := r.Share()
			if c.EK != nil && !bytes.Equal(share[:mlkem.EncapsulationKeySize768], c.EK) {
				t.Errorf("tcId %d: encapsulation key differs from the vector's ek", c.TcID)
			}
			secret, err := r.Finish(append(bytes.Clone(c.C), xbPub...))
			if c.Result == "valid" {
				if err != nil || !bytes.Equal(secret[:32], c.K) || !bytes.Equal(secret[32:], xK) {
					t.Errorf("tcId %d: secret %x (%v), want K = %x then the X25519 secret", c.TcID, secret, err, c.K)
				}
			} else if !errors.Is(err, ErrBadKeyShare) {
				t.Errorf("tcId %d (%s): %v, want ErrBadKeyShare", c.TcID, c.Comment, err)
			}
			if c.Result != "valid" || c.TcID%8 != 1 {
				continue
			}
			// Responder side on the same key, for a sample of the keys
			// (every case costs two more key generations).
			r2, _ := s.NewRequestor(RequestorKEXConfig{Seed: append(bytes.Clone(c.Seed), xa...)})
			resp, b, err := s.Respond(r2.Share(), nil, ResponderKEXConfig{})
			if err != nil {
				t.Errorf("tcId %d: responder refused the vector's ek: %v", c.TcID, err)
				continue
			}
			a, err := r2.Finish(resp)
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("tcId %d: encapsulation to the vector key does not round-trip: %v", c.TcID, err)
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid")
}

// TestKEXShareCopies: Share returns a copy, so a caller scribbling on it
// cannot change what Finish computes or what the next Share returns.
func TestKEXShareCopies(t *testing.T) {
	s := mustSuite(t, KEXX25519)
	r, err := s.NewRequestor(RequestorKEXConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Share()
	want := bytes.Clone(a)
	a[0] ^= 0xff
	if !bytes.Equal(r.Share(), want) {
		t.Error("Share exposes internal state")
	}
}

// TestKEXConcurrentFinish: many goroutines racing on one requestor get
// exactly one secret between them.
func TestKEXConcurrentFinish(t *testing.T) {
	s := mustSuite(t, KEXX25519)
	r, err := s.NewRequestor(RequestorKEXConfig{})
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := s.Respond(r.Share(), nil, ResponderKEXConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := r.Finish(resp)
			results <- err
		}()
	}
	ok := 0
	for range n {
		switch err := <-results; {
		case err == nil:
			ok++
		case !errors.Is(err, ErrKEXFinished):
			t.Errorf("Finish: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d Finish calls succeeded, want 1", ok)
	}
}
