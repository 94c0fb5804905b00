package session

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// KnownPeersFile is the known_peers file's name inside a lanpeer home
// directory.
const KnownPeersFile = "known_peers"

// Bounds of a known_peers file. A file or line beyond them is refused with a
// *KnownPeersError before it is held in memory.
const (
	// MaxKnownPeersSize bounds the whole file: about 10,000 entries.
	MaxKnownPeersSize = 1 << 20
	// MaxKnownPeersLine bounds one line, its line break excluded.
	MaxKnownPeersLine = 4096
	// MaxPeerNameLen bounds a peer name in its canonical form.
	MaxPeerNameLen = 255
)

// Errors of known_peers. A *KnownPeersError wraps one of the first four, so
// errors.Is tells the reason while the error text also gives the file and
// line.
var (
	// ErrKnownPeersTooLarge: the file exceeds MaxKnownPeersSize.
	ErrKnownPeersTooLarge = errors.New("session: known_peers file too large")
	// ErrKnownPeersLineTooLong: a line exceeds MaxKnownPeersLine.
	ErrKnownPeersLineTooLong = errors.New("session: known_peers line too long")
	// ErrKnownPeersSyntax: a line is not `NAME PEERID [comment]`.
	ErrKnownPeersSyntax = errors.New("session: known_peers syntax error")
	// ErrKnownPeersConflict: one name appears with two different peer IDs.
	ErrKnownPeersConflict = errors.New("session: known_peers names one peer with two peer IDs")

	// ErrBadPeerName: a name is not HOST:PORT, [IPv6]:PORT or a plain name
	// (see CanonicalPeerName).
	ErrBadPeerName = errors.New("session: bad peer name")
	// ErrUnknownPeer is Check's answer for a name known_peers does not list.
	ErrUnknownPeer = errors.New("session: peer not in known_peers")
)

// KnownPeersError locates a problem in a known_peers file. Err is one of
// ErrKnownPeersTooLarge, ErrKnownPeersLineTooLong, ErrKnownPeersSyntax or
// ErrKnownPeersConflict.
type KnownPeersError struct {
	File   string
	Line   int // 1-based
	Err    error
	Detail string // what is wrong with the line, for people
}

func (e *KnownPeersError) Error() string {
	return fmt.Sprintf("session: %s:%d: %s", e.File, e.Line, e.Detail)
}

// Unwrap returns the reason, one of the ErrKnownPeers* sentinels.
func (e *KnownPeersError) Unwrap() error { return e.Err }

// KeyChangedError is Check's and Add's refusal of a peer that presents a
// peer ID other than the one known_peers holds for its name: either the peer
// replaced its identity key, or someone else is answering in its place.
type KeyChangedError struct {
	Name  string             // canonical peer name
	Known cryptosuite.PeerID // the ID on record
	Got   cryptosuite.PeerID // the ID presented now
	File  string             // the known_peers file
	Line  int                // the line that holds Known
}

func (e *KeyChangedError) Error() string {
	return fmt.Sprintf("session: peer ID of %s has changed: %s:%d records %s, the peer presented %s; "+
		"someone may be impersonating it. If the peer changed its key on purpose, delete line %d of %s "+
		"or pin the new key by dialing %s@%s",
		e.Name, e.File, e.Line, e.Known, e.Got, e.Line, e.File, e.Got, e.Name)
}

// KnownPeers is the trust-on-first-use record of the peers this peer has met,
// like SSH's known_hosts: a name seen once with a peer ID must come back with
// the same peer ID.
//
// # File format
//
// A known_peers file is UTF-8 text, one entry per line:
//
//	NAME PEERID [COMMENT...]
//
// Fields are separated by spaces or tabs. NAME is HOST:PORT (a host name or
// IPv4 address), [IPv6]:PORT (brackets required, zone allowed), or a plain
// name without ':' (a host name, an IPv4 address or a nickname); see
// CanonicalPeerName. Names are compared in canonical form: host names in
// lower case, IP addresses as netip prints them, ports without leading
// zeros. PEERID is the 64 hex characters `lanpeer id` prints. Everything after
// PEERID is a comment. Blank lines and lines whose first non-blank character
// is '#' are ignored; a line may end in CRLF. Control characters other than
// tab are refused.
//
// A name may appear on several lines with the same peer ID (the first line
// counts); with two different peer IDs the file is refused with
// ErrKnownPeersConflict, since picking either would silently decide a key
// change. One peer ID may be listed under several names. A line is at most
// MaxKnownPeersLine bytes and the file at most MaxKnownPeersSize bytes.
//
// # Concurrency
//
// A *KnownPeers is safe for concurrent use. Add rereads the file before it
// appends, so entries written meanwhile by another process or by hand are
// seen, and appends one line in a single write to a file opened with
// O_APPEND. Lookup and Check answer from what was last read.
type KnownPeers struct {
	path string

	mu     sync.Mutex
	byName map[string]knownEntry
}

type knownEntry struct {
	id   cryptosuite.PeerID
	line int
}

