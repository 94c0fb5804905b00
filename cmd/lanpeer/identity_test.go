package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

// checkIdentityFile checks what every identity file must be: PKCS#8 PEM of
// the given type with mode 0600, alone in its home with mode 0700, whose
// peer ID openssl computes as id.
func checkIdentityFile(t *testing.T, home string, kt cryptosuite.KeyType, id string) {
	t.Helper()
	path := filepath.Join(home, identityFile)
	checkMode(t, home, 0o700)
	checkMode(t, path, 0o600)
	b := readFile(t, path)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("%s does not start with a PKCS#8 PEM header: %.40q", path, b)
	}
	ident, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	if ident.KeyType() != kt || ident.PeerID().String() != id {
		t.Errorf("file holds a %s key with peer ID %s, want %s and %s", ident.KeyType(), ident.PeerID(), kt, id)
	}
	if got := opensslPeerID(t, path); got != id {
		t.Errorf("openssl computes peer ID %s, lanpeer printed %s", got, id)
	}
	entries, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("home holds %d files, want identity.pem alone (no temporary files left)", len(entries))
	}
}

func TestInitEd25519(t *testing.T) {
	home := filepath.Join(t.TempDir(), "a", "home")
	r := lanpeer(t, "init", "--home", home, "--key", "ed25519")
	id := checkPeerIDOutput(t, r)
	if want := "lanpeer: wrote a new ed25519 identity to " + filepath.Join(home, identityFile) + "\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	checkIdentityFile(t, home, cryptosuite.KeyEd25519, id)
	if r := lanpeer(t, "id", "--home", home); checkPeerIDOutput(t, r) != id || r.stderr != "" {
		t.Errorf("id printed %q, stderr %q; init printed %s", r.stdout, r.stderr, id)
	}
}

// TestInitDefaultRSA3072 is the one test that generates an RSA key: the
// default type, as a fresh `make run` does.
func TestInitDefaultRSA3072(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	id := checkPeerIDOutput(t, lanpeer(t, "init", "--home", home))
	checkIdentityFile(t, home, cryptosuite.KeyRSA3072, id)
}

