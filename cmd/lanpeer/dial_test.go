package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two-process tests: `lanpeer listen` and `lanpeer dial` as separate
// processes on loopback. The executable is this test binary running main
// (lanpeerBin): the same code as bin/lanpeer, built by `go test` already,
// with the race detector on when the tests have it.

// proc is a lanpeer process.
type proc struct {
	args           []string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int // set before done is closed
}

// startProc starts lanpeer with args. When the test ends, a process still
// running gets SIGTERM, then SIGKILL after the hang deadline.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, env := lanpeerBin(t)
	p := &proc{args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "lanpeer"), args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code == 0 {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(hang):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("lanpeer %q did not stop on SIGTERM", args)
		}
	})
	return p
}

// wait returns the exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(hang):
		t.Fatalf("lanpeer %q did not exit; stderr:\n%s", p.args, p.stderr.String())
	}
	return -1
}

func (p *proc) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// startListenProc runs `lanpeer listen` on a free loopback port.
func startListenProc(t *testing.T, home string, args ...string) (p *proc, addr, id string) {
	t.Helper()
	p = startProc(t, append([]string{"listen", "--home", home, "--tcp", "127.0.0.1:0"}, args...)...)
	m := waitMatch(t, p.stderr, listeningRE)
	return p, m[1], m[2]
}

// TestProcessModes: every key-agreement mode with each identity key type,
// between two processes: the listener prints each message, and its log
// shows the session ran in the mode asked for. The rsa mode runs with RSA
// identities and --allow-rsa on both sides; with an Ed25519 identity it is
// refused with an error that says why. SIGTERM stops each listener with
// status 0.
func TestProcessModes(t *testing.T) {
	// The Ed25519 listener creates its identity on first run.
	edL, edAddr, edID := startListenProc(t, t.TempDir(), "--key", "ed25519", "--allow-rsa", "--log-level", "info")
	if !strings.Contains(edL.stderr.String(), "lanpeer: created a new ed25519 identity") {
		t.Fatalf("first run:\n%s", edL.stderr.String())
	}
	rsaHome, rsaID := fixtureHome(t, "rsa-3072")
	rsaL, rsaAddr, _ := startListenProc(t, rsaHome, "--allow-rsa", "--log-level", "info")
	edHome, edDialer := fixtureHome(t, "ed25519")
	rsaDialHome, rsaDialer := fixtureHome(t, "rsa-2048")

	type side struct {
		home, id string // the dialer's
		l        *proc
		target   string
	}
	ed := side{edHome, edDialer, edL, edID + "@" + edAddr}
	rsa := side{rsaDialHome, rsaDialer, rsaL, rsaID + "@" + rsaAddr}
	for _, c := range []struct {
		kex, suite string // --kex, and the suite's name in the log
		s          side
	}{
		{"x25519", "x25519", ed}, {"x25519", "x25519", rsa},
		{"p256", "p256", ed}, {"p256", "p256", rsa},
		{"x25519-mlkem768", "x25519-mlkem768", ed}, {"x25519-mlkem768", "x25519-mlkem768", rsa},
		{"rsa", "rsa-oaep-sha256", rsa},
	} {
		text := "hello over " + c.kex + " from " + c.s.id[:8]
		d := startProc(t, "dial", "--home", c.s.home, "--kex", c.kex, "--allow-rsa", c.s.target, "msg", text)
		if code := d.wait(t); code != exitOK || d.stdout.String() != "" {
			t.Fatalf("dial --kex %s: exit %d, stdout %q, stderr:\n%s", c.kex, code, d.stdout.String(), d.stderr.String())
		}
		waitMatch(t, c.s.l.stdout, regexp.QuoteMeta(c.s.id+" "+text+"\n"))
		waitMatch(t, c.s.l.stderr, `msg="session established" .*peer=`+c.s.id+` kex=`+regexp.QuoteMeta(c.suite)+` `)
	}

	d := startProc(t, "dial", "--home", edHome, "--kex", "rsa", "--allow-rsa", rsa.target, "msg", "refused")
	if code := d.wait(t); code != exitFailure || !strings.Contains(d.stderr.String(),
		"lanpeer: --kex rsa needs an RSA identity, and this peer's ("+edDialer+") is ed25519") {
		t.Fatalf("rsa with an Ed25519 identity: exit %d, stderr:\n%s", code, d.stderr.String())
	}

	for _, l := range []*proc{edL, rsaL} {
		l.signal(t, syscall.SIGTERM)
		if code := l.wait(t); code != exitOK || !strings.HasSuffix(l.stderr.String(), "lanpeer: stopped\n") {
			t.Fatalf("listen after SIGTERM: exit %d, stderr:\n%s", code, l.stderr.String())
		}
	}
	if strings.Contains(rsaL.stdout.String(), "refused") {
		t.Fatal("the refused message arrived")
	}
}

