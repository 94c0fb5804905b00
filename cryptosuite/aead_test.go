package cryptosuite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// aeadPattern returns n deterministic bytes that differ with seed.
func aeadPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// aeadTestRand is a deterministic randomness source for nonces.
func aeadTestRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// aeadNew builds suite s under a deterministic key.
func aeadNew(t testing.TB, s *AEADSuite) cipher.AEAD {
	t.Helper()
	a, err := s.New(aeadPattern(s.KeySize, 0x40))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// aeadSealedLen is the exact size of nonce ‖ ciphertext for n bytes of
// plaintext: callers size buffers and frames by it.
func aeadSealedLen(s *AEADSuite, n int) int {
	if s.ID == AEADA256CBCHS512 {
		return cbcIVSize + (n/aes.BlockSize+1)*aes.BlockSize + cbcTagSize
	}
	return s.NonceSize + n + 16
}

// aeadIsDecrypt asserts err is exactly ErrDecrypt, both by identity and
// through errors.Is, so callers can rely on either.
func aeadIsDecrypt(t testing.TB, err error, what string) {
	t.Helper()
	if err != ErrDecrypt || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("%s: got error %v, want exactly ErrDecrypt", what, err)
	}
}

func TestAEADSuiteTable(t *testing.T) {
	all := AEADs()
	wantOrder := []AEADID{AEADA256CBCHS512, AEADAES256GCM, AEADChaCha20Poly1305}
	if len(all) != len(wantOrder) {
		t.Fatalf("AEADs() has %d suites, want %d", len(all), len(wantOrder))
	}
	for i, id := range wantOrder {
		if all[i].ID != id {
			t.Errorf("AEADs()[%d] = %v, want %v (A256CBC-HS512 first by default)", i, all[i].ID, id)
		}
	}
	all[0] = all[1]
	if AEADs()[0].ID != AEADA256CBCHS512 {
		t.Fatal("AEADs() returned the table itself; changing the result changed the table")
	}

	wantName := map[AEADID]string{
		AEADA256CBCHS512:     "A256CBC-HS512",
		AEADAES256GCM:        "AES-256-GCM",
		AEADChaCha20Poly1305: "ChaCha20-Poly1305",
	}
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			if s.Name != wantName[s.ID] || s.ID.String() != s.Name {
				t.Errorf("suite %#x is named %q (String %q), want %q", uint16(s.ID), s.Name, s.ID.String(), wantName[s.ID])
			}
			if got, ok := AEADByID(s.ID); !ok || got != s {
				t.Errorf("AEADByID(%v) = %v, %v", s.ID, got, ok)
			}
			if got, ok := AEADByName(s.Name); !ok || got != s {
				t.Errorf("AEADByName(%q) = %v, %v", s.Name, got, ok)
			}
			if s.RandomIV != (s.ID == AEADA256CBCHS512) {
				t.Errorf("RandomIV = %v; only A256CBC-HS512 takes a random IV by rule", s.RandomIV)
			}
			a := aeadNew(t, s)
			if a.NonceSize() != s.NonceSize {
				t.Errorf("NonceSize() = %d, table says %d", a.NonceSize(), s.NonceSize)
			}
			for _, n := range []int{0, 16, s.KeySize - 1, s.KeySize + 1, 2 * s.KeySize} {
				a, err := s.New(make([]byte, n))
				if err == nil || a != nil {
					t.Errorf("New with a %d-byte key (want %d) = %v, %v; want an error", n, s.KeySize, a, err)
				}
			}
		})
	}

	for _, id := range []AEADID{0, 0x0004, 0xffff} {
		if s, ok := AEADByID(id); ok || s != nil {
			t.Errorf("AEADByID(%#x) = %v, %v; want not found", uint16(id), s, ok)
		}
	}
	if got := AEADID(0x0004).String(); got != "AEADID(0x0004)" {
		t.Errorf("unknown id String() = %q", got)
	}
	for _, name := range []string{"", "a256cbc-hs512", "AES-128-GCM", "ChaCha20"} {
		if s, ok := AEADByName(name); ok || s != nil {
			t.Errorf("AEADByName(%q) = %v, %v; want not found", name, s, ok)
		}
	}
}

