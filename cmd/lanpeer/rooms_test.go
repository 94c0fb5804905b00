package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// newPeer makes a home with a fresh Ed25519 identity and returns it with
// the peer ID.
func newPeer(t *testing.T, name string) (home, id string) {
	t.Helper()
	home = filepath.Join(t.TempDir(), name)
	r := lanpeer(t, "init", "--home", home, "--key", "ed25519")
	if r.code != exitOK {
		t.Fatalf("init %s: %+v", name, r)
	}
	r = lanpeer(t, "id", "--home", home)
	if r.code != exitOK {
		t.Fatalf("id %s: %+v", name, r)
	}
	return home, strings.TrimSpace(r.stdout)
}

// TestRooms: three peers in-process. The host serves rooms; alice creates
// one and invites bob once bob has dialed the host; bob reads alice's
// message; after a rotation and bob's removal, bob cannot read the new
// messages. Standard output carries only the results.
func TestRooms(t *testing.T) {
	var hosted store.Store
	defer func(f func(int) (store.Store, error)) { newRoomStore = f }(newRoomStore)
	newRoomStore = func(history int) (store.Store, error) {
		st, err := memory.New(memory.Options{HistoryPerRoom: history})
		hosted = st
		return st, err
	}
	_, addr, _ := startListen(t, filepath.Join(t.TempDir(), "host"), "--key", "ed25519", "--handshake-rate", "-1")
	alice, aliceID := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	dial := func(home string, args ...string) result {
		t.Helper()
		return lanpeer(t, append([]string{"dial", "--home", home, addr}, args...)...)
	}
	ok := func(r result, what string) string {
		t.Helper()
		if r.code != exitOK {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}

	out := ok(dial(alice, "room", "create", "--cipher", "chacha20poly1305", "lunch"), "room create")
	if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(out) {
		t.Fatalf("room create printed %q, want a room id", out)
	}
	rid := strings.TrimSpace(out)
	if fi, err := os.Stat(filepath.Join(alice, roomsDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("rooms directory: %v, %v", fi, err)
	}

	// bob has never dialed: the host has no key package of his.
	r := dial(alice, "room", "invite", rid, bobID)
	if r.code == exitOK || !strings.Contains(r.stderr, "must run a room command on this host once") {
		t.Fatalf("invite before bob dialed: %+v", r)
	}
	if got := ok(dial(bob, "room", "list"), "bob's room list"); got != "" {
		t.Fatalf("bob's rooms before the invite: %q", got)
	}
	ok(dial(alice, "room", "invite", rid, bobID), "invite")
	if got, want := ok(dial(bob, "room", "list"), "bob's room list"), rid+" lunch member 2\n"; got != want {
		t.Fatalf("bob's room list: %q, want %q", got, want)
	}

	if got := ok(dial(alice, "send", rid, "hello bob"), "send"); got != "1\n" {
		t.Fatalf("send printed %q, want 1", got)
	}
	if got, want := ok(dial(bob, "read", rid), "bob's read"), "1 "+aliceID+" hello bob\n"; got != want {
		t.Fatalf("bob read %q, want %q", got, want)
	}
	if got := ok(dial(bob, "send", rid, "hi\nalice"), "bob's send"); got != "2\n" {
		t.Fatalf("bob's send printed %q", got)
	}
	if got, want := ok(dial(alice, "read", "--after", "1", rid), "alice's read"), "2 "+bobID+` hi\nalice`+"\n"; got != want {
		t.Fatalf("alice read %q, want %q", got, want)
	}

	ok(dial(alice, "room", "rotate", rid), "rotate")
	// bob's state is at epoch 2; his send catches up to epoch 3 first.
	if got := ok(dial(bob, "send", rid, "after rotate"), "bob's send after rotate"); got != "3\n" {
		t.Fatalf("bob's send after rotate printed %q", got)
	}
	info := ok(dial(alice, "room", "info", rid), "info")
	for _, want := range []string{"epoch 3\n", "member " + aliceID + " master acked 3\n", "member " + bobID + " member acked 3\n"} {
		if !strings.Contains(info, want) {
			t.Fatalf("room info lacks %q:\n%s", want, info)
		}
	}

	ok(dial(alice, "room", "remove", rid, bobID), "remove")
	ok(dial(alice, "send", rid, "secret"), "send after remove")
	r = dial(bob, "read", "--after", "3", rid)
	if r.code == exitOK || r.stdout != "" || !strings.Contains(r.stderr, "not a member") {
		t.Fatalf("bob's read after removal: %+v", r)
	}
	if got, want := ok(dial(alice, "read", "--after", "3", rid), "alice's read"), "4 "+aliceID+" secret\n"; got != want {
		t.Fatalf("alice read %q, want %q", got, want)
	}

	// bob holds no key of the epoch that excludes him.
	bobHost := newRoomHome(bob)
	entries, err := os.ReadDir(bobHost.dir)
	if err != nil {
		t.Fatal(err)
	}
	var hostID string
	for _, e := range entries {
		if e.Name() != keyPackagesDir {
			hostID = e.Name()
		}
	}
	b, err := os.ReadFile(filepath.Join(bobHost.dir, hostID, rid+".json"))
	if err != nil {
		t.Fatal(err)
	}
	bst, err := room.ParseMemberState(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := bst.Head(); head != 3 || !bst.HasKey(3) || bst.HasKey(4) {
		t.Fatalf("bob's state: head %d, key 3 %v, key 4 %v; want head 3 with its key, none of 4", head, bst.HasKey(3), bst.HasKey(4))
	}

	// The host holds the messages, and none of their texts.
	id, err := parseRoomID(rid)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := hosted.ReadMessages(t.Context(), id, 0, 10)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("the host's store holds %d messages (%v), want 4", len(msgs), err)
	}
	for _, m := range msgs {
		for _, text := range []string{"hello bob", "hi\nalice", "after rotate", "secret"} {
			for _, form := range []string{text, hex.EncodeToString([]byte(text)), base64.StdEncoding.EncodeToString([]byte(text))} {
				if bytes.Contains(m.Blob, []byte(form)) {
					t.Fatalf("message %d as stored holds %q", m.Seq, form)
				}
			}
		}
	}

	// bob cannot delete the room; alice can, and it is gone.
	if r := dial(bob, "room", "delete", rid); r.code == exitOK {
		t.Fatalf("bob deleted the room: %+v", r)
	}
	ok(dial(alice, "room", "delete", rid), "delete")
	if got := ok(dial(alice, "room", "list"), "list after delete"); got != "" {
		t.Fatalf("alice's rooms after delete: %q", got)
	}
}

// TestRoomFollow: read --follow prints what is sent while it runs, across
// a new epoch.
func TestRoomFollow(t *testing.T) {
	host, addr, _ := startListen(t, filepath.Join(t.TempDir(), "host"), "--key", "ed25519", "--handshake-rate", "-1")
	alice, aliceID := newPeer(t, "alice")
	r := lanpeer(t, "dial", "--home", alice, addr, "room", "create", "notes")
	if r.code != exitOK {
		t.Fatalf("create: %+v", r)
	}
	rid := strings.TrimSpace(r.stdout)
	f := start(t, "dial", "--home", alice, "--json", addr, "read", "--follow", rid)
	// Once the follower has its session (the second one the host saw),
	// what is sent reaches it by push, or by its first read.
	waitMatch(t, host.stderr, `(?s)connected from.*connected from`)
	for _, text := range []string{"one", "two"} {
		if r := lanpeer(t, "dial", "--home", alice, addr, "send", rid, text); r.code != exitOK {
			t.Fatalf("send: %+v", r)
		}
	}
	defer func() {
		if t.Failed() {
			t.Log(f.stderr.String())
		}
	}()
	waitMatch(t, f.stdout, `\{"seq":1,"sender":"`+aliceID+`","text":"one","time":"[^"]+"\}\n\{"seq":2,"sender":"`+aliceID+`","text":"two","time":"[^"]+"\}\n`)
	// A new epoch while following: the follower fetches the new key.
	if r := lanpeer(t, "dial", "--home", alice, addr, "room", "rotate", rid); r.code != exitOK {
		t.Fatalf("rotate: %+v", r)
	}
	if r := lanpeer(t, "dial", "--home", alice, addr, "send", rid, "three"); r.code != exitOK {
		t.Fatalf("send: %+v", r)
	}
	waitMatch(t, f.stdout, `\n\{"seq":3,"sender":"`+aliceID+`","text":"three","time":"[^"]+"\}\n$`)
	f.cancel()
	if code := f.wait(t); code != exitOK {
		t.Fatalf("read --follow after interrupt: exit %d\n%s", code, f.stderr.String())
	}
}

func TestReadRoomText(t *testing.T) {
	if got, err := readRoomText(strings.NewReader("a\r\nb\r\n")); err != nil || got != "a\nb" {
		t.Fatalf("readRoomText = %q, %v", got, err)
	}
	if _, err := readRoomText(strings.NewReader(strings.Repeat("x", 2*room.MaxTextSize+3))); err == nil {
		t.Fatal("an oversized standard input was accepted")
	}
	if _, err := readRoomText(strings.NewReader("\x00")); err == nil {
		t.Fatal("a control character was accepted")
	}
}

// TestRoomStateFiles: the key package secrets are a private file, reused
// while valid, renewed before expiry, and the old ones stay readable.
func TestRoomStateFiles(t *testing.T) {
	home, _ := newPeer(t, "x")
	ident, _, err := loadIdentity(home)
	if err != nil {
		t.Fatal(err)
	}
	h := newRoomHome(home)
	now := time.Now()
	s1, err := h.currentSecrets(ident, now)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := h.currentSecrets(ident, now)
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyPackage().Hash() != s2.KeyPackage().Hash() {
		t.Fatal("a second use made a new key package")
	}
	fi, err := os.Stat(h.keyPackagePath(s1.KeyPackage().Hash()))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key package file: %v, %v", fi, err)
	}
	s3, err := h.currentSecrets(ident, now.Add(room.DefaultKeyPackageLifetime-keyPackageRenewal/2))
	if err != nil {
		t.Fatal(err)
	}
	if s3.KeyPackage().Hash() == s1.KeyPackage().Hash() {
		t.Fatal("an expiring key package was reused")
	}
	if _, err := h.secretsFor(s1.KeyPackage().Hash()); err != nil {
		t.Fatal(err)
	}
}

// TestRoomUsage: room command lines that cannot be right are refused with
// exit 2 and the fix, before anything is dialed.
func TestRoomUsage(t *testing.T) {
	home, _ := newPeer(t, "u")
	const target = "127.0.0.1:1" // never dialed
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"room"}, "missing COMMAND"},
		{[]string{"room", "frob"}, `unknown room command "frob"`},
		{[]string{"room", "info"}, "missing ROOM"},
		{[]string{"room", "info", "abc"}, `ROOM "abc": want a room id, 32 hex characters`},
		{[]string{"room", "invite", "00112233445566778899aabbccddeeff", "bob"}, `PEERID "bob": want a peer ID`},
		{[]string{"room", "create", "--cipher", "rot13", "x"}, `--cipher "rot13"`},
		{[]string{"room", "create", "two\nlines"}, "NAME:"},
		{[]string{"send", "00112233445566778899aabbccddeeff"}, "want ROOM and TEXT"},
		{[]string{"read", "--limit", "-1", "00112233445566778899aabbccddeeff"}, "--limit -1"},
	} {
		r := lanpeer(t, append([]string{"dial", "--home", home, target}, tc.args...)...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: %+v; want exit %d and %q", tc.args, r, exitUsage, tc.want)
		}
	}
}

