package session

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// The handshake fuzz targets run one side of the handshake against bytes
// the fuzzer chooses, as the other side's half of the connection. The side
// under test is configured exactly as in the golden transcripts
// (testdata/golden: fixed identities, time, randomness and ephemeral
// seeds), so the recorded flights of the other side are valid input and
// seed the corpus: the fuzzer starts from handshakes that complete.
//
// Oracle: no panic and no hang (the input is a byte slice: running out of
// it is EOF); every failure is typed (a code of its own, the peer's Error,
// or the input ending); every frame the side writes decodes, and a refusal
// it can explain is answered with an Error carrying the code of its error;
// and a handshake completes only on the recorded flights.

var writeFuzzCorpus = flag.Bool("write-corpus", false, "rewrite testdata/fuzz/FuzzResponder and FuzzRequestor from the golden transcripts")

// fuzzGolden is one golden transcript: its four frames (header included)
// and their decoded messages.
type fuzzGolden struct {
	c      goldenCase
	frames [4][]byte
	msgs   [4]wire.Message
}

var (
	fuzzGoldensOnce sync.Once
	fuzzGoldensVal  []fuzzGolden
	fuzzGoldensErr  error
)

// fuzzGoldens reads every golden transcript once.
func fuzzGoldens(t testing.TB) []fuzzGolden {
	t.Helper()
	fuzzGoldensOnce.Do(func() {
		for _, c := range goldenCases {
			b, err := os.ReadFile(filepath.Join("testdata", "golden", c.file))
			if err != nil {
				fuzzGoldensErr = err
				return
			}
			m := parseRecord(t, b)
			g := fuzzGolden{c: c}
			for i, n := range goldenFrames {
				g.frames[i] = mustHex(t, m, n)
				if g.msgs[i], err = wire.Decode(g.frames[i][framing.HeaderSize:]); err != nil {
					fuzzGoldensErr = fmt.Errorf("%s %s: %w", c.file, n, err)
					return
				}
			}
			fuzzGoldensVal = append(fuzzGoldensVal, g)
		}
	})
	if fuzzGoldensErr != nil {
		t.Fatal(fuzzGoldensErr)
	}
	return fuzzGoldensVal
}

// fuzzIdentities caches the golden identities (an RSA fixture is slow to
// load, and loading draws randomness).
var (
	fuzzIDsMu sync.Mutex
	fuzzIDs   = map[string]*cryptosuite.Identity{}
)

func fuzzIdentity(t testing.TB, name string) *cryptosuite.Identity {
	fuzzIDsMu.Lock()
	defer fuzzIDsMu.Unlock()
	if id, ok := fuzzIDs[name]; ok {
		return id
	}
	id := goldenIdentity(t, name)
	fuzzIDs[name] = id
	return id
}

// goldenResponder is the responder of every golden transcript, fresh:
// the same seeds give the same reply, so a recorded Finished verifies.
func goldenResponder(rsID *cryptosuite.Identity) *Config {
	_, rsSeed := goldenSeeds(cryptosuite.KEXX25519)
	return &Config{Identity: rsID, AllowRSA: true, Now: func() time.Time { return goldenTime },
		Rand: mrand.NewChaCha8([32]byte{'r', 's'}), KEXSeed: rsSeed}
}

// goldenRequestor is the requestor of golden case c, fresh.
func goldenRequestor(rqID *cryptosuite.Identity, c goldenCase) *Config {
	rqSeed, _ := goldenSeeds(c.kex)
	return &Config{Identity: rqID, KEX: c.kex, AEADs: c.aeads, AllowRSA: true, Now: func() time.Time { return goldenTime },
		Rand: mrand.NewChaCha8([32]byte{'r', 'q'}), KEXSeed: rqSeed}
}

// splitConn is the other side's half of a connection: reads return
// data[:split] first and the rest afterwards (so a read may stop anywhere
// in a frame), then io.EOF; writes are recorded.
type splitConn struct {
	data  []byte
	split int
	first bool
	out   bytes.Buffer
}

