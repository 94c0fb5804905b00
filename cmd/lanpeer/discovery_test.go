package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/discovery"
	"github.com/lanpeer/lanpeer/store/memory"
)

// loDiscovery returns the discovery flags of a test: interface lo only
// (pinned, nothing leaves the machine), a random group in 239.255.0.0/16
// that is not the default, and a UDP port the system just handed out.
func loDiscovery(t *testing.T) []string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	var g netip.Addr
	for !g.IsValid() || g.String() == discovery.DefaultGroupIPv4 {
		g = netip.AddrFrom4([4]byte{239, 255, byte(1 + rand.IntN(250)), byte(1 + rand.IntN(250))})
	}
	return []string{"--iface", "lo", "--discovery-group", g.String(), "--discovery-port", strconv.Itoa(port)}
}

// TestPeersAndDialByPeerID: a listener with --discovery on lo is listed by
// peers (lines and JSON lines) with its ID, name and address, and dial
// PEERID reaches it; peers on another group lists nobody and exits 0; dial
// of an ID nobody announces says what to do.
func TestPeersAndDialByPeerID(t *testing.T) {
	disc := loDiscovery(t)
	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, lid := startListen(t, lhome, append([]string{"--discovery", "--name", "desk one"}, disc...)...)
	waitMatch(t, l.stderr, `lanpeer: announcing on lo \(group 239\.255\.\d+\.\d+ port \d+\) as "desk one"\n`)

	r := lanpeer(t, append([]string{"peers", "--timeout", "1s"}, disc...)...)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("peers: %+v", r)
	}
	want := `^` + lid + `\tdesk one\t` + strings.ReplaceAll(addr, ".", `\.`) + `\t-\t\d+s\n$`
	if !regexp.MustCompile(want).MatchString(r.stdout) {
		t.Fatalf("peers printed %q, want a line matching %s", r.stdout, want)
	}
	r = lanpeer(t, append([]string{"peers", "--timeout", "1s", "--json"}, disc...)...)
	var pj peerJSON
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &pj) != nil {
		t.Fatalf("peers --json: %+v", r)
	}
	if pj.PeerID != lid || pj.Name != "desk one" || len(pj.TCP) != 1 || pj.TCP[0] != addr || len(pj.HTTP) != 0 || pj.Interface != "lo" {
		t.Fatalf("peers --json: %+v", pj)
	}

	// Nobody on another group: no output, exit 0.
	other := loDiscovery(t)
	if r := lanpeer(t, append([]string{"peers", "--timeout", "300ms"}, other...)...); r.code != exitOK || r.stdout != "" || r.stderr != "" {
		t.Fatalf("peers with nobody there: %+v", r)
	}

	dhome, did := fixtureHome(t, "rsa-2048")
	r = lanpeer(t, append(append([]string{"dial", "--home", dhome}, disc...), lid, "msg", "hello")...)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dial PEERID msg: %+v", r)
	}
	waitMatch(t, l.stdout, did+" hello\n")

	// An ID nobody announces: not found, with what to do.
	r = lanpeer(t, append(append([]string{"dial", "--home", dhome, "--lookup-timeout", "300ms"}, disc...), did, "msg", "hi")...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot find peer "+did) ||
		!strings.Contains(r.stderr, "--iface") || !strings.Contains(r.stderr, "--directory URL") || !strings.Contains(r.stderr, "PEERID@HOST:PORT") {
		t.Fatalf("dial of an unknown PEERID: %+v", r)
	}
}

// TestDirectoryRegisterAndDial: listen --directory registers its address
// with a directory, and dial --directory PEERID finds it there when the
// LAN does not answer (the listener does not announce).
func TestDirectoryRegisterAndDial(t *testing.T) {
	srv := testDirectory(t)

	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, lid := startListen(t, lhome, "--directory", srv.URL)
	waitMatch(t, l.stderr, `lanpeer: registered `+strings.ReplaceAll(addr, ".", `\.`)+` with the directory `)

	dhome, did := fixtureHome(t, "rsa-2048")
	disc := loDiscovery(t)
	r := lanpeer(t, append(append([]string{"dial", "--home", dhome, "--lookup-timeout", "200ms", "--directory", srv.URL}, disc...), lid, "msg", "via directory")...)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dial --directory PEERID msg: %+v", r)
	}
	waitMatch(t, l.stdout, did+" via directory\n")

	// A LAN that cannot be asked (no such interface) falls through to the
	// directory too.
	r = lanpeer(t, "dial", "--home", dhome, "--iface", "lp-no-such-if", "--directory", srv.URL, lid, "msg", "no LAN")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dial --iface NOSUCH --directory PEERID msg: %+v", r)
	}
	waitMatch(t, l.stdout, did+" no LAN\n")
	// Without a directory, that failure is the error, with what to do.
	r = lanpeer(t, "dial", "--home", dhome, "--iface", "lp-no-such-if", lid, "msg", "x")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the LAN could not be asked") || !strings.Contains(r.stderr, "--directory URL") {
		t.Fatalf("dial --iface NOSUCH PEERID msg: %+v", r)
	}

	// --lookup-timeout 0 skips the LAN; an unregistered ID is not found.
	r = lanpeer(t, "dial", "--home", dhome, "--lookup-timeout", "0", "--directory", srv.URL, did, "msg", "x")
	if r.code != exitFailure || !strings.Contains(r.stderr, "holds no record of it") || strings.Contains(r.stderr, "LAN (") {
		t.Fatalf("dial of an unregistered PEERID: %+v", r)
	}
}

