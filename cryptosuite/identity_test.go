package cryptosuite

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanpeer/lanpeer/canon"
)

// sigIdentities returns one identity of every accepted key type: the RSA
// ones are the committed fixtures, Ed25519 is generated.
func sigIdentities(tb testing.TB) map[KeyType]*Identity {
	return map[KeyType]*Identity{
		KeyRSA2048: sigFixture(tb, "rsa2048"),
		KeyRSA3072: sigFixture(tb, "rsa3072"),
		KeyRSA4096: sigFixture(tb, "rsa4096"),
		KeyEd25519: sigEd25519(tb),
	}
}

// sigOpenSSLPeerID runs DESIGN.md §2's recipe, `openssl pkey -pubout
// -outform DER | sha256`, on a PEM private key; it skips without openssl.
func sigOpenSSLPeerID(t *testing.T, pemKey []byte) PeerID {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command(path, "pkey", "-pubout", "-outform", "DER")
	cmd.Stdin = bytes.NewReader(pemKey)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	return sha256.Sum256(out)
}

func TestIdentityFixtures(t *testing.T) {
	for kt, id := range sigIdentities(t) {
		t.Run(string(kt), func(t *testing.T) {
			if id.KeyType() != kt {
				t.Errorf("KeyType() = %q", id.KeyType())
			}
			spki, err := x509.MarshalPKIXPublicKey(id.Signer().Public())
			if err != nil {
				t.Fatal(err)
			}
			if id.PeerID() != sha256.Sum256(spki) || id.Public().PeerID() != id.PeerID() || PeerIDFromSPKI(spki) != id.PeerID() {
				t.Error("peer ID is not SHA-256 of the SPKI DER")
			}
			if !bytes.Equal(id.Public().SPKI(), spki) {
				t.Error("SPKI() differs from x509.MarshalPKIXPublicKey")
			}
			wantAlg := SigRSAPSSSHA256
			if kt == KeyEd25519 {
				wantAlg = SigEd25519
			}
			if id.Public().Alg() != wantAlg {
				t.Errorf("Alg() = %v, want %v", id.Public().Alg(), wantAlg)
			}

			pemKey, err := id.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			blk, rest := pem.Decode(pemKey)
			if blk == nil || blk.Type != "PRIVATE KEY" || len(rest) != 0 {
				t.Fatalf("MarshalPEM is not one PKCS#8 PRIVATE KEY block")
			}
			back, err := ParseIdentityPEM(pemKey)
			if err != nil {
				t.Fatal(err)
			}
			if back.PeerID() != id.PeerID() || back.KeyType() != kt {
				t.Error("PEM round trip changed the key")
			}
			if kt != KeyEd25519 {
				// openssl wrote the fixture; Go writes the same bytes back.
				file, err := os.ReadFile(filepath.Join("testdata", "keys", "rsa"+strings.TrimPrefix(string(kt), "rsa-")+".pem"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pemKey, file) {
					t.Error("MarshalPEM differs from the openssl-written fixture")
				}
			}
			if got := sigOpenSSLPeerID(t, pemKey); got != id.PeerID() {
				t.Errorf("openssl reads MarshalPEM as peer ID %v, want %v", got, id.PeerID())
			}
		})
	}
}

func TestParseIdentityPEMRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "keys", "rsa2048.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := sigFixture(t, "rsa2048").Signer().(*rsa.PrivateKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ed := sigEd25519(t)
	edPEM, _ := ed.MarshalPEM()
	blk, _ := pem.Decode(good)
	cases := map[string][]byte{
		"empty":            nil,
		"not PEM":          []byte("hello"),
		"PKCS#1 block":     pkcs1,
		"public key":       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: sigFixture(t, "rsa2048").Public().SPKI()}),
		"P-256 key":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"two keys":         append(bytes.Clone(good), edPEM...),
		"trailing text":    append(bytes.Clone(good), "junk\n"...),
		"truncated DER":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: blk.Bytes[:len(blk.Bytes)-1]}),
		"oversize":         append(bytes.Clone(good), bytes.Repeat([]byte("\n"), MaxIdentityPEM)...),
		"trailing in DER":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: append(bytes.Clone(blk.Bytes), 0)}),
		"encrypted header": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1, 2, 3}}),
	}
	for name, b := range cases {
		if _, err := ParseIdentityPEM(b); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("%s: %v, want ErrUnsupportedKey", name, err)
		}
	}
	// Surrounding whitespace is fine (files end in a newline, editors add more).
	if _, err := ParseIdentityPEM(append(bytes.Clone(good), "\n\n"...)); err != nil {
		t.Errorf("trailing newlines: %v", err)
	}
}

