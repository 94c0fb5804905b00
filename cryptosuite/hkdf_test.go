package cryptosuite

import (
	"bytes"
	"errors"
	"testing"
)

// TestHKDFRFC5869 runs RFC 5869 A.1–A.3 through the three functions.
func TestHKDFRFC5869(t *testing.T) {
	var v kexRFC5869
	kexReadJSON(t, "rfc/rfc5869_hkdf_sha256.json", &v)
	if len(v.Vectors) != 3 {
		t.Fatalf("%d vectors, want 3", len(v.Vectors))
	}
	for _, c := range v.Vectors {
		prk, err := HKDFExtract(c.IKM, c.Salt)
		if err != nil || !bytes.Equal(prk, c.PRK) {
			t.Errorf("%s: PRK = %x, %v, want %x", c.Section, prk, err, c.PRK)
		}
		okm, err := HKDFExpand(c.PRK, c.Info, c.L)
		if err != nil || !bytes.Equal(okm, c.OKM) {
			t.Errorf("%s: Expand = %x, %v, want %x", c.Section, okm, err, c.OKM)
		}
		okm, err = HKDF(c.IKM, c.Salt, c.Info, c.L)
		if err != nil || !bytes.Equal(okm, c.OKM) {
			t.Errorf("%s: HKDF = %x, %v, want %x", c.Section, okm, err, c.OKM)
		}
	}
}

// TestHKDFWycheproof runs Wycheproof's HKDF-SHA-256 cases through HKDF:
// valid ones give the exact output (up to the 8160-byte maximum), the
// oversize requests are refused with ErrHKDFLength.
func TestHKDFWycheproof(t *testing.T) {
	f := kexLoadWycheproof[kexHKDFGroup](t, "hkdf_sha256_test.json", "hkdf_test_schema_v1.json")
	var tally kexTally
	for _, g := range f.TestGroups {
		for _, c := range g.Tests {
			tally.add(c.Result)
			okm, err := HKDF(c.IKM, c.Salt, c.Info, c.Size)
			if c.Result == "valid" {
				if err != nil || !bytes.Equal(okm, c.OKM) {
					t.Errorf("tcId %d: %v", c.TcID, err)
				}
				continue
			}
			if !errors.Is(err, ErrHKDFLength) || okm != nil {
				t.Errorf("tcId %d (%s %v): %v, want ErrHKDFLength", c.TcID, c.Result, c.Flags, err)
			}
		}
	}
	tally.check(t, f.NumberOfTests, "valid", "invalid")
}

func TestHKDFBounds(t *testing.T) {
	prk := bytes.Repeat([]byte{1}, HKDFHashSize)
	for _, n := range []int{-1, 0, MaxHKDFOutput + 1, 1 << 30} {
		if out, err := HKDFExpand(prk, nil, n); !errors.Is(err, ErrHKDFLength) || out != nil {
			t.Errorf("HKDFExpand(n=%d): %v, want ErrHKDFLength", n, err)
		}
		if out, err := HKDF(prk, nil, nil, n); !errors.Is(err, ErrHKDFLength) || out != nil {
			t.Errorf("HKDF(n=%d): %v, want ErrHKDFLength", n, err)
		}
	}
	for _, n := range []int{1, 32, 33, MaxHKDFOutput} {
		out, err := HKDFExpand(prk, nil, n)
		if err != nil || len(out) != n {
			t.Errorf("HKDFExpand(n=%d): %d bytes, %v", n, len(out), err)
		}
	}
	if _, err := HKDFExpand(prk[:HKDFHashSize-1], nil, 32); !errors.Is(err, ErrHKDFLength) {
		t.Errorf("31-byte PRK: %v, want ErrHKDFLength", err)
	}
	// A longer output extends a shorter one (RFC 5869's T(1) ‖ T(2) ‖ …),
	// and info separates outputs.
	a, _ := HKDFExpand(prk, []byte("a"), 32)
	a2, _ := HKDFExpand(prk, []byte("a"), 64)
	b, _ := HKDFExpand(prk, []byte("b"), 32)
	if !bytes.Equal(a, a2[:32]) || bytes.Equal(a, b) {
		t.Error("HKDFExpand outputs are not prefix-consistent or not separated by info")
	}
}
