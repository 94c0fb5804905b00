package room

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// t0 is the fixed time of the tests.
var t0 = time.UnixMilli(1764036000000)

// peer is one test identity with a key package.
type peer struct {
	name    string
	id      *cryptosuite.Identity
	secrets *KeyPackageSecrets
	kp      *KeyPackage
}

func (p *peer) pid() cryptosuite.PeerID { return p.id.PeerID() }

var rsaFixture = sync.OnceValues(func() (*cryptosuite.Identity, error) {
	b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", "rsa2048.pem"))
	if err != nil {
		return nil, err
	}
	return cryptosuite.ParseIdentityPEM(b)
})

// newPeer makes a peer: key type "ed25519" (generated) or "rsa" (the
// committed RSA-2048 fixture), with a key package for kem made at t0.
func newPeer(t testing.TB, name, keyType string, kem cryptosuite.KEMID) *peer {
	t.Helper()
	var id *cryptosuite.Identity
	var err error
	switch keyType {
	case "ed25519":
		id, err = cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	case "rsa":
		id, err = rsaFixture()
	default:
		t.Fatalf("unknown key type %q", keyType)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := GenerateKeyPackage(id, kem, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &peer{name: name, id: id, secrets: s, kp: s.KeyPackage()}
}

// must returns v, failing the test given to the returned function on err:
// must(f())(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr fails unless err matches want.
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// wrappedFor returns the wrapped key blob of p's member.
func wrappedFor(t testing.TB, p *Proposal, member cryptosuite.PeerID) []byte {
	t.Helper()
	for _, w := range p.Wrapped {
		if w.Member == member {
			return w.Blob
		}
	}
	t.Fatalf("proposal for epoch %d wraps no key for %s", p.Info.Epoch, member.Short())
	return nil
}

// join makes p's state from commit (the create commit or p's invite) and
// opens p's wrapped key in it.
func join(t testing.TB, master *peer, prop *Proposal, p *peer, lim *Limits) *MemberState {
	t.Helper()
	st := must(NewMemberState(prop.Commit, master.id.Public(), p.pid(), lim))(t)
	if _, err := st.OpenWrappedKey(wrappedFor(t, prop, p.pid()), p.secrets); err != nil {
		t.Fatal(err)
	}
	return st
}

// follow applies prop to a member's state as a member's client does.
func follow(t testing.TB, st *MemberState, prop *Proposal, p *peer) {
	t.Helper()
	if err := st.ApplyCommit(prop.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenWrappedKey(wrappedFor(t, prop, p.pid()), p.secrets); err != nil {
		t.Fatal(err)
	}
}

// kps lists the key packages of peers.
func kps(ps ...*peer) []*KeyPackage {
	out := make([]*KeyPackage, len(ps))
	for i, p := range ps {
		out[i] = p.kp
	}
	return out
}

func msgID(b byte) (id [MessageIDSize]byte) {
	for i := range id {
		id[i] = b
	}
	return id
}

// signWith signs a layout under label with id and frames a blob: the way
// a test forges objects a real client would never build.
func signWith(t testing.TB, id *cryptosuite.Identity, label string, layout []byte) []byte {
	t.Helper()
	sig, err := id.Sign(label, layout)
	if err != nil {
		t.Fatal(err)
	}
	return joinBlob(layout, sig)
}

// commitFields returns the canon fields of a verified commit, to forge
// variants of it.
func commitFields(c *Commit) *canon.RoomCommitFields {
	f := &canon.RoomCommitFields{
		Room: c.Room, Epoch: c.Epoch, Operation: uint16(c.Operation), Name: c.Name,
		AEAD: uint16(c.Suite), Master: c.Master, TimeMillis: uint64(c.Time.UnixMilli()),
	}
	if c.Epoch > 1 {
		f.Previous = append([]byte(nil), c.Previous[:]...)
	}
	for _, m := range c.Members {
		f.Members = append(f.Members, canon.RoomCommitMember{Peer: m.Peer, KeyPackageHash: m.KeyPackage})
	}
	return f
}

// flipEach calls check with a copy of blob whose byte i is flipped, for
// every i, and fails if check accepts it.
func flipEach(t *testing.T, what string, blob []byte, check func([]byte) error) {
	t.Helper()
	for i := range blob {
		b := append([]byte(nil), blob...)
		b[i] ^= 0x01
		if err := check(b); err == nil {
			t.Fatalf("%s: flipping byte %d of %d is accepted", what, i, len(blob))
		}
	}
	// Cut short and extended, too.
	if check(blob[:len(blob)-1]) == nil || check(append(append([]byte(nil), blob...), 0)) == nil {
		t.Fatalf("%s: a cut or extended blob is accepted", what)
	}
}