func TestNegotiateAEAD(t *testing.T) {
	const unknownA, unknownB AEADID = 0x7777, 0x9999
	cbc, gcm, cc := AEADA256CBCHS512, AEADAES256GCM, AEADChaCha20Poly1305
	tests := []struct {
		name          string
		local, remote []AEADID
		want          AEADID // 0: ErrNoCommonSuite
	}{
		{"default preference", []AEADID{cbc, gcm, cc}, []AEADID{cc, gcm, cbc}, cbc},
		{"local order wins over remote order", []AEADID{cc, gcm}, []AEADID{gcm, cc}, cc},
		{"first local the remote offers", []AEADID{cbc, gcm, cc}, []AEADID{cc, gcm}, gcm},
		{"unknown remote ids ignored", []AEADID{cbc, gcm}, []AEADID{unknownA, unknownB, gcm}, gcm},
		{"unknown local id ignored even if remote offers it", []AEADID{unknownA, cc}, []AEADID{unknownA, cc}, cc},
		{"duplicates", []AEADID{gcm, gcm}, []AEADID{gcm, gcm, gcm}, gcm},
		{"no common suite", []AEADID{gcm}, []AEADID{cc, unknownB}, 0},
		{"only unknown in common", []AEADID{unknownA}, []AEADID{unknownA}, 0},
		{"remote offers nothing", []AEADID{cbc, gcm, cc}, nil, 0},
		{"local accepts nothing", nil, []AEADID{cbc}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NegotiateAEAD(tc.local, tc.remote)
			if tc.want == 0 {
				if !errors.Is(err, ErrNoCommonSuite) || s != nil {
					t.Fatalf("NegotiateAEAD = %v, %v; want ErrNoCommonSuite", s, err)
				}
				return
			}
			if err != nil || s == nil || s.ID != tc.want {
				t.Fatalf("NegotiateAEAD = %v, %v; want %v", s, err, tc.want)
			}
			if want, _ := AEADByID(tc.want); s != want {
				t.Fatal("NegotiateAEAD returned a suite that is not the table's")
			}
		})
	}
}

// TestRFC7518B3 runs RFC 7518 Appendix B.3 through the suite table.
func TestRFC7518B3(t *testing.T) {
	var f struct {
		Vectors []struct {
			Enc    string  `json:"enc"`
			K      aeadHex `json:"K"`
			MACKey aeadHex `json:"MAC_KEY"`
			EncKey aeadHex `json:"ENC_KEY"`
			P      aeadHex `json:"P"`
			IV     aeadHex `json:"IV"`
			A      aeadHex `json:"A"`
			AL     aeadHex `json:"AL"`
			E      aeadHex `json:"E"`
			M      aeadHex `json:"M"`
			T      aeadHex `json:"T"`
		} `json:"vectors"`
	}
	aeadLoadJSON(t, "rfc/rfc7518_b3_a256cbc_hs512.json", &f)
	if len(f.Vectors) != 1 {
		t.Fatalf("%d vectors, want 1", len(f.Vectors))
	}
	v := f.Vectors[0]
	s, ok := AEADByName(v.Enc)
	if !ok || s.ID != AEADA256CBCHS512 {
		t.Fatalf("no suite named %q", v.Enc)
	}
	a, err := s.New(v.K)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), v.E...), v.T...)
	if got := a.Seal(nil, v.IV, v.P, v.A); !bytes.Equal(got, want) {
		t.Fatalf("Seal =\n%x\nwant E ‖ T =\n%x", got, want)
	}
	got, err := a.Open(nil, v.IV, want, v.A)
	if err != nil || !bytes.Equal(got, v.P) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// The intermediate values: MAC key first, AL, and the untruncated M.
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(v.A))*8)
	if !bytes.Equal(al[:], v.AL) || !bytes.Equal(v.K[:32], v.MACKey) || !bytes.Equal(v.K[32:], v.EncKey) {
		t.Fatal("AL or the key split differs from the RFC")
	}
	m := cbcMAC(v.K[:32])
	for _, p := range [][]byte{v.A, v.IV, v.E, al[:]} {
		m.Write(p)
	}
	if !bytes.Equal(m.Sum(nil), v.M) {
		t.Fatal("HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ E ‖ AL) differs from the RFC's M")
	}
	// The same vector through the SealRandom layout.
	msg, err := SealRandom(a, bytes.NewReader(v.IV), nil, v.P, v.A)
	if err != nil || !bytes.Equal(msg, append(append([]byte(nil), v.IV...), want...)) {
		t.Fatalf("SealRandom = %x, %v; want IV ‖ E ‖ T", msg, err)
	}
}

