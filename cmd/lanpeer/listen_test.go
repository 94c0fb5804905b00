package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
)

// hang is the deadline of anything a test waits for: far above the
// expected time (a second at most, RSA handshakes under -race included),
// only there so that a bug fails the test instead of hanging it.
const hang = 30 * time.Second

// syncBuffer is a bytes.Buffer that a command writes from several
// goroutines while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitMatch polls b until re matches and returns the submatches.
func waitMatch(t *testing.T, b *syncBuffer, re string) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(hang)
	for {
		if m := r.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s in:\n%s", re, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fixtureHome makes a lanpeer home holding the identity testdata/NAME.pem
// and returns it with the identity's peer ID.
func fixtureHome(t *testing.T, name string) (home, id string) {
	t.Helper()
	home = t.TempDir()
	if err := os.WriteFile(filepath.Join(home, identityFile), readFile(t, filepath.Join("testdata", name+".pem")), 0o600); err != nil {
		t.Fatal(err)
	}
	return home, strings.TrimSpace(string(readFile(t, filepath.Join("testdata", name+".id"))))
}

// running is a lanpeer command running in-process.
type running struct {
	stdin          *io.PipeWriter
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// start runs lanpeer args in-process with a standard input the test
// writes; it is cancelled and waited for when the test ends.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	c := &running{stdin: w, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		c.done <- run(ctx, append([]string{"lanpeer"}, args...), r, c.stdout, c.stderr)
		r.Close()
	}()
	t.Cleanup(func() {
		cancel()
		w.Close()
		select {
		case <-c.done:
		case <-time.After(hang):
			t.Errorf("lanpeer %q did not end after cancellation", args)
		}
	})
	return c
}

// wait waits for the command's exit status.
func (c *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		c.done <- code // for the cleanup
		return code
	case <-time.After(hang):
		t.Fatalf("the command did not end; stderr:\n%s", c.stderr.String())
	}
	return -1
}

func (c *running) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

var listeningRE = `lanpeer: listening on (127\.0\.0\.1:\d+) as ([0-9a-f]{64})\n`

// startListen runs listen on a free loopback port and returns it with its
// address and peer ID.
func startListen(t *testing.T, home string, args ...string) (l *running, addr, id string) {
	t.Helper()
	l = start(t, append([]string{"listen", "--home", home, "--tcp", "127.0.0.1:0"}, args...)...)
	m := waitMatch(t, l.stderr, listeningRE)
	return l, m[1], m[2]
}

