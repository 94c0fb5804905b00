package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The tests of `lanpeer listen --store mongodb://...` run listeners as
// separate processes (so that one can be killed with SIGKILL): the test
// binary running main (lanpeerBin), the same code as bin/lanpeer, against the MongoDB-wire server of LANPEER_TEST_MONGO_URI
// (make test starts FerretDB and sets it; store/mongo's tests document the
// variables). The clients run in-process.
const (
	envMongoURI = "LANPEER_TEST_MONGO_URI"
	envFerretDB = "LANPEER_FERRETDB"
)

// testMongo returns a MongoDB URI naming a fresh database, dropped when
// the test ends, or skips the test when no server is configured.
func testMongo(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envMongoURI)
	if base == "" {
		t.Skipf("%s is not set: this test needs a MongoDB-wire server (make test starts FerretDB and sets it)", envMongoURI)
	}
	return databaseURI(t, base)
}

// databaseURI returns base with a fresh database name as its path, and
// drops that database when the test ends.
func databaseURI(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", envMongoURI, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "lanpeer_cmd_" + hex.EncodeToString(b)
	u.Path = "/" + db
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(base).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			return
		}
		defer func() { _ = c.Disconnect(ctx) }()
		_ = c.Database(db).Drop(ctx)
	})
	return u.String()
}

// storeListener is a lanpeer process.
type storeListener struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	addr   string
	id     string
	done   chan struct{}
}