// sigRSASPKI encodes an RSA public key as SubjectPublicKeyInfo with the
// given RSAPublicKey body, so tests can build forms Go's marshaller never
// writes.
func sigRSASPKI(t *testing.T, rsaPublicKey []byte) []byte {
	t.Helper()
	spki, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{
			Algorithm:  asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, // rsaEncryption
			Parameters: asn1.NullRawValue,
		},
		PublicKey: asn1.BitString{Bytes: rsaPublicKey, BitLength: 8 * len(rsaPublicKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

func sigReadPublicPEM(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("%s: no PUBLIC KEY block", name)
	}
	return blk.Bytes
}

func TestParsePublicKey(t *testing.T) {
	for kt, id := range sigIdentities(t) {
		pk, err := ParsePublicKey(id.Public().SPKI())
		if err != nil {
			t.Errorf("%s: %v", kt, err)
			continue
		}
		if !pk.Equal(id.Public()) || pk.PeerID() != id.PeerID() {
			t.Errorf("%s: parsed key differs", kt)
		}
	}

	rsaPub := sigFixture(t, "rsa2048").Public().CryptoPublicKey().(*rsa.PublicKey)
	canonical := sigFixture(t, "rsa2048").Public().SPKI()
	pkcs1, err := asn1.Marshal(struct {
		N *big.Int
		E int
	}{rsaPub.N, rsaPub.E})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sigRSASPKI(t, pkcs1), canonical) {
		t.Fatal("sigRSASPKI does not rebuild the canonical encoding")
	}
	extraInteger, err := asn1.Marshal(struct {
		N    *big.Int
		E    int
		More int
	}{rsaPub.N, rsaPub.E, 1})
	if err != nil {
		t.Fatal(err)
	}
	e3, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: rsaPub.N, E: 3})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSPKI, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	// Encodings Go's x509 parser accepts as the same key although they
	// are not the canonical DER: without ParsePublicKey's re-encoding
	// check one key would have several peer IDs.
	nonCanonical := map[string][]byte{
		"bytes after RSAPublicKey in the BIT STRING": sigRSASPKI(t, append(bytes.Clone(pkcs1), 0x05, 0x00)),
		"extra INTEGER inside RSAPublicKey":          sigRSASPKI(t, extraInteger),
	}
	for name, spki := range nonCanonical {
		k, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			t.Fatalf("%s: x509 no longer parses it (%v); the case tests nothing", name, err)
		}
		if !k.(*rsa.PublicKey).Equal(rsaPub) {
			t.Fatalf("%s: x509 parses a different key", name)
		}
	}

	rejects := map[string][]byte{
		"RSA-1024":      sigReadPublicPEM(t, "rsa1024_pub.pem"),
		"RSA-1536":      sigReadPublicPEM(t, "rsa1536_pub.pem"),
		"RSA-2048 e=3":  sigReadPublicPEM(t, "rsa2048_e3_pub.pem"),
		"fixture e=3":   e3,
		"P-256":         ecSPKI,
		"trailing byte": append(bytes.Clone(canonical), 0),
		"truncated":     canonical[:len(canonical)-1],
		"oversize":      append(bytes.Clone(canonical), make([]byte, MaxSPKI)...),
		"empty":         nil,
		"raw Ed25519":   []byte(sigEd25519(t).Public().CryptoPublicKey().(ed25519.PublicKey)),
	}
	for name, spki := range nonCanonical {
		rejects["non-canonical: "+name] = spki
	}
	for name, spki := range rejects {
		if pk, err := ParsePublicKey(spki); !errors.Is(err, ErrUnsupportedKey) || pk != nil {
			t.Errorf("%s: %v, want ErrUnsupportedKey", name, err)
		}
	}
}

