package room

import (
	"bytes"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// TestKeyPackage: a key package round-trips for every identity type and
// KEM, its hash is SHA-256 of the blob, and verifiers refuse it outside
// its validity period.
func TestKeyPackage(t *testing.T) {
	for _, tc := range []struct {
		keyType string
		kem     cryptosuite.KEMID
	}{
		{"ed25519", cryptosuite.KEMX25519},
		{"rsa", cryptosuite.KEMX25519},
		{"ed25519", cryptosuite.KEMMLKEM768X25519},
		{"rsa", cryptosuite.KEMMLKEM768X25519},
	} {
		t.Run(tc.keyType+"/"+tc.kem.String(), func(t *testing.T) {
			p := newPeer(t, "p", tc.keyType, tc.kem)
			kp := must(VerifyKeyPackage(p.kp.Blob(), t0.Add(time.Hour)))(t)
			if kp.Owner != p.pid() || kp.HPKEKey.KEM() != tc.kem || !kp.IdentityKey.Equal(p.id.Public()) ||
				!bytes.Equal(kp.SigningKey, p.kp.SigningKey) || !kp.Created.Equal(t0) ||
				!kp.Expires.Equal(t0.Add(DefaultKeyPackageLifetime)) || kp.Hash() != BlobHash(p.kp.Blob()) {
				t.Fatalf("key package round trip: %+v", kp)
			}
			if len(kp.SigningKey) != 32 {
				t.Fatal("the message-signing key is not Ed25519")
			}
			_, err := VerifyKeyPackage(p.kp.Blob(), kp.Expires)
			wantErr(t, err, ErrKeyPackageExpired)
			_, err = VerifyKeyPackage(p.kp.Blob(), t0.Add(-KeyPackageClockSkew-time.Millisecond))
			wantErr(t, err, ErrKeyPackageNotYetValid)
			if _, err := VerifyKeyPackage(p.kp.Blob(), t0.Add(-KeyPackageClockSkew)); err != nil {
				t.Fatalf("within the clock skew: %v", err)
			}
			// History still verifies after expiry.
			if _, err := VerifyStoredKeyPackage(p.kp.Blob()); err != nil {
				t.Fatal(err)
			}
			flipEach(t, "key package", p.kp.Blob(), func(b []byte) error {
				_, err := VerifyKeyPackage(b, t0)
				return err
			})
		})
	}
}

// TestKeyPackageSecretsPEM: secrets persist and restore, open what was
// wrapped to them and sign what verifies; mismatched or mangled files are
// refused.
func TestKeyPackageSecretsPEM(t *testing.T) {
	for _, kem := range []cryptosuite.KEMID{cryptosuite.KEMX25519, cryptosuite.KEMMLKEM768X25519} {
		p := newPeer(t, "p", "ed25519", kem)
		pemBytes := must(p.secrets.MarshalPEM())(t)
		if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN LANPEER KEY PACKAGE SECRETS-----\n")) {
			t.Fatalf("PEM: %.60s", pemBytes)
		}
		s2 := must(ParseKeyPackageSecretsPEM(pemBytes))(t)
		if s2.KeyPackage().Hash() != p.kp.Hash() {
			t.Fatal("restored secrets belong to another key package")
		}
		// The restored secrets open the member's wrapped key and sign its
		// messages.
		room := must(NewRoom(RoomConfig{Master: p.id, KeyPackage: p.kp, Name: "x", Now: t0}))(t)
		st := must(NewMemberState(room.Commit, p.id.Public(), p.pid(), nil))(t)
		if _, err := st.OpenWrappedKey(room.Wrapped[0].Blob, s2); err != nil {
			t.Fatal(err)
		}
		m := must(st.SealMessage(s2, "hi", msgID(1)))(t)
		if _, err := st.OpenMessage(m, p.kp); err != nil {
			t.Fatal(err)
		}
	}
	a := newPeer(t, "a", "ed25519", 0)
	b := newPeer(t, "b", "ed25519", 0)
	// Swap the private keys between two secrets files: refused.
	swap := func(field int) []byte {
		fa, fb := pemFields(t, a.secrets), pemFields(t, b.secrets)
		fa[field] = fb[field]
		return pemOf(fa)
	}
	_, err := ParseKeyPackageSecretsPEM(swap(1))
	wantErr(t, err, ErrWrongKeyPackage)
	_, err = ParseKeyPackageSecretsPEM(swap(2))
	wantErr(t, err, ErrWrongKeyPackage)
	for name, in := range map[string][]byte{
		"empty":          nil,
		"other type":     []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"trailing field": pemOf(append(pemFields(t, a.secrets), []byte{1})),
		"short seed":     pemOf(append(pemFields(t, a.secrets)[:2], make([]byte, 31))),
		"too large":      bytes.Repeat([]byte("A"), MaxKeyPackageSecretsPEM+1),
		"two blocks":     append(must(a.secrets.MarshalPEM())(t), must(b.secrets.MarshalPEM())(t)...),
	} {
		if _, err := ParseKeyPackageSecretsPEM(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func pemFields(t *testing.T, s *KeyPackageSecrets) [][]byte {
	t.Helper()
	hb := must(s.hpke.Bytes())(t)
	return [][]byte{s.kp.Blob(), hb, s.sign.Seed()}
}

func pemOf(fields [][]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "LANPEER KEY PACKAGE SECRETS", Bytes: b})
}

// TestKeyPackageBounds: lifetimes out of range are refused by the builder
// and, signed anyway, by the verifier; so are bad KEMs and keys.
func TestKeyPackageBounds(t *testing.T) {
	p := newPeer(t, "p", "ed25519", 0)
	if _, err := GenerateKeyPackage(p.id, 0, t0, MaxKeyPackageLifetime+time.Millisecond); err == nil {
		t.Fatal("a lifetime over the maximum is accepted")
	}
	if _, err := GenerateKeyPackage(p.id, 0x7777, t0, 0); err == nil {
		t.Fatal("an unknown KEM is accepted")
	}
	good := canon.KeyPackageFields{
		IdentityKey: p.id.Public().SPKI(), KEM: uint16(cryptosuite.KEMX25519), HPKEPublicKey: p.kp.HPKEKey.Bytes(),
		SigningKey: p.kp.SigningKey, CreatedMillis: uint64(t0.UnixMilli()), ExpiresMillis: uint64(t0.Add(time.Hour).UnixMilli()),
	}
	if _, err := VerifyStoredKeyPackage(signWith(t, p.id, canon.LabelKeyPackage, canon.KeyPackage(&good))); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*canon.KeyPackageFields){
		"expires before created": func(f *canon.KeyPackageFields) { f.ExpiresMillis = f.CreatedMillis },
		"lifetime too long": func(f *canon.KeyPackageFields) {
			f.ExpiresMillis = f.CreatedMillis + uint64(MaxKeyPackageLifetime/time.Millisecond) + 1
		},
		"unknown KEM":        func(f *canon.KeyPackageFields) { f.KEM = 0x0010 },
		"HPKE key too short": func(f *canon.KeyPackageFields) { f.HPKEPublicKey = f.HPKEPublicKey[:31] },
		"low-order HPKE key": func(f *canon.KeyPackageFields) { f.HPKEPublicKey = make([]byte, 32) },
		"signing key short":  func(f *canon.KeyPackageFields) { f.SigningKey = f.SigningKey[:31] },
		"time out of range":  func(f *canon.KeyPackageFields) { f.CreatedMillis, f.ExpiresMillis = 1<<63, 1<<63+1 },
		"another SPKI":       func(f *canon.KeyPackageFields) { f.IdentityKey = newPeer(t, "q", "ed25519", 0).id.Public().SPKI() },
		"non-canonical SPKI": func(f *canon.KeyPackageFields) { f.IdentityKey = append(f.IdentityKey, 0) },
	} {
		f := good
		edit(&f)
		if _, err := VerifyStoredKeyPackage(signWith(t, p.id, canon.LabelKeyPackage, canon.KeyPackage(&f))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Sizes the bounds derive from.
	if maxHPKEPublicKey != cryptosuite.KEMMLKEM768X25519.PublicKeySize() || maxHPKEEnc != cryptosuite.KEMMLKEM768X25519.EncSize() {
		t.Fatal("maxHPKEPublicKey or maxHPKEEnc out of step with cryptosuite")
	}
	rsa := newPeer(t, "r", "rsa", cryptosuite.KEMMLKEM768X25519)
	if n := len(rsa.kp.Blob()); n > MaxKeyPackageBlob {
		t.Fatalf("an RSA-2048, MLKEM768X25519 key package of %d bytes is over MaxKeyPackageBlob %d", n, MaxKeyPackageBlob)
	}
}

// TestBlobFlips: every byte of every object's blob, flipped, is refused by
// its verifier, and a refused commit or wrapped key changes no state.
func TestBlobFlips(t *testing.T) {
	f := newFixture(t)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	flipEach(t, "commit", p4.Commit, func(b []byte) error { return f.sb.ApplyCommit(b) })
	unchanged(t, f.sb, 3, f.p[3].Info.Hash)
	follow(t, f.sb, p4, f.bob)

	// Wrapped key, signed by an Ed25519 master (alice), for bob; and one by
	// an RSA master.
	bobWrap := wrappedFor(t, p4, f.bob.pid())
	flipEach(t, "wrapped key", bobWrap, func(b []byte) error {
		_, err := f.sb.OpenWrappedKey(b, f.bob.secrets)
		return err
	})

	rsaRoom := must(NewRoom(RoomConfig{Master: f.bob.id, KeyPackage: f.bob.kp, Name: "rsa", Now: t0}))(t)
	flipEach(t, "commit (RSA master)", rsaRoom.Commit, func(b []byte) error {
		_, err := NewMemberState(b, f.bob.id.Public(), f.bob.pid(), nil)
		return err
	})
	fresh := must(NewMemberState(rsaRoom.Commit, f.bob.id.Public(), f.bob.pid(), nil))(t)
	flipEach(t, "wrapped key (RSA master)", rsaRoom.Wrapped[0].Blob, func(b []byte) error {
		_, err := fresh.OpenWrappedKey(b, f.bob.secrets)
		return err
	})
	if fresh.HasKey(1) {
		t.Fatal("a flipped wrapped key was stored")
	}

	m := must(f.sc.SealMessage(f.carol.secrets, strings.Repeat("x", 256), msgID(1)))(t)
	flipEach(t, "message (host)", m, func(b []byte) error {
		_, err := VerifyMessage(b, f.carol.kp)
		return err
	})
	flipEach(t, "message (member)", m, func(b []byte) error {
		_, err := f.sa.OpenMessage(b, f.carol.kp)
		return err
	})
	lb := must(BuildLeaveRequest(f.bob.id, p4.Info.Room, 4, t0))(t)
	flipEach(t, "leave request", lb, func(b []byte) error {
		_, err := VerifyLeaveRequest(b, f.bob.id.Public())
		return err
	})
}

// TestWrongPurpose: a blob of one purpose presented as another is refused,
// and so is a signature made under one label over the same fields in
// another's layout.
func TestWrongPurpose(t *testing.T) {
	f := newFixture(t)
	alice := f.alice.id
	// alice signs a key package of her own; presented as a commit, wrapped
	// key or leave request of alice's, each is refused.
	for name, blob := range map[string][]byte{
		"key package": f.alice.kp.Blob(),
		"commit":      f.p[3].Commit,
		"wrapped key": wrappedFor(t, f.p[3], f.alice.pid()),
		"leave":       must(BuildLeaveRequest(alice, f.p[3].Info.Room, 3, t0))(t),
	} {
		if name != "commit" {
			if err := f.sb.ApplyCommit(blob); err == nil {
				t.Errorf("%s accepted as a commit", name)
			} else {
				wantErr(t, err, ErrForgedCommit)
			}
		}
		if name != "wrapped key" {
			_, err := VerifyWrappedKey(blob, alice.Public())
			wantErr(t, err, ErrBadSignature)
		}
		if name != "leave" {
			_, err := VerifyLeaveRequest(blob, alice.Public())
			wantErr(t, err, ErrBadSignature)
		}
		if name != "key package" {
			_, err := VerifyStoredKeyPackage(blob)
			wantErr(t, err, ErrBadSignature)
		}
		_, err := VerifyMessage(blob, f.alice.kp)
		wantErr(t, err, ErrBadSignature)
	}
	// The same field bytes under two labels: a signature over the leave
	// layout does not verify the commit layout, and the reverse.
	commitLayout, _, _ := SplitBlob(f.p[3].Commit, canon.LabelRoomCommit, MaxCommitBlob(DefaultMaxMembers))
	body := commitLayout[len(canon.LabelRoomCommit)+1:]
	leaveLayout := append([]byte(canon.LabelRoomLeave+"\x00"), body...)
	sig := must(alice.Sign(canon.LabelRoomLeave, leaveLayout))(t)
	wantErr(t, f.sb.ApplyCommit(joinBlob(commitLayout, sig)), ErrForgedCommit)
	// A message-signing signature in place of the master's.
	msig := must(signMessageKey(f.alice.secrets.sign, canon.LabelRoomCommit, commitLayout))(t)
	wantErr(t, f.sb.ApplyCommit(msig), ErrForgedCommit)
}

// TestCommitParsing: a master-signed commit that breaks a field rule is
// refused with ErrMalformed (or ErrTooManyMembers for its member count).
func TestCommitParsing(t *testing.T) {
	f := newFixture(t)
	head := f.p[3].Info
	bad := map[string]func(*canon.RoomCommitFields){
		"create at epoch 2":    func(c *canon.RoomCommitFields) { c.Operation = uint16(OpCreate) },
		"epoch 0":              func(c *canon.RoomCommitFields) { c.Epoch = 0 },
		"no previous hash":     func(c *canon.RoomCommitFields) { c.Previous = nil },
		"short previous hash":  func(c *canon.RoomCommitFields) { c.Previous = c.Previous[:31] },
		"unknown operation":    func(c *canon.RoomCommitFields) { c.Operation = 9 },
		"unknown suite":        func(c *canon.RoomCommitFields) { c.AEAD = 0x0999 },
		"empty name":           func(c *canon.RoomCommitFields) { c.Name = "" },
		"name with escape":     func(c *canon.RoomCommitFields) { c.Name = "a\x1b[2Jb" },
		"name with newline":    func(c *canon.RoomCommitFields) { c.Name = "a\nb" },
		"name too long":        func(c *canon.RoomCommitFields) { c.Name = strings.Repeat("n", MaxNameSize+1) },
		"members out of order": func(c *canon.RoomCommitFields) { c.Members[0], c.Members[1] = c.Members[1], c.Members[0] },
		"member twice":         func(c *canon.RoomCommitFields) { c.Members = append(c.Members, c.Members[2]) },
		"time out of range":    func(c *canon.RoomCommitFields) { c.TimeMillis = 1<<62 + 1 },
	}
	for name, edit := range bad {
		t.Run(name, func(t *testing.T) {
			fields := commitFields(head)
			edit(fields)
			blob := signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
			_, err := VerifyCommit(blob, f.alice.id.Public(), nil)
			wantErr(t, err, ErrMalformed)
		})
	}
	t.Run("create with a previous hash", func(t *testing.T) {
		fields := commitFields(f.p[1].Info)
		fields.Previous = make([]byte, 32)
		_, err := VerifyCommit(signWith(t, f.alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields)), f.alice.id.Public(), nil)
		wantErr(t, err, ErrMalformed)
	})
	t.Run("member element of 63 bytes", func(t *testing.T) {
		layout := canon.RoomCommit(commitFields(head))
		// Rebuild with a short element by hand: the list field follows
		// the master field.
		r := canon.NewReader(canon.LabelRoomCommit, layout)
		var fs [][]byte
		for range 9 {
			fs = append(fs, r.Bytes())
		}
		b := canon.New(canon.LabelRoomCommit)
		for i, fl := range fs {
			if i == 7 {
				b.List(fl[4:4+63], fl[4+64+4:4+64+4+64])
				continue
			}
			b.Bytes(fl)
		}
		_, err := VerifyCommit(signWith(t, f.alice.id, canon.LabelRoomCommit, b.Out()), f.alice.id.Public(), nil)
		wantErr(t, err, ErrMalformed)
	})
	t.Run("trailing field", func(t *testing.T) {
		layout := append(canon.RoomCommit(commitFields(head)), 0, 0, 0, 0)
		_, err := VerifyCommit(signWith(t, f.alice.id, canon.LabelRoomCommit, layout), f.alice.id.Public(), nil)
		wantErr(t, err, ErrMalformed)
	})
}

// TestMemberBound: a room holds at most Limits.MaxMembers members: the
// master cannot propose more, and a commit listing more is refused
// whether its blob is over the size bound or not.
func TestMemberBound(t *testing.T) {
	lim := &Limits{MaxMembers: 3}
	alice := newPeer(t, "alice", "ed25519", 0)
	others := []*peer{newPeer(t, "b", "ed25519", 0), newPeer(t, "c", "ed25519", 0), newPeer(t, "d", "ed25519", 0)}
	p := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "x", Now: t0, Limits: lim}))(t)
	st := join(t, alice, p, alice, lim)
	all := append([]*KeyPackage{alice.kp}, kps(others...)...)
	p2 := must(st.Invite(alice.id, all, t0, others[0].pid(), others[1].pid()))(t)
	if err := st.ApplyProposal(p2, alice.secrets); err != nil {
		t.Fatal(err)
	}
	_, err := st.Invite(alice.id, all, t0, others[2].pid())
	wantErr(t, err, ErrTooManyMembers)
	// Forged by signing directly: 4 members, and 40.
	fields := commitFields(p2.Info)
	fields.Epoch, fields.Previous = 3, p2.Info.Hash[:]
	fields.Members = append(fields.Members, canon.RoomCommitMember{Peer: others[2].pid(), KeyPackageHash: others[2].kp.Hash()})
	sortCanonMembers(fields.Members)
	four := signWith(t, alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	wantErr(t, st.ApplyCommit(four), ErrTooManyMembers)
	for i := range 36 {
		var m canon.RoomCommitMember
		m.Peer[0], m.Peer[1] = 0xff, byte(i)
		fields.Members = append(fields.Members, m)
	}
	sortCanonMembers(fields.Members)
	forty := signWith(t, alice.id, canon.LabelRoomCommit, canon.RoomCommit(fields))
	if len(forty) <= MaxCommitBlob(3) {
		t.Fatalf("test commit of %d bytes is within the size bound", len(forty))
	}
	wantErr(t, st.ApplyCommit(forty), ErrTooManyMembers)
	// The defaults: a full room's commit fits its bound.
	if _, err := (&Limits{MaxMembers: MaxMembersCeiling + 1}).resolve(); err == nil {
		t.Fatal("a member limit over the ceiling is accepted")
	}
	if _, err := NewMemberState(p2.Commit, alice.id.Public(), alice.pid(), &Limits{MaxEpochs: -1}); err == nil {
		t.Fatal("a negative epoch limit is accepted")
	}
}