func (s *splitConn) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	chunk := s.data
	if !s.first && s.split > 0 {
		chunk = s.data[:s.split]
	}
	s.first = true
	n := copy(p, chunk)
	s.data = s.data[n:]
	s.split -= n
	return n, nil
}

func (s *splitConn) Write(p []byte) (int, error) { return s.out.Write(p) }

// checkHandshakeFailure applies the oracle to a failed run: a typed error,
// no keys, and output that decodes and ends with the matching Error when
// the side refused on its own account.
func checkHandshakeFailure(t *testing.T, keys *Keys, err error, out []byte) {
	t.Helper()
	if keys != nil {
		t.Fatalf("keys with error %v", err)
	}
	var pe *PeerError
	ended := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if !errors.As(err, &pe) && !ended && Code(err) == wire.CodeInternal {
		t.Fatalf("untyped handshake error %v (%T)", err, err)
	}
	msgs := decodeFrames(t, out)
	if errors.As(err, &pe) || ended {
		return
	}
	if len(msgs) == 0 {
		t.Fatalf("refused with %v but sent no Error", err)
	}
	last, ok := msgs[len(msgs)-1].(*wire.Error)
	if !ok || last.Code != Code(err) {
		t.Fatalf("refused with %v (code %v), last frame sent %#v", err, Code(err), msgs[len(msgs)-1])
	}
}

// decodeFrames decodes every frame of out; each must be whole and valid.
func decodeFrames(t *testing.T, out []byte) []wire.Message {
	t.Helper()
	r := framing.NewReader(bytes.NewReader(out), framing.MaxControlFrame)
	var msgs []wire.Message
	for {
		p, err := r.ReadFrame()
		if err == io.EOF {
			return msgs
		}
		if err != nil {
			t.Fatalf("the side wrote a broken frame: %v", err)
		}
		m, err := wire.Decode(p)
		if err != nil {
			t.Fatalf("the side wrote a frame that does not decode: %v", err)
		}
		msgs = append(msgs, m)
	}
}

// leadingMessages decodes the first n frames of data (nil if there are
// fewer or one does not decode).
func leadingMessages(data []byte, n int) []wire.Message {
	r := framing.NewReader(bytes.NewReader(data), framing.MaxControlFrame)
	var msgs []wire.Message
	for range n {
		p, err := r.ReadFrame()
		if err != nil {
			return nil
		}
		m, err := wire.Decode(p)
		if err != nil {
			return nil
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// FuzzResponder: RunResponder, configured as the golden responder, reads
// data as the requestor's flights (Hello, then Finished).
func FuzzResponder(f *testing.F) {
	goldens := fuzzGoldens(f)
	rsID := fuzzIdentity(f, "ed25519:02")
	_, p := tlsParams(rsID.PeerID())
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		conn := &splitConn{data: data, split: int(split) % (len(data) + 1)}
		keys, err := RunResponder(conn, goldenResponder(rsID), p)
		if err != nil {
			checkHandshakeFailure(t, keys, err, conn.out.Bytes())
			return
		}
		defer keys.Wipe()
		got := leadingMessages(data, 2)
		for _, g := range goldens {
			if got != nil && reflect.DeepEqual(got[0], g.msgs[0]) && reflect.DeepEqual(got[1], g.msgs[2]) {
				msgs := decodeFrames(t, conn.out.Bytes())
				if len(msgs) != 2 || !reflect.DeepEqual(msgs[0], g.msgs[1]) || !reflect.DeepEqual(msgs[1], g.msgs[3]) {
					t.Fatalf("completed %s with a different reply or Ready", g.c.file)
				}
				return
			}
		}
		t.Fatalf("a handshake completed on flights that are not a golden transcript's: %x", data)
	})
}

// FuzzRequestor: RunRequestor, configured as the requestor of golden case
// kase, reads data as the responder's flights (HelloReply, then Ready).
func FuzzRequestor(f *testing.F) {
	goldens := fuzzGoldens(f)
	rsID := fuzzIdentity(f, "ed25519:02")
	p, _ := tlsParams(rsID.PeerID())
	rqIDs := make([]*cryptosuite.Identity, len(goldens))
	for i, g := range goldens {
		rqIDs[i] = fuzzIdentity(f, g.c.rq)
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, kase uint8) {
		i := int(kase) % len(goldens)
		g := goldens[i]
		conn := &splitConn{data: data, split: int(split) % (len(data) + 1)}
		keys, err := RunRequestor(conn, goldenRequestor(rqIDs[i], g.c), p)
		if err != nil {
			checkHandshakeFailure(t, keys, err, conn.out.Bytes())
			return
		}
		defer keys.Wipe()
		got := leadingMessages(data, 2)
		if got == nil || !reflect.DeepEqual(got[0], g.msgs[1]) {
			t.Fatalf("%s: a handshake completed on a reply that is not the recorded one: %x", g.c.file, data)
		}
		if _, ok := got[1].(*wire.Ready); !ok {
			t.Fatalf("%s: completed without a Ready", g.c.file)
		}
		msgs := decodeFrames(t, conn.out.Bytes())
		if len(msgs) != 2 || !reflect.DeepEqual(msgs[0], g.msgs[0]) || !reflect.DeepEqual(msgs[1], g.msgs[2]) {
			t.Fatalf("%s: completed with a hello or Finished other than the recorded ones", g.c.file)
		}
	})
}