// TestListenStoreUsage: a --store or --history listen cannot use is
// refused with exit 2 before the identity is created or anything listens.
func TestListenStoreUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "redis://x"}, `--store "redis://x": want memory or a MongoDB URI`},
		{[]string{"--store", "mongodb://a:b:c/"}, "--store: mongo: bad options"},
		{[]string{"--store", "mongodb://127.0.0.1:1/db", "--history", "5"}, "--history applies to --store memory only"},
		{[]string{"--history", "0"}, "--history 0: want at least 1"},
	} {
		home := filepath.Join(t.TempDir(), "h")
		r := lanpeer(t, append([]string{"listen", "--home", home, "--tcp", "127.0.0.1:0"}, tc.args...)...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("listen %q: %+v; want exit %d and %q", tc.args, r, exitUsage, tc.want)
		}
		if _, err := os.Stat(filepath.Join(home, identityFile)); err == nil {
			t.Errorf("listen %q created an identity", tc.args)
		}
	}
}

// TestRoomSendStale: a send sealed under an epoch the room has just left
// behind is refused by the host; send catches up and sends the message
// again, under the new epoch with the same id, and it is stored once.
func TestRoomSendStale(t *testing.T) {
	_, addr, _ := startListen(t, filepath.Join(t.TempDir(), "host"), "--key", "ed25519", "--handshake-rate", "-1")
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	dial := func(home string, args ...string) result {
		t.Helper()
		r := lanpeer(t, append([]string{"dial", "--home", home, addr}, args...)...)
		if r.code != exitOK {
			t.Fatalf("%q: %+v", args, r)
		}
		return r
	}
	dial(bob, "room", "list")
	rid := strings.TrimSpace(dial(alice, "room", "create", "r").stdout)
	dial(alice, "room", "invite", rid, bobID)
	dial(bob, "room", "join", rid)

	rotations := 0
	defer func() { beforeRoomSend = nil }()
	beforeRoomSend = func() {
		if rotations == 0 { // the first attempt only
			dial(alice, "room", "rotate", rid)
		}
		rotations++
	}
	if got := dial(bob, "send", rid, "late").stdout; got != "1\n" {
		t.Fatalf("send printed %q, want 1", got)
	}
	beforeRoomSend = nil
	if rotations != 2 {
		t.Fatalf("send sealed %d times, want 2 (refused once under the old epoch)", rotations)
	}
	if got, want := dial(alice, "read", rid).stdout, "1 "+bobID+" late\n"; got != want {
		t.Fatalf("alice read %q, want %q", got, want)
	}
	if got := dial(alice, "room", "info", rid).stdout; !strings.Contains(got, "epoch 3\n") || !strings.Contains(got, "messages 1-1\n") {
		t.Fatalf("room info:\n%s", got)
	}
}

