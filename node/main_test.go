package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hang is the deadline of anything a test waits for: far above the
// expected time (milliseconds), only there so that a bug fails the test
// instead of hanging it.
const hang = 30 * time.Second

// Identities: Ed25519 made per run (cheap), RSA from committed fixtures.
var (
	fixtureOnce sync.Once
	fixtures    map[string]*cryptosuite.Identity
)

func identity(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtures = map[string]*cryptosuite.Identity{}
		for _, n := range []string{"rsa2048", "rsa3072"} {
			b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", n+".pem"))
			if err != nil {
				panic(err)
			}
			id, err := cryptosuite.ParseIdentityPEM(b)
			if err != nil {
				panic(err)
			}
			fixtures[n] = id
		}
		for _, n := range []string{"ed-a", "ed-b", "ed-c", "ed-d", "ed-m", "ed-s"} {
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err != nil {
				panic(err)
			}
			fixtures[n] = id
		}
	})
	id, ok := fixtures[name]
	if !ok {
		t.Fatalf("no fixture %q", name)
	}
	return id
}

// kindEcho is the kind the tests' servers serve with echoHandler, which
// writes every frame back until the stream ends: request streams, which
// the requestor may open as many of as the server allows.
const kindEcho = KindRequest

var echoHandler = HandlerFunc(func(ctx context.Context, s *Stream) {
	for {
		p, err := s.ReadFrame()
		if err != nil {
			return
		}
		if s.WriteFrame(p) != nil {
			return
		}
	}
})

func serverConfig(id *cryptosuite.Identity) *Config {
	return &Config{
		Identity: id,
		Handlers: map[StreamKind]Handler{kindEcho: echoHandler},
		Logger:   testLogger(),
	}
}

func clientConfig(id *cryptosuite.Identity) *Config {
	return &Config{Identity: id, Logger: testLogger()}
}

// testLogger writes to the test output when LANPEER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("LANPEER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer serves cfg on 127.0.0.1 until the test ends, and checks that
// Serve then returns nil.
func startServer(t testing.TB, cfg *Config) *Server {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", cfg)
}

func startServerAt(t testing.TB, addr string, cfg *Config) *Server {
	t.Helper()
	srv, err := Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(hang):
			t.Error("Serve did not return after Close")
		}
	})
	return srv
}

func dial(t testing.TB, target string, cfg *Config) (*Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := Dial(ctx, target, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func mustDial(t testing.TB, target string, cfg *Config) *Conn {
	t.Helper()
	c, err := dial(t, target, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	return c
}

// pinned returns PEERID@ADDR for srv.
func pinned(srv *Server) string {
	return srv.cfg.Identity.PeerID().String() + "@" + srv.Addr().String()
}

// echo sends one frame on a new echo stream and checks it comes back.
func echo(t testing.TB, c *Conn, msg string) {
	t.Helper()
	s, err := c.OpenStream(context.Background(), kindEcho)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	echoOn(t, s, msg)
}

func echoOn(t testing.TB, s *Stream, msg string) {
	t.Helper()
	s.SetDeadline(time.Now().Add(hang))
	defer s.SetDeadline(time.Time{})
	if err := s.WriteFrame([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	p, err := s.ReadFrame()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(p) != msg {
		t.Fatalf("echo %q, want %q", p, msg)
	}
}

// waitFor polls cond until it holds; a bounded loop.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logStore keeps the records a server logs, with their attributes, so a
// test can check the typed error a refusal was logged with.
type logStore struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	msg   string
	attrs map[string]any
}

type storeHandler struct {
	store *logStore
	attrs []slog.Attr
}

func (h *storeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *storeHandler) WithGroup(string) slog.Handler            { return h }
func (h *storeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &storeHandler{store: h.store, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *storeHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{msg: r.Message, attrs: map[string]any{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.store.mu.Lock()
	h.store.recs = append(h.store.recs, rec)
	h.store.mu.Unlock()
	return nil
}

func (s *logStore) logger() *slog.Logger { return slog.New(&storeHandler{store: s}) }

// errorsLogged returns the "err" attributes of the records with message msg.
func (s *logStore) errorsLogged(msg string) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []error
	for _, r := range s.recs {
		if r.msg != msg {
			continue
		}
		if err, ok := r.attrs["err"].(error); ok {
			out = append(out, err)
		} else if err, ok := r.attrs["reason"].(error); ok {
			out = append(out, err)
		}
	}
	return out
}

// has reports whether a record's message contains substr.
func (s *logStore) has(substr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if strings.Contains(r.msg, substr) {
			return true
		}
	}
	return false
}

// anyIs reports whether one of errs matches target.
func anyIs(errs []error, target error) bool {
	for _, e := range errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}
