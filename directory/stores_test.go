package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/store/mongo"
)

// The directory's rules hold on both stores: the tests that take an
// envMaker run once over store/memory and once over store/mongo, against
// the MongoDB-wire server of LANPEER_TEST_MONGO_URI (make test starts
// FerretDB and sets it; without it the MongoDB runs are skipped, saying
// so).

// envMaker makes a test's directory over one kind of store.
type envMaker func(t testing.TB, cfg Config) *env

const envMongoURI = "LANPEER_TEST_MONGO_URI"

// forEachStore runs test over the memory store and over the MongoDB store.
func forEachStore(t *testing.T, test func(*testing.T, envMaker)) {
	t.Run("memory", func(t *testing.T) { test(t, newEnv) })
	t.Run("mongo", func(t *testing.T) {
		uri := mongoURI(t)
		test(t, func(t testing.TB, cfg Config) *env { return newEnvStore(t, nil, openMongo(t, uri), cfg) })
	})
}

// mongoURI returns a URI naming a fresh database on the test server, or
// skips the test when there is none.
func mongoURI(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envMongoURI)
	if base == "" {
		t.Skipf("%s is not set: the directory over store/mongo needs a MongoDB-wire server (make test starts FerretDB and sets it)", envMongoURI)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", envMongoURI, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "lanpeer_dir_" + hex.EncodeToString(b)
	u.Path = "/" + db
	t.Cleanup(func() { // after the stores on it are closed
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := driver.Connect(options.Client().ApplyURI(base).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			return
		}
		defer func() { _ = c.Disconnect(ctx) }()
		_ = c.Database(db).Drop(ctx)
	})
	return u.String()
}

// openMongo opens a store on uri's database, closed when the test ends.
func openMongo(t testing.TB, uri string) *mongo.Store {
	t.Helper()
	st, err := mongo.Open(context.Background(), uri, mongo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestSharedStore: two directories over one database (several instances
// behind one name): a record registered through one is looked up
// through the other, refreshed through the other, and an older one is
// refused whichever takes it.
func TestSharedStore(t *testing.T) {
	uri := mongoURI(t)
	a := newEnvStore(t, nil, openMongo(t, uri), Config{})
	b := newEnvStore(t, nil, openMongo(t, uri), Config{})
	b.clk = a.clk
	b.client.Now = a.clk.Now
	ctx := context.Background()
	id := ed25519Identity(t)
	first := build(t, id, testAddrs, time.Hour, t0)
	if err := a.client.Register(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := b.client.Lookup(ctx, id.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), first.Blob()) {
		t.Fatalf("lookup through the other directory: %v", err)
	}
	second := build(t, id, Addrs{TCP: []string{"198.51.100.9:7450"}}, time.Hour, t0.Add(time.Minute))
	if err := b.client.Register(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := a.client.Register(ctx, first); !errors.Is(err, ErrStale) {
		t.Fatalf("the older record again through the first directory: %v, want ErrStale", err)
	}
	got, err = a.client.Lookup(ctx, id.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), second.Blob()) {
		t.Fatalf("lookup after the refresh: %v", err)
	}
}

// TestClientPinned: a directory served over HTTPS with an identity's
// certificate is reached through https://PEERID@HOST:PORT; a URL pinning
// another peer ID fails in the TLS handshake, before any request; the
// peer ID is never sent (no Authorization header).
func TestClientPinned(t *testing.T) {
	dirID := ed25519Identity(t)
	cert, err := node.NewCertificate(dirID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{})
	var requests, withAuth atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" || r.URL.User != nil {
			withAuth.Add(1)
		}
		e.h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")

	c, err := NewClient("https://"+strings.ToUpper(dirID.PeerID().String())+"@"+host, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = e.clk.Now
	defer c.HTTPClient.CloseIdleConnections()
	if c.BaseURL != srv.URL {
		t.Fatalf("BaseURL %q keeps the peer ID", c.BaseURL)
	}
	id := ed25519Identity(t)
	if err := c.Register(context.Background(), build(t, id, testAddrs, time.Hour, t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(context.Background(), id.PeerID()); err != nil {
		t.Fatal(err)
	}
	if n := withAuth.Load(); n != 0 {
		t.Fatalf("%d requests carried the peer ID as credentials", n)
	}

	before := requests.Load()
	other, err := NewClient("https://"+id.PeerID().String()+"@"+host, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.HTTPClient.CloseIdleConnections()
	if _, err := other.Lookup(context.Background(), id.PeerID()); !errors.Is(err, ErrWrongDirectory) {
		t.Fatalf("a URL pinning another peer ID: %v, want ErrWrongDirectory", err)
	}
	unpinned, err := NewClient(srv.URL, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unpinned.HTTPClient.CloseIdleConnections()
	if _, err := unpinned.Lookup(context.Background(), id.PeerID()); err == nil {
		t.Fatal("the system's authorities vouched for a self-signed certificate")
	}
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("%d requests reached the directory through refused connections", n)
	}
}

// TestParseURL: the directory URL forms, and what each refuses.
func TestParseURL(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for raw, want := range map[string]string{
		"http://dir.example:8470":                        "",
		"https://dir.example:8470/":                      "",
		"https://" + id + "@dir.example:8470":            id,
		"https://" + strings.ToUpper(id) + "@[::1]:8470": id,
	} {
		u, pin, err := ParseURL(raw)
		if err != nil || u.User != nil || (pin == nil) != (want == "") || pin != nil && pin.String() != want {
			t.Errorf("ParseURL(%q) = %v, %v, %v", raw, u, pin, err)
		}
	}
	for _, raw := range []string{
		"", "dir.example:8470", "ftp://dir.example", "http://" + id + "@dir.example:8470",
		"https://abc@dir.example", "https://" + id + ":pw@dir.example", "https://dir.example/?q=1", "https://",
	} {
		if _, _, err := ParseURL(raw); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseURL(%q): %v, want ErrBadURL", raw, err)
		}
	}
}