// roomPeers starts a host and makes homes for alice (who creates a room),
// bob and carol (invited); it returns the host's address and a dial
// helper that fails the test on a non-zero exit.
type roomPeers struct {
	t                       *testing.T
	addr, hostID            string
	alice, bob, carol       string // homes
	aliceID, bobID, carolID string
	rid                     string
}

func newRoomPeers(t *testing.T) *roomPeers {
	t.Helper()
	rp := &roomPeers{t: t}
	_, rp.addr, rp.hostID = startListen(t, filepath.Join(t.TempDir(), "host"), "--key", "ed25519", "--handshake-rate", "-1")
	rp.alice, rp.aliceID = newPeer(t, "alice")
	rp.bob, rp.bobID = newPeer(t, "bob")
	rp.carol, rp.carolID = newPeer(t, "carol")
	rp.ok(rp.bob, "room", "list")
	rp.ok(rp.carol, "room", "list")
	rp.rid = strings.TrimSpace(rp.ok(rp.alice, "room", "create", "three"))
	rp.ok(rp.alice, "room", "invite", rp.rid, rp.bobID)
	rp.ok(rp.alice, "room", "invite", rp.rid, rp.carolID)
	return rp
}

func (rp *roomPeers) dial(home string, args ...string) result {
	rp.t.Helper()
	return lanpeer(rp.t, append([]string{"dial", "--home", home, rp.addr}, args...)...)
}

