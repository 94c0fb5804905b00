package session

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

func testID(s string) cryptosuite.PeerID { return sha256.Sum256([]byte(s)) }

func writeKnownPeers(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCanonicalPeerName(t *testing.T) {
	good := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice.LAN", "alice.lan"},
		{"alice.lan:7700", "alice.lan:7700"},
		{"ALICE.lan:07700", "alice.lan:7700"},
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.7:7700", "192.0.2.7:7700"},
		{"[::1]:7700", "[::1]:7700"},
		{"[0:0:0:0:0:0:0:1]:7700", "[::1]:7700"},
		{"[2001:DB8::1]:65535", "[2001:db8::1]:65535"},
		{"[fe80::1%eth0]:7700", "[fe80::1%eth0]:7700"},
		{"[::ffff:192.0.2.7]:1", "[::ffff:192.0.2.7]:1"},
		{"[192.0.2.7]:7700", "192.0.2.7:7700"},
		{"bücher.example:80", "bücher.example:80"},
		{strings.Repeat("a", MaxPeerNameLen), strings.Repeat("a", MaxPeerNameLen)},
	}
	for _, c := range good {
		got, err := CanonicalPeerName(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalPeerName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"::1", "brackets"},
		{"::1:7700", "brackets"},
		{"[::1]", "HOST:PORT"},
		{"alice:", "port"},
		{"alice:0", "port"},
		{"alice:65536", "port"},
		{"alice:+80", "port"},
		{"alice:http", "port"},
		{":7700", "no host"},
		{"[alice]:7700", "IPv6"},
		{"a[b", "brackets"},
		{"al ice", "whitespace"},
		{"al\tice", "whitespace"},
		{"alice\x00", "control"},
		{"#alice", "'#'"},
		{"id@alice:7700", "'@'"},
		{"\xff", "UTF-8"},
		{strings.Repeat("a", MaxPeerNameLen+1), "longer"},
	}
	for _, c := range bad {
		got, err := CanonicalPeerName(c.in)
		if !errors.Is(err, ErrBadPeerName) || got != "" {
			t.Errorf("CanonicalPeerName(%q) = %q, %v; want ErrBadPeerName", c.in, got, err)
			continue
		}
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("CanonicalPeerName(%q) error %q does not say %q", c.in, err, c.why)
		}
	}
}

func TestLoadKnownPeers(t *testing.T) {
	a, b, c := testID("a"), testID("b"), testID("c")
	content := "# known peers\n" +
		"\n" +
		"alice.lan:7700 " + a.String() + " first seen at home\r\n" +
		"   \t\n" +
		"\t[::1]:7700\t\t" + strings.ToUpper(b.String()) + "\n" +
		"  # indented comment\n" +
		"ALICE.lan:7700 " + a.String() + "\n" + // same name, same ID: harmless
		"bob " + c.String() + "\n" +
		"bob.lan:1 " + c.String() // one ID under two names; no final newline
	k, err := LoadKnownPeers(writeKnownPeers(t, content))
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 4 {
		t.Errorf("Len = %d, want 4", k.Len())
	}
	for _, c := range []struct {
		name string
		want cryptosuite.PeerID
	}{
		{"alice.lan:7700", a},
		{"Alice.Lan:07700", a},
		{"[0::1]:7700", b},
		{"bob", c},
		{"BOB", c},
		{"bob.lan:1", c},
	} {
		got, ok := k.Lookup(c.name)
		if !ok || got != c.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v", c.name, got, ok, c.want)
		}
	}
	for _, name := range []string{"alice.lan:7701", "alice", "::1", "carol"} {
		if _, ok := k.Lookup(name); ok {
			t.Errorf("Lookup(%q) found an entry", name)
		}
	}
}

func TestLoadKnownPeersMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 0 || k.Path() != path {
		t.Fatalf("Len = %d, Path = %q", k.Len(), k.Path())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("loading created the file: %v", err)
	}
}

