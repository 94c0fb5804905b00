package session

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/wire"
)

// Golden transcripts: whole handshakes with fixed time, fixed randomness,
// fixed ephemeral seeds and a fixed channel binding, every flight's frame
// and every intermediate value recorded in testdata/golden/. The test
// regenerates each transcript and compares it byte for byte; it then
// recomputes the transcript, signatures, key schedule, sealed
// authentication key and Finished MAC from the recorded values alone,
// following docs/PROTOCOL.md §6-§7 with no help from canon or the state
// machines. Regenerate with `go test ./session -run TestGolden -update`
// (needed when Go changes how ML-KEM or RSA consume randomness).

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

var goldenTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type goldenCase struct {
	file   string
	kex    cryptosuite.KEXID
	aeads  []cryptosuite.AEADID // the requestor's offer; nil: all
	rq, rs string               // "ed25519:<seed byte>" or an RSA fixture name
}

var goldenCases = []goldenCase{
	{"x25519-ed25519.txt", cryptosuite.KEXX25519, nil, "ed25519:01", "ed25519:02"},
	{"p256-ed25519-gcm.txt", cryptosuite.KEXP256, []cryptosuite.AEADID{cryptosuite.AEADAES256GCM, cryptosuite.AEADA256CBCHS512}, "ed25519:01", "ed25519:02"},
	{"x25519-mlkem768-ed25519-chacha.txt", cryptosuite.KEXX25519MLKEM768, []cryptosuite.AEADID{cryptosuite.AEADChaCha20Poly1305}, "ed25519:01", "ed25519:02"},
	{"rsa-rsa2048-ed25519.txt", cryptosuite.KEXRSAOAEPSHA256, nil, "rsa2048", "ed25519:02"},
}

// goldenIdentity returns an Ed25519 identity from a one-byte seed pattern,
// or an RSA fixture.
func goldenIdentity(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	if seed, ok := strings.CutPrefix(name, "ed25519:"); ok {
		b, _ := hex.DecodeString(seed)
		k := ed25519.NewKeyFromSeed(bytes.Repeat(b, ed25519.SeedSize))
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		id, err := cryptosuite.ParseIdentityPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	return identity(t, name)
}

// goldenSeeds are the ephemeral key seeds of each mode: the requestor's
// (x25519, p256: the private key; x25519-mlkem768: ML-KEM-768 seed d ‖ z,
// then the X25519 private key; rsa: none) and the responder's (the X25519
// or P-256 private key; rsa: the session secret itself).
func goldenSeeds(kex cryptosuite.KEXID) (rq, rs []byte) {
	rs = bytes.Repeat([]byte{0x22}, 32)
	switch kex {
	case cryptosuite.KEXX25519MLKEM768:
		rq = append(bytes.Repeat([]byte{0x11}, 64), bytes.Repeat([]byte{0x12}, 32)...)
	case cryptosuite.KEXRSAOAEPSHA256:
		rq = nil
	default:
		rq = bytes.Repeat([]byte{0x11}, 32)
	}
	return rq, rs
}

// record is an ordered list of name=hex lines.
type record struct {
	names []string
	vals  map[string]string
}

func (r *record) add(name string, v any) {
	if r.vals == nil {
		r.vals = map[string]string{}
	}
	var s string
	switch v := v.(type) {
	case []byte:
		s = hex.EncodeToString(v)
	case string:
		s = v
	default:
		s = fmt.Sprint(v)
	}
	r.names = append(r.names, name)
	r.vals[name] = s
}

func (r *record) text(comment string) []byte {
	var b bytes.Buffer
	b.WriteString(comment)
	for _, n := range r.names {
		fmt.Fprintf(&b, "%s=%s\n", n, r.vals[n])
	}
	return b.Bytes()
}

func parseRecord(t testing.TB, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("golden line %q", line)
		}
		m[k] = v
	}
	return m
}