// aeadWycheproofCounts tallies what a vector run covered, so a run that
// skips everything fails.
type aeadWycheproofCounts struct{ valid, invalid, refused int }

func (c aeadWycheproofCounts) check(t *testing.T, wantRefused bool) {
	t.Helper()
	t.Logf("valid %d, invalid %d, refused by our API %d", c.valid, c.invalid, c.refused)
	if c.valid == 0 || c.invalid == 0 || (c.refused == 0) == wantRefused {
		t.Fatalf("coverage: valid %d, invalid %d, refused %d", c.valid, c.invalid, c.refused)
	}
}

// aeadCheckCase runs one Wycheproof AEAD case through a: a valid case
// seals to exactly ct ‖ tag and opens back; an invalid one fails to open
// with ErrDecrypt.
func aeadCheckCase(t *testing.T, a cipher.AEAD, tc aeadWycheproofCase, c *aeadWycheproofCounts) {
	t.Helper()
	sealed := append(append([]byte(nil), tc.CT...), tc.Tag...)
	switch tc.Result {
	case "valid":
		c.valid++
		if got := a.Seal(nil, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(got, sealed) {
			t.Errorf("tcId %d (%s): Seal = %x, want %x", tc.TcID, tc.Comment, got, sealed)
		}
		got, err := a.Open(nil, tc.IV, sealed, tc.AAD)
		if err != nil || !bytes.Equal(got, tc.Msg) {
			t.Errorf("tcId %d (%s): Open = %x, %v; want %x", tc.TcID, tc.Comment, got, err, tc.Msg)
		}
	case "invalid":
		c.invalid++
		got, err := a.Open(nil, tc.IV, sealed, tc.AAD)
		if err != ErrDecrypt || got != nil {
			t.Errorf("tcId %d (%s, %v): Open = %x, %v; want ErrDecrypt", tc.TcID, tc.Comment, tc.Flags, got, err)
		}
	default:
		t.Fatalf("tcId %d: result %q; this file has only valid and invalid cases", tc.TcID, tc.Result)
	}
}

// aeadRefusesNonce asserts that an AEAD of ours refuses a nonce of the
// wrong size: Open says ErrDecrypt and Seal panics rather than sealing.
func aeadRefusesNonce(t *testing.T, a cipher.AEAD, tc aeadWycheproofCase) {
	t.Helper()
	sealed := append(append([]byte(nil), tc.CT...), tc.Tag...)
	if got, err := a.Open(nil, tc.IV, sealed, tc.AAD); err != ErrDecrypt || got != nil {
		t.Errorf("tcId %d: Open with a %d-byte nonce = %x, %v; want ErrDecrypt", tc.TcID, len(tc.IV), got, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("tcId %d: Seal with a %d-byte nonce did not panic", tc.TcID, len(tc.IV))
			}
		}()
		a.Seal(nil, tc.IV, tc.Msg, tc.AAD)
	}()
}

func TestWycheproofA256CBCHS512(t *testing.T) {
	f := aeadLoadWycheproof(t, "a256cbc_hs512_test.json")
	s, _ := AEADByID(AEADA256CBCHS512)
	var c aeadWycheproofCounts
	for _, g := range f.TestGroups {
		if g.KeySize != 512 || g.IVSize != 128 || g.TagSize != 256 {
			t.Fatalf("unexpected group sizes %d/%d/%d", g.KeySize, g.IVSize, g.TagSize)
		}
		for _, tc := range g.Tests {
			a, err := s.New(tc.Key)
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			aeadCheckCase(t, a, tc, &c)
		}
	}
	c.check(t, false)
}

