package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
)

var servingLine = regexp.MustCompile(`lanpeer: directory serving on (http://127\.0\.0\.1:[0-9]+) `)

func TestDirectoryCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"lanpeer", "directory", "--http", "127.0.0.1:0", "--rate", "100"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := servingLine.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the directory never said where it serves: %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	c := &directory.Client{BaseURL: base, HTTPClient: hc}
	rec, err := directory.BuildRecord(id, directory.Addrs{TCP: []string{"127.0.0.1:7450"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, id.PeerID()); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("lookup before registering: %v", err)
	}
	if err := c.Register(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup(ctx, id.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), rec.Blob()) {
		t.Fatalf("lookup: %v", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit status %d after interrupt: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the directory did not stop on interrupt")
	}
	if stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

func TestDirectoryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"directory", "--store", "mongodb://a:b:c/"},
		{"directory", "--home", t.TempDir()},
		{"directory", "--store", "sqlite"},
		{"directory", "--rate", "0"},
		{"directory", "extra"},
	} {
		r := lanpeer(t, args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "lanpeer: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	r := lanpeer(t, "directory", "--http", "256.0.0.1:1")
	if r.code != exitFailure {
		t.Errorf("bad listen address: exit %d, stderr %q", r.code, r.stderr)
	}
}

// directoryHTTP is a plain HTTP client for directory requests in tests.
func directoryHTTP() *http.Client { return &http.Client{Timeout: directoryTimeout} }

// startDirectory runs `lanpeer directory` in-process and returns the URL
// it says it serves on, and for --https the pinned URL it tells clients
// to use.
func startDirectory(t *testing.T, args ...string) (c *running, base, pinnedURL string) {
	t.Helper()
	c = start(t, append([]string{"directory", "--http", "127.0.0.1:0"}, args...)...)
	m := waitMatch(t, c.stderr, `lanpeer: directory serving on (https?://127\.0\.0\.1:[0-9]+) \(store [^)]*\)(?: as [0-9a-f]{64}: clients use --directory (https://[0-9a-f]{64}@127\.0\.0\.1:[0-9]+))?\n`)
	return c, m[1], m[2]
}

// TestDirectoryHTTPSMongo: two directories serve HTTPS with one identity's
// certificate over one MongoDB database. A listener registers with one
// through a pinned URL; a dialer finds it through the other. A URL that
// pins another peer ID is refused before anything is sent, and the
// system's authorities do not vouch for the self-signed certificate.
func TestDirectoryHTTPSMongo(t *testing.T) {
	uri := testMongo(t)
	dirHome, dirID := fixtureHome(t, "ed25519")
	d1, base1, pin1 := startDirectory(t, "--https", "--home", dirHome, "--store", uri)
	_, base2, pin2 := startDirectory(t, "--https", "--home", dirHome, "--store", uri)
	if pin1 != strings.Replace(base1, "https://", "https://"+dirID+"@", 1) || pin2 == "" {
		t.Fatalf("the directory says to use %q for %s (peer ID %s)", pin1, base1, dirID)
	}

	lhome, _ := fixtureHome(t, "rsa-2048")
	l, addr, lid := startListen(t, lhome, "--directory", pin1)
	waitMatch(t, l.stderr, `lanpeer: registered `+strings.ReplaceAll(addr, ".", `\.`)+` with the directory `+regexp.QuoteMeta(base1))
	dhome, did := fixtureHome(t, "rsa-3072")
	r := lanpeer(t, "dial", "--home", dhome, "--lookup-timeout", "0", "--directory", pin2, lid, "msg", "via the other directory")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dial --directory %s PEERID msg: %+v", pin2, r)
	}
	waitMatch(t, l.stdout, did+" via the other directory\n")

	// Another peer ID in the URL: refused in the TLS handshake.
	wrong := strings.Replace(base2, "https://", "https://"+did+"@", 1)
	r = lanpeer(t, "dial", "--home", dhome, "--lookup-timeout", "0", "--directory", wrong, lid, "msg", "x")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the directory presented another identity than the URL pins") {
		t.Fatalf("dial through a directory URL pinning another peer ID: %+v", r)
	}
	// No pin: the system's authorities, which know nothing of it.
	r = lanpeer(t, "dial", "--home", dhome, "--lookup-timeout", "0", "--directory", base2, lid, "msg", "x")
	if r.code != exitFailure || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("dial through an unpinned https directory with a self-signed certificate: %+v", r)
	}
	for _, bad := range []string{"http://" + did + "@127.0.0.1:1", "https://nothex@127.0.0.1:1", "https://" + did + ":pw@127.0.0.1:1"} {
		r = lanpeer(t, "dial", "--home", dhome, "--directory", bad, lid, "msg", "x")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--directory: bad directory URL") {
			t.Errorf("dial --directory %s: %+v", bad, r)
		}
	}
	d1.cancel()
	if code := d1.wait(t); code != exitOK {
		t.Fatalf("directory after interrupt: exit %d, %s", code, d1.stderr.String())
	}
}
