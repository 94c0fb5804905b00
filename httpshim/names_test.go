package httpshim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"testing"

	"github.com/lanpeer/lanpeer/room"
)

// rawJSON sends a signed request and returns the answer's top-level keys
// with their raw values.
func rawJSON(t *testing.T, c *Client, method, target string, body any) map[string]json.RawMessage {
	t.Helper()
	var out map[string]json.RawMessage
	if err := c.Do(tctx(t), method, target, body, &out); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return out
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOneNamePerObject: an object has one JSON name whichever way it
// goes. A message is "message" when posted and when read (list and event
// stream); "key_package" is a key package blob everywhere, and a member's
// hash of one is "key_package_hash"; room info and commit lists carry the
// master's identity key, which checks against the master's peer ID and
// verifies the commits without fetching the master's key package.
func TestOneNamePerObject(t *testing.T) {
	h := startHost(t, hostOpts{})
	alice := h.httpMember(t, "alice")
	bob := h.httpMember(t, "bob")
	id := alice.createRoom(t, "names")
	alice.invite(t, bob)
	blob := alice.seal(t, "named")
	rawJSON(t, alice.http, http.MethodPost, roomPath(id, "/messages"), map[string][]byte{"message": blob})

	list := rawJSON(t, bob.http, http.MethodGet, roomPath(id, "/messages"), nil)
	var ms []map[string]json.RawMessage
	if err := json.Unmarshal(list["messages"], &ms); err != nil || len(ms) != 1 {
		t.Fatalf("messages: %s %v", list["messages"], err)
	}
	if got := keys(ms[0]); len(got) != 3 || got[0] != "message" || got[1] != "seq" || got[2] != "stored" {
		t.Fatalf("a listed message has keys %v, want message, seq, stored", got)
	}
	var got []byte
	if err := json.Unmarshal(ms[0]["message"], &got); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the listed message is not the posted blob: %v", err)
	}

	info := rawJSON(t, bob.http, http.MethodGet, roomPath(id, ""), nil)
	var members []map[string]json.RawMessage
	if err := json.Unmarshal(info["members"], &members); err != nil || len(members) != 2 {
		t.Fatalf("members: %s %v", info["members"], err)
	}
	for _, m := range members {
		if _, ok := m["key_package"]; ok {
			t.Fatalf("a member entry has key_package (the blob's name): %v", keys(m))
		}
		var hash string
		if err := json.Unmarshal(m["key_package_hash"], &hash); err != nil || len(hash) != 64 {
			t.Fatalf("a member's key_package_hash: %s %v", m["key_package_hash"], err)
		}
	}

	ri, err := bob.http.RoomInfo(tctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := VerifyMasterKey(ri.Master, ri.MasterKey)
	if err != nil || mk.PeerID() != alice.id.PeerID() {
		t.Fatalf("room info's master key: %v", err)
	}
	if k, err := bob.http.MasterKey(tctx(t), id); err != nil || k.PeerID() != alice.id.PeerID() {
		t.Fatalf("MasterKey: %v", err)
	}
	cl, err := bob.http.CommitList(tctx(t), id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Master != ri.Master || !bytes.Equal(cl.MasterKey, ri.MasterKey) || cl.Epoch != 2 || len(cl.Commits) != 2 {
		t.Fatalf("commit list: master %s, epoch %d, %d commits", cl.Master, cl.Epoch, len(cl.Commits))
	}
	for _, c := range cl.Commits {
		if _, err := room.VerifyCommit(c, mk, nil); err != nil {
			t.Fatalf("a commit does not verify with the master key the list carries: %v", err)
		}
	}
	// A host that served another key for the master is caught.
	if _, err := VerifyMasterKey(ri.Master, bob.id.Public().SPKI()); !errors.Is(err, errWrongMasterKey) {
		t.Fatalf("bob's key as the master's: %v", err)
	}
	if _, err := VerifyMasterKey(ri.Master, []byte("not a key")); !errors.Is(err, errWrongMasterKey) {
		t.Fatalf("garbage as the master's key: %v", err)
	}
}