// TestWycheproofAESCBCPKCS5 runs plain AES-CBC with PKCS#7 padding through
// cbcEncrypt and cbcDecrypt, the code A256CBC-HS512 uses, for every key
// size the file has (the helpers take any block cipher).
func TestWycheproofAESCBCPKCS5(t *testing.T) {
	f := aeadLoadWycheproof(t, "aes_cbc_pkcs5_test.json")
	var c aeadWycheproofCounts
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			b, err := newBlockCipher(tc.Key)
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			switch tc.Result {
			case "valid":
				c.valid++
				if got := cbcEncrypt(b, tc.IV, nil, tc.Msg); !bytes.Equal(got, tc.CT) {
					t.Errorf("tcId %d: cbcEncrypt = %x, want %x", tc.TcID, got, tc.CT)
				}
				got, err := cbcDecrypt(b, tc.IV, nil, tc.CT)
				if err != nil || !bytes.Equal(got, tc.Msg) {
					t.Errorf("tcId %d: cbcDecrypt = %x, %v; want %x", tc.TcID, got, err, tc.Msg)
				}
			case "invalid":
				c.invalid++
				got, err := cbcDecrypt(b, tc.IV, nil, tc.CT)
				if err != ErrDecrypt || got != nil {
					t.Errorf("tcId %d (%s): cbcDecrypt = %x, %v; want ErrDecrypt", tc.TcID, tc.Comment, got, err)
				}
			default:
				t.Fatalf("tcId %d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	c.check(t, false)
}

// TestWycheproofAESGCM: 256-bit keys with 96-bit IVs go through our
// AES-256-GCM suite; every other key size is refused by New, and every
// other IV size by the AEAD (lanpeer only ever uses 12-byte nonces).
func TestWycheproofAESGCM(t *testing.T) {
	f := aeadLoadWycheproof(t, "aes_gcm_test.json")
	s, _ := AEADByID(AEADAES256GCM)
	var c aeadWycheproofCounts
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			a, err := s.New(tc.Key)
			if g.KeySize != 256 {
				if err == nil || a != nil {
					t.Errorf("tcId %d: New accepted a %d-bit key", tc.TcID, g.KeySize)
				}
				c.refused++
				continue
			}
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			if g.IVSize != 96 {
				aeadRefusesNonce(t, a, tc)
				c.refused++
				continue
			}
			aeadCheckCase(t, a, tc, &c)
		}
	}
	c.check(t, true)
}

func TestWycheproofChaCha20Poly1305(t *testing.T) {
	f := aeadLoadWycheproof(t, "chacha20_poly1305_test.json")
	s, _ := AEADByID(AEADChaCha20Poly1305)
	var c aeadWycheproofCounts
	for _, g := range f.TestGroups {
		if g.KeySize != 256 {
			t.Fatalf("unexpected key size %d", g.KeySize)
		}
		for _, tc := range g.Tests {
			a, err := s.New(tc.Key)
			if err != nil {
				t.Fatalf("tcId %d: %v", tc.TcID, err)
			}
			if g.IVSize != 96 {
				if tc.Result != "invalid" {
					t.Fatalf("tcId %d: a %d-bit nonce marked %q", tc.TcID, g.IVSize, tc.Result)
				}
				aeadRefusesNonce(t, a, tc)
				c.refused++
				continue
			}
			aeadCheckCase(t, a, tc, &c)
		}
	}
	c.check(t, true)
}