// TestListenDialInProcess: the first listen creates an identity and says
// so; dial msg reaches it, escaped onto one line or as JSON; the dial
// records the listener in known_peers; a listener stopped by its context
// exits 0.
func TestListenDialInProcess(t *testing.T) {
	lhome := filepath.Join(t.TempDir(), "listener")
	l, addr, lid := startListen(t, lhome, "--key", "ed25519")
	if !strings.Contains(l.stderr.String(), "lanpeer: created a new ed25519 identity in "+filepath.Join(lhome, identityFile)) {
		t.Fatalf("first run did not say it created the identity:\n%s", l.stderr.String())
	}
	dhome, did := fixtureHome(t, "ed25519")

	r := lanpeer(t, "dial", "--home", dhome, addr, "msg", "hello\tworld\\ \nbye")
	if r.code != exitOK || r.stdout != "" || r.stderr != "" {
		t.Fatalf("dial msg: %+v", r)
	}
	// Not waited for: dial exits 0 once the listener has handed the
	// message on.
	if got, want := l.stdout.String(), did+` hello\tworld\\ \nbye`+"\n"; got != want {
		t.Fatalf("listener printed %q, want %q", got, want)
	}
	kp, err := session.LoadKnownPeers(filepath.Join(dhome, session.KnownPeersFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := kp.Lookup(addr); !ok || got.String() != lid {
		t.Fatalf("known_peers records %v for %s, want %s", got, addr, lid)
	}

	// Standard input, CRLF and all, with "-"; "--" makes "-" literal.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"lanpeer", "dial", "--home", dhome, lid + "@" + addr, "msg", "-"},
		strings.NewReader("line one\r\nline two\r\n"), &out, &errb)
	if code != exitOK || errb.Len() != 0 {
		t.Fatalf("dial msg -: exit %d, %s", code, errb.String())
	}
	waitMatch(t, l.stdout, did+` line one\\nline two\n`)
	if r := lanpeer(t, "dial", "--home", dhome, addr, "msg", "--", "-"); r.code != exitOK {
		t.Fatalf("dial msg -- -: %+v", r)
	}
	waitMatch(t, l.stdout, did+" -\n")

	l.cancel()
	if code := l.wait(t); code != exitOK || !strings.HasSuffix(l.stderr.String(), "lanpeer: stopped\n") {
		t.Fatalf("listen after cancel: exit %d, stderr:\n%s", code, l.stderr.String())
	}
	// The second run finds the identity.
	_, _, lid2 := startListen(t, lhome)
	if lid2 != lid {
		t.Fatalf("second run listens as %s, first as %s", lid2, lid)
	}
}

func TestListenJSON(t *testing.T) {
	lhome, _ := fixtureHome(t, "rsa-2048")
	l, addr, _ := startListen(t, lhome, "--json")
	dhome, did := fixtureHome(t, "ed25519")
	if r := lanpeer(t, "dial", "--home", dhome, addr, "msg", "a \"quoted\" <text>\n"); r.code != exitOK {
		t.Fatalf("dial msg: %+v", r)
	}
	line := waitMatch(t, l.stdout, `^(.*)\n$`)[1]
	var m struct{ From, Text, Time, Session string }
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	tm, err := time.Parse(time.RFC3339Nano, m.Time)
	if m.From != did || m.Text != "a \"quoted\" <text>\n" || err != nil || time.Since(tm) > hang || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(m.Session) {
		t.Fatalf("JSON line %q", line)
	}
	if !strings.Contains(line, "<text>") {
		t.Errorf("JSON escapes HTML characters: %q", line)
	}
}

// TestListenReplies: lines typed to listen as @PEERID TEXT reach an
// interactive dial; a unique prefix of 8 characters or more names a peer;
// mistakes get a note and the listener keeps going.
func TestListenReplies(t *testing.T) {
	lhome, lid := fixtureHome(t, "rsa-2048")
	l, addr, _ := startListen(t, lhome)
	ahome, aid := fixtureHome(t, "ed25519")
	a := start(t, "dial", "--home", ahome, lid+"@"+addr)
	waitMatch(t, a.stderr, "lanpeer: connected to "+lid+` at 127\.0\.0\.1:\d+ \(x25519, [^)]+\); /help lists the commands; a line is a direct message to [0-9a-f]{12} until you /join a room; /quit or end of input ends the chat\n`)
	a.typeLine(t, "hi from a")
	waitMatch(t, l.stdout, aid+" hi from a\n")

	l.typeLine(t, "@"+aid+" hello a")
	waitMatch(t, a.stdout, "^"+lid+" hello a\n$")
	l.typeLine(t, "@"+strings.ToUpper(aid[:8])+"\t  tab and prefix")
	waitMatch(t, a.stdout, lid+" tab and prefix\n$")
	for _, c := range []struct{ line, note string }{
		{"no at sign", "to send a message, type @PEERID TEXT"},
		{"@" + aid[:7] + " short", "@" + aid[:7] + ": want a peer ID, or at least its first 8 hex characters"},
		{"@" + aid, "nothing to send to @" + aid},
		{"@" + strings.Repeat("0", 8) + " nobody", "no connected peer has an ID starting with 00000000"},
		{"@" + aid + " esc \x1b[2J", "not sent to " + aid + ": session: direct message text not allowed: character U+001B"},
		{"@" + aid + " " + strings.Repeat("x", maxInputLine), fmt.Sprintf("input line longer than %d bytes ignored", maxInputLine)},
	} {
		l.typeLine(t, c.line)
		waitMatch(t, l.stderr, regexp.QuoteMeta("lanpeer: "+c.note))
	}
	// A second peer whose ID shares no prefix of 8: both reachable; the
	// listener's notes name who came and went.
	bhome, bid := fixtureHome(t, "rsa-3072")
	b := start(t, "dial", "--home", bhome, addr)
	waitMatch(t, b.stderr, "lanpeer: connected to ")
	waitMatch(t, l.stderr, "lanpeer: "+bid+" connected from ")
	l.typeLine(t, "@"+bid[:10]+" hello b")
	waitMatch(t, b.stdout, "^"+lid+" hello b\n$")
	l.typeLine(t, "@"+aid[:8]+" still a")
	waitMatch(t, a.stdout, lid+" still a\n$")
	if strings.Contains(b.stdout.String(), "still a") || strings.Contains(a.stdout.String(), "hello b") {
		t.Fatal("a message reached the wrong peer")
	}

	// /quit and the end of input both end a dial with status 0.
	a.typeLine(t, "/quit")
	b.stdin.Close()
	if code := a.wait(t); code != exitOK {
		t.Fatalf("dial after /quit: exit %d, %s", code, a.stderr.String())
	}
	if code := b.wait(t); code != exitOK {
		t.Fatalf("dial after the end of input: exit %d, %s", code, b.stderr.String())
	}
	waitMatch(t, l.stderr, "lanpeer: "+aid+" disconnected\n")
	waitMatch(t, l.stderr, "lanpeer: "+bid+" disconnected\n")
	// The end of the listener's input does not stop it.
	l.stdin.Close()
	if r := lanpeer(t, "dial", "--home", ahome, addr, "msg", "after EOF"); r.code != exitOK {
		t.Fatalf("dial after the listener's input ended: %+v", r)
	}
	waitMatch(t, l.stdout, aid+" after EOF\n")
}

// TestListenStops: cancelling listen (SIGINT in main) drains: an
// interactive dial learns the session ended and exits 1; listen exits 0.
func TestListenStops(t *testing.T) {
	lhome, lid := fixtureHome(t, "ed25519")
	l, addr, _ := startListen(t, lhome, "--drain-timeout", "10s")
	dhome, _ := fixtureHome(t, "rsa-2048")
	d := start(t, "dial", "--home", dhome, addr)
	waitMatch(t, d.stderr, "lanpeer: connected to ")
	l.cancel()
	if code := l.wait(t); code != exitOK {
		t.Fatalf("listen: exit %d, %s", code, l.stderr.String())
	}
	if code := d.wait(t); code != exitFailure || !strings.Contains(d.stderr.String(), "lanpeer: the session with "+lid+" ended") {
		t.Fatalf("dial: exit %d, %s", code, d.stderr.String())
	}
}

// TestDialErrors: each refusal says what happened and what to do.
func TestDialErrors(t *testing.T) {
	lhome, lid := fixtureHome(t, "ed25519")
	_, addr, _ := startListen(t, lhome, "--allow", strings.Repeat("ab", 32))
	dhome, did := fixtureHome(t, "rsa-2048")
	otherHome, otherID := fixtureHome(t, "rsa-3072")
	_, addr2, _ := startListen(t, otherHome)
	// One session at a time per peer, one connection per 100 s after the first.
	busyHome, busyID := fixtureHome(t, "rsa-3072")
	_, busyAddr, _ := startListen(t, busyHome, "--max-sessions-per-peer", "1")
	holder := start(t, "dial", "--home", dhome, busyAddr)
	waitMatch(t, holder.stderr, "lanpeer: connected to ")
	rateHome, rateID := fixtureHome(t, "ed25519")
	_, rateAddr, _ := startListen(t, rateHome, "--handshake-rate", "0.01", "--handshake-burst", "1")
	if r := lanpeer(t, "dial", "--home", dhome, rateID+"@"+rateAddr, "msg", "first"); r.code != exitOK {
		t.Fatalf("first dial within the burst: %+v", r)
	}
	// A TCP listener that accepts and says nothing.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, c := range []struct {
		name string
		args []string
		say  string
	}{
		{"busy", []string{busyID + "@" + busyAddr, "msg", "x"}, "lanpeer: " + busyID + "@" + busyAddr + " refused the session: busy: this peer has as many sessions there as it allows"},
		{"rate limited", []string{rateID + "@" + rateAddr, "msg", "x"}, "closed the connection during the TLS handshake: it refuses connections beyond its limits"},
		{"silent", []string{"--handshake-timeout", "200ms", silent.Addr().String(), "msg", "x"}, "lanpeer: no session with " + silent.Addr().String() + " within 200ms (--handshake-timeout)"},
		{"not allowed", []string{addr, "msg", "x"}, "lanpeer: " + addr + " refused the session: policy: this peer (" + did + ") is not on its --allow list"},
		{"wrong pin", []string{lid + "@" + addr2, "msg", "x"}, "lanpeer: refusing " + addr2 + ": it presented peer ID "},
		{"rsa not allowed there", []string{"--kex", "rsa", "--allow-rsa", otherID + "@" + addr2, "msg", "x"}, "refused the session: key-agreement mode rsa refused: the rsa mode needs --allow-rsa on the listener too"},
		{"nothing there", []string{"127.0.0.1:1", "msg", "x"}, "lanpeer: nothing listens at 127.0.0.1:1 (connection refused)"},
		{"no TLS there", []string{"--tls=false", lid + "@" + addr, "msg", "x"}, "(this dial runs with --tls=false: the listener must too)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := lanpeer(t, append([]string{"dial", "--home", dhome}, c.args...)...)
			// Besides the error, only --tls=false's warning.
			lines := strings.Count(r.stderr, "\n") - strings.Count(r.stderr, "level=WARN msg=\"TLS is off (--tls=false)")
			if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, c.say) || lines != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line saying %q", r.code, r.stderr, c.say)
			}
		})
	}
}