func mustHex(t testing.TB, m map[string]string, name string) []byte {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("golden file has no %s", name)
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// goldenRun runs one deterministic handshake by calling the state machines
// in turn, and returns the frames and both sides' keys. With recorded
// frames it replays them instead: each side must produce exactly the
// recorded frame and is then fed the recorded one.
func goldenRun(t *testing.T, c goldenCase, recorded *[4][]byte) (frames [4][]byte, rqKeys, rsKeys *Keys) {
	t.Helper()
	rqID, rsID := goldenIdentity(t, c.rq), goldenIdentity(t, c.rs) // loading fixtures may draw randomness
	cryptotest.SetGlobalRandom(t, 1)                               // ML-KEM encapsulation, RSA-PSS and RSA-OAEP
	rqSeed, rsSeed := goldenSeeds(c.kex)
	now := func() time.Time { return goldenTime }
	rq := &Config{Identity: rqID, KEX: c.kex, AEADs: c.aeads, AllowRSA: true, Now: now,
		Rand: mrand.NewChaCha8([32]byte{'r', 'q'}), KEXSeed: rqSeed}
	rs := &Config{Identity: rsID, AllowRSA: true, Now: now,
		Rand: mrand.NewChaCha8([32]byte{'r', 's'}), KEXSeed: rsSeed, Replay: NewReplayCache(0, 0)}
	p1, p2 := tlsParams(rs.Identity.PeerID())
	q, err := NewRequestor(rq, p1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResponder(rs, p2)
	if err != nil {
		t.Fatal(err)
	}
	// Each message crosses as its frame and is decoded on the other
	// side, as RunRequestor and RunResponder move it.
	names := [4]string{"Hello", "HelloReply", "Finished", "Ready"}
	cross := func(i int, m wire.Message) wire.Message {
		frames[i] = framed(encode(t, m))
		in := frames[i]
		if recorded != nil {
			if !bytes.Equal(frames[i], recorded[i]) {
				t.Fatalf("replay: %s differs from the recorded frame", names[i])
			}
			in = recorded[i]
		}
		d, err := wire.Decode(in[4:])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	hello, err := q.CreateHello()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ConsumeHello(cross(0, hello).(*wire.Hello)); err != nil {
		t.Fatal(err)
	}
	reply, err := r.CreateReply()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.ConsumeReply(cross(1, reply).(*wire.HelloReply)); err != nil {
		t.Fatal(err)
	}
	fin, rqKeys, err := q.CreateFinished()
	if err != nil {
		t.Fatal(err)
	}
	if rsKeys, err = r.ConsumeFinished(cross(2, fin).(*wire.Finished)); err != nil {
		t.Fatal(err)
	}
	cross(3, rs.ready())
	return frames, rqKeys, rsKeys
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.file, func(t *testing.T) {
			frames, k1, k2 := goldenRun(t, c, nil)
			if !sameKeys(k1, k2) {
				t.Fatal("the two sides derived different keys")
			}
			rec := goldenRecord(t, c, frames, k1)
			path := filepath.Join("testdata", "golden", c.file)
			got := rec.text(goldenComment)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the handshake no longer matches %s; if on purpose, run go test ./session -run TestGolden -update and update docs/PROTOCOL.md", path)
			}
			m := parseRecord(t, want)
			// Every derived value follows from the file's own inputs by
			// the spec's rules.
			checkGoldenFromSpec(t, c, m)
			// Replayed into fresh state machines, the recorded flights
			// are accepted and answered byte for byte, and give the
			// recorded keys.
			var recorded [4][]byte
			for i, n := range goldenFrames {
				recorded[i] = mustHex(t, m, n)
			}
			_, k3, k4 := goldenRun(t, c, &recorded)
			if !sameKeys(k3, k1) || !sameKeys(k4, k1) {
				t.Fatal("replayed flights gave other keys")
			}
		})
	}
}

var goldenFrames = [4]string{"frame_hello", "frame_hello_reply", "frame_finished", "frame_ready"}

func sameKeys(a, b *Keys) bool {
	return a.SessionID == b.SessionID && a.TranscriptHash == b.TranscriptHash && bytes.Equal(a.C2S, b.C2S) &&
		bytes.Equal(a.S2C, b.S2C) && a.AuthKey == b.AuthKey && a.AEAD == b.AEAD && a.KEX == b.KEX
}

