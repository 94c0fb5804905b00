package cryptosuite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/lanpeer/lanpeer/canon"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	wrapExamplePath = "testdata/roomkey_wrap_example.txt"
	opensslScript   = "testdata/roomkey_openssl.sh"
)

// ---- the worked example (DESIGN.md §11): every intermediate value ----

// exampleBytes makes a fixed input that anyone can recompute: the first n
// bytes of SHA-512("lanpeer/v1 room key wrap example: " ‖ what).
func exampleBytes(what string, n int) []byte {
	h := sha512.Sum512([]byte("lanpeer/v1 room key wrap example: " + what))
	return h[:n]
}

// exampleLine is one key=value line of the example file and the comment
// above it saying how the value is made.
type exampleLine struct {
	key, doc string
	val      []byte
}

// buildWrapExample computes the worked example from its fixed inputs,
// sender side, with crypto/ecdh, crypto/hkdf, crypto/sha256, crypto/aes and
// crypto/hmac alone: none of roomkey.go is used.
func buildWrapExample(t *testing.T) []exampleLine {
	skR := exampleBytes("recipient X25519 private key skR", 32)
	skE := exampleBytes("ephemeral X25519 private key skE", 32)
	var room [16]byte
	var member, kpHash [32]byte
	copy(room[:], exampleBytes("room id", 16))
	const epoch = 7
	copy(member[:], exampleBytes("member peer id", 32))
	copy(kpHash[:], exampleBytes("member key package", 32))
	roomKey := exampleBytes("room key", 64)
	iv := exampleBytes("iv", 16)

	// info = canon(label, room, epoch, member, key package hash), spelled
	// out here byte by byte.
	field := func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, uint32(len(b))) }
	epochBytes := binary.BigEndian.AppendUint64(nil, epoch)
	info := concatBytes([]byte("lanpeer/v1 room key wrap"), []byte{0},
		field(room[:]), room[:], field(epochBytes), epochBytes,
		field(member[:]), member[:], field(kpHash[:]), kpHash[:])
	if !bytes.Equal(info, canon.RoomKeyWrapInfo(room, epoch, member, kpHash)) {
		t.Fatalf("info spelled out differs from canon.RoomKeyWrapInfo")
	}

	pkR := x25519Raw(t, skR, nil)
	enc := x25519Raw(t, skE, nil)
	kem := newDHKEMX25519(t, x25519Raw(t, skE, pkR), enc, pkR)
	hpkeSuite := hpkeSuiteID(uint16(KEMX25519), kdfHKDFSHA256, aeadExportOnly)
	ks := newKeySchedule(t, hpkeSuite, kem.sharedSecret, info, 0, 0)
	kek := ks.export(t, []byte("lanpeer/v1 room key wrap"), 64)
	macKey, encKey := kek[:32], kek[32:]

	padded := concatBytes(roomKey, bytes.Repeat([]byte{16}, 16))
	block, err := aes.NewCipher(encKey)
	if err != nil {
		t.Fatal(err)
	}
	e := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(e, padded)
	al := binary.BigEndian.AppendUint64(nil, uint64(len(info))*8)
	m := hmac.New(sha512.New, macKey)
	m.Write(concatBytes(info, iv, e, al))
	tag := m.Sum(nil)[:32]

	return []exampleLine{
		{"skR", "recipient's key-package X25519 private key (raw 32 bytes)", skR},
		{"skE", "sender's ephemeral X25519 private key (random in real use)", skE},
		{"room", "room id (16 bytes)", room[:]},
		{"epoch", "epoch number, 8 bytes big-endian", epochBytes},
		{"member", "member's peer ID (32 bytes)", member[:]},
		{"kp_hash", "SHA-256 of the member's key package", kpHash[:]},
		{"info", `canon("lanpeer/v1 room key wrap", room, epoch, member, kp_hash):
label, 0x00, then each field as a 4-byte big-endian length and its bytes`, info},
		{"room_key", "the 64-byte room key of this epoch", roomKey},
		{"iv", "A256CBC-HS512 IV (16 random bytes in real use)", iv},

		{"pkR", "X25519(skR, 9): the public key in the key package", pkR},
		{"enc", "X25519(skE, 9) = pkE: the HPKE encapsulated key, sent with the wrapped key", enc},
		{"kem_suite_id", `"KEM" ‖ I2OSP(0x0020, 2): DHKEM(X25519, HKDF-SHA256)`, kemSuiteID(uint16(KEMX25519))},
		{"hpke_suite_id", `"HPKE" ‖ 0x0020 ‖ 0x0001 (HKDF-SHA256) ‖ 0xffff (export-only AEAD)`, hpkeSuite},
		{"dh", "X25519(skE, pkR) = X25519(skR, enc)", kem.dh},
		{"kem_context", "enc ‖ pkR", kem.kemContext},
		{"eae_prk", `LabeledExtract("", "eae_prk", dh) with kem_suite_id
LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm)`, kem.eaePRK},
		{"shared_secret", `LabeledExpand(eae_prk, "shared_secret", kem_context, 32) with kem_suite_id
LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L)`, kem.sharedSecret},
		{"psk_id_hash", `LabeledExtract("", "psk_id_hash", "") with hpke_suite_id (as is everything below)`, ks.pskIDHash},
		{"info_hash", `LabeledExtract("", "info_hash", info)`, ks.infoHash},
		{"key_schedule_context", "0x00 (mode_base) ‖ psk_id_hash ‖ info_hash", ks.context},
		{"secret", `LabeledExtract(shared_secret, "secret", "")`, ks.secret},
		{"exporter_secret", `LabeledExpand(secret, "exp", key_schedule_context, 32)`, ks.exporterSecret},
		{"kek", `LabeledExpand(exporter_secret, "sec", "lanpeer/v1 room key wrap", 64):
ctx.Export with the bare ASCII label as export context (no canon framing)`, kek},
		{"mac_key", "kek[0:32]", macKey},
		{"enc_key", "kek[32:64]", encKey},
		{"E", "AES-256-CBC(enc_key, iv, room_key ‖ 16 bytes of 0x10): PKCS#7 adds a full block", e},
		{"AL", "bit length of info, 8 bytes big-endian", al},
		{"T", "HMAC-SHA-512(mac_key, info ‖ iv ‖ E ‖ AL)[0:32]", tag},
		{"wrapped", "iv ‖ E ‖ T: 16 + 80 + 32 = 128 bytes", concatBytes(iv, e, tag)},
	}
}

