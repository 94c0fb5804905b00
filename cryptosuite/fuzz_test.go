package cryptosuite

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lanpeer/lanpeer/canon"
)

// keyFixtureSeeds returns the committed key fixtures (testdata/keys: RSA
// private keys and refused public keys) and a fixed Ed25519 key, as PEM.
func keyFixtureSeeds(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "keys", "*.pem"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no key fixtures: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// FuzzParsePublicKey: the SubjectPublicKeyInfo a peer sends in its hello,
// key package, announcement or directory record. No panic; a refusal
// wraps ErrUnsupportedKey; an accepted key is its one canonical encoding,
// its peer ID is the SHA-256 of the input, and it verifies only its own
// signatures. Seeds: the public keys of the committed fixtures.
func FuzzParsePublicKey(f *testing.F) {
	for _, b := range keyFixtureSeeds(f) {
		blk, _ := pem.Decode(b)
		if blk == nil {
			f.Fatal("fixture without a PEM block")
		}
		switch blk.Type {
		case "PUBLIC KEY":
			f.Add(blk.Bytes)
		case "PRIVATE KEY":
			id, err := ParseIdentityPEM(b)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(id.Public().SPKI())
		}
	}
	f.Fuzz(func(t *testing.T, spki []byte) {
		pk, err := ParsePublicKey(spki)
		if err != nil {
			if pk != nil || !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("refusal %v (%T) with key %v", err, err, pk)
			}
			return
		}
		if len(spki) > MaxSPKI || !bytes.Equal(pk.SPKI(), spki) || pk.PeerID() != PeerIDFromSPKI(spki) ||
			pk.PeerID() != sha256.Sum256(spki) {
			t.Fatal("accepted key is not its own canonical encoding")
		}
		again, err := x509.MarshalPKIXPublicKey(pk.CryptoPublicKey())
		if err != nil || !bytes.Equal(again, spki) {
			t.Fatalf("re-encoding an accepted key: %v", err)
		}
		if pk.Verify(canon.LabelAnnounce, canon.New(canon.LabelAnnounce).Out(), make([]byte, 64)) == nil {
			t.Fatal("an all-zero signature verified")
		}
	})
}

// FuzzParseIdentityPEM: the identity file `lanpeer init` writes and every
// other command loads (cmd/lanpeer's loadIdentity bounds the file at
// MaxIdentityPEM and hands it here). No panic; a refusal wraps
// ErrUnsupportedKey; an accepted identity re-encodes to a file that parses
// to the same peer ID, and signs what its public key verifies.
func FuzzParseIdentityPEM(f *testing.F) {
	for _, b := range keyFixtureSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentityPEM(b)
		if err != nil {
			if id != nil || !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("refusal %v (%T) with identity %v", err, err, id)
			}
			return
		}
		out, err := id.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseIdentityPEM(out)
		if err != nil || again.PeerID() != id.PeerID() {
			t.Fatalf("an accepted identity does not round-trip: %v", err)
		}
		layout := canon.New(canon.LabelAnnounce).Bytes(b).Out()
		sig, err := id.Sign(canon.LabelAnnounce, layout)
		if err != nil {
			t.Fatal(err)
		}
		if err := id.Public().Verify(canon.LabelAnnounce, layout, sig); err != nil {
			t.Fatalf("an accepted identity's signature does not verify: %v", err)
		}
	})
}

// FuzzParseHPKEPublicKey: the HPKE key inside a peer's key package. No
// panic; a refusal is typed; an accepted key is of the size its KEM says
// and never of low order.
func FuzzParseHPKEPublicKey(f *testing.F) {
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		k, err := NewHPKEPrivateKey(kem, bytes.Repeat([]byte{0x5a}, 32))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(kem), k.PublicKeyBytes())
		f.Add(uint16(kem), make([]byte, len(k.PublicKeyBytes())))
	}
	f.Fuzz(func(t *testing.T, kem uint16, b []byte) {
		pk, err := ParseHPKEPublicKey(KEMID(kem), b)
		if err != nil {
			if pk != nil || (!errors.Is(err, ErrBadHPKEKey) && !errors.Is(err, ErrUnknownKEM)) {
				t.Fatalf("refusal %v (%T)", err, err)
			}
			return
		}
		if !bytes.Equal(pk.Bytes(), b) || pk.KEM() != KEMID(kem) || x25519LowOrder(b[len(b)-32:]) {
			t.Fatal("accepted key does not hold its bytes, or has a low-order point")
		}
	})
}