// TestWycheproofHMACSHA512 checks the MAC of A256CBC-HS512 (cbcMAC, that
// is crypto/hmac with SHA-512), untruncated and truncated to 256 bits as
// the tag T is.
func TestWycheproofHMACSHA512(t *testing.T) {
	f := aeadLoadWycheproof(t, "hmac_sha512_test.json")
	var c aeadWycheproofCounts
	truncated := 0
	for _, g := range f.TestGroups {
		if g.TagSize%8 != 0 || g.TagSize > 512 {
			t.Fatalf("tag size %d", g.TagSize)
		}
		if g.TagSize == 8*cbcTagSize {
			truncated += len(g.Tests)
		}
		for _, tc := range g.Tests {
			m := cbcMAC(tc.Key)
			m.Write(tc.Msg)
			sum := m.Sum(nil)[:g.TagSize/8]
			switch tc.Result {
			case "valid":
				c.valid++
				if !hmac.Equal(sum, tc.Tag) {
					t.Errorf("tcId %d: MAC = %x, want %x", tc.TcID, sum, tc.Tag)
				}
			case "invalid":
				c.invalid++
				if hmac.Equal(sum, tc.Tag) {
					t.Errorf("tcId %d (%s): a modified tag verified", tc.TcID, tc.Comment)
				}
			default:
				t.Fatalf("tcId %d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	if truncated == 0 {
		t.Fatal("no 256-bit (A256CBC-HS512 tag size) cases")
	}
	c.check(t, false)
}

// TestAEADTampering flips every bit of every byte of the nonce (IV),
// ciphertext, tag and associated data of a sealed message, and cuts or
// extends it: each must fail to open with exactly ErrDecrypt, for every
// suite and through both OpenPrefixed and the AEAD's own Open.
func TestAEADTampering(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			n := a.NonceSize()
			aad := []byte("lanpeer/v1 room message aad: room 7, epoch 3")
			pt := aeadPattern(40, 9)
			msg, err := SealRandom(a, aeadTestRand(1), nil, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := OpenPrefixed(a, nil, msg, aad); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("untampered message: %x, %v", got, err)
			}
			tagAt := len(msg) - 16
			if s.ID == AEADA256CBCHS512 {
				tagAt = len(msg) - cbcTagSize
			}
			part := func(i int) string {
				switch {
				case i < n:
					return "nonce"
				case i < tagAt:
					return "ciphertext"
				}
				return "tag"
			}
			for i := range msg {
				for bit := range 8 {
					m := bytes.Clone(msg)
					m[i] ^= 1 << bit
					got, err := OpenPrefixed(a, nil, m, aad)
					if got != nil {
						t.Fatalf("%s byte %d bit %d: OpenPrefixed returned plaintext", part(i), i, bit)
					}
					aeadIsDecrypt(t, err, part(i)+" bit flip, OpenPrefixed")
					_, err = a.Open(nil, m[:n], m[n:], aad)
					aeadIsDecrypt(t, err, part(i)+" bit flip, Open")
				}
			}
			for i := range aad {
				for bit := range 8 {
					ad := bytes.Clone(aad)
					ad[i] ^= 1 << bit
					_, err := OpenPrefixed(a, nil, msg, ad)
					aeadIsDecrypt(t, err, "associated data bit flip")
				}
			}
			for l := range len(msg) {
				_, err := OpenPrefixed(a, nil, msg[:l], aad)
				aeadIsDecrypt(t, err, "truncated message")
			}
			for _, extra := range [][]byte{{0}, make([]byte, 16), msg[n:]} {
				_, err := OpenPrefixed(a, nil, append(bytes.Clone(msg), extra...), aad)
				aeadIsDecrypt(t, err, "extended message")
			}
			for _, ad := range [][]byte{nil, aad[:len(aad)-1], append(bytes.Clone(aad), 0)} {
				_, err := OpenPrefixed(a, nil, msg, ad)
				aeadIsDecrypt(t, err, "different associated data length")
			}
			other, err := s.New(aeadPattern(s.KeySize, 0x41))
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenPrefixed(other, nil, msg, aad)
			aeadIsDecrypt(t, err, "wrong key")
		})
	}
}

// aeadCountingBlock counts the block operations of the cipher it wraps.
// Being a plain cipher.Block, it also keeps crypto/cipher's CBC off its
// assembly fast path, so every block passes through Encrypt or Decrypt.
type aeadCountingBlock struct {
	cipher.Block
	ops *atomic.Int64
}

