package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// asMain makes the test binary run main instead of the tests, so tests can
// run the real process (exit statuses, shell completion scripts).
const asMain = "LANPEER_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(exitOK) // main exits itself; this is never reached
	}
	goleak.VerifyTestMain(m)
}

type result struct {
	code           int
	stdout, stderr string
}

// lanpeer runs the CLI in-process with empty standard input.
func lanpeer(t *testing.T, args ...string) result {
	t.Helper()
	return lanpeerCtx(t, context.Background(), args...)
}

func lanpeerCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"lanpeer"}, args...), strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// lanpeerBin returns a directory holding an executable named lanpeer that
// runs main (the test binary itself), and the environment that makes it do
// so.
func lanpeerBin(t *testing.T) (dir string, env []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "lanpeer")); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), asMain+"=1", "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		// A -race binary otherwise sleeps 1 s at exit.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	return dir, env
}

var peerIDLine = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// checkPeerIDOutput checks that stdout is one peer ID on one line and
// returns it.
func checkPeerIDOutput(t *testing.T, r result) string {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit status %d, stderr %q", r.code, r.stderr)
	}
	if !peerIDLine.MatchString(r.stdout) {
		t.Fatalf("stdout %q is not one line of 64 lowercase hex characters", r.stdout)
	}
	return strings.TrimSuffix(r.stdout, "\n")
}

// opensslPeerID runs README.md's pipeline on a PEM key file.
func opensslPeerID(t *testing.T, keyFile string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: the tests check peer IDs against it; install it " +
			"(Debian: apt-get install -y openssl; .ci/run does this)")
	}
	cmd := exec.Command("bash", "-c",
		`set -o pipefail; openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -r | cut -c1-64`,
		"bash", keyFile)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl pipeline on %s: %v: %s", keyFile, err, errb.String())
	}
	return strings.TrimSpace(string(out))
}

func TestMainExitStatus(t *testing.T) {
	bin, env := lanpeerBin(t)
	home := t.TempDir()
	for _, c := range []struct {
		args     []string
		code     int
		stdoutRE string
		stderrRE string
	}{
		{[]string{"id", "--home", home}, exitFailure, `^$`, `^lanpeer: no identity at .*lanpeer init`},
		{[]string{"bogus"}, exitUsage, `^$`, `^lanpeer: unknown command "bogus"`},
		{[]string{"init", "--home", home, "--key", "ed25519"}, exitOK, `^[0-9a-f]{64}\n$`, `^lanpeer: wrote a new ed25519 identity`},
		{[]string{"init", "--home", home, "--key", "ed25519"}, exitFailure, `^$`, `^lanpeer: an identity already exists`},
		{[]string{"id", "--home", home}, exitOK, `^[0-9a-f]{64}\n$`, `^$`},
		{[]string{"--help"}, exitOK, `USAGE:`, `^$`},
	} {
		cmd := exec.Command(filepath.Join(bin, "lanpeer"), c.args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !regexp.MustCompile(c.stdoutRE).MatchString(out.String()) ||
			!regexp.MustCompile(c.stderrRE).MatchString(errb.String()) {
			t.Errorf("lanpeer %q: exit %d, stdout %q, stderr %q; want exit %d, stdout ~ %s, stderr ~ %s",
				c.args, code, out.String(), errb.String(), c.code, c.stdoutRE, c.stderrRE)
		}
	}
}
