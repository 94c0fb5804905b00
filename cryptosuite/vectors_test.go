package cryptosuite

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Vector loading for the AEAD tests. The files under testdata/ are copied
// unchanged from /work/shared/vectors (Wycheproof at C2SP/wycheproof commit
// dac1dd47, RFC transcriptions checked there); testdata/README.md names
// their sources.

// aeadHex is a byte string written as hex in a vector file.
type aeadHex []byte

func (h *aeadHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// aeadWycheproofFile is the top level of every Wycheproof file; G is the
// schema's test group.
type aeadWycheproofFile[G any] struct {
	Algorithm     string `json:"algorithm"`
	Schema        string `json:"schema"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []G    `json:"testGroups"`
}

// aeadWycheproofGroup covers the aead_test, ind_cpa_test and mac_test
// schemas: sizes are in bits, and fields a schema lacks stay zero.
type aeadWycheproofGroup struct {
	Type    string               `json:"type"`
	KeySize int                  `json:"keySize"`
	IVSize  int                  `json:"ivSize"`
	TagSize int                  `json:"tagSize"`
	Tests   []aeadWycheproofCase `json:"tests"`
}

type aeadWycheproofCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Key     aeadHex  `json:"key"`
	IV      aeadHex  `json:"iv"`
	AAD     aeadHex  `json:"aad"`
	Msg     aeadHex  `json:"msg"`
	CT      aeadHex  `json:"ct"`
	Tag     aeadHex  `json:"tag"`
	Result  string   `json:"result"` // "valid", "invalid" or "acceptable"
}

// aeadLoadJSON decodes testdata/<rel> into v, failing the test on any error.
func aeadLoadJSON(t testing.TB, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// aeadLoadWycheproof loads testdata/wycheproof/testvectors_v1/<name> and
// checks that the file holds as many tests as it declares, so a decoding
// slip cannot silently drop cases.
func aeadLoadWycheproof(t testing.TB, name string) aeadWycheproofFile[aeadWycheproofGroup] {
	t.Helper()
	var f aeadWycheproofFile[aeadWycheproofGroup]
	aeadLoadJSON(t, "wycheproof/testvectors_v1/"+name, &f)
	n := 0
	for _, g := range f.TestGroups {
		n += len(g.Tests)
	}
	if n == 0 || n != f.NumberOfTests {
		t.Fatalf("%s: decoded %d tests, file declares %d", name, n, f.NumberOfTests)
	}
	return f
}
