package cryptosuite

// Loaders for the key-agreement, signature and HKDF vectors in testdata/
// (copied unchanged from /work/shared/vectors: RFC transcriptions and
// Wycheproof testvectors_v1) and for the committed RSA key fixtures. Every
// name here starts with kex or sig so that the AEAD tests' loaders in the
// same package cannot clash with them.

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// kexHex is a hex string in a vector file, decoded on load.
type kexHex []byte

func (h *kexHex) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return err
	}
	*h = out
	return nil
}

// kexMustHex decodes a hex literal of a test.
func kexMustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// kexReadJSON decodes testdata/<path> into v.
func kexReadJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(path)))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// kexWycheproofFile is the envelope every Wycheproof testvectors_v1 file
// shares; G is the file's test group type.
type kexWycheproofFile[G any] struct {
	Algorithm     string `json:"algorithm"`
	Schema        string `json:"schema"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []G    `json:"testGroups"`
}

// kexWycheproofCase holds the fields every Wycheproof test case has.
type kexWycheproofCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"` // "valid", "invalid" or "acceptable"
}

func (c kexWycheproofCase) hasFlag(f string) bool { return slices.Contains(c.Flags, f) }

// kexLoadWycheproof reads testdata/wycheproof/testvectors_v1/<name> and
// checks its schema name, so a file swapped for another kind fails loudly.
func kexLoadWycheproof[G any](tb testing.TB, name, schema string) *kexWycheproofFile[G] {
	tb.Helper()
	var f kexWycheproofFile[G]
	kexReadJSON(tb, "wycheproof/testvectors_v1/"+name, &f)
	if f.Schema != schema {
		tb.Fatalf("%s: schema %q, want %q", name, f.Schema, schema)
	}
	if f.NumberOfTests == 0 || len(f.TestGroups) == 0 {
		tb.Fatalf("%s: no tests", name)
	}
	return &f
}

// kexTally counts the cases a vector test ran, by result, and checks at the
// end that every case in the file ran and that each expected kind occurred
// at least once, so a loader that silently drops cases fails.
type kexTally struct {
	total  int
	counts map[string]int
}

func (t *kexTally) add(result string) {
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.total++
	t.counts[result]++
}

func (t *kexTally) check(tb testing.TB, numberOfTests int, want ...string) {
	tb.Helper()
	if t.total != numberOfTests {
		tb.Errorf("ran %d cases, file declares %d", t.total, numberOfTests)
	}
	for _, r := range want {
		if t.counts[r] == 0 {
			tb.Errorf("no %q case ran", r)
		}
	}
}

// RFC vector files (testdata/rfc/).

type kexRFC7748 struct {
	X25519 []struct {
		Section string `json:"section"`
		Scalar  kexHex `json:"scalar"`
		U       kexHex `json:"u"`
		Output  kexHex `json:"output"`
	} `json:"x25519"`
	Iterated struct {
		Initial kexHex `json:"initial_k_and_u"`
		After   []struct {
			Iterations int    `json:"iterations"`
			K          kexHex `json:"k"`
		} `json:"after"`
	} `json:"x25519_iterated"`
	DH struct {
		AlicePrivate kexHex `json:"alice_private_a"`
		AlicePublic  kexHex `json:"alice_public_X25519_a_9"`
		BobPrivate   kexHex `json:"bob_private_b"`
		BobPublic    kexHex `json:"bob_public_X25519_b_9"`
		Shared       kexHex `json:"shared_secret_K"`
	} `json:"x25519_dh"`
}

type kexRFC5869 struct {
	Vectors []struct {
		Section string `json:"section"`
		IKM     kexHex `json:"IKM"`
		Salt    kexHex `json:"salt"`
		Info    kexHex `json:"info"`
		L       int    `json:"L"`
		PRK     kexHex `json:"PRK"`
		OKM     kexHex `json:"OKM"`
	} `json:"vectors"`
}

// Wycheproof group and case types, one per schema.