// LoadKnownPeers reads the known_peers file at path. A missing file is an
// empty record; Add creates it. A file writable by group or others is
// refused, since whoever can write it decides whom this peer trusts.
func LoadKnownPeers(path string) (*KnownPeers, error) {
	k := &KnownPeers{path: path, byName: map[string]knownEntry{}}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if !fi.Mode().IsRegular() { // checked before opening: opening a FIFO would block
		return nil, fmt.Errorf("session: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	defer f.Close()
	if err := checkKnownPeersFile(f, path); err != nil {
		return nil, err
	}
	entries, _, err := parseKnownPeers(f, path)
	if err != nil {
		return nil, err
	}
	k.byName = entries
	return k, nil
}

func checkKnownPeersFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("session: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("session: %s has mode %04o, so other users can change whom this peer trusts; run 'chmod 600 %s'",
			path, fi.Mode().Perm(), path)
	}
	return nil
}

// Path returns the file the record is read from and appended to.
func (k *KnownPeers) Path() string { return k.path }

// Len returns the number of distinct names on record.
func (k *KnownPeers) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.byName)
}

// Lookup returns the peer ID on record for name. A name that is not a valid
// peer name is not on record.
func (k *KnownPeers) Lookup(name string) (cryptosuite.PeerID, bool) {
	c, err := CanonicalPeerName(name)
	if err != nil {
		return cryptosuite.PeerID{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.byName[c]
	return e.id, ok
}

// Check compares the peer ID a peer presented under name with the record: nil
// if they are equal, ErrUnknownPeer if name is not on record (the caller then
// decides whether to trust on first use and Add it), a *KeyChangedError if
// the record holds another ID, and an error wrapping ErrBadPeerName for a
// malformed name.
func (k *KnownPeers) Check(name string, id cryptosuite.PeerID) error {
	c, err := CanonicalPeerName(name)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.checkLocked(c, id)
}

func (k *KnownPeers) checkLocked(name string, id cryptosuite.PeerID) error {
	e, ok := k.byName[name]
	if !ok {
		return ErrUnknownPeer
	}
	if e.id != id {
		return &KeyChangedError{Name: name, Known: e.id, Got: id, File: k.path, Line: e.line}
	}
	return nil
}

// Add records name with id: it rereads the file, then appends the line
// `NAME PEERID` (creating the file with mode 0600 if needed). Adding an entry
// already on record is a no-op; a name on record with another ID is refused
// with a *KeyChangedError and the file is left as it is.
func (k *KnownPeers) Add(name string, id cryptosuite.PeerID) error {
	c, err := CanonicalPeerName(name)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()

	f, err := os.OpenFile(k.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer f.Close()
	if err := checkKnownPeersFile(f, k.path); err != nil {
		return err
	}
	entries, st, err := parseKnownPeers(f, k.path)
	if err != nil {
		return err
	}
	k.byName = entries

	switch err := k.checkLocked(c, id); {
	case err == nil:
		return nil
	case !errors.Is(err, ErrUnknownPeer):
		return err
	}

	line := c + " " + id.String() + "\n"
	if st.size > 0 && !st.endsInNewline {
		line = "\n" + line // a hand-edited last line without its line break
	}
	if st.size+int64(len(line)) > MaxKnownPeersSize {
		return &KnownPeersError{File: k.path, Line: st.lines + 1, Err: ErrKnownPeersTooLarge,
			Detail: fmt.Sprintf("adding %s would make the file larger than %d bytes; remove entries no longer needed", c, MaxKnownPeersSize)}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("session: writing %s: %w", k.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("session: writing %s: %w", k.path, err)
	}
	k.byName[c] = knownEntry{id: id, line: st.lines + 1}
	return nil
}

// knownPeersStat describes the file as parseKnownPeers read it.
type knownPeersStat struct {
	size          int64
	lines         int
	endsInNewline bool
}

// parseKnownPeers reads a known_peers file from r; file names it in errors.
// It holds at most one line of MaxKnownPeersLine bytes at a time and stops at
// MaxKnownPeersSize.
func parseKnownPeers(r io.Reader, file string) (map[string]knownEntry, knownPeersStat, error) {
	entries := map[string]knownEntry{}
	var st knownPeersStat
	br := bufio.NewReaderSize(io.LimitReader(r, MaxKnownPeersSize+1), 4096)
	for {
		raw, err := readBoundedLine(br)
		if len(raw) == 0 && err == io.EOF {
			break
		}
		st.lines++
		st.size += int64(len(raw))
		if st.size > MaxKnownPeersSize {
			return nil, st, &KnownPeersError{File: file, Line: st.lines, Err: ErrKnownPeersTooLarge,
				Detail: fmt.Sprintf("file is larger than %d bytes", MaxKnownPeersSize)}
		}
		if errors.Is(err, errLineTooLong) {
			return nil, st, &KnownPeersError{File: file, Line: st.lines, Err: ErrKnownPeersLineTooLong,
				Detail: fmt.Sprintf("line is longer than %d bytes", MaxKnownPeersLine)}
		}
		if err != nil && err != io.EOF {
			return nil, st, fmt.Errorf("session: reading %s: %w", file, err)
		}
		st.endsInNewline = bytes.HasSuffix(raw, []byte("\n"))
		name, id, ok, detail := parseKnownPeersLine(raw)
		if detail != "" {
			return nil, st, &KnownPeersError{File: file, Line: st.lines, Err: ErrKnownPeersSyntax, Detail: detail}
		}
		if ok {
			if prev, dup := entries[name]; !dup {
				entries[name] = knownEntry{id: id, line: st.lines}
			} else if prev.id != id {
				return nil, st, &KnownPeersError{File: file, Line: st.lines, Err: ErrKnownPeersConflict,
					Detail: fmt.Sprintf("%s is also on line %d with another peer ID; delete the line that is wrong", name, prev.line)}
			}
		}
		if err == io.EOF {
			break
		}
	}
	return entries, st, nil
}

var errLineTooLong = errors.New("line too long")

// readBoundedLine returns the next line with its line break. A line longer
// than MaxKnownPeersLine (line break excluded) gives errLineTooLong, and at
// most MaxKnownPeersLine+2 bytes and one buffer of it are held. At the end of
// input it returns io.EOF, with the last line if that has no line break.
func readBoundedLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxKnownPeersLine+2 { // content, '\r', '\n'
			return line, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(content) > MaxKnownPeersLine {
			return line, errLineTooLong
		}
		return line, err
	}
}

// parseKnownPeersLine parses one line. ok is false for blank and comment
// lines; detail is non-empty for a malformed line.
func parseKnownPeersLine(raw []byte) (name string, id cryptosuite.PeerID, ok bool, detail string) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if !utf8.ValidString(s) {
		return "", id, false, "line is not valid UTF-8"
	}
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			return "", id, false, fmt.Sprintf("line holds the control character %U", r)
		}
	}
	s = strings.Trim(s, " \t")
	if s == "" || s[0] == '#' {
		return "", id, false, ""
	}
	rawName, rest := cutField(s)
	rawID, _ := cutField(rest)
	if rawID == "" {
		return "", id, false, "want NAME PEERID [comment], found no peer ID"
	}
	name, err := CanonicalPeerName(rawName)
	if err != nil {
		return "", id, false, err.Error()
	}
	id, err = cryptosuite.ParsePeerID(rawID)
	if err != nil {
		return "", id, false, fmt.Sprintf("peer ID %q: %v", truncate(rawID, 80), err)
	}
	return name, id, true, ""
}