func (b aeadCountingBlock) Encrypt(dst, src []byte) { b.ops.Add(1); b.Block.Encrypt(dst, src) }
func (b aeadCountingBlock) Decrypt(dst, src []byte) { b.ops.Add(1); b.Block.Decrypt(dst, src) }

// aeadCountBlockOps swaps newBlockCipher for a counting wrapper until the
// test ends. It mutates a package global: callers must not be parallel.
func aeadCountBlockOps(t *testing.T) *atomic.Int64 {
	ops := new(atomic.Int64)
	orig := newBlockCipher
	t.Cleanup(func() { newBlockCipher = orig })
	newBlockCipher = func(key []byte) (cipher.Block, error) {
		b, err := orig(key)
		if err != nil {
			return nil, err
		}
		return aeadCountingBlock{Block: b, ops: ops}, nil
	}
	return ops
}

// TestCBCNoBlockOpsAfterMACFailure is the structural padding-oracle test
// of DESIGN.md §11: when the tag does not verify, not one block is
// decrypted, so no padding check can run and no timing can depend on it.
// Not parallel: it swaps newBlockCipher.
func TestCBCNoBlockOpsAfterMACFailure(t *testing.T) {
	ops := aeadCountBlockOps(t)
	s, _ := AEADByID(AEADA256CBCHS512)
	a := aeadNew(t, s)
	aad := []byte("lanpeer/v1 direct message aad")
	pt := aeadPattern(100, 3) // 7 blocks once padded

	msg, err := SealRandom(a, aeadTestRand(2), nil, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	// Positive controls: the hook sees every block, both ways.
	if got := ops.Swap(0); got != 7 {
		t.Fatalf("sealing 7 blocks made %d block operations; the hook is not in the path", got)
	}
	if got, err := OpenPrefixed(a, nil, msg, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %x, %v", got, err)
	}
	if got := ops.Swap(0); got != 7 {
		t.Fatalf("opening 7 blocks made %d block operations", got)
	}

	check := func(what string, m, ad []byte) {
		t.Helper()
		_, err := OpenPrefixed(a, nil, m, ad)
		aeadIsDecrypt(t, err, what)
		if got := ops.Swap(0); got != 0 {
			t.Fatalf("%s: %d block operations after a MAC failure, want 0", what, got)
		}
	}
	for i := range msg {
		m := bytes.Clone(msg)
		m[i] ^= 0x80 >> (i % 8)
		check("flipped message byte", m, aad)
	}
	for i := range aad {
		ad := bytes.Clone(aad)
		ad[i] ^= 1
		check("flipped associated data", msg, ad)
	}
	// The classic padding-oracle probe: vary the last byte of the block
	// before the final one, which steers the final block's padding byte.
	last := len(msg) - cbcTagSize - aes.BlockSize - 1
	for v := range 256 {
		m := bytes.Clone(msg)
		if m[last] == byte(v) {
			continue
		}
		m[last] = byte(v)
		check("padding-oracle probe", m, aad)
	}
	for l := range len(msg) {
		check("truncated", msg[:l], aad)
	}
}

// TestCBCBadPaddingUnderValidTag crafts, with the key, ciphertexts whose
// tag is right but whose padding is not: they are decrypted (the tag
// passed) and rejected with the very same ErrDecrypt as a MAC failure,
// leaving no plaintext in the caller's buffer. Not parallel: it swaps
// newBlockCipher.
func TestCBCBadPaddingUnderValidTag(t *testing.T) {
	ops := aeadCountBlockOps(t)
	s, _ := AEADByID(AEADA256CBCHS512)
	key := aeadPattern(s.KeySize, 0x50)
	a, err := s.New(key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := aes.NewCipher(key[32:]) // outside the hook
	if err != nil {
		t.Fatal(err)
	}
	iv := aeadPattern(cbcIVSize, 0x60)
	aad := []byte("lanpeer/v1 auth key seal aad")
	secret := []byte("secret block 16!")

	// craft returns E ‖ T for the padded plaintext secret ‖ last, with no
	// padding of its own added, tagged with the MAC key.
	craft := func(last []byte) []byte {
		p := append(bytes.Clone(secret), last...)
		e := make([]byte, len(p))
		cipher.NewCBCEncrypter(raw, iv).CryptBlocks(e, p)
		m := hmac.New(sha512.New, key[:32])
		var al [8]byte
		binary.BigEndian.PutUint64(al[:], uint64(len(aad))*8)
		for _, part := range [][]byte{aad, iv, e, al[:]} {
			m.Write(part)
		}
		return append(e, m.Sum(nil)[:cbcTagSize]...)
	}
	block := func(prefix []byte, fill byte) []byte {
		b := bytes.Repeat([]byte{fill}, aes.BlockSize)
		copy(b, prefix)
		return b
	}
	bad := []struct {
		name string
		last []byte
	}{
		{"padding byte 0", block([]byte("abcdefghijklmno\x00"), 0)},
		{"padding byte 17", block([]byte("abcdefghijklmno\x11"), 0)},
		{"padding byte 0xff", block(nil, 0xff)},
		{"2 with a 3 before it", block([]byte("abcdefghijklmn\x03\x02"), 0)},
		{"16 with the first byte 15", append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)},
		{"5 with a middle byte wrong", block([]byte("abcdefghijk\x05\x05\x04\x05\x05"), 0)},
		{"zero padding (ISO/IEC 9797-1 M1)", block([]byte("abcdef"), 0)},
		{"ANSI X.923", block([]byte("abcdefghijklm\x00\x00\x03"), 0)},
		{"ISO/IEC 7816-4", block([]byte("abcdefghijklm\x80\x00\x00"), 0)},
	}
	for _, tc := range bad {
		ct := craft(tc.last)
		ops.Store(0)
		dst := bytes.Repeat([]byte{0xaa}, 3)
		dst = append(make([]byte, 0, 256), dst...)
		got, err := a.Open(dst, iv, ct, aad)
		if got != nil {
			t.Fatalf("%s: Open returned plaintext", tc.name)
		}
		aeadIsDecrypt(t, err, tc.name)
		if n := ops.Load(); n != 2 {
			t.Fatalf("%s: %d block operations, want 2: the tag was valid, so the blocks are decrypted and the padding judged", tc.name, n)
		}
		if spare := dst[:cap(dst)]; bytes.Contains(spare, secret) || !bytes.Equal(spare[:3], []byte{0xaa, 0xaa, 0xaa}) {
			t.Fatalf("%s: plaintext left in dst's spare capacity or dst changed", tc.name)
		}
	}
	// Controls: the same crafting with correct padding opens, so the cases
	// above fail on their padding alone.
	for _, pad := range []int{1, 5, 16} {
		last := block([]byte("abcdefghijklmnop")[:16-pad], byte(pad))
		got, err := a.Open(nil, iv, craft(last), aad)
		want := append(bytes.Clone(secret), last[:16-pad]...)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("valid padding %d: Open = %q, %v; want %q", pad, got, err, want)
		}
	}
}