func TestPublicKeyEqual(t *testing.T) {
	a := sigFixture(t, "rsa2048").Public()
	b := sigFixture(t, "rsa3072").Public()
	if !a.Equal(a) || a.Equal(b) {
		t.Error("Equal gives wrong answers")
	}
	var nilKey *PublicKey
	if a.Equal(nil) || nilKey.Equal(a) || !nilKey.Equal(nil) {
		t.Error("Equal mishandles nil")
	}
}

// sigLayouts builds two layouts with the same fields under two labels.
func sigLayouts() (l1, l2 []byte) {
	field := []byte("the same fields")
	return canon.New(canon.LabelAnnounce).Bytes(field).Uint64(7).Out(),
		canon.New(canon.LabelDirectoryRecord).Bytes(field).Uint64(7).Out()
}

func TestSignVerify(t *testing.T) {
	l1, l2 := sigLayouts()
	for kt, id := range sigIdentities(t) {
		t.Run(string(kt), func(t *testing.T) {
			pub := id.Public()
			sig, err := id.Sign(canon.LabelAnnounce, l1)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(canon.LabelAnnounce, l1, sig); err != nil {
				t.Fatalf("own signature refused: %v", err)
			}
			// Domain separation: the same signature under the other label,
			// over the same fields, fails; so does the label mismatch.
			if err := pub.Verify(canon.LabelDirectoryRecord, l2, sig); err != ErrBadSignature {
				t.Errorf("signature valid under another label: %v", err)
			}
			if err := pub.Verify(canon.LabelDirectoryRecord, l1, sig); err != ErrBadSignature {
				t.Errorf("layout under the wrong label: %v", err)
			}
			if _, err := id.Sign(canon.LabelDirectoryRecord, l1); err == nil {
				t.Error("signed a layout that does not start with its label")
			}
			if _, err := id.Sign("lanpeer/v1 no such label", l1); err == nil {
				t.Error("signed under an unknown label")
			}
			if err := pub.Verify(canon.LabelAnnounce, []byte(canon.LabelAnnounce), sig); err != ErrBadSignature {
				t.Errorf("layout without the 0x00 after the label: %v", err)
			}
			// Another key's signature fails.
			other := sigEd25519(t)
			osig, _ := other.Sign(canon.LabelAnnounce, l1)
			if err := pub.Verify(canon.LabelAnnounce, l1, osig); err != ErrBadSignature {
				t.Errorf("another key's signature: %v", err)
			}

			// Flipped bits. Ed25519 is cheap: every bit of the signature
			// and one bit in every byte of the layout. RSA: a sample.
			step := 1
			if kt != KeyEd25519 {
				step = 37
			}
			for i := 0; i < len(sig)*8; i += step {
				bad := bytes.Clone(sig)
				bad[i/8] ^= 1 << (i % 8)
				if pub.Verify(canon.LabelAnnounce, l1, bad) != ErrBadSignature {
					t.Fatalf("signature with bit %d flipped verifies", i)
				}
			}
			for i := 0; i < len(l1); i += max(step/8, 1) {
				bad := bytes.Clone(l1)
				bad[i] ^= 0x80
				if pub.Verify(canon.LabelAnnounce, bad, sig) != ErrBadSignature {
					t.Fatalf("layout with byte %d changed verifies", i)
				}
			}
			for _, bad := range [][]byte{nil, sig[:len(sig)-1], append(bytes.Clone(sig), 0)} {
				if pub.Verify(canon.LabelAnnounce, l1, bad) != ErrBadSignature {
					t.Errorf("signature of %d bytes verifies", len(bad))
				}
			}
		})
	}
	var nilKey *PublicKey
	if nilKey.Verify(canon.LabelAnnounce, l1, make([]byte, 64)) != ErrBadSignature {
		t.Error("nil key verified")
	}
}