// fuzzSeed is one committed corpus entry of FuzzResponder (kase unused) or
// FuzzRequestor.
type fuzzSeed struct {
	data  []byte
	split uint16
	kase  uint8
}

// handshakeSeeds builds the corpus of both targets from the golden
// flights: whole and cut runs, reads split inside frames, flights out of
// order or of the wrong side, a flipped byte, an Error, and bad headers.
func handshakeSeeds(t testing.TB) (responder, requestor map[string]fuzzSeed) {
	goldens := fuzzGoldens(t)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flipAt := func(b []byte, at int) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0x01
		return c
	}
	errFrame := framed(encode(t, wire.NewError(wire.CodeBusy)))
	header := func(n uint32) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }
	responder, requestor = map[string]fuzzSeed{}, map[string]fuzzSeed{}
	for i, g := range goldens {
		name := strings.TrimSuffix(g.c.file, ".txt")
		hello, reply, fin, ready := g.frames[0], g.frames[1], g.frames[2], g.frames[3]
		responder[name+"-whole"] = fuzzSeed{data: cat(hello, fin)}
		responder[name+"-split-in-hello"] = fuzzSeed{data: cat(hello, fin), split: uint16(len(hello) / 2)}
		responder[name+"-split-in-finished-header"] = fuzzSeed{data: cat(hello, fin), split: uint16(len(hello) + 2)}
		responder[name+"-hello-only"] = fuzzSeed{data: hello}
		responder[name+"-hello-cut"] = fuzzSeed{data: hello[:len(hello)-1]}
		responder[name+"-finished-flipped"] = fuzzSeed{data: cat(hello, flipAt(fin, len(fin)-1))}
		responder[name+"-hello-sig-flipped"] = fuzzSeed{data: cat(flipAt(hello, len(hello)-1), fin)}
		responder[name+"-hello-twice"] = fuzzSeed{data: cat(hello, hello)}
		responder[name+"-then-error"] = fuzzSeed{data: cat(hello, errFrame)}
		requestor[name+"-whole"] = fuzzSeed{data: cat(reply, ready), kase: uint8(i)}
		requestor[name+"-split-in-reply"] = fuzzSeed{data: cat(reply, ready), split: uint16(len(reply) / 3), kase: uint8(i)}
		requestor[name+"-reply-only"] = fuzzSeed{data: reply, kase: uint8(i)}
		requestor[name+"-reply-sig-flipped"] = fuzzSeed{data: cat(flipAt(reply, len(reply)-1), ready), kase: uint8(i)}
		requestor[name+"-sealed-key-flipped"] = fuzzSeed{data: cat(flipAt(reply, len(reply)/2), ready), kase: uint8(i)}
		requestor[name+"-ready-first"] = fuzzSeed{data: cat(ready, reply), kase: uint8(i)}
		requestor[name+"-reflected-hello"] = fuzzSeed{data: cat(hello, ready), kase: uint8(i)}
		requestor[name+"-then-error"] = fuzzSeed{data: cat(reply, errFrame), kase: uint8(i)}
	}
	g := goldens[0]
	responder["reply-as-hello"] = fuzzSeed{data: cat(g.frames[1], g.frames[2])}
	responder["error-first"] = fuzzSeed{data: errFrame}
	responder["empty"] = fuzzSeed{data: []byte{}}
	responder["zero-length-frame"] = fuzzSeed{data: header(0)}
	responder["too-large-header"] = fuzzSeed{data: cat(header(framing.MaxControlFrame+1), g.frames[0][4:])}
	requestor["other-case-reply"] = fuzzSeed{data: cat(goldens[1].frames[1], g.frames[3]), kase: 0}
	requestor["too-large-header"] = fuzzSeed{data: cat(header(0xffffffff), g.frames[1][4:]), kase: 0}
	return responder, requestor
}