// startStoreListener starts `lanpeer listen` as a process on a free loopback
// port and waits until it listens. It is killed when the test ends.
func startStoreListener(t *testing.T, args ...string) *storeListener {
	t.Helper()
	dir, env := lanpeerBin(t)
	cmd := exec.Command(filepath.Join(dir, "lanpeer"), append([]string{"listen", "--tcp", "127.0.0.1:0", "--handshake-rate", "-1"}, args...)...)
	cmd.Env = env
	p := &storeListener{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	re := regexp.MustCompile(listeningRE)
	deadline := time.After(hang)
	for {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr, p.id = m[1], m[2]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("lanpeer listen exited: %s", p.stderr.String())
		case <-deadline:
			t.Fatalf("lanpeer listen did not listen: %s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits.
func (p *storeListener) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *storeListener) target() string { return p.id + "@" + p.addr }

// roomLineRE is one line of `read`: SEQ SENDER TEXT.
var roomLineRE = regexp.MustCompile(`^(\d+) ([0-9a-f]{64}) (.*)$`)

type readLine struct {
	seq    uint64
	sender string
	text   string
}

// parseRoomLines parses read's output; every line must be a message.
func parseRoomLines(t *testing.T, out string) []readLine {
	t.Helper()
	var lines []readLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		m := roomLineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("read printed %q, not a message line", l)
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		lines = append(lines, readLine{seq, m[2], m[3]})
	}
	return lines
}

// waitLines waits until r has printed at least n message lines.
func waitLines(t *testing.T, r *proc, n int) []readLine {
	t.Helper()
	deadline := time.Now().Add(hang)
	for {
		lines := parseRoomLines(t, completeLines(r.stdout.String()))
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("read printed %d lines, want %d; stderr:\n%s", len(lines), n, r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// completeLines cuts s after its last line end.
func completeLines(s string) string { return s[:strings.LastIndexByte(s, '\n')+1] }

// checkDense checks that lines are messages 1..len(lines), each text once.
func checkDense(t *testing.T, lines []readLine) map[string]uint64 {
	t.Helper()
	texts := map[string]uint64{}
	for i, l := range lines {
		if l.seq != uint64(i+1) {
			t.Fatalf("line %d is message %d: a gap or a duplicate", i, l.seq)
		}
		if prev, dup := texts[l.text]; dup {
			t.Fatalf("%q is stored twice, as %d and %d", l.text, prev, l.seq)
		}
		texts[l.text] = l.seq
	}
	return texts
}

// roomSetup makes alice's room on host (through the targets given) with
// bob invited and joined, and returns its id.
func roomSetup(t *testing.T, alice, bob, bobID, aliceTarget, bobTarget string) string {
	t.Helper()
	ok := func(args ...string) string {
		t.Helper()
		r := lanpeer(t, append([]string{"dial"}, args...)...)
		if r.code != exitOK {
			t.Fatalf("lanpeer dial %q: exit %d\n%s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	rid := strings.TrimSpace(ok("--home", alice, aliceTarget, "room", "create", "stored"))
	ok("--home", bob, bobTarget, "room", "list")
	ok("--home", alice, aliceTarget, "room", "invite", rid, bobID)
	ok("--home", bob, bobTarget, "room", "join", rid)
	return rid
}

// sent is a message a sender saw acknowledged.
type sent struct {
	seq  uint64
	text string
}

// lanpeerOut runs lanpeer args as a process (the in-process run is not
// safe to call from several goroutines at once: urfave/cli sets global
// flags) and returns its standard output, or an error with its standard
// error.
func lanpeerOut(t *testing.T) func(args ...string) (string, error) {
	dir, env := lanpeerBin(t)
	return func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(dir, "lanpeer"), args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("lanpeer %q: %v: %s", args, err, errb.String())
		}
		return out.String(), nil
	}
}

// sender sends name-0, name-1, ... to the room through target() until
// stop closes, recording what was acknowledged (each text is sent once:
// a failed send is not retried under the same text).
func sender(t *testing.T, exe func(...string) (string, error), home, name, rid string, target func() string, stop <-chan struct{}, acked chan<- sent, failed *atomic.Int64) {
	for i := 0; i < 2000; i++ {
		select {
		case <-stop:
			return
		default:
		}
		text := fmt.Sprintf("%s-%d", name, i)
		out, err := exe("dial", "--home", home, "--handshake-timeout", "5s", target(), "send", rid, text)
		if err != nil {
			failed.Add(1)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Errorf("send printed %q", out)
			return
		}
		acked <- sent{seq, text}
	}
}

// scanDatabase reads every document of every collection of the database
// in uri with the driver and returns the texts found in any of them.
func scanDatabase(t *testing.T, uri string, texts []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(ctx) }()
	u, _ := url.Parse(uri)
	db := c.Database(strings.Trim(u.Path, "/"))
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil || len(names) == 0 {
		t.Fatalf("collections of %s: %v, %v", db.Name(), names, err)
	}
	var found []string
	docs := 0
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			docs++
			for _, text := range texts {
				for _, form := range [][]byte{[]byte(text), []byte(hex.EncodeToString([]byte(text)))} {
					if bytes.Contains(cur.Current, form) {
						found = append(found, name+": "+text)
					}
				}
			}
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		_ = cur.Close(ctx)
	}
	if docs == 0 {
		t.Fatal("the database holds no documents to scan")
	}
	return found
}

// TestListenMongoRestart: a listener on a MongoDB store takes messages
// from two senders and is killed with SIGKILL mid-stream; restarted on the
// same database it has every message a sender saw acknowledged, exactly
// once, in order, in one dense sequence; a reader resumes by cursor with
// no gap; and no document of the database holds the text of a message.
func TestListenMongoRestart(t *testing.T) {
	uri := testMongo(t)
	lhome, _ := fixtureHome(t, "ed25519")
	l := startStoreListener(t, "--home", lhome, "--store", uri)
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	var mu sync.Mutex
	cur := l.target()
	target := func() string { mu.Lock(); defer mu.Unlock(); return cur }
	rid := roomSetup(t, alice, bob, bobID, l.target(), l.target())

	reader := startProc(t, "dial", "--home", bob, l.target(), "read", "--follow", rid)
	exe := lanpeerOut(t)
	stop := make(chan struct{})
	acked := make(chan sent, 4096)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i, home := range []string{alice, bob} {
		wg.Go(func() { sender(t, exe, home, []string{"alice", "bob"}[i], rid, target, stop, acked, &failed) })
	}
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	var got []sent
	take := func(n int) {
		t.Helper()
		deadline := time.After(hang)
		for len(got) < n {
			select {
			case s := <-acked:
				got = append(got, s)
			case <-deadline:
				t.Fatalf("only %d sends acknowledged (%d failed)", len(got), failed.Load())
			}
		}
	}
	take(8)
	l.kill()
	// It ends with the session (or the request it was making).
	if code := reader.wait(t); code != exitFailure {
		t.Fatalf("the reader after SIGKILL: exit %d, %s", code, reader.stderr.String())
	}
	before := parseRoomLines(t, reader.stdout.String())

	l = startStoreListener(t, "--home", lhome, "--store", uri)
	mu.Lock()
	cur = l.target()
	mu.Unlock()
	take(len(got) + 8) // both senders go on through the restarted listener
	halt()
	for len(acked) > 0 {
		got = append(got, <-acked)
	}

	// The reader resumes after the last message it printed.
	after := uint64(0)
	if len(before) > 0 {
		after = before[len(before)-1].seq
	}
	r := lanpeer(t, "dial", "--home", bob, l.target(), "read", "--after", strconv.FormatUint(after, 10), rid)
	if r.code != exitOK {
		t.Fatalf("read --after %d: %+v", after, r)
	}
	all := append(before, parseRoomLines(t, r.stdout)...)
	texts := checkDense(t, all)
	for _, s := range got {
		if seq, ok := texts[s.text]; !ok || seq != s.seq {
			t.Errorf("%q was acknowledged as %d; the room holds it as %d (%v)", s.text, s.seq, seq, ok)
		}
	}
	t.Logf("%d acknowledged, %d stored, %d sends failed around the kill; the reader had %d before it",
		len(got), len(all), failed.Load(), len(before))

	var plain []string
	for _, l := range all {
		plain = append(plain, l.text)
	}
	if found := scanDatabase(t, uri, plain); len(found) > 0 {
		t.Fatalf("the database holds message text: %v", found)
	}
}

// TestListenMongoTwoProcesses: two listeners sharing one --home (one
// identity) and one database serve one room: senders on both make one
// dense sequence, each message once, and a member reading on either gets
// what was sent through the other, a rotation made through the other
// included.
func TestListenMongoTwoProcesses(t *testing.T) {
	uri := testMongo(t)
	lhome, _ := fixtureHome(t, "ed25519")
	a := startStoreListener(t, "--home", lhome, "--store", uri, "--poll-interval", "50ms")
	b := startStoreListener(t, "--home", lhome, "--store", uri, "--poll-interval", "50ms")
	if a.id != b.id {
		t.Fatalf("two identities: %s and %s", a.id, b.id)
	}
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	rid := roomSetup(t, alice, bob, bobID, a.target(), b.target())

	readA := startProc(t, "dial", "--home", alice, a.target(), "read", "--follow", rid)
	readB := startProc(t, "dial", "--home", bob, b.target(), "read", "--follow", rid)
	const each = 6
	exe := lanpeerOut(t)
	var wg sync.WaitGroup
	for _, s := range []struct{ home, name, target string }{{alice, "alice", a.target()}, {bob, "bob", b.target()}} {
		wg.Go(func() {
			for i := range each {
				if _, err := exe("dial", "--home", s.home, s.target, "send", rid, fmt.Sprintf("%s-%d", s.name, i)); err != nil {
					t.Errorf("%s's send %d: %v", s.name, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	la, lb := waitLines(t, readA, 2*each), waitLines(t, readB, 2*each)
	checkDense(t, la)
	if fmt.Sprint(la) != fmt.Sprint(lb) {
		t.Fatalf("the readers on the two listeners differ:\n%v\n%v", la, lb)
	}

	// A rotation through A; bob sends through B under the new epoch and
	// alice through A: both readers print both.
	if r := lanpeer(t, "dial", "--home", alice, a.target(), "room", "rotate", rid); r.code != exitOK {
		t.Fatalf("rotate: %+v", r)
	}
	for _, s := range []struct{ home, target, text string }{{bob, b.target(), "bob after rotation"}, {alice, a.target(), "alice after rotation"}} {
		if r := lanpeer(t, "dial", "--home", s.home, s.target, "send", rid, s.text); r.code != exitOK {
			t.Fatalf("send %q: %+v", s.text, r)
		}
	}
	la, lb = waitLines(t, readA, 2*each+2), waitLines(t, readB, 2*each+2)
	texts := checkDense(t, la)
	if fmt.Sprint(la) != fmt.Sprint(lb) || texts["bob after rotation"] == 0 || texts["alice after rotation"] == 0 {
		t.Fatalf("after the rotation the readers print:\n%v\n%v", la, lb)
	}
	if r := lanpeer(t, "dial", "--home", alice, b.target(), "room", "info", rid); r.code != exitOK || !strings.Contains(r.stdout, "epoch 3\n") {
		t.Fatalf("room info through B: %+v", r)
	}
}

// ferretProc is a FerretDB process of a test's own.
type ferretProc struct {
	cmd  *exec.Cmd
	uri  string
	addr string
	done chan struct{}
}

// startFerretDB starts LANPEER_FERRETDB on dir, listening on listen.
func startFerretDB(t *testing.T, bin, dir, listen string) *ferretProc {
	t.Helper()
	cmd := exec.Command(bin, "-listen", listen, "-log-level", "error", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &ferretProc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
		_ = cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(f.kill)
	select {
	case line := <-lines:
		u, err := url.Parse(line)
		if err != nil || u.Host == "" {
			t.Fatalf("FerretDB printed %q, not its URI", line)
		}
		f.uri, f.addr = line, u.Host
	case <-time.After(hang):
		t.Fatal("FerretDB did not start")
	}
	return f
}

func (f *ferretProc) kill() {
	_ = f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.done
}

// TestListenMongoOutage: while the listener's database is down, a send is
// refused with the typed reason (exit 1, saying the host cannot reach its
// database) and the listener stays up; once the database is back, sends
// succeed through the same listener and nothing acknowledged is lost.
func TestListenMongoOutage(t *testing.T) {
	fbin := os.Getenv(envFerretDB)
	if fbin == "" {
		t.Skipf("%s is not set: this test starts and stops a FerretDB of its own (make test sets it)", envFerretDB)
	}
	dir := t.TempDir()
	db := startFerretDB(t, fbin, dir, "127.0.0.1:0")
	uri := "mongodb://" + db.addr + "/outage"
	lhome, _ := fixtureHome(t, "ed25519")
	l := startStoreListener(t, "--home", lhome, "--store", uri)
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	rid := roomSetup(t, alice, bob, bobID, l.target(), l.target())
	send := func(text string) result {
		return lanpeer(t, "dial", "--home", alice, l.target(), "send", rid, text)
	}
	if r := send("before"); r.code != exitOK {
		t.Fatalf("send before the outage: %+v", r)
	}

	db.kill()
	r := send("during")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the host's store is unavailable") ||
		!strings.Contains(r.stderr, "the host cannot reach its database; try again later") {
		t.Fatalf("send during the outage: %+v", r)
	}

	db = startFerretDB(t, fbin, dir, db.addr)
	var acked []string
	deadline := time.Now().Add(hang)
	for i := 0; len(acked) < 3; i++ {
		text := fmt.Sprintf("after-%d", i)
		r := send(text)
		if r.code == exitOK {
			acked = append(acked, text)
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("no send succeeded after the database came back: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-l.done:
		t.Fatalf("the listener exited: %s", l.stderr.String())
	default:
	}
	r = lanpeer(t, "dial", "--home", bob, l.target(), "read", rid)
	texts := checkDense(t, parseRoomLines(t, r.stdout))
	if texts["before"] != 1 {
		t.Fatalf("the message acknowledged before the outage: %v", texts)
	}
	for _, text := range acked {
		if texts[text] == 0 {
			t.Fatalf("%q was acknowledged and is not stored: %v", text, texts)
		}
	}
}

// TestListenMemoryRestart: a listener on the memory store says at start
// that its rooms are lost when it stops; after a restart a member's send
// to the room it had fails with an error that says why.
func TestListenMemoryRestart(t *testing.T) {
	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, id := startListen(t, lhome, "--handshake-rate", "-1")
	waitMatch(t, l.stderr, regexp.QuoteMeta("lanpeer: --store memory: the rooms hosted here live in this process's memory and are lost when it stops"))
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	rid := roomSetup(t, alice, bob, bobID, id+"@"+addr, id+"@"+addr)
	if r := lanpeer(t, "dial", "--home", bob, id+"@"+addr, "send", rid, "hello"); r.code != exitOK {
		t.Fatalf("send: %+v", r)
	}
	l.cancel()
	l.wait(t)

	_, addr, _ = startListen(t, lhome, "--handshake-rate", "-1")
	r := lanpeer(t, "dial", "--home", bob, id+"@"+addr, "send", rid, "again")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such room on this host") ||
		!strings.Contains(r.stderr, "a host with --store memory forgets its rooms when it stops") {
		t.Fatalf("send after the host restarted: %+v", r)
	}
}

// TestListenPollIntervalUsage: --poll-interval is for a MongoDB store, and
// bounded; a mistake exits 2 before anything listens.
func TestListenPollIntervalUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--poll-interval", "1s"}, "--poll-interval applies to a MongoDB store only"},
		{[]string{"--store", "mongodb://127.0.0.1:1/db", "--poll-interval", "1ms"}, "--poll-interval 1ms: want 0 (off) or 10ms to 1m0s"},
		{[]string{"--store", "mongodb://127.0.0.1:1/db", "--poll-interval", "2m"}, "--poll-interval 2m0s: want 0 (off) or 10ms to 1m0s"},
	} {
		home := filepath.Join(t.TempDir(), "h")
		r := lanpeer(t, append([]string{"listen", "--home", home, "--tcp", "127.0.0.1:0"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("listen %q: %+v; want exit %d and %q", tc.args, r, exitUsage, tc.want)
		}
	}
}

// TestListenMongoUnreachable: a database that cannot be reached fails the
// start, within the server selection timeout, saying where it looked.
func TestListenMongoUnreachable(t *testing.T) {
	home, _ := fixtureHome(t, "ed25519")
	r := lanpeer(t, "listen", "--home", home, "--tcp", "127.0.0.1:0", "--store", "mongodb://127.0.0.1:1/db")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no MongoDB server answered at 127.0.0.1:1") {
		t.Fatalf("listen with no database: %+v", r)
	}
}