// xdh_comp_schema_v1.json
type kexXDHGroup struct {
	Curve string `json:"curve"`
	Tests []struct {
		kexWycheproofCase
		Public  kexHex `json:"public"`
		Private kexHex `json:"private"`
		Shared  kexHex `json:"shared"`
	} `json:"tests"`
}

// ecdh_ecpoint_test_schema_v1.json and ecdh_test_schema_v1.json: Public is
// a raw X9.62 point in the first, an SPKI in the second.
type kexECDHGroup struct {
	Curve    string `json:"curve"`
	Encoding string `json:"encoding"`
	Tests    []struct {
		kexWycheproofCase
		Public  kexHex `json:"public"`
		Private kexHex `json:"private"` // big-endian, possibly with a sign byte or short
		Shared  kexHex `json:"shared"`
	} `json:"tests"`
}

// mlkem_test_schema.json
type kexMLKEMGroup struct {
	ParameterSet string `json:"parameterSet"`
	Tests        []struct {
		kexWycheproofCase
		Seed kexHex `json:"seed"`
		EK   kexHex `json:"ek"` // absent when the seed is malformed
		C    kexHex `json:"c"`
		K    kexHex `json:"K"`
	} `json:"tests"`
}

// eddsa_verify_schema_v1.json
type sigEdDSAGroup struct {
	PublicKey struct {
		Curve string `json:"curve"`
		PK    kexHex `json:"pk"`
	} `json:"publicKey"`
	PublicKeyDer kexHex `json:"publicKeyDer"`
	Tests        []struct {
		kexWycheproofCase
		Msg kexHex `json:"msg"`
		Sig kexHex `json:"sig"`
	} `json:"tests"`
}

// rsassa_pss_verify_schema_v1.json
type sigPSSGroup struct {
	KeySize      int    `json:"keySize"`
	SHA          string `json:"sha"`
	MGF          string `json:"mgf"`
	MGFSHA       string `json:"mgfSha"`
	SLen         int    `json:"sLen"`
	PublicKeyDer kexHex `json:"publicKeyDer"`
	Tests        []struct {
		kexWycheproofCase
		Msg kexHex `json:"msg"`
		Sig kexHex `json:"sig"`
	} `json:"tests"`
}

// rsaes_oaep_decrypt_schema_v1.json
type sigOAEPGroup struct {
	KeySize       int    `json:"keySize"`
	SHA           string `json:"sha"`
	MGF           string `json:"mgf"`
	MGFSHA        string `json:"mgfSha"`
	PrivateKeyPem string `json:"privateKeyPem"`
	Tests         []struct {
		kexWycheproofCase
		Msg   kexHex `json:"msg"`
		CT    kexHex `json:"ct"`
		Label kexHex `json:"label"`
	} `json:"tests"`
}

// hkdf_test_schema_v1.json
type kexHKDFGroup struct {
	KeySize int `json:"keySize"`
	Tests   []struct {
		kexWycheproofCase
		IKM  kexHex `json:"ikm"`
		Salt kexHex `json:"salt"`
		Info kexHex `json:"info"`
		Size int    `json:"size"`
		OKM  kexHex `json:"okm"`
	} `json:"tests"`
}

// RSA identity fixtures (testdata/keys/, made once with `openssl genpkey
// -algorithm RSA -pkeyopt rsa_keygen_bits:N`): tests never generate RSA keys.
var (
	sigFixtureMu    sync.Mutex
	sigFixtureCache = map[string]*Identity{}
)

// sigFixture returns the committed identity key testdata/keys/<name>.pem
// ("rsa2048", "rsa3072", "rsa4096"), parsed once per test binary.
func sigFixture(tb testing.TB, name string) *Identity {
	tb.Helper()
	sigFixtureMu.Lock()
	defer sigFixtureMu.Unlock()
	if id, ok := sigFixtureCache[name]; ok {
		return id
	}
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := ParseIdentityPEM(b)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	sigFixtureCache[name] = id
	return id
}

// sigEd25519 returns a fresh Ed25519 identity (cheap to generate).
func sigEd25519(tb testing.TB) *Identity {
	tb.Helper()
	id, err := GenerateIdentity(KeyEd25519)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}