// TestListenDialUsage: command-line mistakes exit 2 with the fix, before
// anything is created or dialed.
func TestListenDialUsage(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	target := strings.Repeat("ab", 32) + "@127.0.0.1:7700"
	for _, c := range []struct {
		args []string
		say  string
	}{
		{[]string{"listen", "extra"}, `lanpeer listen takes no arguments, got "extra"`},
		{[]string{"listen", "--allow", "abc"}, `--allow "abc": want a peer ID, 64 hex characters`},
		{[]string{"listen", "--log-level", "loud"}, `--log-level: unknown level "loud"`},
		{[]string{"listen", "--key", "dsa"}, `--key: cryptosuite: unknown key type "dsa"`},
		{[]string{"listen", "--rekey-messages", "4294967297"}, "--rekey-messages 4294967297: at most 4294967296"},
		{[]string{"dial", "--rekey-interval", "-1s", target}, "--rekey-interval -1s: must be positive"},
		{[]string{"dial"}, "missing TARGET: 'lanpeer dial [flags] TARGET [COMMAND [ARGS]]'"},
		{[]string{"dial", "nowhere"}, `bad dial target "nowhere": want HOST:PORT or PEERID@HOST:PORT (an IPv6 host in brackets: [::1]:7700); a bare PEERID (64 hex characters) is looked up on the LAN and in --directory`},
		{[]string{"dial", "abc@127.0.0.1:1"}, "before '@' comes the peer ID"},
		{[]string{"dial", target, "--kex", "p256"}, `flag --kex comes after TARGET "` + target + `": dial's flags go before TARGET`},
		{[]string{"dial", "--kex", "dh", target}, `--kex: unknown mode "dh" (want x25519, p256, x25519-mlkem768, rsa)`},
		{[]string{"dial", "--kex", "rsa", target, "msg", "x"}, "--kex rsa needs --allow-rsa: the rsa mode has no forward secrecy"},
		{[]string{"dial", target, "post", "x"}, `unknown dial command "post" (want msg, room, send, read; with none, an interactive session)`},
		{[]string{"dial", target, "msg"}, "missing TEXT: 'lanpeer dial [flags] TARGET msg TEXT'"},
		{[]string{"dial", target, "msg", "two", "words"}, `too many arguments ("words"): TEXT is one argument, so quote it`},
		{[]string{"dial", target, "msg", "hi", "--json"}, "flag --json comes after TEXT: dial's flags go before TARGET"},
		{[]string{"dial", target, "msg", "-5"}, "msg takes no flags (dial's go before TARGET; a TEXT that starts with '-' goes after '--'"},
		{[]string{"dial", target, "msg", "bell\a"}, "TEXT: direct message text not allowed: character U+0007 at byte 4"},
		{[]string{"dial", target, "msg", ""}, "TEXT: direct message text not allowed: empty"},
	} {
		r := lanpeer(t, append(append([]string{}, c.args[0], "--home", home), c.args[1:]...)...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, c.say) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("lanpeer %q: %+v; want exit 2 and one line saying %q", c.args, r, c.say)
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("a usage error created the home: %v", err)
	}
	// Limits are checked with the identity (on first run, after creating it).
	fixture, _ := fixtureHome(t, "ed25519")
	r := lanpeer(t, "listen", "--home", fixture, "--tcp", "127.0.0.1:0", "--max-streams", "70000")
	if r.code != exitUsage || !strings.Contains(r.stderr, "lanpeer: node: bad configuration: max streams 70000 above 65535") {
		t.Errorf("listen --max-streams 70000: %+v", r)
	}
}

func TestListenDialHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		say  []string
	}{
		{[]string{"listen", "--help"}, []string{"--tcp 0.0.0.0:7700", "(default: \"127.0.0.1:7700\")", "@PEERID TEXT", "at least 8 characters",
			"--json", "--allow PEERID", "--allow-rsa", "--tls", "--handshake-timeout", "--handshake-rate", "--handshake-burst", "--max-pending",
			"--max-sessions ", "--max-sessions-per-peer", "--max-sessions-per-addr", "--max-streams", "--max-frame", "--drain-timeout",
			"does not stop the server", "exits 0", "--rekey-messages N", "(default: 1048576)", "--rekey-interval D", "(default: 1h0m0s)"}},
		{[]string{"dial", "--help"}, []string{"TARGET is HOST:PORT or PEERID@HOST:PORT", "msg TEXT", "NO FORWARD SECRECY", "--allow-rsa here and on the listener",
			"an RSA identity here", "known_peers", "/quit", "after \"--\" TEXT is", "x25519-mlkem768"}},
		{[]string{"dial", strings.Repeat("ab", 32) + "@127.0.0.1:7700", "msg", "--help"}, []string{"lanpeer dial [flags] TARGET msg [--] TEXT"}},
	} {
		r := lanpeer(t, c.args...)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("lanpeer %q: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
		for _, s := range c.say {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("lanpeer %q: help does not say %q:\n%s", c.args, s, r.stdout)
			}
		}
	}
}