// aeadLengths are the plaintext sizes of the round-trip tests: every size
// up to 100 and both sides of block, page and 64 KiB boundaries.
var aeadLengths = func() []int {
	var l []int
	for n := 0; n <= 100; n++ {
		l = append(l, n)
	}
	for _, b := range []int{128, 256, 1024, 4096, 65536} {
		l = append(l, b-1, b, b+1)
	}
	return l
}()

func TestAEADRoundTripLengths(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			r := aeadTestRand(3)
			for _, n := range aeadLengths {
				pt := aeadPattern(n, byte(n))
				aad := aeadPattern(n%37, 0x77)
				msg, err := SealRandom(a, r, nil, pt, aad)
				if err != nil {
					t.Fatal(err)
				}
				if len(msg) != aeadSealedLen(s, n) {
					t.Fatalf("%d bytes sealed to %d, want %d", n, len(msg), aeadSealedLen(s, n))
				}
				if len(msg) > s.NonceSize+n+a.Overhead() {
					t.Fatalf("%d bytes sealed to %d, more than nonce + Overhead()", n, len(msg))
				}
				got, err := OpenPrefixed(a, nil, msg, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%d bytes: round trip = %v", n, err)
				}
				if n >= 16 && bytes.Contains(msg, pt) {
					t.Fatalf("%d bytes: plaintext appears in the sealed message", n)
				}
			}
		})
	}
}