// ok runs a dial command and returns its standard output.
func (rp *roomPeers) ok(home string, args ...string) string {
	rp.t.Helper()
	r := rp.dial(home, args...)
	if r.code != exitOK {
		rp.t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestRoomLeave: three peers. A member's leave is applied by the host at
// once; the master's client turns it into a remove commit as soon as it is
// connected: while it follows the room, or with its next command. The
// members who left read nothing after; the master cannot leave, and the
// error says to delete the room.
func TestRoomLeave(t *testing.T) {
	rp := newRoomPeers(t)
	rp.ok(rp.bob, "room", "join", rp.rid)
	rp.ok(rp.carol, "room", "join", rp.rid)
	if got := rp.ok(rp.alice, "send", rp.rid, "before"); got != "1\n" {
		t.Fatalf("send printed %q", got)
	}

	// The master follows the room; bob leaves: its client removes him.
	f := start(t, "dial", "--home", rp.alice, rp.addr, "read", "--follow", rp.rid)
	waitMatch(t, f.stdout, "^1 "+rp.aliceID+" before\n$")
	r := rp.dial(rp.bob, "room", "leave", rp.rid)
	if r.code != exitOK || !strings.Contains(r.stderr, "left room "+rp.rid) {
		t.Fatalf("bob's leave: %+v", r)
	}
	waitMatch(t, f.stderr, "lanpeer: room "+rp.rid+": removed "+rp.bobID+", who left\n")
	info := rp.ok(rp.carol, "room", "info", rp.rid)
	if !strings.Contains(info, "epoch 4\n") || strings.Contains(info, rp.bobID) {
		t.Fatalf("room info after bob left:\n%s", info)
	}
	f.cancel()
	if code := f.wait(t); code != exitOK {
		t.Fatalf("read --follow: exit %d\n%s", code, f.stderr.String())
	}

	// Carol leaves while the master is away: its next command removes her
	// before it sends, so she holds no key of the message's epoch.
	rp.ok(rp.carol, "room", "leave", rp.rid)
	if got, want := rp.ok(rp.carol, "room", "list"), rp.rid+" three member,left 4\n"; got != want {
		t.Fatalf("carol's room list with her leave pending: %q, want %q", got, want)
	}
	r = rp.dial(rp.alice, "send", rp.rid, "after")
	if r.code != exitOK || r.stdout != "2\n" || !strings.Contains(r.stderr, "removed "+rp.carolID+", who left") {
		t.Fatalf("alice's send after carol left: %+v", r)
	}
	if info := rp.ok(rp.alice, "room", "info", rp.rid); !strings.Contains(info, "epoch 5\n") || strings.Contains(info, rp.carolID) {
		t.Fatalf("room info after carol left:\n%s", info)
	}

	// A third member, dave, leaves; the master's room info removes him
	// before it shows the members.
	dave, daveID := newPeer(t, "dave")
	rp.ok(dave, "room", "list")
	rp.ok(rp.alice, "room", "invite", rp.rid, daveID)
	rp.ok(dave, "room", "leave", rp.rid)
	r = rp.dial(rp.alice, "room", "info", rp.rid)
	if r.code != exitOK || !strings.Contains(r.stdout, "epoch 7\n") || strings.Contains(r.stdout, daveID) ||
		!strings.Contains(r.stderr, "removed "+daveID+", who left") {
		t.Fatalf("the master's room info after dave left: %+v", r)
	}
	for _, home := range []string{rp.bob, rp.carol} {
		if r := rp.dial(home, "read", "--after", "1", rp.rid); r.code == exitOK || r.stdout != "" {
			t.Fatalf("read after leaving: %+v", r)
		}
	}

	r = rp.dial(rp.alice, "room", "leave", rp.rid)
	if r.code != exitFailure || !strings.Contains(r.stderr, "the master cannot leave its room: delete the room instead ('lanpeer dial TARGET room delete "+rp.rid) {
		t.Fatalf("the master's leave: %+v", r)
	}
}

// TestRoomPrefix: a ROOM argument may be a unique prefix of a room id, of
// at least 4 characters; an unknown or ambiguous one is refused and says
// why.
func TestRoomPrefix(t *testing.T) {
	rp := newRoomPeers(t)
	if got := rp.ok(rp.bob, "send", strings.ToUpper(rp.rid[:8]), "by prefix"); got != "1\n" {
		t.Fatalf("send by prefix printed %q", got)
	}
	if got, want := rp.ok(rp.alice, "read", rp.rid[:4]), "1 "+rp.bobID+" by prefix\n"; got != want {
		t.Fatalf("read by prefix: %q, want %q", got, want)
	}
	if got := rp.ok(rp.alice, "room", "info", rp.rid[:6]); !strings.HasPrefix(got, "room "+rp.rid+" three\n") {
		t.Fatalf("room info by prefix:\n%s", got)
	}
	other := "0000"
	if strings.HasPrefix(rp.rid, other) {
		other = "ffff"
	}
	r := rp.dial(rp.alice, "read", other)
	if r.code != exitFailure || !strings.Contains(r.stderr, `no room of this peer's starts with "`+other+`"`) {
		t.Fatalf("an unknown prefix: %+v", r)
	}
	r = rp.dial(rp.alice, "read", rp.rid[:3])
	if r.code != exitUsage || !strings.Contains(r.stderr, "or a unique prefix of one (at least 4") {
		t.Fatalf("a prefix of 3: %+v", r)
	}

	a, _ := parseRoomID("abcd0000000000000000000000000000")
	b, _ := parseRoomID("abcd1111111111111111111111111111")
	known := map[store.RoomID]string{a: "one", b: ""}
	ref, err := parseRoomRef("ABCD")
	if err != nil {
		t.Fatal(err)
	}
	_, err = matchRoom(ref, known)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), `ROOM "abcd" is ambiguous: 2 rooms start with it (`+a.String()+" one, "+b.String()+"); give more characters") {
		t.Fatalf("an ambiguous prefix: %v", err)
	}
	if ref, _ = parseRoomRef("abcd1"); func() store.RoomID { id, _ := matchRoom(ref, known); return id }() != b {
		t.Fatal("abcd1 did not pick the one room it starts")
	}
}