func TestReadLines(t *testing.T) {
	in := "one\r\ntwo\n\n" + strings.Repeat("x", 20) + "\nthree\n" + strings.Repeat("y", 16) + "\r\n" + strings.Repeat("z", 17) + "\nlast"
	done := make(chan struct{})
	defer close(done)
	var got []string
	for l := range readLines(strings.NewReader(in), 16, done) {
		if l.err != nil {
			got = append(got, "ERR "+l.err.Error())
		} else {
			got = append(got, l.text)
		}
	}
	want := []string{"one", "two", "", "ERR line too long", "three", strings.Repeat("y", 16), "ERR line too long", "last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

func TestReadText(t *testing.T) {
	for in, want := range map[string]string{"a\r\nb\r\n": "a\nb", "a\n\n": "a\n", "tab\tok": "tab\tok"} {
		if got, err := readText(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("readText(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", "cr\ralone", strings.Repeat("x", session.MaxDirectTextSize+1), strings.Repeat("\r\n", session.MaxDirectTextSize+2)} {
		if _, err := readText(strings.NewReader(in)); err == nil {
			t.Errorf("readText(%.20q...) accepted", in)
		}
	}
}

func TestPickPeer(t *testing.T) {
	id := func(s string) cryptosuite.PeerID {
		p, err := cryptosuite.ParsePeerID(s + strings.Repeat("0", 64-len(s)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, a2, b := id("aaaaaaaa11"), id("aaaaaaaa22"), id("bbbbbbbb")
	ids := []cryptosuite.PeerID{a, b, a2, a, b} // several sessions of a and b
	for _, c := range []struct {
		prefix string
		want   cryptosuite.PeerID
		err    string
	}{
		{"bbbbbbbb", b, ""},
		{b.String(), b, ""},
		{"aaaaaaaa1", a, ""},
		{"aaaaaaaa", cryptosuite.PeerID{}, "@aaaaaaaa is ambiguous: the IDs " + a.String() + ", " + a2.String() + " start with it; type more of the ID"},
		{"cccccccc", cryptosuite.PeerID{}, "no connected peer has an ID starting with cccccccc"},
		{"bbbbbbb", cryptosuite.PeerID{}, "@bbbbbbb: want a peer ID, or at least its first 8 hex characters"},
		{"bbbbbbbx", cryptosuite.PeerID{}, "want a peer ID"},
		{b.String() + "0", cryptosuite.PeerID{}, "want a peer ID"},
	} {
		got, err := pickPeer(ids, c.prefix)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("pickPeer(%q) = %v, %v; want %v, %q", c.prefix, got, err, c.want, c.err)
		}
	}
}