// TestSignatureAlgorithms checks the signatures with the standard library
// directly: RSA is RSASSA-PSS with SHA-256 and exactly a 32-byte salt over
// canon.SignatureInput, Ed25519 is pure Ed25519 over the same bytes.
func TestSignatureAlgorithms(t *testing.T) {
	l1, _ := sigLayouts()
	in, err := canon.SignatureInput(canon.LabelAnnounce, l1)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(in)
	for kt, id := range sigIdentities(t) {
		sig, err := id.Sign(canon.LabelAnnounce, l1)
		if err != nil {
			t.Fatal(err)
		}
		switch k := id.Public().CryptoPublicKey().(type) {
		case *rsa.PublicKey:
			if err := rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
				t.Errorf("%s: not PSS-SHA256 with a 32-byte salt: %v", kt, err)
			}
			if rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 20}) == nil {
				t.Errorf("%s: verifies with a 20-byte salt", kt)
			}
			if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil {
				t.Errorf("%s: signature is PKCS #1 v1.5", kt)
			}
			again, _ := id.Sign(canon.LabelAnnounce, l1)
			if bytes.Equal(sig, again) {
				t.Errorf("%s: two PSS signatures are equal: the salt is not random", kt)
			}
		case ed25519.PublicKey:
			if !ed25519.Verify(k, in, sig) {
				t.Errorf("%s: not pure Ed25519 over the signature input", kt)
			}
		default:
			t.Fatalf("%s: key type %T", kt, k)
		}
	}
}

func TestPeerIDText(t *testing.T) {
	id := sigFixture(t, "rsa2048").PeerID()
	txt, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if string(txt) != id.String() || len(txt) != 64 || strings.ToLower(string(txt)) != string(txt) {
		t.Errorf("MarshalText = %q", txt)
	}
	var back PeerID
	if err := back.UnmarshalText(txt); err != nil || back != id {
		t.Errorf("UnmarshalText round trip: %v", err)
	}
	if p, err := ParsePeerID(strings.ToUpper(id.String())); err != nil || p != id {
		t.Errorf("upper case: %v", err)
	}
	if id.Short() != id.String()[:12] || id.IsZero() || !(PeerID{}).IsZero() {
		t.Error("Short/IsZero")
	}
	if v := id.LogValue(); v.String() != id.String() {
		t.Errorf("LogValue = %v", v)
	}
	j, err := json.Marshal(map[string]PeerID{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]PeerID
	if err := json.Unmarshal(j, &m); err != nil || m["id"] != id {
		t.Errorf("JSON round trip: %s, %v", j, err)
	}

	s := id.String()
	bad := []string{
		"", s[:63], s + "0", s[:62], " " + s[:63], s[:63] + "g", s[:63] + " ",
		"0x" + s[:62], s[:31] + "-" + s[32:], strings.Repeat("z", 64),
		s[:63] + "\x00", "é" + s[:62],
	}
	for _, b := range bad {
		if p, err := ParsePeerID(b); err != ErrBadPeerID || !p.IsZero() {
			t.Errorf("ParsePeerID(%q) = %v, %v", b, p, err)
		}
		var p PeerID
		if err := p.UnmarshalText([]byte(b)); err != ErrBadPeerID || !p.IsZero() {
			t.Errorf("UnmarshalText(%q) = %v", b, err)
		}
	}
}

func TestKeyTypes(t *testing.T) {
	if KeyTypes()[0] != DefaultKeyType || DefaultKeyType != KeyRSA3072 {
		t.Error("default key type is not first or not rsa-3072")
	}
	for _, kt := range KeyTypes() {
		if got, err := ParseKeyType(string(kt)); err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v", kt, got, err)
		}
	}
	for _, s := range []string{"", "rsa", "RSA-3072", "rsa-1024", "p256"} {
		if _, err := ParseKeyType(s); err == nil {
			t.Errorf("ParseKeyType(%q) accepted", s)
		}
	}
	if _, err := GenerateIdentity("rsa-1024"); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("GenerateIdentity(rsa-1024): %v", err)
	}
	if SigRSAPSSSHA256.String() != "rsa-pss-sha256" || SigEd25519.String() != "ed25519" || SigAlg(9).String() != "SigAlg(0x0009)" {
		t.Error("SigAlg names")
	}
}

func TestDecryptOAEPIdentity(t *testing.T) {
	id := sigFixture(t, "rsa2048")
	pub := id.Public().CryptoPublicKey().(*rsa.PublicKey)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id.DecryptOAEP(ct, nil); err != nil || string(pt) != "secret" {
		t.Errorf("DecryptOAEP = %q, %v", pt, err)
	}
	if _, err := sigEd25519(t).DecryptOAEP(ct, nil); err != ErrDecrypt {
		t.Errorf("Ed25519 identity decrypting: %v, want ErrDecrypt", err)
	}
}