func TestLoadKnownPeersErrors(t *testing.T) {
	id := testID("x").String()
	other := testID("y").String()
	big := strings.Repeat("# "+strings.Repeat("x", 98)+"\n", MaxKnownPeersSize/101) +
		strings.Repeat("#", 200) + "\n"
	cases := []struct {
		name    string
		content string
		err     error
		line    int
		say     string
	}{
		{"long line", "a " + id + "\n# ok\n# " + strings.Repeat("x", MaxKnownPeersLine) + "\n", ErrKnownPeersLineTooLong, 3, "longer than 4096"},
		{"long last line", "# " + strings.Repeat("x", MaxKnownPeersLine), ErrKnownPeersLineTooLong, 1, "longer than"},
		{"long comment on entry", "a " + id + " " + strings.Repeat("c", MaxKnownPeersLine), ErrKnownPeersLineTooLong, 1, "longer than"},
		{"too large", big, ErrKnownPeersTooLarge, len(strings.Split(big, "\n")) - 1, "larger than"},
		{"no peer ID", "\nalice\n", ErrKnownPeersSyntax, 2, "no peer ID"},
		{"short peer ID", "alice abcdef\n", ErrKnownPeersSyntax, 1, "peer ID"},
		{"bad name", "# c\n# c\nalice:99999 " + id + "\n", ErrKnownPeersSyntax, 3, "port"},
		{"control character", "alice " + id + " \x1b[31mred\n", ErrKnownPeersSyntax, 1, "control character"},
		{"CR inside line", "alice\r" + id + "\n", ErrKnownPeersSyntax, 1, "control character"},
		{"not UTF-8", "alice " + id + " caf\xe9\n", ErrKnownPeersSyntax, 1, "UTF-8"},
		{"conflict", "alice " + id + "\nbob " + id + "\n# x\nALICE " + other + "\n", ErrKnownPeersConflict, 4, "also on line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeKnownPeers(t, c.content)
			k, err := LoadKnownPeers(path)
			var kerr *KnownPeersError
			if !errors.As(err, &kerr) || k != nil {
				t.Fatalf("LoadKnownPeers = %v, %v; want *KnownPeersError", k, err)
			}
			if !errors.Is(err, c.err) || kerr.File != path || kerr.Line != c.line {
				t.Errorf("error %#v; want %v at line %d", kerr, c.err, c.line)
			}
			if want := fmt.Sprintf("%s:%d: ", path, c.line); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.say) {
				t.Errorf("error text %q lacks %q or %q", err, want, c.say)
			}
		})
	}
}

func TestKnownPeersLineBound(t *testing.T) {
	id := testID("x").String()
	name := "alice "
	pad := MaxKnownPeersLine - len(name) - len(id) - 1
	exact := name + id + " " + strings.Repeat("c", pad)
	if len(exact) != MaxKnownPeersLine {
		t.Fatal("bad test setup")
	}
	for _, ending := range []string{"\n", "\r\n", ""} {
		if _, err := LoadKnownPeers(writeKnownPeers(t, exact+ending)); err != nil {
			t.Errorf("line of exactly %d bytes ending %q: %v", MaxKnownPeersLine, ending, err)
		}
		if _, err := LoadKnownPeers(writeKnownPeers(t, exact+"c"+ending)); !errors.Is(err, ErrKnownPeersLineTooLong) {
			t.Errorf("line of %d bytes ending %q: %v", MaxKnownPeersLine+1, ending, err)
		}
	}
}

func TestKnownPeersCheck(t *testing.T) {
	a, b := testID("a"), testID("b")
	path := writeKnownPeers(t, "# c\n[::1]:7700 "+a.String()+"\n")
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Check("[0:0::1]:7700", a); err != nil {
		t.Errorf("Check of the known ID: %v", err)
	}
	if err := k.Check("[::1]:7701", a); err != ErrUnknownPeer {
		t.Errorf("Check of an unknown name: %v, want ErrUnknownPeer", err)
	}
	if err := k.Check("::1:7700", a); !errors.Is(err, ErrBadPeerName) {
		t.Errorf("Check of a bad name: %v, want ErrBadPeerName", err)
	}
	err = k.Check("[::1]:7700", b)
	var kc *KeyChangedError
	if !errors.As(err, &kc) {
		t.Fatalf("Check of another ID: %v, want *KeyChangedError", err)
	}
	want := KeyChangedError{Name: "[::1]:7700", Known: a, Got: b, File: path, Line: 2}
	if *kc != want {
		t.Errorf("KeyChangedError = %+v, want %+v", *kc, want)
	}
	for _, s := range []string{"delete line 2 of " + path, b.String() + "@[::1]:7700", a.String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not say %q", err, s)
		}
	}
}