func renderWrapExample(lines []exampleLine) []byte {
	var b bytes.Buffer
	b.WriteString(`# lanpeer room-key wrap, worked example (DESIGN.md §5 "The wrap, exactly",
# §11 "Room-key wrap, byte by byte"). HPKE base mode (RFC 9180) with
# DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and the export-only AEAD; the
# exported key seals the room key with A256CBC-HS512 (RFC 7518 §5.2.5).
# Every value is lowercase hex. The inputs are the first bytes of
# SHA-512("lanpeer/v1 room key wrap example: " ‖ what).
#
# Checked by TestRoomKeyWrapExample (Go) and by roomkey_openssl.sh (openssl
# 3.0). Regenerate: go test ./cryptosuite -run TestRoomKeyWrapExample -update
`)
	for _, l := range lines {
		b.WriteString("\n")
		for _, d := range strings.Split(l.doc, "\n") {
			b.WriteString("# " + d + "\n")
		}
		fmt.Fprintf(&b, "%s=%x\n", l.key, l.val)
	}
	return b.Bytes()
}

var exampleLineRE = regexp.MustCompile(`^([A-Za-z_]+)=([0-9a-f]*)$`)

// parseKeyValues reads key=value hex lines (the example file, the script's
// output); comments and blank lines are skipped, anything else fails.
func parseKeyValues(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := exampleLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a key=hex line: %q", line)
		}
		v, err := hex.DecodeString(m[2])
		if err != nil {
			t.Fatalf("%s: %v", m[1], err)
		}
		if _, dup := out[m[1]]; dup {
			t.Fatalf("key %s twice", m[1])
		}
		out[m[1]] = v
	}
	return out
}

// unwrapFromScratch is the recipient's side of the recipe, with crypto/ecdh,
// crypto/hkdf, crypto/hmac and crypto/aes alone. It returns every
// intermediate value by its example-file name, room_key last; the tag is
// checked before decrypting and the padding must be one full block.
func unwrapFromScratch(t *testing.T, skR, enc, info, wrapped []byte) map[string][]byte {
	t.Helper()
	if len(wrapped) != 128 {
		t.Fatalf("wrapped is %d bytes, want 128", len(wrapped))
	}
	pkR := x25519Raw(t, skR, nil)
	kem := newDHKEMX25519(t, x25519Raw(t, skR, enc), enc, pkR)
	ks := newKeySchedule(t, hpkeSuiteID(uint16(KEMX25519), kdfHKDFSHA256, aeadExportOnly), kem.sharedSecret, info, 0, 0)
	kek := ks.export(t, []byte(canon.LabelRoomKeyWrap), 64)
	iv, e, tag := wrapped[:16], wrapped[16:96], wrapped[96:]
	al := binary.BigEndian.AppendUint64(nil, uint64(len(info))*8)
	m := hmac.New(sha512.New, kek[:32])
	m.Write(concatBytes(info, iv, e, al))
	if want := m.Sum(nil)[:32]; !hmac.Equal(want, tag) {
		t.Fatalf("tag does not check: got %x, want %x", tag, want)
	}
	block, err := aes.NewCipher(kek[32:])
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, len(e))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, e)
	if !bytes.Equal(pt[64:], bytes.Repeat([]byte{16}, 16)) {
		t.Fatalf("padding is %x, want a full block of 0x10", pt[64:])
	}
	return map[string][]byte{
		"pkR": pkR, "dh": kem.dh, "kem_context": kem.kemContext, "eae_prk": kem.eaePRK,
		"shared_secret": kem.sharedSecret, "psk_id_hash": ks.pskIDHash, "info_hash": ks.infoHash,
		"key_schedule_context": ks.context, "secret": ks.secret, "exporter_secret": ks.exporterSecret,
		"kek": kek, "mac_key": kek[:32], "enc_key": kek[32:], "E": e, "AL": al, "T": tag,
		"room_key": pt[:64],
	}
}