// TestTextBounds: texts and names outside the rules are refused before
// anything is sealed; a received box whose text breaks them is refused
// after opening.
func TestTextBounds(t *testing.T) {
	f := newFixture(t)
	for name, text := range map[string]string{
		"empty":      "",
		"oversize":   strings.Repeat("a", MaxTextSize+1),
		"escape":     "look \x1b[31mred",
		"CR":         "a\rb",
		"NUL":        "a\x00b",
		"C1":         "a\u0085b",
		"bidi":       "a\u202eb",
		"isolate":    "a\u2066b",
		"separator":  "a\u2028b",
		"bad UTF-8":  "a\xffb",
		"surrogate":  "a\xed\xa0\x80b",
		"overlong /": "a\xc0\xafb",
	} {
		_, err := f.sa.SealMessage(f.alice.secrets, text, msgID(1))
		if err == nil {
			t.Errorf("%s: sealed", name)
			continue
		}
		wantErr(t, err, ErrBadText)
	}
	for _, ok := range []string{"a", strings.Repeat("é", MaxTextSize/2), "tab\tand\nnewline", "emoji 👩‍💻", "עברית"} {
		m, err := f.sa.SealMessage(f.alice.secrets, ok, msgID(2))
		if err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
		if len(m) > MaxMessageBlob {
			t.Fatalf("message blob of %d bytes over MaxMessageBlob %d", len(m), MaxMessageBlob)
		}
		if pt := must(f.sb.OpenMessage(m, f.alice.kp))(t); pt.Text != ok {
			t.Fatal("text changed")
		}
	}
	// A sender that seals a forbidden text anyway: members refuse it.
	h := f.sa.head()
	hdr := &canon.RoomMessageHeader{Room: f.sa.room, Epoch: h.epoch, CommitHash: h.hash, Sender: f.alice.pid(),
		MessageID: msgID(3), KeyPackageHash: f.alice.kp.Hash()}
	sk := must(cryptosuite.SenderKey(h.key, f.sa.room, h.epoch, f.alice.pid(), f.sa.Suite()))(t)
	a := must(f.sa.Suite().New(sk))(t)
	box := must(cryptosuite.SealRandom(a, nil, nil, []byte("\x1b]0;pwned\x07"), canon.RoomMessageAAD(hdr)))(t)
	evil := must(signMessageKey(f.alice.secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, box)))(t)
	_, err := f.sb.OpenMessage(evil, f.alice.kp)
	wantErr(t, err, ErrBadText)
	// A box over the bound, signed: refused before any opening.
	big := must(signMessageKey(f.alice.secrets.sign, canon.LabelRoomMessage,
		canon.RoomMessage(hdr, make([]byte, MaxBoxSize+1))))(t)
	_, err = VerifyMessage(big, f.alice.kp)
	wantErr(t, err, ErrMalformed)
	// A box that is not a seal under the sender key (signed, so only the
	// AEAD can tell).
	junk := must(signMessageKey(f.alice.secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, make([]byte, 80))))(t)
	_, err = f.sb.OpenMessage(junk, f.alice.kp)
	wantErr(t, err, ErrOpen)
	// A room name over the bound, or with a control character.
	_, err = NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: strings.Repeat("n", MaxNameSize+1), Now: t0})
	wantErr(t, err, ErrBadText)
	_, err = NewRoom(RoomConfig{Master: f.alice.id, KeyPackage: f.alice.kp, Name: "a\x07", Now: t0})
	wantErr(t, err, ErrBadText)
}

