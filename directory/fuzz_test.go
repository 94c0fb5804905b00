package directory

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store/memory"
)

// seededIdentity is an Ed25519 identity from a fixed seed: its records
// are the same bytes on every run (Ed25519 signatures are deterministic).
func seededIdentity(t testing.TB, b byte) *cryptosuite.Identity {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FuzzRegister sends arbitrary bodies to the registration endpoint (PUT
// /v1/records/PEER) of a Handler over a memory store, with the path
// naming the seed identity. No panic; every answer is a 200 or a typed
// JSON error with a 4xx status (never a 5xx: a bad body is the client's
// fault); a registration is accepted only for a record that verifies and
// names the path's peer, and a lookup then serves exactly that blob; a
// refused one leaves the directory empty.
func FuzzRegister(f *testing.F) {
	id := seededIdentity(f, 1)
	other := seededIdentity(f, 2)
	rec := build(f, id, testAddrs, time.Hour, t0)
	f.Add(rec.Blob())
	f.Add(build(f, other, testAddrs, time.Hour, t0).Blob()) // another peer's record: 403
	f.Add(build(f, id, Addrs{TCP: []string{"127.0.0.1:7450"}}, MaxTTL, t0.Add(-time.Minute)).Blob())
	f.Add(build(f, id, testAddrs, time.Minute, t0.Add(-2*time.Minute)).Blob()) // expired
	f.Add(signRaw(f, other, fieldsFor(id, t0, time.Hour)))                     // signed by someone else
	f.Add(rec.Blob()[:len(rec.Blob())-1])
	f.Add([]byte(canon.LabelDirectoryRecord))
	f.Add([]byte{})
	path := "/v1/records/" + id.PeerID().String()
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := memory.New(memory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		h, err := NewHandler(st, Config{Now: func() time.Time { return t0 }, RegisterRate: 1e6, RegisterBurst: 1e6,
			LookupRate: 1e6, LookupBurst: 1e6})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentBlob)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		lookup := httptest.NewRecorder()
		h.ServeHTTP(lookup, httptest.NewRequest(http.MethodGet, path, nil))
		r, verr := VerifyRecord(body, t0)
		if w.Code == http.StatusOK {
			if verr != nil || r.Peer != id.PeerID() {
				t.Fatalf("registered a record that does not verify for the path's peer (%v)", verr)
			}
			if lookup.Code != http.StatusOK || !bytes.Equal(lookup.Body.Bytes(), body) {
				t.Fatalf("lookup after registration: %d, %x", lookup.Code, lookup.Body.Bytes())
			}
			return
		}
		if w.Code < 400 || w.Code > 499 {
			t.Fatalf("status %d for a bad body", w.Code)
		}
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
			t.Fatalf("error body %q is not a typed JSON error", w.Body.Bytes())
		}
		if verr == nil && r.Peer == id.PeerID() {
			t.Fatalf("refused (%d %s) a record that verifies for the path's peer", w.Code, e.Error.Code)
		}
		if lookup.Code != http.StatusNotFound {
			t.Fatalf("a refused registration left something behind: lookup %d", lookup.Code)
		}
	})
}