// TestFindersAdvertiseHTTP: with --http, the listener announces and
// registers its HTTP shim beside the TCP address, as a URL whose scheme
// says whether it serves HTTPS (--https) or plain HTTP; peers lists it (a
// column of its own, and "http" in JSON), the directory's record holds
// it, and the shim answers at that URL.
func TestFindersAdvertiseHTTP(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(fmt.Sprintf("https=%v", https), func(t *testing.T) { testFindersAdvertiseHTTP(t, https) })
	}
}

func testFindersAdvertiseHTTP(t *testing.T, https bool) {
	disc := loDiscovery(t)
	srv := testDirectory(t)
	lhome, _ := fixtureHome(t, "ed25519")
	args := []string{"--http", "127.0.0.1:0", "--discovery", "--name", "web", "--directory", srv.URL}
	scheme := "http"
	if https {
		args, scheme = append(args, "--https"), "https"
	}
	l, addr, lid := startListen(t, lhome, append(args, disc...)...)
	web := waitMatch(t, l.stderr, `lanpeer: serving HTTP on (`+scheme+`://127\.0\.0\.1:\d+)\n`)[1]
	waitMatch(t, l.stderr, `lanpeer: announcing on lo `)
	waitMatch(t, l.stderr, `lanpeer: registered `+regexp.QuoteMeta(addr)+` \(HTTP `+regexp.QuoteMeta(web)+`\) with the directory `)

	r := lanpeer(t, append([]string{"peers", "--timeout", "1s"}, disc...)...)
	want := `^` + lid + `\tweb\t` + regexp.QuoteMeta(addr) + `\t` + regexp.QuoteMeta(web) + `\t\d+s\n$`
	if r.code != exitOK || !regexp.MustCompile(want).MatchString(r.stdout) {
		t.Fatalf("peers: %+v, want a line matching %s", r, want)
	}
	r = lanpeer(t, append([]string{"peers", "--timeout", "1s", "--json"}, disc...)...)
	var pj peerJSON
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &pj) != nil {
		t.Fatalf("peers --json: %+v", r)
	}
	if len(pj.TCP) != 1 || pj.TCP[0] != addr || len(pj.HTTP) != 1 || pj.HTTP[0] != web {
		t.Fatalf("peers --json: %+v, want tcp [%s] and http [%s]", pj, addr, web)
	}

	dc := &directory.Client{BaseURL: srv.URL, HTTPClient: directoryHTTP()}
	defer dc.HTTPClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	pid, err := cryptosuite.ParsePeerID(lid)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dc.Lookup(ctx, pid)
	if err != nil || len(rec.Addrs.TCP) != 1 || rec.Addrs.TCP[0] != addr || len(rec.Addrs.HTTP) != 1 || rec.Addrs.HTTP[0] != web {
		t.Fatalf("directory record: %v %+v, want tcp [%s] and http [%s]", err, rec, addr, web)
	}
	// The shim answers at the URL advertised, in the scheme advertised
	// (the certificate is the identity's own: TestListenHTTPS checks the
	// pin; here only the scheme matters).
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: hang}).Get(pj.HTTP[0] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || (resp.TLS != nil) != https {
		t.Fatalf("GET /healthz at the advertised URL: %s (TLS %v), want 200 over %s", resp.Status, resp.TLS != nil, scheme)
	}
}

