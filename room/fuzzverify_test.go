package room

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// FuzzVerify's real objects (identities, commits, key packages, wrapped
// keys, a message, a leave request and a member's state) are made once by
// the room code itself and committed in testdata/objects.txt, so the
// committed corpus holds real signed blobs that verify under keys the
// target can load: the room key wraps and key packages take randomness no
// seed controls.

var writeObjects = flag.Bool("write-objects", false, "regenerate testdata/objects.txt and the FuzzVerify corpus")

const objectsFile = "objects.txt"

// objects are the committed real objects, by name (hex in the file).
type objects map[string][]byte

func makeObjects(t testing.TB) objects {
	fx := newFixture(t)
	o := objects{}
	for _, p := range []*peer{fx.alice, fx.carol} {
		pemBytes, err := p.id.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		o["identity_"+p.name] = pemBytes
	}
	for i := 1; i <= 3; i++ {
		o[fmt.Sprintf("commit_%d", i)] = fx.p[i].Commit
		for _, w := range fx.p[i].Wrapped {
			o[fmt.Sprintf("wrapped_%d_%x", i, w.Member[:4])] = w.Blob
		}
	}
	for _, p := range []*peer{fx.alice, fx.bob, fx.carol} {
		o["key_package_"+p.name] = p.kp.Blob()
	}
	msg, err := fx.sa.SealMessage(fx.alice.secrets, "a real message", msgID(1))
	if err != nil {
		t.Fatal(err)
	}
	o["message_alice"] = msg
	leave, err := BuildLeaveRequest(fx.carol.id, fx.p[3].Info.Room, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	o["leave_carol"] = leave
	// Bob's state at epoch 2, before Carol's invite: commit_3 is its one
	// valid next commit.
	st, err := join(t, fx.alice, fx.p[2], fx.bob, nil).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o["state_bob_epoch_2"] = st
	return o
}

func (o objects) text() []byte {
	var b bytes.Buffer
	b.WriteString("# Real room objects for FuzzVerify (room/fuzzverify_test.go), hex.\n" +
		"# Regenerate with: go test ./room -run TestFuzzVerifyCorpus -write-objects\n")
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%x\n", n, o[n])
	}
	return b.Bytes()
}