func readWrapExample(t *testing.T) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(wrapExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	return parseKeyValues(t, b)
}

// TestRoomKeyWrapExample checks the committed worked example: the file is
// exactly what the sender-side computation gives, the recipient side
// recomputed from scratch gets every value back, crypto/hpke exports the
// same kek, and UnwrapRoomKey opens the wrapped key.
func TestRoomKeyWrapExample(t *testing.T) {
	lines := buildWrapExample(t)
	want := renderWrapExample(lines)
	if *update {
		if err := os.WriteFile(wrapExamplePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(wrapExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	ex := parseKeyValues(t, got)
	for _, l := range lines {
		if !bytes.Equal(ex[l.key], l.val) {
			t.Errorf("%s: file has %x, computed %x", l.key, ex[l.key], l.val)
		}
	}
	if len(ex) != len(lines) {
		t.Errorf("file has %d values, want %d", len(ex), len(lines))
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated text (comments or layout); run with -update", wrapExamplePath)
	}

	// Recipient side, from scratch.
	for k, v := range unwrapFromScratch(t, ex["skR"], ex["enc"], ex["info"], ex["wrapped"]) {
		mustEqualBytes(t, "recipient side "+k, v, ex[k])
	}

	// crypto/hpke's recipient exports the same kek.
	hsk, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(ex["skR"])
	if err != nil {
		t.Fatal(err)
	}
	r, err := hpke.NewRecipient(ex["enc"], hsk, hpke.HKDFSHA256(), hpke.ExportOnly(), ex["info"])
	if err != nil {
		t.Fatal(err)
	}
	kek, err := r.Export(canon.LabelRoomKeyWrap, 64)
	if err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "crypto/hpke export", kek, ex["kek"])

	// And lanpeer's own code opens it.
	sk, err := NewHPKEPrivateKey(KEMX25519, ex["skR"])
	if err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "PublicKeyBytes", sk.PublicKeyBytes(), ex["pkR"])
	key, err := UnwrapRoomKey(sk, ex["enc"], ex["info"], ex["wrapped"])
	if err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "UnwrapRoomKey", key[:], ex["room_key"])
}

// testWrapInfo is a room-key wrap info for tests, varied by n.
func testWrapInfo(n byte) []byte {
	var room [16]byte
	var member, kp [32]byte
	room[0], member[0], kp[0] = n, n+1, n+2
	return canon.RoomKeyWrapInfo(room, uint64(n)+1, member, kp)
}

// testHPKEKey is a fixed recipient key per KEM, so runs are reproducible.
func testHPKEKey(t testing.TB, kem KEMID, n byte) *HPKEPrivateKey {
	t.Helper()
	sk, err := NewHPKEPrivateKey(kem, exampleBytes(fmt.Sprintf("test key %v %d", kem, n), 32))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// TestWrapRoomKeyDeterministic runs WrapRoomKey under a fixed global random
// source (so the test is not parallel): equal seeds give equal output, and
// the output checks against the recipe recomputed from scratch.
func TestWrapRoomKeyDeterministic(t *testing.T) {
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		t.Run(kem.String(), func(t *testing.T) {
			sk := testHPKEKey(t, kem, 0)
			info := testWrapInfo(1)
			key := new(RoomKey)
			copy(key[:], exampleBytes("deterministic room key", 64))
			wrap := func(seed uint64) (enc, wrapped []byte) {
				cryptotest.SetGlobalRandom(t, seed)
				enc, wrapped, err := WrapRoomKey(sk.PublicKey(), info, key)
				if err != nil {
					t.Fatal(err)
				}
				return enc, wrapped
			}
			enc1, w1 := wrap(1)
			enc2, w2 := wrap(1)
			enc3, w3 := wrap(2)
			if !bytes.Equal(enc1, enc2) || !bytes.Equal(w1, w2) {
				t.Error("the same random seed gave different wraps")
			}
			if bytes.Equal(enc1, enc3) || bytes.Equal(w1[:16], w3[:16]) {
				t.Error("different random seeds gave the same enc or IV")
			}
			if len(enc1) != kem.EncSize() || len(w1) != WrappedRoomKeySize {
				t.Fatalf("enc %d bytes, wrapped %d bytes", len(enc1), len(w1))
			}
			got, err := UnwrapRoomKey(sk, enc1, info, w1)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualBytes(t, "UnwrapRoomKey", got[:], key[:])
			if kem == KEMX25519 {
				skb, err := sk.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				mustEqualBytes(t, "from scratch", unwrapFromScratch(t, skb, enc1, info, w1)["room_key"], key[:])
			}
		})
	}
}