// testDirectory serves a directory over a memory store on loopback until
// the test ends.
func testDirectory(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := directory.NewHandler(st, directory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestDialTriesEachAddress: a resolved peer ID with several addresses is
// dialed at the next one when nothing listens at the first.
func TestDialTriesEachAddress(t *testing.T) {
	srv := testDirectory(t)
	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, lid := startListen(t, lhome)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now

	id, _, err := loadIdentity(lhome)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := directory.BuildRecord(id, directory.Addrs{TCP: []string{closed, addr}}, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dc := &directory.Client{BaseURL: srv.URL, HTTPClient: directoryHTTP()}
	defer dc.HTTPClient.CloseIdleConnections()
	if err := dc.Register(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	dhome, did := fixtureHome(t, "rsa-2048")
	r := lanpeer(t, "dial", "--home", dhome, "--lookup-timeout", "0", "--directory", srv.URL, lid, "msg", "second address")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dial PEERID with a dead first address: %+v", r)
	}
	waitMatch(t, l.stdout, did+" second address\n")
}

// TestListenDirectoryDown: a directory that cannot be reached is noted and
// the listener serves on.
func TestListenDirectoryDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, _ := startListen(t, lhome, "--directory", url)
	waitMatch(t, l.stderr, `lanpeer: registering with the directory `+url+` failed, retrying in 30s: `)
	dhome, did := fixtureHome(t, "rsa-2048")
	if r := lanpeer(t, "dial", "--home", dhome, addr, "msg", "still here"); r.code != exitOK {
		t.Fatalf("dial: %+v", r)
	}
	waitMatch(t, l.stdout, did+" still here\n")
}

// TestDiscoveryUsage: bad discovery flags are usage errors that name the
// flag.
func TestDiscoveryUsage(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(append([]string{"peers"}, loDiscovery(t)...), "--discovery-group", "224.0.0.1"), "239.255.0.0/16"},
		{[]string{"peers", "--iface", "lo", "--discovery-group", "x"}, "--discovery-group"},
		{[]string{"peers", "--iface", "lo", "--discovery-port", "70000"}, "--discovery-port"},
		{[]string{"peers", "--iface", "lo", "--timeout", "0s"}, "--timeout"},
		{[]string{"peers", "extra"}, "extra"},
		{append([]string{"listen", "--home", home, "--tcp", "127.0.0.1:0", "--discovery", "--name", "a\tb"}, loDiscovery(t)...), "--name"},
		{[]string{"listen", "--home", home, "--tcp", "127.0.0.1:0", "--directory", "ftp://x"}, "--directory"},
		{[]string{"listen", "--home", home, "--tcp", "127.0.0.1:0", "--iface", "lo"}, "--iface is for --discovery"},
	} {
		r := lanpeer(t, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: %+v, want a usage error naming %s", tc.args, r, tc.want)
		}
	}
}

// TestBarePeerID: only 64 hex digits are a bare peer ID.
func TestBarePeerID(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for s, want := range map[string]bool{id: true, strings.ToUpper(id): true, id[:63]: false, id + "0": false,
		"127.0.0.1:7700": false, id + "@127.0.0.1:7700": false, strings.Repeat("g", 64): false} {
		if got := isBarePeerID(s); got != want {
			t.Errorf("isBarePeerID(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestRegistrarRefreshes: the registrar notes a failed registration and
// retries, registers, and keeps registering fresh records (each newer)
// while noting the success once.
func TestRegistrarRefreshes(t *testing.T) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := directory.NewHandler(st, directory.Config{RegisterRate: 1e6, RegisterBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && puts.Add(1) == 1 {
			http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	home, _ := fixtureHome(t, "ed25519")
	id, _, err := loadIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	notes := &syncBuffer{}
	reg := &registrar{dc: &directory.Client{BaseURL: srv.URL, HTTPClient: directoryHTTP()}, id: id,
		addrs: directory.Addrs{TCP: []string{"192.0.2.7:7700"}}, note: func(f string, a ...any) { notef(notes, f, a...) },
		ttl: time.Minute, refresh: 20 * time.Millisecond, retry: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); reg.run(ctx) }()
	defer func() { cancel(); <-done }()

	dc := &directory.Client{BaseURL: srv.URL, HTTPClient: directoryHTTP()}
	defer dc.HTTPClient.CloseIdleConnections()
	waitMatch(t, notes, `lanpeer: registered 192\.0\.2\.7:7700 with the directory `)
	first, err := dc.Lookup(ctx, id.PeerID())
	if err != nil || len(first.Addrs.TCP) != 1 || first.Addrs.TCP[0] != "192.0.2.7:7700" {
		t.Fatalf("lookup after registering: %v %+v", err, first)
	}
	deadline := time.Now().Add(hang)
	for puts.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d registrations", puts.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	later, err := dc.Lookup(ctx, id.PeerID())
	if err != nil || !later.Issued.After(first.Issued) {
		t.Fatalf("refreshed record: %v, issued %v after %v", err, later.Issued, first.Issued)
	}
	got := notes.String()
	if !strings.Contains(got, "registering with the directory "+srv.URL+" failed, retrying in 10ms: ") ||
		strings.Count(got, "registered ") != 1 {
		t.Fatalf("notes:\n%s", got)
	}
}

func TestLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{"http://127.0.0.1:8470": true, "http://localhost:8470/": true, "https://[::1]:1": true,
		"http://dir.example:8470": false, "http://10.0.0.1:8470": false, "http://%zz": false} {
		if got := loopbackURL(u); got != want {
			t.Errorf("loopbackURL(%q) = %v, want %v", u, got, want)
		}
	}
}