// TestRoomLock: the lock of a room's state is exclusive while held (a
// waiter gives up when its context ends, saying why) and free once
// released; concurrent master commands from one home do not lose an
// update: each rotation starts from the one before, and all of them land.
func TestRoomLock(t *testing.T) {
	rp := newRoomPeers(t)
	h := newRoomHome(rp.alice)
	host, err := cryptosuite.ParsePeerID(rp.hostID)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := parseRoomID(rp.rid)
	unlock, err := h.lockRoom(t.Context(), host, id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.lockRoom(ctx, host, id); err == nil || !strings.Contains(err.Error(), "another lanpeer command from this home holds room "+rp.rid) {
		t.Fatalf("a second lock while the first is held: %v", err)
	}
	other, _ := parseRoomID("00112233445566778899aabbccddeeff")
	unlockOther, err := h.lockRoom(ctx, host, other)
	if err != nil {
		t.Fatalf("another room's lock while the first is held: %v", err)
	}
	unlockOther()
	unlock()
	if unlock, err = h.lockRoom(ctx, host, id); err != nil {
		t.Fatalf("the lock after its release: %v", err)
	}
	unlock()

	// Separate processes (urfave/cli keeps global state, so in-process
	// commands do not run at once).
	const n = 4
	var ps []*proc
	for range n {
		ps = append(ps, startProc(t, "dial", "--home", rp.alice, rp.addr, "room", "rotate", rp.rid))
	}
	for _, p := range ps {
		if code := p.wait(t); code != exitOK {
			t.Errorf("a concurrent rotate: exit %d\n%s", code, p.stderr.String())
		}
	}
	if info := rp.ok(rp.alice, "room", "info", rp.rid); !strings.Contains(info, fmt.Sprintf("epoch %d\n", 3+n)) {
		t.Fatalf("room info after %d concurrent rotations:\n%s", n, info)
	}
	st, err := h.loadState(host, id)
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := st.Head(); head != 3+n || !st.HasKey(head) {
		t.Fatalf("alice's state: head %d, its key %v; want %d", head, st.HasKey(head), 3+n)
	}
}

// TestRoomSendID: a script that sends again with the same --id, not
// knowing whether the first attempt landed, gets the first attempt's
// sequence number back and the room holds the message once; another id
// is another message; a malformed --id is a usage error.
func TestRoomSendID(t *testing.T) {
	rp := newRoomPeers(t)
	const id = "00112233445566778899aabbccddeeff"
	first := rp.ok(rp.bob, "send", "--id", id, rp.rid, "once")
	if first != "1\n" {
		t.Fatalf("first send printed %q", first)
	}
	if again := rp.ok(rp.bob, "send", "--id", id, rp.rid, "once"); again != first {
		t.Fatalf("the same --id sent again printed %q, want %q", again, first)
	}
	if other := rp.ok(rp.bob, "send", "--id", "ffeeddccbbaa99887766554433221100", rp.rid, "twice"); other != "2\n" {
		t.Fatalf("another id printed %q", other)
	}
	want := "1 " + rp.bobID + " once\n2 " + rp.bobID + " twice\n"
	if got := rp.ok(rp.alice, "read", rp.rid); got != want {
		t.Fatalf("read:\n%s\nwant:\n%s", got, want)
	}
	// Another sender cannot take bob's id.
	r := rp.dial(rp.alice, "send", "--id", id, rp.rid, "mine")
	if r.code != exitFailure || !strings.Contains(r.stderr, "taken") {
		t.Fatalf("alice reused bob's message id: %+v", r)
	}
	for _, bad := range []string{"0011", "zz112233445566778899aabbccddeeff"} {
		r := rp.dial(rp.bob, "send", "--id", bad, rp.rid, "x")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--id: want 32 hex digits") {
			t.Fatalf("--id %s: %+v", bad, r)
		}
	}
}
