// Package scripts holds no Go code: its tests check the shell scripts of
// scripts/ against lanpeer's Go implementation. curl-walkthrough.sh is
// docs/CURL.md as a script; every helper function it defines is checked
// here, step by step, against the Go code that is the protocol's truth.
package scripts

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

const walkthrough = "curl-walkthrough.sh"

// needTools skips the test, saying why, when a tool the walkthrough uses is
// missing (.ci/run installs them all).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the curl walkthrough needs curl, openssl, jq and xxd "+
				"(Debian: apt-get install -y curl openssl jq xxd; .ci/run installs them)", tool)
		}
	}
}

// shell runs fn with args after sourcing the walkthrough's functions, in
// dir (a new temporary directory if empty), and returns its standard
// output. A non-zero exit fails the test.
func shell(t *testing.T, dir, fn string, args ...string) string {
	t.Helper()
	out, err := shellErr(t, dir, fn, args...)
	if err != nil {
		t.Fatalf("%s %q: %v", fn, args, err)
	}
	return out
}

func shellErr(t *testing.T, dir, fn string, args ...string) (string, error) {
	t.Helper()
	needTools(t, "openssl", "xxd")
	if dir == "" {
		dir = t.TempDir()
	}
	script, err := filepath.Abs(walkthrough)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `set -euo pipefail; shopt -s inherit_errexit; . "$0"; "$@"`, script, fn)
	cmd.Args = append(cmd.Args, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &shellError{err, errb.String()}
	}
	return out.String(), nil
}

type shellError struct {
	err    error
	stderr string
}

func (e *shellError) Error() string { return e.err.Error() + ": " + e.stderr }

// snippet runs a bash snippet after sourcing the functions.
func snippet(t *testing.T, dir, code string) string {
	t.Helper()
	return shell(t, dir, "eval", code)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("%q is not hex: %v", s, err)
	}
	return b
}

