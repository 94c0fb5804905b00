package room

import (
	"bytes"
	"testing"

	"github.com/lanpeer/lanpeer/canon"
)

// FuzzParse feeds arbitrary bytes to every parser of the package. None may
// panic; a layout that parses must be the one canonical encoding of what
// it parsed to (so one object never has two encodings, and never two
// hashes), and a member state that parses must marshal back to a state
// that parses to the same.
func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	msg, err := fx.sa.SealMessage(fx.alice.secrets, "seed", msgID(1))
	if err != nil {
		f.Fatal(err)
	}
	for _, blob := range [][]byte{fx.p[1].Commit, fx.p[3].Commit, msg, fx.bob.kp.Blob(), fx.p[3].Wrapped[0].Blob} {
		layout, _, err := SplitBlob(blob, string(blob[4:4+bytes.IndexByte(blob[4:], 0)]), 1<<20)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(layout)
		f.Add(blob)
	}
	st, err := fx.sb.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(st)
	pemBytes, err := fx.carol.secrets.MarshalPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pemBytes)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseCommit(b, DefaultMaxMembers); err == nil {
			if again := canon.RoomCommit(commitFields(c)); !bytes.Equal(again, b) {
				t.Fatalf("commit layout is not canonical:\n%x\n%x", b, again)
			}
		}
		if m, err := parseMessage(b); err == nil {
			if again := canon.RoomMessage(m.header(), m.Box); !bytes.Equal(again, b) {
				t.Fatalf("message layout is not canonical:\n%x\n%x", b, again)
			}
		}
		for _, label := range []string{canon.LabelKeyPackage, canon.LabelRoomCommit, canon.LabelWrappedKey,
			canon.LabelRoomMessage, canon.LabelRoomLeave} {
			if l, s, err := SplitBlob(b, label, 1<<20); err == nil && !bytes.Equal(joinBlob(l, s), b) {
				t.Fatal("SplitBlob and joinBlob disagree")
			}
		}
		VerifyStoredKeyPackage(b)
		ParseKeyPackageSecretsPEM(b)
		if s, err := ParseMemberState(b, nil); err == nil {
			out, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			s2, err := ParseMemberState(out, nil)
			if err != nil {
				t.Fatalf("a parsed state marshals to one that does not parse: %v", err)
			}
			if out2, _ := s2.Marshal(); !bytes.Equal(out, out2) {
				t.Fatal("member state does not round-trip")
			}
		}
	})
}
