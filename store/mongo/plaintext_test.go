package mongo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// scanFor reads every document of every collection of the database with
// the driver, as raw BSON, and returns the collections where marker
// appears: as bytes, in hex or in base64.
func scanFor(t *testing.T, uri, db string, marker []byte) []string {
	t.Helper()
	ctx := t.Context()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(ctx) }()
	names, err := c.Database(db).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("database %s has no collections to scan", db)
	}
	forms := [][]byte{marker, []byte(hex.EncodeToString(marker)), []byte(base64.StdEncoding.EncodeToString(marker))}
	var found []string
	for _, name := range names {
		cur, err := c.Database(db).Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			for _, f := range forms {
				if bytes.Contains(cur.Current, f) {
					found = append(found, name)
				}
			}
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		_ = cur.Close(ctx)
	}
	return found
}

// TestNoPlaintextStored: messages sealed by their sender (A256CBC-HS512
// under a per-sender key, as room members seal them) are stored as that
// ciphertext: no document of the database holds the text. A control shows
// the scan finds text that is stored.
func TestNoPlaintextStored(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	ctx := t.Context()
	marker := []byte("lanpeer plaintext marker " + randomHex(8))
	suite, ok := cryptosuite.AEADByID(cryptosuite.AEADA256CBCHS512)
	if !ok {
		t.Fatal("no A256CBC-HS512 suite")
	}
	key := make([]byte, suite.KeySize)
	_, _ = rand.Read(key)
	sealer, err := cryptosuite.NewSenderSealer(suite, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := suite.New(key)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("lanpeer/v1 room message aad")

	name := "lanpeer_test_" + randomHex(6)
	s := openTest(t, testURI, Options{Database: name})
	defer s.Close()
	r, _ := testRoom(t, s, 1)
	texts := make(map[store.MessageID][]byte)
	for i := range 20 {
		m := testMessage(r.ID, 1, i)
		text := fmt.Appendf(nil, "%s, message %d", marker, i)
		if m.Blob, err = sealer.Seal(nil, text, aad); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		texts[m.ID] = text
	}
	// What is stored is the ciphertext as sent: it opens to the text.
	for _, m := range readEverything(t, s, r.ID) {
		got, err := cryptosuite.OpenPrefixed(aead, nil, m.Blob, aad)
		if err != nil || !bytes.Equal(got, texts[m.ID]) {
			t.Fatalf("stored message %d does not open to its text (%v)", m.Seq, err)
		}
	}
	if found := scanFor(t, testURI, name, marker); len(found) > 0 {
		t.Fatalf("the plaintext marker is stored in %v", found)
	}

	// Control: a message whose blob is the text itself is found.
	control := "lanpeer_test_" + randomHex(6)
	cs := openTest(t, testURI, Options{Database: control})
	defer cs.Close()
	cr, _ := testRoom(t, cs, 1)
	m := testMessage(cr.ID, 1, 1)
	m.Blob = append([]byte("in the clear: "), marker...)
	if _, err := cs.AppendMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if found := scanFor(t, testURI, control, marker); len(found) == 0 {
		t.Fatal("the scan does not find a marker that is stored in the clear")
	}
}