// TestSenderKeyCap: past cryptosuite.MaxSealsPerSenderKey messages in one
// epoch a member seals no more until the next epoch.
func TestSenderKeyCap(t *testing.T) {
	f := newFixture(t)
	f.sb.mu.Lock()
	f.sb.sealed = cryptosuite.MaxSealsPerSenderKey - 1
	f.sb.mu.Unlock()
	if _, err := f.sb.SealMessage(f.bob.secrets, "last", msgID(1)); err != nil {
		t.Fatal(err)
	}
	_, err := f.sb.SealMessage(f.bob.secrets, "one too many", msgID(2))
	wantErr(t, err, cryptosuite.ErrSenderKeyExhausted)
	// The count persists.
	st := must(ParseMemberState(must(f.sb.Marshal())(t), nil))(t)
	_, err = st.SealMessage(f.bob.secrets, "after restart", msgID(3))
	wantErr(t, err, cryptosuite.ErrSenderKeyExhausted)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	follow(t, st, p4, f.bob)
	if _, err := st.SealMessage(f.bob.secrets, "new epoch", msgID(4)); err != nil {
		t.Fatal(err)
	}
}

// TestLeaveRequest: round trip, the signer must be the member named, and
// the master refuses a request replayed from an earlier membership.
func TestLeaveRequest(t *testing.T) {
	f := newFixture(t)
	room := f.p[3].Info.Room
	lb := must(BuildLeaveRequest(f.carol.id, room, 3, t0))(t)
	lr := must(VerifyLeaveRequest(lb, f.carol.id.Public()))(t)
	if lr.Room != room || lr.Member != f.carol.pid() || lr.Epoch != 3 || !lr.Time.Equal(t0) {
		t.Fatalf("%+v", lr)
	}
	_, err := VerifyLeaveRequest(lb, f.bob.id.Public())
	wantErr(t, err, ErrBadSignature)
	// Signed by bob, naming carol.
	forged := signWith(t, f.bob.id, canon.LabelRoomLeave, canon.RoomLeave(room, f.carol.pid(), 3, uint64(t0.UnixMilli())))
	_, err = VerifyLeaveRequest(forged, f.bob.id.Public())
	wantErr(t, err, ErrBadSignature)
	// Carol signed at epoch 2, before she joined at 3: stale.
	old := must(VerifyLeaveRequest(must(BuildLeaveRequest(f.carol.id, room, 2, t0))(t), f.carol.id.Public()))(t)
	wantErr(t, f.sa.AcceptLeave(old), ErrStaleLeave)
	future := must(VerifyLeaveRequest(must(BuildLeaveRequest(f.carol.id, room, 9, t0))(t), f.carol.id.Public()))(t)
	wantErr(t, f.sa.AcceptLeave(future), ErrStaleLeave)
	if err := f.sa.AcceptLeave(lr); err != nil {
		t.Fatal(err)
	}
	// Removed at 4 and invited again at 5: the epoch-3 request is stale.
	p4 := must(f.sa.Remove(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(p4, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.sa.AcceptLeave(lr), ErrNotMember)
	p5 := must(f.sa.Invite(f.alice.id, kps(f.alice, f.bob, f.carol), t0, f.carol.pid()))(t)
	if err := f.sa.ApplyProposal(p5, f.alice.secrets); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.sa.AcceptLeave(lr), ErrStaleLeave)
	// The master's own request, and another room's.
	ml := must(VerifyLeaveRequest(must(BuildLeaveRequest(f.alice.id, room, 5, t0))(t), f.alice.id.Public()))(t)
	wantErr(t, f.sa.AcceptLeave(ml), ErrMasterCannotLeave)
	var other [RoomIDSize]byte
	ol := must(VerifyLeaveRequest(must(BuildLeaveRequest(f.carol.id, other, 5, t0))(t), f.carol.id.Public()))(t)
	wantErr(t, f.sa.AcceptLeave(ol), ErrWrongRoom)
}

// TestBlobFraming: SplitBlob's framing rules.
func TestBlobFraming(t *testing.T) {
	layout := canon.RoomLeave([16]byte{}, [32]byte{}, 1, 1)
	blob := joinBlob(layout, []byte("sig"))
	l, s, err := SplitBlob(blob, canon.LabelRoomLeave, len(blob))
	if err != nil || !bytes.Equal(l, layout) || string(s) != "sig" {
		t.Fatalf("split: %v", err)
	}
	for name, tc := range map[string]struct {
		b     []byte
		label string
		max   int
		want  error
	}{
		"over max":      {blob, canon.LabelRoomLeave, len(blob) - 1, ErrMalformed},
		"trailing":      {append(append([]byte(nil), blob...), 0), canon.LabelRoomLeave, 1 << 20, ErrMalformed},
		"no signature":  {blob[:4+len(layout)], canon.LabelRoomLeave, 1 << 20, ErrMalformed},
		"short length":  {blob[:3], canon.LabelRoomLeave, 1 << 20, ErrMalformed},
		"huge length":   {[]byte{0xff, 0xff, 0xff, 0xff, 0}, canon.LabelRoomLeave, 1 << 20, ErrMalformed},
		"other purpose": {blob, canon.LabelRoomCommit, 1 << 20, ErrBadSignature},
	} {
		if _, _, err := SplitBlob(tc.b, tc.label, tc.max); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