// TestAEADAppendToDst checks the cipher.AEAD buffer contract and our
// nonce-prefixed helpers: output appends to dst, uses its spare capacity
// without touching anything past the output, never changes the input, and
// the in-place forms (plaintext[:0], ciphertext[:0]) work.
func TestAEADAppendToDst(t *testing.T) {
	for _, s := range AEADs() {
		t.Run(s.Name, func(t *testing.T) {
			a := aeadNew(t, s)
			aad := []byte("aad")
			nonce := aeadPattern(a.NonceSize(), 0x33)
			for _, n := range []int{0, 1, 15, 16, 17, 64, 100} {
				pt := aeadPattern(n, 0x21)
				ptCopy := bytes.Clone(pt)
				want := a.Seal(nil, nonce, pt, aad)

				// Seal into spare capacity: prefix kept, same backing array,
				// bytes past the output untouched.
				buf := bytes.Repeat([]byte{0xee}, 512)
				dst := append(buf[:0], "hdr"...)
				out := a.Seal(dst, nonce, pt, aad)
				if !bytes.Equal(out[:3], []byte("hdr")) || !bytes.Equal(out[3:], want) {
					t.Fatalf("n=%d: Seal into dst = %x, want hdr ‖ %x", n, out, want)
				}
				if &out[0] != &buf[0] {
					t.Fatalf("n=%d: Seal reallocated although dst had room", n)
				}
				if rest := buf[len(out):]; bytes.Count(rest, []byte{0xee}) != len(rest) {
					t.Fatalf("n=%d: Seal wrote past its output", n)
				}
				if !bytes.Equal(pt, ptCopy) {
					t.Fatalf("n=%d: Seal changed the plaintext", n)
				}

				// Open into spare capacity.
				obuf := bytes.Repeat([]byte{0xdd}, 512)
				got, err := a.Open(append(obuf[:0], "hdr"...), nonce, want, aad)
				if err != nil || !bytes.Equal(got, append([]byte("hdr"), pt...)) || &got[0] != &obuf[0] {
					t.Fatalf("n=%d: Open into dst = %x, %v", n, got, err)
				}
				// (A256CBC-HS512 decrypts its padding block into dst's
				// spare capacity before trimming it, so only the others
				// leave the rest untouched.)
				if rest := obuf[len(got):]; s.ID != AEADA256CBCHS512 && bytes.Count(rest, []byte{0xdd}) != len(rest) {
					t.Fatalf("n=%d: Open wrote past its output", n)
				}

				// In place, as crypto/cipher documents.
				inPlace := make([]byte, n, n+a.Overhead())
				copy(inPlace, pt)
				sealed := a.Seal(inPlace[:0], nonce, inPlace, aad)
				if !bytes.Equal(sealed, want) {
					t.Fatalf("n=%d: in-place Seal = %x, want %x", n, sealed, want)
				}
				opened, err := a.Open(sealed[:0], nonce, sealed, aad)
				if err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("n=%d: in-place Open = %x, %v", n, opened, err)
				}

				// The prefixed helpers append the same way.
				pbuf := make([]byte, 0, 1024)
				pdst := append(pbuf, "frame:"...)
				msg, err := SealRandom(a, bytes.NewReader(nonce), pdst, pt, aad)
				if err != nil || &msg[0] != &pbuf[:1][0] || !bytes.Equal(msg, append(append([]byte("frame:"), nonce...), want...)) {
					t.Fatalf("n=%d: SealRandom into dst = %x, %v", n, msg, err)
				}
				got, err = OpenPrefixed(a, []byte("ok:"), msg[len("frame:"):], aad)
				if err != nil || !bytes.Equal(got, append([]byte("ok:"), pt...)) {
					t.Fatalf("n=%d: OpenPrefixed into dst = %q, %v", n, got, err)
				}
			}
		})
	}
}