func TestKnownPeersAdd(t *testing.T) {
	a, b, c := testID("a"), testID("b"), testID("c")
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Add("Alice.LAN:7700", a); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := k.Add("[::1]:7700", b); err != nil {
		t.Fatal(err)
	}
	wantFile := "alice.lan:7700 " + a.String() + "\n[::1]:7700 " + b.String() + "\n"
	checkFile(t, path, wantFile)

	// Adding what is on record changes nothing.
	if err := k.Add("alice.lan:7700", a); err != nil {
		t.Errorf("re-adding: %v", err)
	}
	checkFile(t, path, wantFile)

	// A changed key is refused, pointing at the line on record.
	var kc *KeyChangedError
	if err := k.Add("[::1]:7700", c); !errors.As(err, &kc) || kc.Line != 2 || kc.Known != b {
		t.Errorf("adding a changed key: %v", err)
	}
	checkFile(t, path, wantFile)
	if err := k.Add("bad name", c); !errors.Is(err, ErrBadPeerName) {
		t.Errorf("adding a bad name: %v", err)
	}

	// A fresh load sees what Add wrote.
	k2, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := k2.Lookup("[::1]:7700"); !ok || id != b {
		t.Errorf("reloaded Lookup = %v, %v", id, ok)
	}
}

func TestKnownPeersAddRereads(t *testing.T) {
	a, b := testID("a"), testID("b")
	path := writeKnownPeers(t, "# by hand, no final newline\nalice "+a.String())
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else appends an entry after the load.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nbob " + a.String() + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var kc *KeyChangedError
	if err := k.Add("bob", b); !errors.As(err, &kc) || kc.Line != 3 {
		t.Fatalf("Add after another writer: %v, want *KeyChangedError at line 3", err)
	}
	if err := k.Check("bob", a); err != nil {
		t.Errorf("Check after Add reread the file: %v", err)
	}

	// The user resolves a key change by deleting the line; Add then records
	// the new key.
	if err := os.WriteFile(path, []byte("# by hand, no final newline\nalice "+a.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Add("bob", b); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "# by hand, no final newline\nalice "+a.String()+"\nbob "+b.String()+"\n")
	if err := k.Check("bob", testID("z")); !errors.As(err, &kc) || kc.Line != 3 {
		t.Errorf("line of the appended entry: %v, want 3", err)
	}
}

func TestKnownPeersAddConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownPeersFile)
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("peer-%d-%d:7700", w, i)
				errs <- k.Add(name, testID(name))
				if _, ok := k.Lookup(name); !ok {
					errs <- fmt.Errorf("%s missing after Add", name)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	k2, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if k2.Len() != workers*each || bytes.Count(b, []byte("\n")) != workers*each {
		t.Errorf("%d entries and %d lines, want %d", k2.Len(), bytes.Count(b, []byte("\n")), workers*each)
	}
}

func TestKnownPeersRefusesWritableByOthers(t *testing.T) {
	path := writeKnownPeers(t, "alice "+testID("a").String()+"\n")
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKnownPeers(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("LoadKnownPeers of a group-writable file: %v", err)
	}
	k := &KnownPeers{path: path, byName: map[string]knownEntry{}}
	if err := k.Add("bob", testID("b")); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Add to a group-writable file: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKnownPeers(path); err != nil {
		t.Errorf("a world-readable file is fine: %v", err)
	}
}

func TestKnownPeersNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, fifo} {
		if _, err := LoadKnownPeers(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadKnownPeers(%s): %v", path, err)
		}
	}
}

func TestKnownPeersAddBoundsFile(t *testing.T) {
	line := "# " + strings.Repeat("x", 97) + "\n"
	content := strings.Repeat(line, MaxKnownPeersSize/len(line))
	content += "#" + strings.Repeat("x", MaxKnownPeersSize-len(content)-10) + "\n" // 9 bytes left
	path := writeKnownPeers(t, content)
	k, err := LoadKnownPeers(path)
	if err != nil {
		t.Fatal(err)
	}
	err = k.Add("alice", testID("a"))
	var kerr *KnownPeersError
	if !errors.Is(err, ErrKnownPeersTooLarge) || !errors.As(err, &kerr) || kerr.Line != strings.Count(content, "\n")+1 {
		t.Fatalf("Add to a full file: %v", err)
	}
	checkFile(t, path, content)
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds\n%q\nwant\n%q", path, b, want)
	}
}

func FuzzParseKnownPeers(f *testing.F) {
	id := testID("a").String()
	f.Add([]byte("alice.lan:7700 " + id + " comment\n# c\n\n[::1]:7700\t" + id + "\r\n"))
	f.Add([]byte("bob " + id))
	f.Add([]byte("bob " + id + "\nBOB " + testID("b").String() + "\n"))
	f.Add([]byte("[fe80::1%eth0]:1 " + id + "\n"))
	f.Add([]byte("alice\r" + id + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, st, err := parseKnownPeers(bytes.NewReader(data), "known_peers")
		if err != nil {
			var kerr *KnownPeersError
			if !errors.As(err, &kerr) || kerr.Line < 1 || entries != nil {
				t.Fatalf("error %v is not a located *KnownPeersError", err)
			}
			return
		}
		if st.size != int64(len(data)) {
			t.Fatalf("read %d of %d bytes", st.size, len(data))
		}
		// Entries are canonical, and writing them out reads back the same.
		var out strings.Builder
		for name, e := range entries {
			if c, err := CanonicalPeerName(name); err != nil || c != name {
				t.Fatalf("stored name %q is not canonical: %q, %v", name, c, err)
			}
			if e.line < 1 || e.line > st.lines {
				t.Fatalf("entry %q on line %d of %d", name, e.line, st.lines)
			}
			fmt.Fprintf(&out, "%s %s\n", name, e.id)
		}
		again, _, err := parseKnownPeers(strings.NewReader(out.String()), "again")
		if err != nil || len(again) != len(entries) {
			t.Fatalf("rewritten file: %d entries, %v", len(again), err)
		}
		for name, e := range entries {
			if again[name].id != e.id {
				t.Fatalf("%q changed its ID on rewrite", name)
			}
		}
	})
}

func FuzzCanonicalPeerName(f *testing.F) {
	for _, s := range []string{"alice", "Alice.LAN:07700", "[::1]:7700", "[fe80::1%eth0]:7700", "192.0.2.7",
		"[::ffff:192.0.2.7]:1", "::1", "[192.0.2.7]:80", "İstanbul:80", "a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalPeerName(s)
		if err != nil {
			if !errors.Is(err, ErrBadPeerName) || c != "" {
				t.Fatalf("CanonicalPeerName(%q) = %q, %v", s, c, err)
			}
			return
		}
		c2, err := CanonicalPeerName(c)
		if err != nil || c2 != c {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, c, c2, err)
		}
		if len(c) > MaxPeerNameLen || strings.ContainsAny(c, " \t\n@") {
			t.Fatalf("canonical name %q breaks the rules", c)
		}
	})
}

// TestREADMEExample parses the known_peers example in README.md.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```\n# comment\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no known_peers example starting with '# comment'")
	}
	entries, _, err := parseKnownPeers(strings.NewReader("# comment\n"+example), "README.md")
	if err != nil || len(entries) != 3 {
		t.Fatalf("README example: %d entries, %v", len(entries), err)
	}
}