func copyFixture(t *testing.T, name, home string) {
	t.Helper()
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, identityFile), readFile(t, filepath.Join("testdata", name+".pem")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIDFixtures checks the peer ID of committed keys (made with openssl
// genpkey) against the ID recorded when they were made and against openssl.
func TestIDFixtures(t *testing.T) {
	for _, c := range []struct {
		name string
		kt   cryptosuite.KeyType
	}{{"rsa-2048", cryptosuite.KeyRSA2048}, {"rsa-3072", cryptosuite.KeyRSA3072}, {"ed25519", cryptosuite.KeyEd25519}} {
		t.Run(c.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			copyFixture(t, c.name, home)
			id := checkPeerIDOutput(t, lanpeer(t, "id", "--home", home))
			want := strings.TrimSpace(string(readFile(t, filepath.Join("testdata", c.name+".id"))))
			if id != want {
				t.Errorf("peer ID %s, recorded %s", id, want)
			}
			checkIdentityFile(t, home, c.kt, id)
		})
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	copyFixture(t, "rsa-2048", home)
	path := filepath.Join(home, identityFile)
	before := readFile(t, path)
	oldID := checkPeerIDOutput(t, lanpeer(t, "id", "--home", home))

	for _, kt := range []string{"ed25519", "rsa-2048"} {
		r := lanpeer(t, "init", "--home", home, "--key", kt)
		if r.code != exitFailure || r.stdout != "" || !strings.HasPrefix(r.stderr, "lanpeer: an identity already exists at "+path) ||
			!strings.Contains(r.stderr, "--force") || !strings.Contains(r.stderr, "--home") {
			t.Errorf("init over an identity: %+v", r)
		}
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Fatal("init without --force changed the identity")
	}

	r := lanpeer(t, "init", "--home", home, "--key", "ed25519", "--force")
	newID := checkPeerIDOutput(t, r)
	if newID == oldID {
		t.Fatal("--force kept the old key")
	}
	if !strings.HasPrefix(r.stderr, "lanpeer: replaced the identity with peer ID "+oldID+"\n") {
		t.Errorf("stderr %q does not name the replaced peer ID", r.stderr)
	}
	checkIdentityFile(t, home, cryptosuite.KeyEd25519, newID)
}

// TestWriteIdentityOneWinner runs concurrent inits into one home: exactly
// one writes, the others are refused, and the file is the winner's.
func TestWriteIdentityOneWinner(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeIdentity(home, []byte{byte('a' + i)}, false)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Errorf("writers %d and %d both succeeded", winner, i)
		case !errors.As(err, new(*identityExistsError)):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	if b := readFile(t, filepath.Join(home, identityFile)); !bytes.Equal(b, []byte{byte('a' + winner)}) {
		t.Errorf("file holds %q, the winner wrote %q", b, byte('a'+winner))
	}
	if entries, _ := os.ReadDir(home); len(entries) != 1 {
		t.Errorf("%d files left in home, want 1", len(entries))
	}
}

func TestIDWithoutIdentity(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	r := lanpeer(t, "id", "--home", home)
	want := "lanpeer: no identity at " + filepath.Join(home, identityFile) + ": run 'lanpeer init' to create one, or pass the --home that holds yours\n"
	if r.code != exitFailure || r.stdout != "" || r.stderr != want {
		t.Errorf("id without identity: %+v", r)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("id created the home: %v", err)
	}
}

func TestIDCreate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	r := lanpeer(t, "id", "--create", "--key", "ed25519", "--home", home)
	id := checkPeerIDOutput(t, r)
	if !strings.HasPrefix(r.stderr, "lanpeer: created a new ed25519 identity in ") {
		t.Errorf("stderr %q", r.stderr)
	}
	checkIdentityFile(t, home, cryptosuite.KeyEd25519, id)
	before := readFile(t, filepath.Join(home, identityFile))
	for range 2 {
		r := lanpeer(t, "id", "--create", "--key", "ed25519", "--home", home)
		if checkPeerIDOutput(t, r) != id || r.stderr != "" {
			t.Errorf("repeated id --create: %+v, want %s and no note", r, id)
		}
	}
	if !bytes.Equal(readFile(t, filepath.Join(home, identityFile)), before) {
		t.Error("repeated id --create changed the identity")
	}
}

func TestIdentityFileChecks(t *testing.T) {
	fixture := readFile(t, filepath.Join("testdata", "ed25519.pem"))
	cases := []struct {
		name  string
		setup func(t *testing.T, path string)
		say   string
	}{
		{"readable by others", func(t *testing.T, path string) {
			write(t, path, fixture, 0o644)
		}, "has mode 0644, so other users may read the private key; run 'chmod 600 "},
		{"readable by group", func(t *testing.T, path string) {
			write(t, path, fixture, 0o640)
		}, "chmod 600"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a regular file"},
		{"not PEM", func(t *testing.T, path string) {
			write(t, path, []byte("hello\n"), 0o600)
		}, "no PEM block"},
		{"PKCS#1", func(t *testing.T, path string) {
			write(t, path, []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), 0o600)
		}, "PKCS#8"},
		{"two keys", func(t *testing.T, path string) {
			write(t, path, append(append([]byte{}, fixture...), fixture...), 0o600)
		}, "data after the PEM block"},
		{"too large", func(t *testing.T, path string) {
			write(t, path, bytes.Repeat([]byte("#"), cryptosuite.MaxIdentityPEM+1), 0o600)
		}, "larger than 16384 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			c.setup(t, filepath.Join(home, identityFile))
			r := lanpeer(t, "id", "--home", home)
			if r.code != exitFailure || r.stdout != "" || !strings.HasPrefix(r.stderr, "lanpeer: ") ||
				!strings.Contains(r.stderr, c.say) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("id: %+v; want exit 1 and one line saying %q", r, c.say)
			}
			// id --create must not replace a file it cannot read.
			if r := lanpeer(t, "id", "--create", "--home", home); r.code != exitFailure {
				t.Errorf("id --create over a bad identity: %+v", r)
			}
		})
	}
}

func write(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by the umask
		t.Fatal(err)
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	home := filepath.Join(t.TempDir(), "home")
	for _, args := range [][]string{
		{"init", "--home", home, "--key", "ed25519"},
		{"id", "--create", "--home", home, "--key", "ed25519"},
	} {
		r := lanpeerCtx(t, ctx, args...)
		if r.code != exitInterrupted || r.stdout != "" || r.stderr != "lanpeer: interrupted\n" {
			t.Errorf("%q with a cancelled context: %+v", args, r)
		}
	}
	if _, err := os.Stat(filepath.Join(home, identityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted init wrote the identity: %v", err)
	}
}
