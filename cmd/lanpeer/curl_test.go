package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// curlHang bounds the whole walkthrough: a few hundred openssl, curl and
// jq processes and five lanpeer commands, some seconds in all.
const curlHang = 5 * time.Minute

// TestCurlWalkthrough runs docs/CURL.md, as scripts/curl-walkthrough.sh,
// against a real `lanpeer listen --http` (an RSA identity, so the
// walkthrough checks an RSA-PSS handshake signature): the curl user makes
// its identity, completes the handshake, publishes a key package, creates a
// room and opens the key it wrapped for itself; Bob, a `lanpeer` peer over
// TCP, creates a room and invites it; the curl user joins, sends a
// message, and verifies and decrypts Bob's answer. Bob's client reads the
// curl user's text; the curl user reads Bob's.
func TestCurlWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "xxd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the curl walkthrough needs bash, curl, jq, openssl and xxd "+
				"(Debian: apt-get install -y curl jq openssl xxd; .ci/run installs them)", tool)
		}
	}
	_, env := lanpeerBin(t)
	lhome, lid := fixtureHome(t, "rsa-3072")
	l := start(t, "listen", "--home", lhome, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--handshake-rate", "-1")
	tcp := waitMatch(t, l.stderr, listeningRE)[1]
	shim := waitMatch(t, l.stderr, `lanpeer: serving HTTP on (http://127\.0\.0\.1:\d+)\n`)[1]

	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "curl-walkthrough.sh"))
	if err != nil {
		t.Fatal(err)
	}
	readFile(t, script) // the test cache then knows the script is an input
	walk := func(dir, peer, limit string) (stdout, stderr string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), curlHang)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Dir = dir
		cmd.Env = append(env, "LANPEER_HTTP="+shim, "LANPEER_TCP="+tcp, "LANPEER_PEER="+peer, "LANPEER_LIMIT="+limit)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		return out.String(), errb.String(), err
	}

	// Naming another listener stops the walkthrough at the hello: the
	// listener refuses it, and nothing after runs.
	other := strings.Repeat("ab", 32)
	wrongDir := t.TempDir()
	stdout, stderr, err := walk(wrongDir, other, "100")
	if err == nil || strings.Contains(stdout, "talking to") {
		t.Fatalf("the walkthrough went on with LANPEER_PEER naming another peer:\n%s\n%s", stdout, stderr)
	}
	if reply := string(readFile(t, filepath.Join(wrongDir, "reply.json"))); !strings.Contains(reply, `"code":"policy"`) {
		t.Errorf("the hello naming another peer got %s, want the policy refusal", reply)
	}

	// A page size of 1: the walkthrough reads Bob's commits page by page.
	dir := t.TempDir()
	stdout, stderr, err = walk(dir, lid, "1")
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\nstdout:\n%s\nstderr:\n%s\nlistener:\n%s", err, stdout, stderr, l.stderr.String())
	}

	me := regexp.MustCompile(`(?m)^my peer ID: ([0-9a-f]{64})$`).FindStringSubmatch(stdout)
	lab := regexp.MustCompile(`(?m)^Bob's room: ([0-9a-f]{32})$`).FindStringSubmatch(stdout)
	if me == nil || lab == nil {
		t.Fatalf("the walkthrough printed no peer ID or no room of Bob's:\n%s", stdout)
	}
	if !strings.Contains(stdout, "talking to "+lid+"\n") {
		t.Errorf("the walkthrough did not reach the listener %s:\n%s", lid, stdout)
	}
	bob := filepath.Join(dir, "bob")
	bobID := strings.TrimSpace(lanpeer(t, "id", "--home", bob).stdout)

	// Bob's room read with pages of one commit: both epochs, his key.
	if want := "room " + lab[1] + " at epoch 2, master " + bobID + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("the walkthrough did not print %q:\n%s", want, stdout)
	}
	// The curl user's side: Bob's answer, verified and decrypted.
	if want := "verified message from " + bobID + ": hello from lanpeer\n"; !strings.Contains(stdout, want) {
		t.Errorf("the walkthrough did not print %q:\n%s", want, stdout)
	}
	// Bob's side: the curl user's message, verified and decrypted by
	// lanpeer's own client, then his answer.
	r := lanpeer(t, "dial", "--home", bob, "--json", tcp, "read", lab[1])
	if r.code != exitOK {
		t.Fatalf("bob's read: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `"sender":"`+me[1]+`"`) || !strings.Contains(lines[0], `"text":"hello from curl"`) ||
		!strings.Contains(lines[1], `"sender":"`+bobID+`"`) || !strings.Contains(lines[1], `"text":"hello from lanpeer"`) {
		t.Errorf("bob reads:\n%s\nwant the curl user's message, then his own answer", r.stdout)
	}
}