const goldenComment = `# A lanpeer v1 handshake with fixed time, randomness and ephemeral seeds
# (docs/PROTOCOL.md §5-§8). Generated by go test ./session -run TestGolden -update;
# checked by that test, which also recomputes every value below from the
# frames, the seeds and the identity keys. Values are hex; frames include
# their 4-byte length header. Layouts: label ‖ 0x00 ‖ each field as a 4-byte
# big-endian length and its bytes. sig_input = 64 × 0x20 ‖ label ‖ 0x00 ‖
# SHA-256(layout).
`

// goldenRecord writes down what a reimplementation needs to check itself:
// the inputs, every frame, and each value §6 and §7 derive, computed by
// the spec path (specValues) and checked against the state machines' keys.
func goldenRecord(t *testing.T, c goldenCase, frames [4][]byte, k *Keys) *record {
	t.Helper()
	rqID, rsID := goldenIdentity(t, c.rq), goldenIdentity(t, c.rs)
	rqSeed, rsSeed := goldenSeeds(c.kex)
	rec := &record{}
	rec.add("mode", fmt.Sprintf("%s (%#04x)", c.kex, uint16(c.kex)))
	rec.add("aead", fmt.Sprintf("%s (%#04x)", k.AEAD.ID, uint16(k.AEAD.ID)))
	rec.add("time_ms", goldenTime.UnixMilli())
	rec.add("transport", TransportTLS)
	rec.add("channel_binding", binding(7))
	if strings.HasPrefix(c.rq, "ed25519:") {
		rec.add("requestor_ed25519_seed", bytes.Repeat(mustByte(c.rq), 32))
	} else {
		rec.add("requestor_rsa_key", "cryptosuite/testdata/keys/"+c.rq+".pem")
	}
	rec.add("requestor_spki", rqID.Public().SPKI())
	rec.add("requestor_peer_id", rqID.PeerID().String())
	rec.add("responder_ed25519_seed", bytes.Repeat(mustByte(c.rs), 32))
	rec.add("responder_spki", rsID.Public().SPKI())
	rec.add("responder_peer_id", rsID.PeerID().String())
	if rqSeed != nil {
		rec.add("requestor_kex_seed", rqSeed)
	}
	rec.add("responder_kex_seed", rsSeed)
	for i, n := range goldenFrames {
		rec.add(n, frames[i])
	}
	v := specValues(t, c, frames, rqID, rsID, rqSeed)
	for _, n := range specNames {
		rec.add(n, v[n])
	}
	// The spec path and the state machines agree.
	for name, got := range map[string][]byte{
		"transcript_hash": k.TranscriptHash[:], "k_c2s": k.C2S, "k_s2c": k.S2C,
		"auth_key": k.AuthKey[:], "session_id": k.SessionID[:],
	} {
		if !bytes.Equal(got, v[name]) {
			t.Fatalf("%s: the handshake has %x, the spec gives %x", name, got, v[name])
		}
	}
	return rec
}

func mustByte(name string) []byte {
	b, _ := hex.DecodeString(strings.TrimPrefix(name, "ed25519:"))
	return b
}

// specNames are the derived values in the order the golden files list
// them.
var specNames = []string{
	"hello_share", "hello_nonce", "hello_sig", "reply_share", "reply_nonce", "sealed_auth_key", "reply_sig",
	"requestor_hello_layout", "requestor_hello_sig_input", "requestor_hello_hash",
	"session_id", "responder_hello_layout", "responder_hello_sig_input", "transcript_hash",
	"shared_secret", "prk", "k_c2s", "k_s2c", "k_seal", "k_finished",
	"auth_key_seal_aad", "auth_key", "finished_input", "finished_mac",
}