// ---- the same recipe with the openssl 3.0 command line ----

// runOpenSSLScript runs testdata/roomkey_openssl.sh. openssl is a test
// dependency (make test installs it): without it the test fails, it does
// not skip.
func runOpenSSLScript(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash not found on PATH: the openssl walkthrough script needs it")
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl not found on PATH: install OpenSSL 3.0 or later (`make test` installs it; on Debian/Ubuntu: apt-get install openssl)")
	}
	v, err := exec.Command(openssl, "version").Output()
	if err != nil {
		t.Fatalf("openssl version: %v", err)
	}
	if !regexp.MustCompile(`^OpenSSL [3-9]\.`).Match(v) {
		t.Fatalf("openssl version %q: the room-key walkthrough needs OpenSSL 3.0 or later (for `openssl kdf`); install it", bytes.TrimSpace(v))
	}
	// A hang deadline, far beyond the ~1 s the script takes.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{opensslScript}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

// TestRoomKeyOpenSSLUnwrap: openssl alone opens the worked example, and
// every intermediate it computes is the file's.
func TestRoomKeyOpenSSLUnwrap(t *testing.T) {
	ex := readWrapExample(t)
	out, err := runOpenSSLScript(t, "unwrap", wrapExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != hex.EncodeToString(ex["room_key"]) {
		t.Errorf("openssl unwrap printed %q, want the room key %x", got, ex["room_key"])
	}

	out, err = runOpenSSLScript(t, "unwrap", "-v", wrapExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	vals := parseKeyValues(t, []byte(out))
	if len(vals) < 15 {
		t.Errorf("openssl -v printed only %d values", len(vals))
	}
	for k, v := range vals {
		mustEqualBytes(t, "openssl "+k, v, ex[k])
	}
}

// TestRoomKeyOpenSSLUnwrapTampered: the script checks the MAC and refuses a
// changed wrapped key or info.
func TestRoomKeyOpenSSLUnwrapTampered(t *testing.T) {
	ex := readWrapExample(t)
	for _, field := range []string{"wrapped", "info"} {
		v := bytes.Clone(ex[field])
		v[len(v)-1] ^= 1
		path := writeKeyValues(t, map[string][]byte{"skR": ex["skR"], "enc": ex["enc"], "info": ex["info"], "wrapped": ex["wrapped"], field: v})
		out, err := runOpenSSLScript(t, "unwrap", path)
		if err == nil || !strings.Contains(err.Error(), "MAC check failed") {
			t.Errorf("tampered %s: script printed %q, err %v; want a MAC failure", field, out, err)
		}
	}
}

func writeKeyValues(t *testing.T, kv map[string][]byte) string {
	t.Helper()
	var b strings.Builder
	for k, v := range kv {
		fmt.Fprintf(&b, "%s=%x\n", k, v)
	}
	path := filepath.Join(t.TempDir(), "kv.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRoomKeyOpenSSLWrap: the other direction. Given the example's skE and
// IV openssl reproduces enc and wrapped byte for byte; with fresh ones from
// `openssl rand` it wraps to a new Go key and UnwrapRoomKey opens the result.
func TestRoomKeyOpenSSLWrap(t *testing.T) {
	ex := readWrapExample(t)
	out, err := runOpenSSLScript(t, "wrap", "-v", wrapExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	vals := parseKeyValues(t, []byte(out))
	for _, k := range []string{"enc", "wrapped", "kek", "E", "T"} {
		mustEqualBytes(t, "openssl wrap "+k, vals[k], ex[k])
	}
	for k, v := range vals {
		mustEqualBytes(t, "openssl wrap "+k, v, ex[k])
	}

	sk, err := GenerateHPKEKey(KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	key := GenerateRoomKey()
	info := testWrapInfo(9)
	path := writeKeyValues(t, map[string][]byte{"pkR": sk.PublicKeyBytes(), "info": info, "room_key": key[:]})
	out, err = runOpenSSLScript(t, "wrap", path)
	if err != nil {
		t.Fatal(err)
	}
	vals = parseKeyValues(t, []byte(out))
	if len(vals) != 2 {
		t.Fatalf("openssl wrap printed %q, want enc= and wrapped=", out)
	}
	got, err := UnwrapRoomKey(sk, vals["enc"], info, vals["wrapped"])
	if err != nil {
		t.Fatalf("UnwrapRoomKey of openssl's wrap: %v", err)
	}
	mustEqualBytes(t, "room key through openssl", got[:], key[:])
}

// ---- WrapRoomKey / UnwrapRoomKey behaviour ----

func TestRoomKeyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		t.Run(kem.String(), func(t *testing.T) {
			sk, err := GenerateHPKEKey(kem)
			if err != nil {
				t.Fatal(err)
			}
			if sk.KEM() != kem {
				t.Errorf("KEM() = %v", sk.KEM())
			}
			pub := sk.PublicKeyBytes()
			if len(pub) != kem.PublicKeySize() {
				t.Fatalf("public key %d bytes, want %d", len(pub), kem.PublicKeySize())
			}
			pk, err := ParseHPKEPublicKey(kem, pub)
			if err != nil {
				t.Fatal(err)
			}
			if pk.KEM() != kem || !bytes.Equal(pk.Bytes(), pub) {
				t.Fatal("parsed public key differs")
			}
			key := GenerateRoomKey()
			info := testWrapInfo(3)
			enc, wrapped, err := WrapRoomKey(pk, info, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != kem.EncSize() || len(wrapped) != WrappedRoomKeySize || WrappedRoomKeySize != 128 {
				t.Fatalf("enc %d bytes (want %d), wrapped %d (want 128)", len(enc), kem.EncSize(), len(wrapped))
			}
			got, err := UnwrapRoomKey(sk, enc, info, wrapped)
			if err != nil {
				t.Fatal(err)
			}
			if *got != *key {
				t.Fatal("unwrapped key differs")
			}

			// A stored private key read back opens it too.
			b, err := sk.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			sk2, err := NewHPKEPrivateKey(kem, b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sk2.PublicKeyBytes(), pub) {
				t.Fatal("re-read private key has another public key")
			}
			if got, err := UnwrapRoomKey(sk2, enc, info, wrapped); err != nil || *got != *key {
				t.Fatalf("re-read private key: %v", err)
			}

			// Wrapping twice never repeats enc or IV.
			enc2, wrapped2, err := WrapRoomKey(pk, info, key)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(enc, enc2) || bytes.Equal(wrapped[:16], wrapped2[:16]) {
				t.Error("two wraps share enc or IV")
			}
		})
	}
}

// expectDecrypt requires exactly ErrDecrypt, the one error of every failure.
func expectDecrypt(t *testing.T, what string, key *RoomKey, err error) {
	t.Helper()
	if err != ErrDecrypt || key != nil {
		t.Errorf("%s: got key %v, err %v; want nil, ErrDecrypt", what, key != nil, err)
	}
}

// TestUnwrapRoomKeyTamper flips a bit in every byte of wrapped and info
// (cycling through the bit positions), all eight bits of every byte of an
// X25519 enc (bit 255 is masked by X25519 itself, yet enc is bound through
// kem_context), and for the hybrid enc every byte of its X25519 part and a
// sample of its ML-KEM ciphertext (every 7th byte, and the last; each is
// one ML-KEM decapsulation, slow under -race). Each is ErrDecrypt.
func TestUnwrapRoomKeyTamper(t *testing.T) {
	t.Parallel()
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		t.Run(kem.String(), func(t *testing.T) {
			t.Parallel()
			sk := testHPKEKey(t, kem, 1)
			key := GenerateRoomKey()
			info := testWrapInfo(5)
			enc, wrapped, err := WrapRoomKey(sk.PublicKey(), info, key)
			if err != nil {
				t.Fatal(err)
			}
			x25519Start := len(enc) - 32 // the X25519 part of either enc
			flips := func(name string, i int) []byte {
				switch {
				case name == "enc" && i >= x25519Start:
					return []byte{1, 2, 4, 8, 16, 32, 64, 128}
				case name == "enc" && i%7 != 0 && i != x25519Start-1:
					return nil // ML-KEM ciphertext, sampled
				}
				return []byte{1 << (i % 8)}
			}
			n := 0
			for name, buf := range map[string][]byte{"enc": enc, "wrapped": wrapped, "info": info} {
				for i := range buf {
					for _, bit := range flips(name, i) {
						buf[i] ^= bit
						got, err := UnwrapRoomKey(sk, enc, info, wrapped)
						buf[i] ^= bit
						expectDecrypt(t, fmt.Sprintf("%s[%d]^%#02x", name, i, bit), got, err)
						n++
					}
				}
			}
			if n < 500 {
				t.Fatalf("only %d tampered inputs tried", n)
			}
			// Untouched, it still opens: the loop restored every byte.
			if got, err := UnwrapRoomKey(sk, enc, info, wrapped); err != nil || *got != *key {
				t.Fatalf("untampered unwrap: %v", err)
			}

			// Another recipient's key of the same KEM.
			got, err := UnwrapRoomKey(testHPKEKey(t, kem, 2), enc, info, wrapped)
			expectDecrypt(t, "wrong recipient", got, err)
			// A low-order X25519 enc (alone or as the hybrid's X25519 part).
			got, err = UnwrapRoomKey(sk, concatBytes(enc[:len(enc)-32], make([]byte, 32)), info, wrapped)
			expectDecrypt(t, "low-order enc", got, err)
			// Another epoch's info for the same member.
			got, err = UnwrapRoomKey(sk, enc, testWrapInfo(6), wrapped)
			expectDecrypt(t, "other info", got, err)
		})
	}
}

// TestUnwrapRoomKeyLengths: wrong lengths of enc, wrapped or info, a key of
// the other KEM, and an info that is not a wrap layout are rejected before
// any HPKE work.
func TestUnwrapRoomKeyLengths(t *testing.T) {
	// Not parallel: it replaces the hpkeNewRecipient hook.
	calls := 0
	saved := hpkeNewRecipient
	hpkeNewRecipient = func(enc []byte, k hpke.PrivateKey, kdf hpke.KDF, aead hpke.AEAD, info []byte) (*hpke.Recipient, error) {
		calls++
		return saved(enc, k, kdf, aead, info)
	}
	defer func() { hpkeNewRecipient = saved }()

	x := testHPKEKey(t, KEMX25519, 1)
	m := testHPKEKey(t, KEMMLKEM768X25519, 1)
	info := testWrapInfo(1)
	encX, wrappedX, err := WrapRoomKey(x.PublicKey(), info, GenerateRoomKey())
	if err != nil {
		t.Fatal(err)
	}
	encM, _, err := WrapRoomKey(m.PublicKey(), info, GenerateRoomKey())
	if err != nil {
		t.Fatal(err)
	}
	// A canon layout of the right label but another shape.
	var room [16]byte
	otherShape := canon.New(canon.LabelRoomKeyWrap).Bytes(room[:]).Uint64(1).Bytes(make([]byte, 33)).Bytes(make([]byte, 31)).Out()
	otherLabel := bytes.Clone(info)
	otherLabel[len("lanpeer/v1 ")] = 'R'

	cases := []struct {
		name               string
		sk                 *HPKEPrivateKey
		enc, info, wrapped []byte
	}{
		{"nil key", nil, encX, info, wrappedX},
		{"enc short", x, encX[:31], info, wrappedX},
		{"enc long", x, append(bytes.Clone(encX), 0), info, wrappedX},
		{"enc empty", x, nil, info, wrappedX},
		{"hybrid enc to X25519 key", x, encM, info, wrappedX},
		{"X25519 enc to hybrid key", m, encX, info, wrappedX},
		{"hybrid enc short", m, encM[:len(encM)-1], info, wrappedX},
		{"wrapped short", x, encX, info, wrappedX[:127]},
		{"wrapped long", x, encX, info, append(bytes.Clone(wrappedX), 0)},
		{"wrapped two blocks longer", x, encX, info, append(bytes.Clone(wrappedX), make([]byte, 32)...)},
		{"wrapped empty", x, encX, info, nil},
		{"info empty", x, encX, nil, wrappedX},
		{"info long", x, encX, append(bytes.Clone(info), 0), wrappedX},
		{"info of another shape", x, encX, otherShape, wrappedX},
		{"info of another label", x, encX, otherLabel, wrappedX},
	}
	for _, c := range cases {
		got, err := UnwrapRoomKey(c.sk, c.enc, c.info, c.wrapped)
		expectDecrypt(t, c.name, got, err)
	}
	if calls != 0 {
		t.Errorf("HPKE decapsulation ran %d times for inputs of the wrong length", calls)
	}
	// The hook does count: a well-formed input reaches it.
	if _, err := UnwrapRoomKey(x, encX, info, wrappedX); err != nil || calls != 1 {
		t.Fatalf("well-formed unwrap: err %v, %d HPKE calls", err, calls)
	}
}

// TestWrapRoomKeyRejects: WrapRoomKey refuses an info that is not a
// room-key wrap layout (before any HPKE work) and a low-order X25519 key.
func TestWrapRoomKeyRejects(t *testing.T) {
	// Not parallel: it replaces the hpkeNewSender hook.
	calls := 0
	saved := hpkeNewSender
	hpkeNewSender = func(pk hpke.PublicKey, kdf hpke.KDF, aead hpke.AEAD, info []byte) ([]byte, *hpke.Sender, error) {
		calls++
		return saved(pk, kdf, aead, info)
	}
	defer func() { hpkeNewSender = saved }()

	pk := testHPKEKey(t, KEMX25519, 1).PublicKey()
	info := testWrapInfo(1)
	for name, bad := range map[string][]byte{
		"empty":      nil,
		"raw bytes":  bytes.Repeat([]byte{0xaa}, len(info)),
		"truncated":  info[:len(info)-1],
		"sender key": canon.SenderKeyInfo([16]byte{}, 1, [32]byte{}),
	} {
		if _, _, err := WrapRoomKey(pk, bad, GenerateRoomKey()); !errors.Is(err, errWrapInfo) {
			t.Errorf("info %s: err %v, want errWrapInfo", name, err)
		}
	}
	if calls != 0 {
		t.Errorf("HPKE encapsulation ran %d times for a bad info", calls)
	}
	if _, _, err := WrapRoomKey(nil, info, GenerateRoomKey()); err == nil {
		t.Error("nil public key accepted")
	}
	if _, _, err := WrapRoomKey(pk, info, nil); err == nil {
		t.Error("nil room key accepted")
	}

	// A low-order X25519 key that got past ParseHPKEPublicKey would still
	// fail: HPKE refuses the all-zero shared secret.
	zero, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := WrapRoomKey(&HPKEPublicKey{kem: KEMX25519, pk: zero}, info, GenerateRoomKey()); err == nil {
		t.Error("wrapped to a low-order X25519 key")
	}
	if _, _, err := WrapRoomKey(&HPKEPublicKey{}, info, GenerateRoomKey()); err == nil {
		t.Error("zero HPKEPublicKey accepted")
	}
}

// lowOrderX25519 are X25519 public keys of low order (RFC 7748 §6.1's
// all-zero check catches them): 0, 1, a point of order 8, and p, p+1 (the
// non-canonical encodings of 0 and 1).
var lowOrderX25519 = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestParseHPKEPublicKey(t *testing.T) {
	t.Parallel()
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		pub := testHPKEKey(t, kem, 1).PublicKeyBytes()
		for _, n := range []int{0, 1, len(pub) - 1, len(pub) + 1, 2 * len(pub)} {
			b := make([]byte, n)
			copy(b, pub)
			if _, err := ParseHPKEPublicKey(kem, b); !errors.Is(err, ErrBadHPKEKey) {
				t.Errorf("%v key of %d bytes: err %v, want ErrBadHPKEKey", kem, n, err)
			}
		}
	}
	hybrid := testHPKEKey(t, KEMMLKEM768X25519, 1).PublicKeyBytes()
	for _, h := range lowOrderX25519 {
		p, _ := hex.DecodeString(h)
		if _, err := ParseHPKEPublicKey(KEMX25519, p); !errors.Is(err, ErrBadHPKEKey) {
			t.Errorf("low-order X25519 key %s: err %v, want ErrBadHPKEKey", h, err)
		}
		if _, err := ParseHPKEPublicKey(KEMMLKEM768X25519, concatBytes(hybrid[:len(hybrid)-32], p)); !errors.Is(err, ErrBadHPKEKey) {
			t.Errorf("hybrid key with low-order X25519 part %s: err %v, want ErrBadHPKEKey", h, err)
		}
	}
	// An ML-KEM encapsulation key whose coefficients are not reduced mod q.
	if _, err := ParseHPKEPublicKey(KEMMLKEM768X25519, bytes.Repeat([]byte{0xff}, 1216)); !errors.Is(err, ErrBadHPKEKey) {
		t.Errorf("unreduced ML-KEM key: err %v, want ErrBadHPKEKey", err)
	}
	if _, err := ParseHPKEPublicKey(KEMID(0x0010), make([]byte, 65)); !errors.Is(err, ErrUnknownKEM) {
		t.Errorf("P-256 KEM: err %v, want ErrUnknownKEM", err)
	}
	if _, err := GenerateHPKEKey(KEMID(0)); !errors.Is(err, ErrUnknownKEM) {
		t.Errorf("GenerateHPKEKey(0): err %v, want ErrUnknownKEM", err)
	}
	for _, n := range []int{0, 31, 33, 64} {
		for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
			if _, err := NewHPKEPrivateKey(kem, make([]byte, n)); !errors.Is(err, ErrBadHPKEKey) {
				t.Errorf("%v private key of %d bytes: err %v, want ErrBadHPKEKey", kem, n, err)
			}
		}
	}
}

func TestKEMIDNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id            KEMID
		name          string
		pub, enc, hid uint16
	}{
		{KEMX25519, "x25519", 32, 32, 0x0020},
		{KEMMLKEM768X25519, "mlkem768-x25519", 1216, 1120, 0x647a},
	} {
		if c.id.String() != c.name || uint16(c.id) != c.hid {
			t.Errorf("%#04x: name %q", uint16(c.id), c.id.String())
		}
		if id, ok := KEMByName(c.name); !ok || id != c.id {
			t.Errorf("KEMByName(%q) = %v, %v", c.name, id, ok)
		}
		if c.id.PublicKeySize() != int(c.pub) || c.id.EncSize() != int(c.enc) {
			t.Errorf("%v: sizes %d, %d", c.id, c.id.PublicKeySize(), c.id.EncSize())
		}
		// The ids are crypto/hpke's.
		k, err := hpke.NewKEM(uint16(c.id))
		if err != nil || k.ID() != c.hid {
			t.Errorf("%v: crypto/hpke NewKEM: %v", c.id, err)
		}
	}
	if _, ok := KEMByName("X25519"); ok {
		t.Error("KEMByName is case-insensitive")
	}
	if s := KEMID(0x0010).String(); s != "KEMID(0x0010)" {
		t.Errorf("unknown KEM prints %q", s)
	}
	if KEMID(0x0010).EncSize() != 0 || KEMID(0x0010).PublicKeySize() != 0 {
		t.Error("unknown KEM has sizes")
	}
}

