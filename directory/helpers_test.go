package directory

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

var t0 = time.UnixMilli(1764036000000).UTC()

var testAddrs = Addrs{TCP: []string{"192.0.2.7:7450", "[2001:db8::7]:7450"}, HTTP: []string{"https://peer.example:7451", "http://192.0.2.7:7452"}}

func ed25519Identity(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rsaIdentity(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	b, err := os.ReadFile("../cryptosuite/testdata/keys/rsa2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func build(t testing.TB, id *cryptosuite.Identity, addrs Addrs, ttl time.Duration, now time.Time) *Record {
	t.Helper()
	rec, err := BuildRecord(id, addrs, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// signRaw signs any fields under the directory label with signer, framing
// the blob as BuildRecord does but applying none of its checks.
func signRaw(t testing.TB, signer *cryptosuite.Identity, f *canon.DirectoryRecordFields) []byte {
	t.Helper()
	layout := canon.DirectoryRecord(f)
	sig, err := signer.Sign(canon.LabelDirectoryRecord, layout)
	if err != nil {
		t.Fatal(err)
	}
	return frame(layout, sig)
}

func frame(layout, sig []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(layout)))
	b = append(b, layout...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sig)))
	return append(b, sig...)
}

func fieldsFor(id *cryptosuite.Identity, issued time.Time, ttl time.Duration) *canon.DirectoryRecordFields {
	return &canon.DirectoryRecordFields{
		Peer: id.PeerID(), IdentityKey: id.Public().SPKI(), TCPAddrs: testAddrs.TCP, HTTPAddrs: testAddrs.HTTP,
		IssuedMillis: uint64(issued.UnixMilli()), ExpiresMillis: uint64(issued.Add(ttl).UnixMilli()),
	}
}

// clock is an injectable time source, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a directory served on loopback TCP over a memory store, with a
// client sharing its clock.
type env struct {
	clk    *clock
	store  *memory.Store
	h      *Handler
	srv    *httptest.Server
	client *Client
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvStore(t, st, st, cfg)
}

func newEnvStore(t testing.TB, mem *memory.Store, dir store.Directory, cfg Config) *env {
	t.Helper()
	clk := &clock{now: t0}
	cfg.Now = clk.Now
	h, err := NewHandler(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if mem != nil {
			_ = mem.Close()
		}
	})
	return &env{clk: clk, store: mem, h: h, srv: srv,
		client: &Client{BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: 30 * time.Second}, Now: clk.Now}}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.N), so per-address limits can be tested.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
}

// downStore is a directory store whose backend is down.
type downStore struct{}

func (downStore) PutDirectoryRecord(context.Context, store.DirectoryRecord, time.Time) error {
	return fmt.Errorf("%w: connection refused", store.ErrUnavailable)
}

func (downStore) GetDirectoryRecord(context.Context, store.PeerID, time.Time) (store.DirectoryRecord, error) {
	return store.DirectoryRecord{}, fmt.Errorf("%w: connection refused", store.ErrUnavailable)
}

func (downStore) SweepDirectory(context.Context, time.Time) (int, error) {
	return 0, fmt.Errorf("%w: connection refused", store.ErrUnavailable)
}
