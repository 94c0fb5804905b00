package mongo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"
)

// The tests run against a real MongoDB-wire server, never a mock
// (DESIGN.md §9):
//
//   - LANPEER_TEST_MONGO_URI names a server (make test starts FerretDB and
//     sets it; point it at a real MongoDB to test against that). It must
//     not name a database: each test makes its own and drops it.
//   - LANPEER_FERRETDB names the tools/ferretdb binary, so that the tests
//     that stop and restart a server can start their own. make test sets
//     it. Without it those tests are skipped when LANPEER_TEST_MONGO_URI
//     is set.
//   - With neither set (go test ./... outside make), TestMain builds
//     tools/ferretdb into .tools/bin (incremental after the first time)
//     and starts it for the package's tests.
const (
	envURI      = "LANPEER_TEST_MONGO_URI"
	envFerretDB = "LANPEER_FERRETDB"
)

var (
	testURI      string // the server the tests use, without a database
	ferretBinary string // the tools/ferretdb binary, or "" when there is none
)

// hangDeadline bounds every wait on a server in these tests: far beyond
// what any step needs (FerretDB starts in well under a second).
const hangDeadline = 2 * time.Minute

func TestMain(m *testing.M) {
	code := testMain(m)
	// The package's own server, if it started one, has stopped by now.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "store/mongo: goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testMain finds or starts the server and runs the tests.
func testMain(m *testing.M) int {
	uri, bin := os.Getenv(envURI), os.Getenv(envFerretDB)
	if uri == "" {
		if bin == "" {
			var err error
			if bin, err = buildFerretDB(); err != nil {
				fmt.Fprintf(os.Stderr, "store/mongo: %v\nstore/mongo: the tests need a MongoDB-wire server: run `make test`, or set %s (and %s)\n",
					err, envURI, envFerretDB)
				return 1
			}
		}
		dir, err := os.MkdirTemp("", "lanpeer-ferretdb-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "store/mongo:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := startFerretDB(bin, dir, "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "store/mongo:", err)
			return 1
		}
		defer srv.stop()
		uri = srv.uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		fmt.Fprintf(os.Stderr, "store/mongo: %s: %v\n", envURI, err)
		return 1
	}
	if strings.Trim(u.Path, "/") != "" {
		fmt.Fprintf(os.Stderr, "store/mongo: %s must not name a database (each test makes its own): %s\n", envURI, u.Redacted())
		return 1
	}
	testURI, ferretBinary = uri, bin
	return m.Run()
}

// buildFerretDB builds tools/ferretdb into .tools/bin at the repository's
// root (the first build takes minutes; later ones find it up to date).
func buildFerretDB() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "tools", "ferretdb")
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		return "", fmt.Errorf("no tools/ferretdb module at %s: %v", src, err)
	}
	bin := filepath.Join(root, ".tools", "bin", "ferretdb")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building tools/ferretdb: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "store/mongo: building tools/ferretdb (the first build takes a few minutes)")
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building tools/ferretdb: %v", err)
	}
	return bin, nil
}

// ferretDB is a tools/ferretdb process.
type ferretDB struct {
	cmd  *exec.Cmd
	uri  string
	addr string // host:port
	done chan struct{}
}

// startFerretDB starts the binary on dir and waits until it prints its URI.
func startFerretDB(bin, dir, listen string) (*ferretDB, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "ferretdb.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-listen", listen, "-log-level", "error", dir)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	f := &ferretDB{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
		_ = cmd.Wait()
		close(f.done)
	}()
	select {
	case line := <-lines:
		u, err := url.Parse(line)
		if err != nil || u.Scheme != "mongodb" || u.Host == "" {
			f.kill()
			return nil, fmt.Errorf("%s printed %q, not its URI (see %s)", bin, line, logf.Name())
		}
		f.uri, f.addr = line, u.Host
		return f, nil
	case <-time.After(hangDeadline):
		f.kill()
		return nil, fmt.Errorf("%s did not print its URI within %v", bin, hangDeadline)
	}
}

// stop ends the server with SIGTERM (it closes its files) and waits.
func (f *ferretDB) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(hangDeadline):
		f.kill()
	}
}

// kill ends the server with SIGKILL, as a crash would, and waits.
func (f *ferretDB) kill() {
	_ = f.cmd.Process.Kill()
	<-f.done
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openTest opens a store on a fresh database of the server at uri, and
// drops the database when the test ends.
func openTest(t testing.TB, uri string, opts Options) *Store {
	t.Helper()
	if opts.Database == "" {
		opts.Database = "lanpeer_test_" + randomHex(6)
	}
	s, err := Open(t.Context(), uri, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, uri, opts.Database) })
	return s
}

// dropDatabase drops a test's database with a client of its own (the
// store may be closed by then).
func dropDatabase(t testing.TB, uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Errorf("dropping %s: %v", name, err)
		return
	}
	defer func() { _ = c.Disconnect(ctx) }()
	if err := c.Database(name).Drop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("dropping %s: %v", name, err)
	}
}