// cutField splits s at its first run of spaces and tabs.
func cutField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// CanonicalPeerName checks a peer name and returns its canonical form, the
// form known_peers stores and compares:
//
//   - HOST:PORT with a host name or IPv4 address, e.g. alice.lan:7700;
//   - [IPv6]:PORT, brackets required, e.g. [::1]:7700 or [fe80::1%eth0]:7700;
//   - a plain name without ':', e.g. alice or 192.0.2.7.
//
// Host names and plain names are lower-cased, IP addresses written as
// net/netip prints them, ports (1 to 65535, digits only) without leading
// zeros. A name has no whitespace or control characters, does not start
// with '#', and has no '@' (PEERID@HOST:PORT is a pinned dial target, not a
// name). Every error wraps ErrBadPeerName.
func CanonicalPeerName(s string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadPeerName, truncate(s, 80), fmt.Sprintf(format, a...))
	}
	switch {
	case s == "":
		return "", fmt.Errorf("%w: empty name", ErrBadPeerName)
	case len(s) > MaxPeerNameLen:
		return bad("longer than %d bytes", MaxPeerNameLen)
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case s[0] == '#':
		return bad("starts with '#'")
	case strings.ContainsRune(s, '@'):
		return bad("contains '@' (PEERID@HOST:PORT is a dial target; the name is the part after '@')")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return bad("contains whitespace or a control character")
		}
	}

	var c string
	if strings.HasPrefix(s, "[") || strings.ContainsRune(s, ':') {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			if ip, e := netip.ParseAddr(s); e == nil && ip.Is6() {
				return bad("an IPv6 address needs brackets and a port, as in [::1]:7700")
			}
			return bad("want HOST:PORT, [IPv6]:PORT or a name without ':'")
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return bad("port must be a number from 1 to 65535")
		}
		if host == "" {
			return bad("no host before the port")
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			host = ip.String()
		} else if strings.HasPrefix(s, "[") {
			return bad("brackets must hold an IPv6 address")
		} else if strings.ContainsAny(host, "[]%") {
			return bad("host contains '[', ']' or '%%'")
		} else {
			host = strings.ToLower(host)
		}
		c = net.JoinHostPort(host, strconv.FormatUint(n, 10))
	} else {
		if strings.ContainsAny(s, "[]") {
			return bad("brackets are only for [IPv6]:PORT")
		}
		if ip, err := netip.ParseAddr(s); err == nil {
			c = ip.String()
		} else {
			c = strings.ToLower(s)
		}
	}
	if len(c) > MaxPeerNameLen {
		return bad("longer than %d bytes", MaxPeerNameLen)
	}
	return c, nil
}