var loadObjects = sync.OnceValues(func() (objects, error) {
	f, err := os.Open(filepath.Join("testdata", objectsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := objects{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		b, err := hex.DecodeString(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad line %q", objectsFile, line)
		}
		o[k] = b
	}
	return o, sc.Err()
})

// with returns the objects whose names start with prefix.
func (o objects) with(prefix string) [][]byte {
	var out [][]byte
	for n, b := range o {
		if strings.HasPrefix(n, prefix) {
			out = append(out, b)
		}
	}
	return out
}

func containsBlob(set [][]byte, b []byte) bool {
	return slices.ContainsFunc(set, func(x []byte) bool { return bytes.Equal(x, b) })
}

// roomRefusal reports whether err is one of the package's typed refusals.
func roomRefusal(err error) bool {
	for _, e := range []error{ErrMalformed, ErrBadSignature, ErrKeyPackageExpired, ErrKeyPackageNotYetValid,
		ErrWrongKeyPackage, ErrForgedCommit, ErrCommitGap, ErrRollback, ErrChainBroken, ErrCommitKnown,
		ErrBadCommit, ErrWrongRoom, ErrTooManyMembers, cryptosuite.ErrUnsupportedKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzVerify runs every verifier a host or member applies to a blob it
// receives, with the real keys: VerifyCommit, VerifyKeyPackage,
// VerifyWrappedKey, VerifyMessage, VerifyLeaveRequest, and ApplyCommit on
// a member's state. No panic; every refusal is one of the package's typed
// errors; and each verifier accepts only the real objects of its kind
// (every byte of a blob is signed or checked), ApplyCommit only the one
// commit that follows the state's head.
func FuzzVerify(f *testing.F) {
	o, err := loadObjects()
	if err != nil {
		f.Fatalf("%v (generate with: go test ./room -run TestFuzzVerifyCorpus -write-objects)", err)
	}
	alice := must(cryptosuite.ParseIdentityPEM(o["identity_alice"]))(f).Public()
	carol := must(cryptosuite.ParseIdentityPEM(o["identity_carol"]))(f).Public()
	kpAlice := must(VerifyStoredKeyPackage(o["key_package_alice"]))(f)
	commits, kps, wrapped := o.with("commit_"), o.with("key_package_"), o.with("wrapped_")
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error, real bool) {
			t.Helper()
			if err == nil && !real {
				t.Fatalf("%s accepted a blob that is not a real one: %x", what, b)
			}
			if err != nil && !roomRefusal(err) {
				t.Fatalf("%s: untyped refusal %v (%T)", what, err, err)
			}
		}
		_, err := VerifyCommit(b, alice, nil)
		check("VerifyCommit", err, containsBlob(commits, b))
		_, err = VerifyKeyPackage(b, t0)
		check("VerifyKeyPackage", err, containsBlob(kps, b))
		_, err = VerifyStoredKeyPackage(b)
		check("VerifyStoredKeyPackage", err, containsBlob(kps, b))
		_, err = VerifyWrappedKey(b, alice)
		check("VerifyWrappedKey", err, containsBlob(wrapped, b))
		_, err = VerifyMessage(b, kpAlice)
		check("VerifyMessage", err, bytes.Equal(b, o["message_alice"]))
		_, err = VerifyLeaveRequest(b, carol)
		check("VerifyLeaveRequest", err, bytes.Equal(b, o["leave_carol"]))
		st, err := ParseMemberState(o["state_bob_epoch_2"], nil)
		if err != nil {
			t.Fatal(err)
		}
		check("ApplyCommit", st.ApplyCommit(b), bytes.Equal(b, o["commit_3"]))
	})
}

// TestFuzzVerifyCorpus checks that the committed FuzzVerify corpus holds
// exactly the real objects of testdata/objects.txt, and that they are
// real: each verifies. With -write-objects it makes new objects and
// rewrites both.
func TestFuzzVerifyCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if *writeObjects {
		o := makeObjects(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", objectsFile), o.text(), 0o644); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		for _, f := range old {
			os.Remove(f)
		}
		for n, b := range o {
			if strings.HasPrefix(n, "identity_") {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, "seed-"+n), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	o, err := loadObjects()
	if err != nil {
		t.Fatalf("%v (generate with -write-objects)", err)
	}
	want := 0
	for n, b := range o {
		if strings.HasPrefix(n, "identity_") {
			continue
		}
		want++
		got, err := os.ReadFile(filepath.Join(dir, "seed-"+n))
		if err != nil || !bytes.Equal(got, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)) {
			t.Errorf("seed-%s missing or not the object of %s (%v)", n, objectsFile, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
	if len(files) != want {
		t.Errorf("%d committed seeds, %d objects", len(files), want)
	}
	// The objects are real: each verifies as what it is.
	alice := must(cryptosuite.ParseIdentityPEM(o["identity_alice"]))(t).Public()
	carol := must(cryptosuite.ParseIdentityPEM(o["identity_carol"]))(t).Public()
	for _, b := range o.with("commit_") {
		must(VerifyCommit(b, alice, nil))(t)
	}
	for _, b := range o.with("key_package_") {
		must(VerifyKeyPackage(b, t0))(t)
	}
	for _, b := range o.with("wrapped_") {
		must(VerifyWrappedKey(b, alice))(t)
	}
	must(VerifyMessage(o["message_alice"], must(VerifyStoredKeyPackage(o["key_package_alice"]))(t)))(t)
	must(VerifyLeaveRequest(o["leave_carol"], carol))(t)
	st := must(ParseMemberState(o["state_bob_epoch_2"], nil))(t)
	if err := st.ApplyCommit(o["commit_3"]); err != nil {
		t.Fatalf("commit_3 does not follow the state: %v", err)
	}
}