func TestGenerateRoomKey(t *testing.T) {
	t.Parallel()
	a, b := GenerateRoomKey(), GenerateRoomKey()
	if *a == *b || *a == (RoomKey{}) {
		t.Fatal("room keys repeat or are zero")
	}
}

// ---- per-sender keys ----

// senderKeyByHand is RFC 5869 with crypto/hmac alone: PRK = HMAC(salt, IKM), an
// empty salt being HashLen zero bytes; T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
func senderKeyByHand(ikm, info []byte, l int) []byte {
	m := hmac.New(sha256.New, make([]byte, sha256.Size))
	m.Write(ikm)
	prk := m.Sum(nil)
	var out, prev []byte
	for i := byte(1); len(out) < l; i++ {
		m := hmac.New(sha256.New, prk)
		m.Write(prev)
		m.Write(info)
		m.Write([]byte{i})
		prev = m.Sum(nil)
		out = append(out, prev...)
	}
	return out[:l]
}

func TestSenderKeyGolden(t *testing.T) {
	t.Parallel()
	key := new(RoomKey)
	copy(key[:], exampleBytes("room key", 64))
	var room [16]byte
	copy(room[:], exampleBytes("room id", 16))
	var sender PeerID
	copy(sender[:], exampleBytes("member peer id", 32))
	const epoch = 7
	// The example file's room key, room and member (as sender), epoch 7.
	// Also checked with openssl 3.0: openssl kdf -keylen 64 -kdfopt
	// digest:SHA256 -kdfopt hexkey:ROOM_KEY -kdfopt hexinfo:INFO HKDF.
	const full = "ba09fc2b1046c659fccca65f3b6600cdf2ff98c78ba599f68caebbe63558f359" +
		"d5e6b94669175af830ae5e54fdc62f4531667b71c565707ca3071f264c480399"
	golden := map[AEADID]string{
		AEADA256CBCHS512:     full,
		AEADAES256GCM:        full[:64],
		AEADChaCha20Poly1305: full[:64],
	}
	info := concatBytes([]byte("lanpeer/v1 sender key\x00"),
		[]byte{0, 0, 0, 16}, room[:],
		[]byte{0, 0, 0, 8}, binary.BigEndian.AppendUint64(nil, epoch),
		[]byte{0, 0, 0, 32}, sender[:])
	for _, s := range AEADs() {
		got, err := SenderKey(key, room, epoch, sender, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != s.KeySize {
			t.Errorf("%v: key of %d bytes, want %d", s.ID, len(got), s.KeySize)
		}
		mustEqualBytes(t, s.Name+" by hand", got, senderKeyByHand(key[:], info, s.KeySize))
		want, err := hex.DecodeString(golden[s.ID])
		if err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, s.Name+" golden", got, want)
		// The suite accepts the key.
		if _, err := s.New(got); err != nil {
			t.Errorf("%v: %v", s.ID, err)
		}
	}
}