// The canonical layout, written out again from docs/PROTOCOL.md §6.
func specLayout(label string, fields ...[]byte) []byte {
	b := append([]byte(label), 0)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func specSigInput(label string, layout []byte) []byte {
	h := sha256.Sum256(layout)
	return append(append(append(bytes.Repeat([]byte{0x20}, 64), label...), 0), h[:]...)
}

func specHMAC(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// specHKDF: Extract = HMAC(salt, ikm); Expand = T(1) ‖ T(2) ‖ ... with
// T(i) = HMAC(prk, T(i-1) ‖ info ‖ i) (RFC 5869).
func specExpand(prk []byte, info string, n int) []byte {
	var out, prev []byte
	for i := byte(1); len(out) < n; i++ {
		prev = specHMAC(prk, prev, []byte(info), []byte{i})
		out = append(out, prev...)
	}
	return out[:n]
}

// specValues derives every value of §6 and §7 from the frames, the
// requestor's ephemeral seed (or RSA key) and the identities' public keys.
func specValues(t *testing.T, c goldenCase, frames [4][]byte, rqID, rsID *cryptosuite.Identity, rqSeed []byte) map[string][]byte {
	t.Helper()
	dec := func(f []byte) wire.Message {
		if int(binary.BigEndian.Uint32(f)) != len(f)-4 {
			t.Fatal("frame length header")
		}
		m, err := wire.Decode(f[4:])
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h, r, fin := dec(frames[0]).(*wire.Hello), dec(frames[1]).(*wire.HelloReply), dec(frames[2]).(*wire.Finished)
	v := map[string][]byte{
		// The fields a reimplementation takes from the frames.
		"hello_share": h.Share, "hello_nonce": h.Nonce, "hello_sig": h.Sig,
		"reply_share": r.Share, "reply_nonce": r.Nonce, "sealed_auth_key": r.SealedAuthKey, "reply_sig": r.Sig,
	}
	rqPeer, rsPeer := sha256.Sum256(h.IdentityKey), sha256.Sum256(r.IdentityKey)
	var aeads []byte
	for _, id := range h.AEADs {
		aeads = append(binary.BigEndian.AppendUint32(aeads, 2), be16(id)...)
	}
	l1 := specLayout("lanpeer/v1 requestor hello", be64(uint64(h.Version)), []byte("tcp"), binding(7),
		rqPeer[:], h.Responder, h.IdentityKey, be16(h.SigAlg), be16(h.KEX), h.Share, aeads, h.Nonce, be64(uint64(h.Time)))
	v["requestor_hello_layout"] = l1
	v["requestor_hello_sig_input"] = specSigInput("lanpeer/v1 requestor hello", l1)
	l1h := sha256.Sum256(l1)
	v["requestor_hello_hash"] = l1h[:]
	v["session_id"] = r.SessionID
	l2 := specLayout("lanpeer/v1 responder hello", l1h[:], h.Sig, r.SessionID, rsPeer[:], r.IdentityKey,
		be16(r.SigAlg), be16(r.KEX), r.Share, be16(r.AEAD), r.Nonce, be64(uint64(r.Time)))
	v["responder_hello_layout"] = l2
	v["responder_hello_sig_input"] = specSigInput("lanpeer/v1 responder hello", l2)
	th := sha256.Sum256(l2)
	v["transcript_hash"] = th[:]

	// Both signatures verify over their inputs with the keys as sent.
	verify := func(spki, input, sig []byte) {
		pub, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			t.Fatal(err)
		}
		switch k := pub.(type) {
		case ed25519.PublicKey:
			if !ed25519.Verify(k, input, sig) {
				t.Fatal("Ed25519 signature does not verify over the spec's input")
			}
		case *rsa.PublicKey:
			sum := sha256.Sum256(input)
			if err := rsa.VerifyPSS(k, 5, sum[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: 5}); err != nil {
				t.Fatalf("RSA-PSS signature does not verify over the spec's input: %v", err)
			}
		}
	}
	verify(h.IdentityKey, v["requestor_hello_sig_input"], h.Sig)
	verify(r.IdentityKey, v["responder_hello_sig_input"], r.Sig)

	// The shared secret, from the requestor's side.
	var shared []byte
	switch c.kex {
	case cryptosuite.KEXX25519, cryptosuite.KEXP256:
		curve := ecdh.X25519()
		if c.kex == cryptosuite.KEXP256 {
			curve = ecdh.P256()
		}
		shared = ecdhSecret(t, curve, rqSeed, r.Share)
	case cryptosuite.KEXX25519MLKEM768:
		dk, err := mlkem.NewDecapsulationKey768(rqSeed[:64])
		if err != nil {
			t.Fatal(err)
		}
		m, err := dk.Decapsulate(r.Share[:mlkem.CiphertextSize768])
		if err != nil {
			t.Fatal(err)
		}
		shared = append(m, ecdhSecret(t, ecdh.X25519(), rqSeed[64:], r.Share[mlkem.CiphertextSize768:])...)
	case cryptosuite.KEXRSAOAEPSHA256:
		s, err := rqID.DecryptOAEP(r.Share, nil)
		if err != nil {
			t.Fatal(err)
		}
		shared = s
	}
	v["shared_secret"] = shared
	prk := specHMAC(th[:], shared)
	v["prk"] = prk
	aead, _ := cryptosuite.AEADByID(cryptosuite.AEADID(r.AEAD))
	v["k_c2s"] = specExpand(prk, "lanpeer/v1 c2s", aead.KeySize)
	v["k_s2c"] = specExpand(prk, "lanpeer/v1 s2c", aead.KeySize)
	v["k_seal"] = specExpand(prk, "lanpeer/v1 auth key seal", aead.KeySize)
	v["k_finished"] = specExpand(prk, "lanpeer/v1 finished key", 32)

	// The sealed authentication key is nonce ‖ AEAD ciphertext under
	// k_seal with this AAD.
	aad := specLayout("lanpeer/v1 auth key seal aad", th[:], r.SessionID)
	v["auth_key_seal_aad"] = aad
	a, err := aead.New(v["k_seal"])
	if err != nil {
		t.Fatal(err)
	}
	n := a.NonceSize()
	authKey, err := a.Open(nil, r.SealedAuthKey[:n], r.SealedAuthKey[n:], aad)
	if err != nil || len(authKey) != AuthKeySize {
		t.Fatalf("sealed authentication key: %v", err)
	}
	v["auth_key"] = authKey
	akh := sha256.Sum256(authKey)
	finIn := specLayout("lanpeer/v1 requestor finished", th[:], r.Sig, r.SealedAuthKey, akh[:])
	v["finished_input"] = finIn
	v["finished_mac"] = specHMAC(v["k_finished"], finIn)
	if !bytes.Equal(v["finished_mac"], fin.MAC) {
		t.Fatal("Finished MAC differs from the spec's")
	}
	// Identity checks a reimplementation makes.
	if rqPeer != rqID.PeerID() || rsPeer != rsID.PeerID() || !bytes.Equal(h.Responder, rsPeer[:]) {
		t.Fatal("peer IDs")
	}
	return v
}

func ecdhSecret(t *testing.T, curve ecdh.Curve, priv, peer []byte) []byte {
	t.Helper()
	k, err := curve.NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := curve.NewPublicKey(peer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.ECDH(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkGoldenFromSpec recomputes the file's derived values from its own
// inputs and frames, so the file and the spec cannot drift apart.
func checkGoldenFromSpec(t *testing.T, c goldenCase, m map[string]string) {
	t.Helper()
	var frames [4][]byte
	for i, n := range goldenFrames {
		frames[i] = mustHex(t, m, n)
	}
	var rqSeed []byte
	if _, ok := m["requestor_kex_seed"]; ok {
		rqSeed = mustHex(t, m, "requestor_kex_seed")
	}
	v := specValues(t, c, frames, goldenIdentity(t, c.rq), goldenIdentity(t, c.rs), rqSeed)
	for _, n := range specNames {
		if !bytes.Equal(v[n], mustHex(t, m, n)) {
			t.Errorf("%s: the file says %s, the spec gives %x", n, m[n], v[n])
		}
	}
}

// TestGoldenOpenSSL runs docs/PROTOCOL.md's openssl recipe
// (testdata/golden_openssl.sh) over the x25519 transcript, and over a copy
// with one value changed, which it must refuse.
func TestGoldenOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: this test checks the protocol's recipe with it; install it " +
			"(Debian: apt-get install -y openssl; .ci/run does this)")
	}
	script := filepath.Join("testdata", "golden_openssl.sh")
	golden := filepath.Join("testdata", "golden", "x25519-ed25519.txt")
	if out, err := exec.Command("bash", script, golden).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	m := parseRecord(t, b)
	changed := strings.Replace(string(b), "finished_mac="+m["finished_mac"], "finished_mac="+strings.Repeat("00", 32), 1)
	bad := filepath.Join(t.TempDir(), "changed.txt")
	if err := os.WriteFile(bad, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", script, bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "finished_mac") {
		t.Fatalf("a changed Finished MAC passed: %v\n%s", err, out)
	}
}