func (s fuzzSeed) file(withKase bool) []byte {
	b := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s.data, s.split)
	if withKase {
		b = fmt.Appendf(b, "byte(%q)\n", s.kase)
	}
	return b
}

// TestFuzzCorpus checks that the committed corpora of FuzzResponder and
// FuzzRequestor are what handshakeSeeds generates from the golden
// transcripts; with -write-corpus it rewrites them. Files not named
// seed-* are crashers kept as regression inputs.
func TestFuzzCorpus(t *testing.T) {
	rs, rq := handshakeSeeds(t)
	for target, seeds := range map[string]map[string]fuzzSeed{"FuzzResponder": rs, "FuzzRequestor": rq} {
		dir := filepath.Join("testdata", "fuzz", target)
		withKase := target == "FuzzRequestor"
		if *writeFuzzCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
			for _, f := range old {
				os.Remove(f)
			}
			for name, s := range seeds {
				if err := os.WriteFile(filepath.Join(dir, "seed-"+name), s.file(withKase), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		var got []string
		for _, f := range files {
			name := strings.TrimPrefix(filepath.Base(f), "seed-")
			got = append(got, name)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, ok := seeds[name]
			if !ok {
				t.Errorf("%s: committed seed no longer generated", f)
			} else if !bytes.Equal(b, s.file(withKase)) {
				t.Errorf("%s differs from the generated seed (regenerate: go test ./session -run TestFuzzCorpus -write-corpus)", f)
			}
		}
		if len(got) != len(seeds) {
			var want []string
			for n := range seeds {
				want = append(want, n)
			}
			sort.Strings(want)
			t.Errorf("%s: committed seeds %q, want %q (regenerate with -write-corpus)", target, got, want)
		}
	}
}

// TestFuzzSeedsComplete is the positive control of both targets: the
// recorded flights of every golden transcript that takes no process-wide
// randomness complete a handshake in the fuzzed setup, so the fuzzer
// starts from inputs that reach the last state.
func TestFuzzSeedsComplete(t *testing.T) {
	rsID := fuzzIdentity(t, "ed25519:02")
	p1, p2 := tlsParams(rsID.PeerID())
	for _, g := range fuzzGoldens(t) {
		if g.c.kex == cryptosuite.KEXRSAOAEPSHA256 {
			continue // RSA-PSS and RSA-OAEP draw from crypto/rand
		}
		if g.c.kex != cryptosuite.KEXX25519MLKEM768 { // the responder encapsulates with crypto/rand
			conn := &splitConn{data: append(bytes.Clone(g.frames[0]), g.frames[2]...), split: 7}
			if keys, err := RunResponder(conn, goldenResponder(rsID), p2); err != nil {
				t.Errorf("%s: responder: %v", g.c.file, err)
			} else {
				keys.Wipe()
			}
		}
		conn := &splitConn{data: append(bytes.Clone(g.frames[1]), g.frames[3]...), split: 5}
		if keys, err := RunRequestor(conn, goldenRequestor(fuzzIdentity(t, g.c.rq), g.c), p1); err != nil {
			t.Errorf("%s: requestor: %v", g.c.file, err)
		} else {
			keys.Wipe()
		}
	}
}
