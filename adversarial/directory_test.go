package adversarial

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/store/memory"
)

// TestAdversarialDirectoryPoisoning (THREATS.md D2): Mallory tries to make
// the lookup server send Alice's callers to her: her own record under
// Alice's peer ID (peer_mismatch), a record naming Alice and her key but
// signed by Mallory (bad_signature), one naming Alice with Mallory's key
// (bad_signature: the key is not the peer ID's), and Alice's own older record
// replayed over her newer one (stale). Each is refused, a lookup of Alice
// still verifies and gives her newest addresses, and honest peers keep
// registering and looking up all the while.
func TestAdversarialDirectoryPoisoning(t *testing.T) {
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	h, err := directory.NewHandler(mem, directory.Config{RegisterRate: 1e6, RegisterBurst: 1 << 20,
		LookupRate: 1e6, LookupBurst: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // on 127.0.0.1
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	client := &directory.Client{BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: hang}}

	alice, mallory := newID(t), newID(t)
	aliceAddrs := directory.Addrs{TCP: []string{"192.0.2.1:7700"}}
	older, err := directory.BuildRecord(alice, directory.Addrs{TCP: []string{"192.0.2.9:7700"}}, time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := directory.BuildRecord(alice, aliceAddrs, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Register(ctx, newer); err != nil {
		t.Fatal(err)
	}

	// Honest peers register and look themselves up during the attack.
	var stop atomic.Bool
	var served atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < 1000 && (!stop.Load() || i == 0); i++ {
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err == nil {
				var rec *directory.Record
				if rec, err = directory.BuildRecord(id, aliceAddrs, time.Hour, time.Now()); err == nil {
					if err = client.Register(ctx, rec); err == nil {
						_, err = client.Lookup(ctx, id.PeerID())
					}
				}
			}
			if err != nil {
				errc <- err
				return
			}
			served.Add(1)
		}
		errc <- nil
	}()

	signed := func(signer *cryptosuite.Identity, key []byte, peer cryptosuite.PeerID) []byte {
		now := time.Now()
		layout := canon.DirectoryRecord(&canon.DirectoryRecordFields{Peer: peer, IdentityKey: key,
			TCPAddrs: []string{"203.0.113.66:7700"}, IssuedMillis: uint64(now.UnixMilli()),
			ExpiresMillis: uint64(now.Add(time.Hour).UnixMilli())})
		sig, err := signer.Sign(canon.LabelDirectoryRecord, layout)
		if err != nil {
			t.Fatal(err)
		}
		b := binary.BigEndian.AppendUint32(nil, uint32(len(layout)))
		b = append(append(b, layout...), binary.BigEndian.AppendUint32(nil, uint32(len(sig)))...)
		return append(b, sig...)
	}
	malloryRec, err := directory.BuildRecord(mallory, directory.Addrs{TCP: []string{"203.0.113.66:7700"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		blob   []byte
		status int
		code   string
	}{
		{"mallory's record under alice's id", malloryRec.Blob(), http.StatusForbidden, directory.CodePeerMismatch},
		{"alice's id and key, mallory's signature", signed(mallory, alice.Public().SPKI(), alice.PeerID()), http.StatusForbidden, directory.CodeBadSignature},
		{"alice's id, mallory's key", signed(mallory, mallory.Public().SPKI(), alice.PeerID()), http.StatusForbidden, directory.CodeBadSignature},
		{"alice's older record replayed", older.Blob(), http.StatusConflict, directory.CodeStale},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/v1/records/"+alice.PeerID().String(), bytes.NewReader(tc.blob))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal(body, &e)
		if resp.StatusCode != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, e.Error.Code, tc.status, tc.code)
		}
	}
	rec, err := client.Lookup(ctx, alice.PeerID())
	if err != nil || !bytes.Equal(rec.Blob(), newer.Blob()) {
		t.Fatalf("alice's lookup after the attack: %v, %v", rec, err)
	}
	stop.Store(true)
	if err := <-errc; err != nil {
		t.Fatalf("an honest peer was not served: %v", err)
	}
	if served.Load() == 0 {
		t.Fatal("no honest peer was served during the attack")
	}
}