func TestSenderKeySeparation(t *testing.T) {
	t.Parallel()
	s, _ := AEADByID(AEADA256CBCHS512)
	k1, k2 := GenerateRoomKey(), GenerateRoomKey()
	var r1, r2 [16]byte
	r2[15] = 1
	var p1, p2 PeerID
	p2[0] = 1
	seen := map[string]string{}
	for _, c := range []struct {
		name   string
		key    *RoomKey
		room   [16]byte
		epoch  uint64
		sender PeerID
	}{
		{"base", k1, r1, 1, p1},
		{"other room key", k2, r1, 1, p1},
		{"other room", k1, r2, 1, p1},
		{"other epoch", k1, r1, 2, p1},
		{"other sender", k1, r1, 1, p2},
	} {
		got, err := SenderKey(c.key, c.room, c.epoch, c.sender, s)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[string(got)]; dup {
			t.Errorf("%s and %s give the same key", c.name, prev)
		}
		seen[string(got)] = c.name
	}
	if _, err := SenderKey(k1, r1, 1, p1, nil); err == nil {
		t.Error("nil suite accepted")
	}
	if _, err := SenderKey(nil, r1, 1, p1, s); err == nil {
		t.Error("nil room key accepted")
	}
	if _, err := SenderKey(k1, r1, 1, p1, &AEADSuite{KeySize: 0}); err == nil {
		t.Error("zero key size accepted")
	}
}
