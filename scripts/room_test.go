package scripts

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
)

// TestRoomObjects: the walkthrough's room functions against package room.
// The shell's key package, create commit and self-wrapped key verify as
// the host and members verify them; then a Go master invites the shell's
// peer, open_wrapped opens the key Go wrapped for it, Go's member state
// opens seal_message's message, and open_message opens Go's — and refuses
// a changed one, or one checked against another epoch's commit.
func TestRoomObjects(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	exp := strconv.FormatInt(now.Add(24*time.Hour).UnixMilli(), 10)
	snippet(t, dir, `for k in id kp-sign; do openssl genpkey -algorithm ed25519 -out $k.pem; done
		openssl genpkey -algorithm X25519 -out kp-hpke.pem`)
	pemBytes, err := os.ReadFile(filepath.Join(dir, "id.pem"))
	if err != nil {
		t.Fatal(err)
	}
	shellID, err := cryptosuite.ParseIdentityPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	me := shellID.PeerID()

	// The key package, as the host checks it.
	kpBlob := unhex(t, shell(t, dir, "key_package", "id.pem", "kp-hpke.pem", "kp-sign.pem", ms, exp))
	kp, err := room.VerifyKeyPackage(kpBlob, now)
	if err != nil {
		t.Fatalf("Go refuses the shell's key package: %v", err)
	}
	if kp.Owner != me || hex.EncodeToString(kp.HPKEKey.Bytes()) != shell(t, dir, "raw_pub", "kp-hpke.pem") ||
		hex.EncodeToString(kp.SigningKey) != shell(t, dir, "raw_pub", "kp-sign.pem") || !kp.Expires.Equal(now.Add(24*time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("the key package holds other values: %+v", kp)
	}
	kpHash := kp.Hash()
	kph := hex.EncodeToString(kpHash[:])

	// The create commit and the self-wrapped key.
	var roomID [16]byte
	rand.Read(roomID[:])
	rh := hex.EncodeToString(roomID[:])
	commit := unhex(t, shell(t, dir, "create_commit", "id.pem", rh, "notes", kph, ms))
	c, err := room.VerifyCommit(commit, shellID.Public(), nil)
	if err != nil {
		t.Fatalf("Go refuses the shell's create commit: %v", err)
	}
	if c.Room != roomID || c.Epoch != 1 || c.Operation != room.OpCreate || c.Name != "notes" || c.Master != me ||
		len(c.Members) != 1 || c.Members[0].KeyPackage != kpHash {
		t.Fatalf("the create commit holds other values: %+v", c)
	}
	if _, err := room.NewMemberState(commit, shellID.Public(), me, nil); err != nil {
		t.Fatalf("a member state from the shell's commit: %v", err)
	}
	key := cryptosuite.GenerateRoomKey()
	wb := unhex(t, shell(t, dir, "wrapped_key", "id.pem", rh, "1", me.String(), kph,
		hex.EncodeToString(kp.HPKEKey.Bytes()), hex.EncodeToString(key[:])))
	w, err := room.VerifyWrappedKey(wb, shellID.Public())
	if err != nil {
		t.Fatalf("Go refuses the shell's wrapped key: %v", err)
	}
	if err := room.CheckWrappedKey(c, w); err != nil {
		t.Fatalf("the wrapped key does not belong to the commit: %v", err)
	}
	skBytes := unhex(t, snippet(t, dir, "openssl pkey -in kp-hpke.pem -outform DER | tail -c 32 | hex"))
	sk, err := cryptosuite.NewHPKEPrivateKey(cryptosuite.KEMX25519, skBytes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cryptosuite.UnwrapRoomKey(sk, w.Enc, canon.RoomKeyWrapInfo(w.Room, w.Epoch, w.Member, w.KeyPackage), w.Ciphertext)
	if err != nil || *got != *key {
		t.Fatalf("Go unwraps the shell's wrapped key as %x, %v", got, err)
	}
	if out := shell(t, dir, "open_wrapped", "kp-hpke.pem", hex.EncodeToString(shellID.Public().SPKI()),
		hex.EncodeToString(wb), rh, "1", me.String(), kph); out != hex.EncodeToString(key[:]) {
		t.Fatalf("open_wrapped of its own wrapped key = %s", out)
	}

	// A Go master invites the shell's peer into its room.
	master, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := room.GenerateKeyPackage(master, 0, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := room.NewRoom(room.RoomConfig{Master: master, KeyPackage: secrets.KeyPackage(), Name: "lab", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := room.NewMemberState(p.Commit, master.Public(), master.PeerID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenWrappedKey(p.Wrapped[0].Blob, secrets); err != nil {
		t.Fatal(err)
	}
	firstCommit := p.Commit
	p, err = st.Invite(master, []*room.KeyPackage{secrets.KeyPackage(), kp}, now, me)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyProposal(p, secrets); err != nil {
		t.Fatal(err)
	}
	var forMe []byte
	for _, w := range p.Wrapped {
		if w.Member == me {
			forMe = w.Blob
		}
	}
	lab := hex.EncodeToString(p.Info.Room[:])
	mk := hex.EncodeToString(master.Public().SPKI())
	labKey := shell(t, dir, "open_wrapped", "kp-hpke.pem", mk, hex.EncodeToString(forMe), lab, "2", me.String(), kph)
	for _, bad := range [][]string{
		{lab, "1", me.String(), kph},                      // another epoch
		{lab, "2", master.PeerID().String(), kph},         // another member
		{lab, "2", me.String(), strings.Repeat("00", 32)}, // another key package
	} {
		args := append([]string{"kp-hpke.pem", mk, hex.EncodeToString(forMe)}, bad...)
		if out, err := shellErr(t, dir, "open_wrapped", args...); err == nil {
			t.Errorf("open_wrapped opens a wrapped key checked against %q: %s", bad, out)
		}
	}
	if out, err := shellErr(t, dir, "open_wrapped", "kp-hpke.pem", hex.EncodeToString(shellID.Public().SPKI()),
		hex.EncodeToString(forMe), lab, "2", me.String(), kph); err == nil {
		t.Errorf("open_wrapped opens a wrapped key under another master's key: %s", out)
	}

	// The shell's message opens in Go's member state, and Go's in the shell.
	head := hex.EncodeToString(p.Info.Hash[:])
	msg := unhex(t, shell(t, dir, "seal_message", "kp-sign.pem", labKey, lab, "2", head, me.String(), kph, "hello from the shell"))
	pt, err := st.OpenMessage(msg, kp)
	if err != nil || pt.Text != "hello from the shell" || pt.Sender != me {
		t.Fatalf("Go opens the shell's message as %+v, %v", pt, err)
	}
	var id [room.MessageIDSize]byte
	rand.Read(id[:])
	reply, err := st.SealMessage(secrets, "hello from Go", id)
	if err != nil {
		t.Fatal(err)
	}
	members := func(commit []byte) string {
		return strings.Split(snippet(t, dir, `fields "$(blob_layout `+hex.EncodeToString(commit)+`)"`), "\n")[7]
	}
	goKP := hex.EncodeToString(secrets.KeyPackage().Blob())
	open := func(commit, msg []byte) (string, error) {
		return shellErr(t, dir, "open_message", labKey, lab, "2", head, members(commit), hex.EncodeToString(msg), goKP)
	}
	if out, err := open(p.Commit, reply); err != nil || out != "hello from Go" {
		t.Fatalf("open_message of Go's message = %q, %v", out, err)
	}
	changed := bytes.Clone(reply)
	changed[len(changed)-70] ^= 1 // in the box
	if out, err := open(p.Commit, changed); err == nil {
		t.Errorf("open_message opens a changed message: %q", out)
	}
	// Epoch 1 lists only the master: the shell's own message is refused
	// against its member list.
	if out, err := shellErr(t, dir, "open_message", labKey, lab, "2", head, members(firstCommit),
		hex.EncodeToString(msg), hex.EncodeToString(kpBlob)); err == nil {
		t.Errorf("open_message opens a message whose sender the member list does not hold: %q", out)
	}
}