// TestProcessChat: an interactive dial and a listener talk both ways,
// rekeying every two messages (each side logs each new epoch) with the
// messages in order across the exchanges; a SIGINT then stops the
// listener, which drains and exits 0, and the dial learns that the session
// ended.
func TestProcessChat(t *testing.T) {
	lHome, lID := fixtureHome(t, "rsa-2048")
	l, addr, _ := startListenProc(t, lHome, "--rekey-messages", "2", "--log-level", "info")
	dHome, dID := fixtureHome(t, "ed25519")
	d := startProc(t, "dial", "--home", dHome, "--kex", "x25519-mlkem768", "--rekey-messages", "2", "--log-level", "info", lID+"@"+addr)
	waitMatch(t, d.stderr, "lanpeer: connected to "+lID)
	// Each side sends two messages, then waits for the exchange they
	// start: messages sealed while one runs count under the old epoch.
	var want strings.Builder
	for i := range 4 {
		d.typeLine(t, fmt.Sprintf("hello listener %d", i))
		fmt.Fprintf(&want, "%s hello listener %d\n", dID, i)
		if i%2 == 1 { // both sides switched: the next messages count under the new epoch
			waitMatch(t, d.stderr, fmt.Sprintf(`msg=rekeyed .*epoch=%d\n`, i/2+1))
			waitMatch(t, l.stderr, fmt.Sprintf(`msg=rekeyed .*epoch=%d\n`, i/2+1))
		}
	}
	waitMatch(t, l.stdout, "^"+regexp.QuoteMeta(want.String())+"$")
	want.Reset()
	for i := range 4 {
		l.typeLine(t, fmt.Sprintf("@%s hello dialer %d", dID[:12], i))
		fmt.Fprintf(&want, "%s hello dialer %d\n", lID, i)
		if i%2 == 1 { // the listener asks, the dialer runs the exchange
			waitMatch(t, d.stderr, fmt.Sprintf(`msg=rekeyed .*epoch=%d\n`, i/2+3))
			waitMatch(t, l.stderr, fmt.Sprintf(`msg=rekeyed .*epoch=%d\n`, i/2+3))
		}
	}
	waitMatch(t, d.stdout, "^"+regexp.QuoteMeta(want.String())+"$")

	l.signal(t, syscall.SIGINT)
	if code := l.wait(t); code != exitOK || !strings.HasSuffix(l.stderr.String(), "lanpeer: stopped\n") {
		t.Fatalf("listen after SIGINT: exit %d, stderr:\n%s", code, l.stderr.String())
	}
	if code := d.wait(t); code != exitFailure || !strings.Contains(d.stderr.String(), "lanpeer: the session with "+lID+" ended") {
		t.Fatalf("dial after the listener stopped: exit %d, stderr:\n%s", code, d.stderr.String())
	}
	if strings.Contains(l.stderr.String(), "level=WARN") || strings.Contains(d.stderr.String(), "level=WARN") {
		t.Fatalf("warnings:\n%s\n%s", l.stderr.String(), d.stderr.String())
	}
}

// TestProcessChangedKey: known_peers records another peer ID for the
// listener's address, so dialing HOST:PORT is refused with the way out;
// dialing the new ID pinned works.
func TestProcessChangedKey(t *testing.T) {
	lHome, lID := fixtureHome(t, "ed25519")
	l, addr, _ := startListenProc(t, lHome)
	dHome, dID := fixtureHome(t, "rsa-2048")
	_, oldID := fixtureHome(t, "rsa-3072")
	kp := filepath.Join(dHome, "known_peers")
	if err := os.WriteFile(kp, []byte(addr+" "+oldID+" the old key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startProc(t, "dial", "--home", dHome, addr, "msg", "to the impostor?")
	code := d.wait(t)
	for _, say := range []string{
		"lanpeer: peer ID of " + addr + " has changed: " + kp + ":1 records " + oldID + ", the peer presented " + lID,
		"someone may be impersonating it",
		"delete line 1 of " + kp,
		"pin the new key by dialing " + lID + "@" + addr,
	} {
		if code != exitFailure || !strings.Contains(d.stderr.String(), say) {
			t.Fatalf("dial with a changed key: exit %d, stderr does not say %q:\n%s", code, say, d.stderr.String())
		}
	}
	if strings.Contains(l.stdout.String(), "impostor") {
		t.Fatal("the message was sent to a peer with a changed key")
	}
	d = startProc(t, "dial", "--home", dHome, lID+"@"+addr, "msg", "pinned")
	if code := d.wait(t); code != exitOK {
		t.Fatalf("pinned dial: exit %d, stderr:\n%s", code, d.stderr.String())
	}
	waitMatch(t, l.stdout, dID+" pinned\n")
}
