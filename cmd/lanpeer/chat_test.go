package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestChat: `lanpeer dial TARGET` as a chat, in real processes with piped
// standard input and output. Alice's chat creates a room and invites bob
// and carol; bob's chat joins it by a prefix of its id; carol uses the
// one-shot commands. Each chat prints every line of the room as it
// arrives, its own included, with sequence number and sender; a rotation
// reaches bob's chat as a key sync it handles; /history reprints; /msg
// and a line before any room reach the host as direct messages. Bob
// leaves, and alice's chat removes him with a new epoch; alice cannot
// leave. /help lists the commands; /quit ends each chat with status 0.
func TestChat(t *testing.T) {
	hostHome := filepath.Join(t.TempDir(), "host")
	l, addr, hostID := startListenProc(t, hostHome, "--key", "ed25519", "--handshake-rate", "-1")
	alice, aliceID := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	carol, carolID := newPeer(t, "carol")
	dial := func(home string, args ...string) string {
		t.Helper()
		r := lanpeer(t, append([]string{"dial", "--home", home, addr}, args...)...)
		if r.code != exitOK {
			t.Fatalf("%q: %+v", args, r)
		}
		return r.stdout
	}
	dial(bob, "room", "list")
	dial(carol, "room", "list")
	q := regexp.QuoteMeta

	a := startProc(t, "dial", "--home", alice, addr)
	waitMatch(t, a.stderr, "lanpeer: connected to "+hostID)
	a.typeLine(t, "/help")
	for _, cmd := range []string{"/rooms", "/join ROOM", "/create [--cipher C] NAME", "/invite PEERID", "/remove PEERID",
		"/rotate", "/info", "/leave", "/history [N]", "/msg PEERID TEXT", "/help", "/quit"} {
		waitMatch(t, a.stdout, "(?m)^"+q(cmd)+" ")
	}
	a.typeLine(t, "a line before any room")
	waitMatch(t, l.stdout, q(aliceID+" a line before any room\n"))

	a.typeLine(t, "/create --cipher aes256gcm lunch plans")
	rid := waitMatch(t, a.stdout, `(?m)^([0-9a-f]{32})\n`)[1]
	waitMatch(t, a.stderr, q(`lanpeer: in room `+rid+` "lunch plans" (epoch 1, 0 messages)`))
	a.typeLine(t, "/invite "+bobID)
	a.typeLine(t, "/invite "+carolID)
	waitMatch(t, a.stderr, q("lanpeer: room "+rid+" is at epoch 3\n"))

	b := startProc(t, "dial", "--home", bob, addr)
	waitMatch(t, b.stderr, "lanpeer: connected to "+hostID)
	b.typeLine(t, "/join "+rid[:8])
	waitMatch(t, b.stderr, q(`lanpeer: in room `+rid+` "lunch plans" (epoch 3, 0 messages)`))

	a.typeLine(t, "hello from alice")
	for _, p := range []*proc{a, b} {
		waitMatch(t, p.stdout, q("1 "+aliceID+" hello from alice\n"))
	}
	b.typeLine(t, "hi alice")
	for _, p := range []*proc{a, b} {
		waitMatch(t, p.stdout, q("2 "+bobID+" hi alice\n"))
	}
	if got := dial(carol, "send", rid, "carol\there"); got != "3\n" {
		t.Fatalf("carol's send printed %q", got)
	}
	for _, p := range []*proc{a, b} {
		waitMatch(t, p.stdout, q("3 "+carolID+` carol\there`+"\n"))
	}
	want := "1 " + aliceID + " hello from alice\n2 " + bobID + " hi alice\n3 " + carolID + ` carol\there` + "\n"
	if got := dial(carol, "read", rid); got != want {
		t.Fatalf("carol read %q, want %q", got, want)
	}

	// A rotation: bob's chat fetches, opens and acknowledges the new key.
	a.typeLine(t, "/rotate")
	waitMatch(t, b.stderr, q("lanpeer: room "+rid+": the room key of epoch 4 is here\n"))
	b.typeLine(t, "//slash after rotate")
	for _, p := range []*proc{a, b} {
		waitMatch(t, p.stdout, q("4 "+bobID+" /slash after rotate\n"))
	}
	if info := dial(alice, "room", "info", rid); !strings.Contains(info, "member "+bobID+" member acked 4\n") {
		t.Fatalf("room info after the rotation:\n%s", info)
	}
	b.typeLine(t, "/history 2")
	waitMatch(t, b.stdout, q("4 "+bobID+" /slash after rotate\n3 "+carolID+` carol\there`+"\n4 "+bobID+" /slash after rotate\n"))
	b.typeLine(t, "/msg "+hostID[:10]+" a word with the host")
	waitMatch(t, l.stdout, q(bobID+" a word with the host\n"))
	b.typeLine(t, "/msg "+aliceID+" not the host")
	waitMatch(t, b.stderr, q("lanpeer: /msg "+aliceID+": direct messages go to the peer this session is with, "+hostID))
	b.typeLine(t, "/frobnicate")
	waitMatch(t, b.stderr, q("lanpeer: unknown command /frobnicate: /help lists the commands"))

	// Bob leaves; alice's chat, connected, removes him under a new epoch.
	b.typeLine(t, "/leave")
	waitMatch(t, b.stderr, q("lanpeer: left room "+rid))
	waitMatch(t, a.stderr, q("lanpeer: room "+rid+": removed "+bobID+", who left\n"))
	a.typeLine(t, "after bob left")
	waitMatch(t, a.stdout, q("5 "+aliceID+" after bob left\n"))
	if got := dial(carol, "read", "--after", "4", rid); got != "5 "+aliceID+" after bob left\n" {
		t.Fatalf("carol read %q", got)
	}
	if info := dial(carol, "room", "info", rid); !strings.Contains(info, "epoch 5\n") || strings.Contains(info, bobID) {
		t.Fatalf("room info after bob left:\n%s", info)
	}
	b.typeLine(t, "still here?")
	waitMatch(t, l.stdout, q(bobID+" still here?\n")) // no room joined: a direct message
	a.typeLine(t, "/leave")
	waitMatch(t, a.stderr, q("the master cannot leave its room: delete the room instead"))

	for _, p := range []*proc{a, b} {
		p.typeLine(t, "/quit")
		if code := p.wait(t); code != exitOK {
			t.Fatalf("chat after /quit: exit %d\n%s", code, p.stderr.String())
		}
	}
	if strings.Contains(b.stdout.String(), "after bob left") {
		t.Fatal("bob's chat printed a message sent after he left")
	}
}