func seq(n int, start byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return hex.EncodeToString(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// readKV reads key=value lines (other lines ignored), as in canon's and
// cryptosuite's testdata.
func readKV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				recs = append(recs, cur)
				cur = map[string]string{}
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			cur[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur) > 0 {
		recs = append(recs, cur)
	}
	return recs
}

// TestCanonExamples builds every layout of canon/testdata/examples.txt
// with the walkthrough's canon, list, u16, u64 and txt functions, and its
// signature input with sig_input: the same bytes as package canon.
func TestCanonExamples(t *testing.T) {
	room, member, kp, sender := seq(16, 0x10), seq(32, 0x40), seq(32, 0x80), seq(32, 0xc0)
	sid, th := seq(16, 0xa0), seq(32, 0xe0)
	msg := []string{room, "$(u64 2)", th, sender, seq(16, 0x70), kp}
	join := func(fs ...string) string {
		q := make([]string, len(fs))
		for i, f := range fs {
			q[i] = `"` + f + `"`
		}
		return strings.Join(q, " ")
	}
	// One shell command per purpose, in the file's order.
	cmds := map[string]string{
		"handshake: the requestor's hello (signed)": `canon "lanpeer/v1 requestor hello" ` + join("$(u64 1)", "$(txt tcp)",
			seq(32, 0x01), sender, member, seq(44, 0x30), "$(u16 2)", "$(u16 1)", seq(32, 0x50),
			"$(list $(u16 1) $(u16 2) $(u16 3))", seq(32, 0x60), "$(u64 1764036000000)"),
		"handshake: the responder's hello (signed; SHA-256 of it is the transcript hash)": `canon "lanpeer/v1 responder hello" ` +
			join(th, seq(64, 0x90), sid, member, seq(44, 0xb0), "$(u16 2)", "$(u16 1)", seq(32, 0xd0), "$(u16 1)",
				seq(32, 0xf0), "$(u64 1764036000123)"),
		"handshake: AAD of the sealed authentication key": `canon "lanpeer/v1 auth key seal aad" ` + join(th, sid),
		"handshake: the requestor's Finished MAC input": `canon "lanpeer/v1 requestor finished" ` +
			join(th, seq(64, 0x20), seq(96, 0x40), kp),
		"room key wrap info (HPKE info and A256CBC-HS512 AAD)": `canon "lanpeer/v1 room key wrap" ` + join(room, "$(u64 3)", member, kp),
		"wrapped key tuple (signed by the master)": `canon "lanpeer/v1 wrapped key" ` +
			join(room, "$(u64 3)", member, kp, seq(32, 0x20), seq(8, 0x30)),
		"per-sender key (HKDF info)": `canon "lanpeer/v1 sender key" ` + join(room, "$(u64 3)", sender),
		"HTTP request MAC input": `canon "lanpeer/v1 http request" ` + join("$(txt "+sid+")", "$(txt POST)",
			"$(txt /v1/rooms/"+room+"/acks)", `$(txt "$(sha256 "$(txt '{"epoch":3}')")")`,
			"$(txt 1764036000000)", "$(txt "+seq(16, 0x70)+")"),
		"direct message AAD": `canon "lanpeer/v1 direct message aad" ` + join(sid, "$(u64 1)", "$(u64 41)", "$(u64 2)"),
		"rekey hash input (SHA-256 salts the new epoch's HKDF-Extract)": `canon "lanpeer/v1 rekey" ` +
			join(th, "$(u64 2)", seq(32, 0x20), seq(32, 0x60)),
		"rekey confirmation MAC input": `canon "lanpeer/v1 rekey confirm" ` + join("$(txt responder)", th, "$(u64 2)"),
		"key package (signed by the owner's identity key)": `canon "lanpeer/v1 key package" ` + join(seq(44, 0x01),
			"$(u16 32)", seq(32, 0x20), seq(32, 0x60), "$(u64 1764036000000)", "$(u64 1766628000000)"),
		"room commit, create (signed by the master)": `canon "lanpeer/v1 room commit" ` + join(room, "$(u64 1)", "",
			"$(u16 1)", "$(txt lab)", "$(u16 1)", member, "$(list "+member+kp+")", "$(u64 1764036000000)"),
		"room commit, invite (signed by the master)": `canon "lanpeer/v1 room commit" ` + join(room, "$(u64 2)", th,
			"$(u16 2)", "$(txt lab)", "$(u16 1)", member, "$(list "+member+kp+" "+sender+th+")", "$(u64 1764036060000)"),
		"room message AAD": `canon "lanpeer/v1 room message aad" ` + join(msg...),
		"room message (signed with the sender's message-signing key)": `canon "lanpeer/v1 room message" ` +
			join(append(msg, seq(8, 0x30))...),
		"room leave request (signed by the member's identity key)": `canon "lanpeer/v1 room leave" ` +
			join(room, sender, "$(u64 2)", "$(u64 1764036120000)"),
		"LAN announcement (signed by the identity key; addresses 192.0.2.7:7000, [::]:7000, https 192.0.2.7:8080)": `canon "lanpeer/v1 announce" ` +
			join(member, sid, "$(list 00000000000000000000ffffc00002071b58 000000000000000000000000000000001b58)",
				"$(list 00000000000000000000ffffc00002071f90)", "$(txt https)", "$(txt 'lab printer')", "$(u64 30000)", "$(u64 1764036000000)"),
		"directory record (signed by the peer's identity key)": `canon "lanpeer/v1 directory record" ` +
			join(member, seq(44, 0x30), "$(list $(txt 192.0.2.7:7450) $(txt '[2001:db8::7]:7450'))",
				"$(list $(txt https://192.0.2.7:7451))", "$(u64 1764036000000)", "$(u64 1764039600000)"),
	}
	recs := readKV(t, filepath.Join("..", "canon", "testdata", "examples.txt"))
	if len(recs) != len(cmds) {
		t.Fatalf("examples.txt has %d examples, the test knows %d: add the new purpose here", len(recs), len(cmds))
	}
	// All in one shell: a layout, then its signature input, per line.
	var code strings.Builder
	for _, r := range recs {
		c, ok := cmds[r["purpose"]]
		if !ok {
			t.Fatalf("no shell command for purpose %q", r["purpose"])
		}
		code.WriteString(`l=$(` + c + `); echo "$l"; sig_input "` + r["label"] + `" "$l"; echo` + "\n")
	}
	lines := strings.Split(strings.TrimSpace(snippet(t, "", code.String())), "\n")
	if len(lines) != 2*len(recs) {
		t.Fatalf("got %d lines for %d examples", len(lines), len(recs))
	}
	for i, r := range recs {
		if lines[2*i] != r["layout"] {
			t.Errorf("%s: layout\n got %s\nwant %s", r["purpose"], lines[2*i], r["layout"])
		}
		if want, ok := r["sig_input"]; ok && lines[2*i+1] != want {
			t.Errorf("%s: sig_input\n got %s\nwant %s", r["purpose"], lines[2*i+1], want)
		}
		// fields splits a layout back into the fields it was built from.
		got := strings.Split(strings.TrimSuffix(shell(t, "", "fields", r["layout"]), "\n"), "\n")
		rd := canon.NewReader(r["label"], unhex(t, r["layout"]))
		for j := 0; rd.Err() == nil && j < len(got); j++ {
			if f := hex.EncodeToString(rd.Bytes()); f != got[j] {
				t.Errorf("%s: fields line %d = %q, want %q", r["purpose"], j, got[j], f)
			}
		}
		if err := rd.Done(); err != nil {
			t.Errorf("%s: fields gave %d fields, canon reads more: %v", r["purpose"], len(got), err)
		}
	}
}

// TestIdentitySignVerify: an openssl Ed25519 key's peer ID is Go's; its
// signatures (sign) verify with cryptosuite under the same label and
// layout; verify accepts Go's Ed25519 and RSA-PSS signatures and refuses
// a signature for another label or layout.
func TestIdentitySignVerify(t *testing.T) {
	dir := t.TempDir()
	snippet(t, dir, "openssl genpkey -algorithm ed25519 -out id.pem")
	pemBytes, err := os.ReadFile(filepath.Join(dir, "id.pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(shell(t, dir, "peer_id", "id.pem")); got != id.PeerID().String() {
		t.Fatalf("peer_id = %s, Go says %s", got, id.PeerID())
	}
	spki := strings.TrimSpace(shell(t, dir, "spki", "id.pem"))
	if spki != hex.EncodeToString(id.Public().SPKI()) {
		t.Fatalf("spki = %s, want %x", spki, id.Public().SPKI())
	}
	if got := shell(t, dir, "raw_pub", "id.pem"); got != hex.EncodeToString(id.Public().SPKI()[12:]) {
		t.Fatalf("raw_pub = %s", got)
	}
	layout := canon.New(canon.LabelKeyPackage).Bytes([]byte("a field")).Uint64(7).Out()
	lh := hex.EncodeToString(layout)
	sig := unhex(t, shell(t, dir, "sign", "id.pem", canon.LabelKeyPackage, lh))
	if err := id.Public().Verify(canon.LabelKeyPackage, layout, sig); err != nil {
		t.Fatalf("Go refuses the shell's signature: %v", err)
	}
	sh := hex.EncodeToString(sig)
	if _, err := shellErr(t, dir, "verify", spki, canon.LabelKeyPackage, lh, sh); err != nil {
		t.Fatalf("verify refuses its own signature: %v", err)
	}
	rsaPEM, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", "rsa2048.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rsaID, err := cryptosuite.ParseIdentityPEM(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, signer := range []*cryptosuite.Identity{id, rsaID} {
		s, err := signer.Sign(canon.LabelKeyPackage, layout)
		if err != nil {
			t.Fatal(err)
		}
		k := hex.EncodeToString(signer.Public().SPKI())
		if _, err := shellErr(t, dir, "verify", k, canon.LabelKeyPackage, lh, hex.EncodeToString(s)); err != nil {
			t.Errorf("%v: verify refuses Go's signature: %v", signer.Public().Alg(), err)
		}
		other := canon.New(canon.LabelRoomCommit).Bytes([]byte("a field")).Uint64(7).Out()
		for _, bad := range [][2]string{
			{canon.LabelRoomCommit, hex.EncodeToString(other)}, // another purpose
			{canon.LabelKeyPackage, lh[:len(lh)-2] + "08"},     // another layout
		} {
			if _, err := shellErr(t, dir, "verify", k, bad[0], bad[1], hex.EncodeToString(s)); err == nil {
				t.Errorf("%v: verify accepts a signature over %s %s", signer.Public().Alg(), bad[0], bad[1])
			}
		}
	}
}

// TestX25519AndHKDF: x25519 (pkeyutl -derive) agrees with crypto/ecdh, and
// hkdf_extract and hkdf_expand (openssl kdf) with cryptosuite's HKDF, the
// empty salt included; hmac_sha256 with crypto/hmac through the request
// MAC input.
func TestX25519AndHKDF(t *testing.T) {
	dir := t.TempDir()
	snippet(t, dir, "openssl genpkey -algorithm X25519 -out x.pem")
	goKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := unhex(t, shell(t, dir, "raw_pub", "x.pem"))
	shared := shell(t, dir, "x25519", "x.pem", hex.EncodeToString(goKey.PublicKey().Bytes()))
	peer, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	want, err := goKey.ECDH(peer)
	if err != nil {
		t.Fatal(err)
	}
	if shared != hex.EncodeToString(want) {
		t.Fatalf("x25519 = %s, crypto/ecdh says %x", shared, want)
	}

	ikm, salt, info := unhex(t, randHex(64)), unhex(t, randHex(32)), []byte(canon.LabelAuthKeySeal)
	for _, s := range [][]byte{salt, nil} {
		prk := shell(t, dir, "hkdf_extract", hex.EncodeToString(s), hex.EncodeToString(ikm))
		wantPRK, err := cryptosuite.HKDFExtract(ikm, s)
		if err != nil {
			t.Fatal(err)
		}
		if prk != hex.EncodeToString(wantPRK) {
			t.Errorf("hkdf_extract(salt %x) = %s, want %x", s, prk, wantPRK)
		}
		for _, n := range []int{32, 64} {
			okm := shell(t, dir, "hkdf_expand", prk, hex.EncodeToString(info), strconv.Itoa(n))
			wantOKM, err := cryptosuite.HKDFExpand(wantPRK, info, n)
			if err != nil {
				t.Fatal(err)
			}
			if okm != hex.EncodeToString(wantOKM) {
				t.Errorf("hkdf_expand(%d) = %s, want %x", n, okm, wantOKM)
			}
		}
	}
}

// TestA256CBCHS512: a256_seal gives the bytes of cryptosuite's
// A256CBC-HS512 for the same IV, a256_open opens Go's boxes (empty and
// block-sized plaintexts included), and refuses a changed box or AAD.
func TestA256CBCHS512(t *testing.T) {
	suite, _ := cryptosuite.AEADByID(cryptosuite.AEADA256CBCHS512)
	key := unhex(t, randHex(64))
	a, err := suite.New(key)
	if err != nil {
		t.Fatal(err)
	}
	aad := canon.AuthKeySealAAD([32]byte{1, 2, 3}, unhex(t, seq(16, 0xa0)))
	kh, ah := hex.EncodeToString(key), hex.EncodeToString(aad)
	for _, n := range []int{1, 15, 16, 32, 100} {
		pt, iv := unhex(t, randHex(n)), unhex(t, randHex(16))
		box := append(append([]byte(nil), iv...), a.Seal(nil, iv, pt, aad)...)
		got := shell(t, "", "a256_seal", kh, ah, hex.EncodeToString(pt), hex.EncodeToString(iv))
		if got != hex.EncodeToString(box) {
			t.Errorf("a256_seal of %d bytes:\n got %s\nwant %x", n, got, box)
		}
		if got := shell(t, "", "a256_open", kh, ah, hex.EncodeToString(box)); got != hex.EncodeToString(pt) {
			t.Errorf("a256_open of %d bytes = %s, want %x", n, got, pt)
		}
		bad := bytes.Clone(box)
		bad[len(bad)/2] ^= 1
		if out, err := shellErr(t, "", "a256_open", kh, ah, hex.EncodeToString(bad)); err == nil {
			t.Errorf("a256_open opens a changed box: %s", out)
		}
		if out, err := shellErr(t, "", "a256_open", kh, ah+"00", hex.EncodeToString(box)); err == nil {
			t.Errorf("a256_open opens under another AAD: %s", out)
		}
	}
	// Without an IV, a256_seal draws a random one; Go opens the box.
	box := unhex(t, shell(t, "", "a256_seal", kh, ah, hex.EncodeToString([]byte("text"))))
	if pt, err := cryptosuite.OpenPrefixed(a, nil, box, aad); err != nil || string(pt) != "text" {
		t.Fatalf("Go opens a256_seal's box as %q, %v", pt, err)
	}
}

// TestRoomKeyWrap: wrap_room_key and unwrap_room_key reproduce
// cryptosuite's worked example byte for byte, unwrap what Go wraps, and
// wrap what Go unwraps.
func TestRoomKeyWrap(t *testing.T) {
	dir := t.TempDir()
	ex := map[string]string{}
	for _, r := range readKV(t, filepath.Join("..", "cryptosuite", "testdata", "roomkey_wrap_example.txt")) {
		for k, v := range r {
			ex[k] = v
		}
	}
	// openssl reads raw X25519 private keys inside PKCS#8.
	const pkcs8 = "302e020100300506032b656e04220420"
	snippet(t, dir, `unhex `+pkcs8+ex["skR"]+` | openssl pkey -inform DER -out r.pem
		unhex `+pkcs8+ex["skE"]+` | openssl pkey -inform DER -out e.pem`)
	out := shell(t, dir, "wrap_room_key", ex["pkR"], ex["info"], ex["room_key"], "e.pem", ex["iv"])
	if out != ex["enc"]+" "+ex["wrapped"]+"\n" {
		t.Fatalf("wrap_room_key = %q, want enc %s and wrapped %s", out, ex["enc"], ex["wrapped"])
	}
	if got := shell(t, dir, "unwrap_room_key", "r.pem", ex["enc"], ex["info"], ex["wrapped"]); got != ex["room_key"] {
		t.Fatalf("unwrap_room_key = %s, want %s", got, ex["room_key"])
	}
	bad := []byte(ex["wrapped"])
	bad[40] ^= 1
	if _, err := shellErr(t, dir, "unwrap_room_key", "r.pem", ex["enc"], ex["info"], string(bad)); err == nil {
		t.Fatal("unwrap_room_key opens a changed wrapped key")
	}

	// Go wraps to the shell's key; the shell unwraps.
	var room [16]byte
	var member, kph [32]byte
	rand.Read(room[:])
	rand.Read(member[:])
	rand.Read(kph[:])
	info := canon.RoomKeyWrapInfo(room, 9, member, kph)
	pk, err := cryptosuite.ParseHPKEPublicKey(cryptosuite.KEMX25519, unhex(t, shell(t, dir, "raw_pub", "r.pem")))
	if err != nil {
		t.Fatal(err)
	}
	key := cryptosuite.GenerateRoomKey()
	enc, wrapped, err := cryptosuite.WrapRoomKey(pk, info, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := shell(t, dir, "unwrap_room_key", "r.pem", hex.EncodeToString(enc), hex.EncodeToString(info),
		hex.EncodeToString(wrapped)); got != hex.EncodeToString(key[:]) {
		t.Fatalf("unwrap_room_key of Go's wrap = %s, want %x", got, key[:])
	}

	// The shell wraps (fresh ephemeral key and IV) to a Go key; Go unwraps.
	sk, err := cryptosuite.GenerateHPKEKey(cryptosuite.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(shell(t, dir, "wrap_room_key", hex.EncodeToString(sk.PublicKeyBytes()),
		hex.EncodeToString(info), hex.EncodeToString(key[:])))
	if len(lines) != 2 {
		t.Fatalf("wrap_room_key printed %q", lines)
	}
	got, err := cryptosuite.UnwrapRoomKey(sk, unhex(t, lines[0]), info, unhex(t, lines[1]))
	if err != nil || *got != *key {
		t.Fatalf("Go unwraps the shell's wrap as %x, %v", got, err)
	}
}

// TestBlob: blob frames a layout and signature as room objects travel;
// blob_layout and blob_sig split it again; sha256 of a blob is its hash.
func TestBlob(t *testing.T) {
	layout := hex.EncodeToString(canon.New(canon.LabelRoomLeave).Bytes([]byte{1, 2}).Out())
	sig := seq(64, 0x10)
	b := shell(t, "", "blob", layout, sig)
	want := fmt.Sprintf("%08x%s%08x%s", len(layout)/2, layout, len(sig)/2, sig)
	if b != want {
		t.Fatalf("blob = %s, want %s", b, want)
	}
	if got := shell(t, "", "blob_layout", b); got != layout {
		t.Errorf("blob_layout = %s", got)
	}
	if got := shell(t, "", "blob_sig", b); got != sig {
		t.Errorf("blob_sig = %s", got)
	}
	h := sha256.Sum256(unhex(t, b))
	if got := shell(t, "", "sha256", b); got != hex.EncodeToString(h[:]) {
		t.Errorf("sha256 = %s", got)
	}
	if got := shell(t, "", "b64", "00ff10"); got != "AP8Q" {
		t.Errorf("b64 = %s", got)
	}
	if got := shell(t, "", "unb64", "AP8Q"); got != "00ff10" {
		t.Errorf("unb64 = %s", got)
	}
}

// TestSenderKeyAndMAC: sender_key is cryptosuite.SenderKey for
// A256CBC-HS512; hmac_sha256 over the HTTP request MAC input is
// crypto/hmac's; member_kp finds a member's key package hash in a commit's
// member list and fails for a peer the list does not hold.
func TestSenderKeyAndMAC(t *testing.T) {
	var key cryptosuite.RoomKey
	var room [16]byte
	var sender cryptosuite.PeerID
	rand.Read(key[:])
	rand.Read(room[:])
	rand.Read(sender[:])
	suite, _ := cryptosuite.AEADByID(cryptosuite.AEADA256CBCHS512)
	want, err := cryptosuite.SenderKey(&key, room, 5, sender, suite)
	if err != nil {
		t.Fatal(err)
	}
	got := shell(t, "", "sender_key", hex.EncodeToString(key[:]), hex.EncodeToString(room[:]), "5", sender.String())
	if got != hex.EncodeToString(want) {
		t.Fatalf("sender_key = %s, want %x", got, want)
	}

	authKey := unhex(t, randHex(32))
	in := canon.HTTPRequest(randHex(16), "GET", "/v1/rooms/"+randHex(16)+"/messages?after=3&limit=100",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "1764036000000", randHex(16))
	m := hmac.New(sha256.New, authKey)
	m.Write(in)
	if got := shell(t, "", "hmac_sha256", hex.EncodeToString(authKey), hex.EncodeToString(in)); got != hex.EncodeToString(m.Sum(nil)) {
		t.Fatalf("hmac_sha256 = %s, want %x", got, m.Sum(nil))
	}

	a, b, c := seq(32, 0x10), seq(32, 0x50), seq(32, 0x90)
	members := hex.EncodeToString(canon.New(canon.LabelRoomCommit).List(unhex(t, a+b), unhex(t, c+a)).Out())
	members = members[len(hex.EncodeToString([]byte(canon.LabelRoomCommit)))+2+8:] // the list field's content
	if got := shell(t, "", "member_kp", members, c); got != a {
		t.Errorf("member_kp = %s, want %s", got, a)
	}
	if out, err := shellErr(t, "", "member_kp", members, b); err == nil {
		t.Errorf("member_kp finds a peer the list does not hold: %s", out)
	}
}