// Wycheproof vectors through the code paths peers' data takes: the keys go
// through ParsePublicKey or ParseIdentityPEM, signatures through
// verifyMessage (what PublicKey.Verify calls after building the signature
// input), ciphertexts through Identity.DecryptOAEP.

func TestSigWycheproofEd25519(t *testing.T) {
	f := kexLoadWycheproof[sigEdDSAGroup](t, "ed25519_test.json", "eddsa_verify_schema_v1.json")
	var tally kexTally
	for _, g := range f.TestGroups {
		pk, err := ParsePublicKey(g.PublicKeyDer)
		if err != nil {
			t.Fatalf("ParsePublicKey: %v", err)
		}
		if !bytes.Equal(pk.CryptoPublicKey().(ed25519.PublicKey), g.PublicKey.PK) {
			t.Fatal("SPKI and raw key differ")
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			err := verifyMessage(pk.CryptoPublicKey(), c.Msg, c.Sig)
			switch c.Result {
			case "valid":
				if err != nil {
					t.Errorf("tcId %d: valid signature refused: %v", c.TcID, err)
				}
			default:
				if err != ErrBadSignature {
					t.Errorf("tcId %d (%s %v): %v, want ErrBadSignature", c.TcID, c.Result, c.Flags, err)
				}
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid")
}

func TestSigWycheproofRSAPSS(t *testing.T) {
	for _, file := range []string{"rsa_pss_2048_sha256_mgf1_32_test.json", "rsa_pss_3072_sha256_mgf1_32_test.json"} {
		t.Run(file, func(t *testing.T) {
			f := kexLoadWycheproof[sigPSSGroup](t, file, "rsassa_pss_verify_schema_v1.json")
			var tally kexTally
			for _, g := range f.TestGroups {
				if g.SHA != "SHA-256" || g.MGF != "MGF1" || g.MGFSHA != "SHA-256" || g.SLen != 32 {
					t.Fatalf("group parameters %s/%s/%s/%d", g.SHA, g.MGF, g.MGFSHA, g.SLen)
				}
				pk, err := ParsePublicKey(g.PublicKeyDer)
				if err != nil {
					t.Fatalf("ParsePublicKey: %v", err)
				}
				if pk.Alg() != SigRSAPSSSHA256 || pk.CryptoPublicKey().(*rsa.PublicKey).N.BitLen() != g.KeySize {
					t.Fatalf("key is not RSA-%d", g.KeySize)
				}
				for _, c := range g.Tests {
					tally.add(c.Result)
					err := verifyMessage(pk.CryptoPublicKey(), c.Msg, c.Sig)
					switch c.Result {
					case "valid":
						if err != nil {
							t.Errorf("tcId %d: valid signature refused: %v", c.TcID, err)
						}
					default:
						if err != ErrBadSignature {
							t.Errorf("tcId %d (%s %v): %v, want ErrBadSignature", c.TcID, c.Result, c.Flags, err)
						}
					}
				}
			}
			tally.check(t, f.NumberOfTests, "valid", "invalid")
		})
	}
}

func TestSigWycheproofRSAOAEP(t *testing.T) {
	f := kexLoadWycheproof[sigOAEPGroup](t, "rsa_oaep_2048_sha256_mgf1sha256_test.json", "rsaes_oaep_decrypt_schema_v1.json")
	var tally kexTally
	for _, g := range f.TestGroups {
		if g.SHA != "SHA-256" || g.MGF != "MGF1" || g.MGFSHA != "SHA-256" {
			t.Fatalf("group parameters %s/%s/%s", g.SHA, g.MGF, g.MGFSHA)
		}
		id, err := ParseIdentityPEM([]byte(g.PrivateKeyPem))
		if err != nil {
			t.Fatalf("ParseIdentityPEM: %v", err)
		}
		for _, c := range g.Tests {
			tally.add(c.Result)
			pt, err := id.DecryptOAEP(c.CT, c.Label)
			switch c.Result {
			case "valid":
				if err != nil || !bytes.Equal(pt, c.Msg) {
					t.Errorf("tcId %d: %x, %v, want %x", c.TcID, pt, err, c.Msg)
				}
			default:
				// One error value, whatever failed.
				if err != ErrDecrypt || pt != nil {
					t.Errorf("tcId %d (%s %v): %v, want ErrDecrypt", c.TcID, c.Result, c.Flags, err)
				}
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid")
}
