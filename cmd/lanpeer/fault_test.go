package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChatKilledMidSend (issue 8, faults): a member killed with SIGKILL in
// the middle of a stream of sends. Carol's chat process has a few hundred
// lines queued on its standard input and sends them one after another; it
// is killed once it has printed some of its own messages back, with the
// rest still going out. Meanwhile alice sends with `dial send` processes
// and bob reads with `read --follow`. The listener goes on serving both
// (every one of alice's sends succeeds, bob's reader keeps printing), logs
// the end of every session carol had, and serves carol again when she
// comes back; the room is one dense sequence, each message once, holding
// every message carol's chat printed at the number it printed and every
// send alice saw acknowledged at its number. (A retry with the same
// message id, and a frame cut in two: adversarial's
// TestAdversarialMemberKilledMidSend and TestAdversarialCutMidFrame.)
func TestChatKilledMidSend(t *testing.T) {
	lhome, _ := fixtureHome(t, "ed25519")
	l, addr, hostID := startListenProc(t, lhome, "--handshake-rate", "-1", "--log-level", "info")
	target := hostID + "@" + addr
	alice, _ := newPeer(t, "alice")
	bob, bobID := newPeer(t, "bob")
	carol, carolID := newPeer(t, "carol")
	rid := roomSetup(t, alice, bob, bobID, target, target)
	for _, args := range [][]string{{"--home", carol, target, "room", "list"}, {"--home", alice, target, "room", "invite", rid, carolID},
		{"--home", carol, target, "room", "join", rid}} {
		if r := lanpeer(t, append([]string{"dial"}, args...)...); r.code != exitOK {
			t.Fatalf("dial %q: %+v", args, r)
		}
	}

	reader := startProc(t, "dial", "--home", bob, target, "read", "--follow", rid)
	exe := lanpeerOut(t)
	stop := make(chan struct{})
	var mu sync.Mutex
	var acked []sent
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 500; i++ {
			select {
			case <-stop:
				return
			default:
			}
			text := fmt.Sprintf("alice-%d", i)
			out, err := exe("dial", "--home", alice, target, "send", rid, text)
			var seq uint64
			if err == nil {
				seq, err = strconv.ParseUint(strings.TrimSpace(out), 10, 64)
			}
			mu.Lock()
			if err != nil {
				sendErr = err
				mu.Unlock()
				return
			}
			acked = append(acked, sent{seq, text})
			mu.Unlock()
		}
	})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	aliceSent := func() int {
		mu.Lock()
		defer mu.Unlock()
		if sendErr != nil {
			t.Fatalf("alice's send failed: %v", sendErr)
		}
		return len(acked)
	}
	waitAlice := func(n int) {
		t.Helper()
		deadline := time.Now().Add(hang)
		for aliceSent() < n {
			if time.Now().After(deadline) {
				t.Fatalf("alice has %d sends acknowledged, want %d", aliceSent(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Carol's chat, with its lines queued at once.
	c := startProc(t, "dial", "--home", carol, target)
	c.typeLine(t, "/join "+rid)
	waitMatch(t, c.stderr, regexp.QuoteMeta("lanpeer: in room "+rid))
	const queued = 300
	var lines strings.Builder
	for i := range queued {
		fmt.Fprintf(&lines, "carol-%d\n", i)
	}
	go c.stdin.Write([]byte(lines.String())) // fails once the process is gone
	own := regexp.MustCompile(`(?m)^(\d+) ` + carolID + ` (carol-\d+)\n`)
	deadline := time.Now().Add(hang)
	for len(own.FindAllString(c.stdout.String(), -1)) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("carol's chat printed no messages of hers:\n%s\n%s", c.stdout.String(), c.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != -1 {
		t.Fatalf("carol's chat after SIGKILL: exit %d", code)
	}
	printed := map[string]uint64{}
	for _, m := range own.FindAllStringSubmatch(c.stdout.String(), -1) {
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		printed[m[2]] = seq
	}
	if len(printed) >= queued {
		t.Fatalf("carol's chat sent all %d lines before it was killed", queued)
	}

	// Every session carol had ends on the listener; alice and bob go on.
	established := regexp.MustCompile(`msg="session established" .*peer=` + carolID + ` `)
	ended := regexp.MustCompile(`msg="session ended" .*peer=` + carolID[:12] + ` `)
	deadline = time.Now().Add(hang)
	for {
		log := l.stderr.String()
		e, n := len(established.FindAllString(log, -1)), len(ended.FindAllString(log, -1))
		if e > 0 && e == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener logged %d sessions of carol established and %d ended:\n%s", e, n, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitAlice(aliceSent() + 3)

	// Carol comes back.
	r := lanpeer(t, "dial", "--home", carol, target, "send", rid, "carol is back")
	if r.code != exitOK {
		t.Fatalf("carol's send after the kill: %+v", r)
	}
	waitAlice(aliceSent() + 1)
	halt()
	aliceSent()
	select {
	case <-l.done:
		t.Fatalf("the listener exited: %s", l.stderr.String())
	default:
	}

	r = lanpeer(t, "dial", "--home", bob, target, "read", rid)
	if r.code != exitOK {
		t.Fatalf("read: %+v", r)
	}
	all := parseRoomLines(t, r.stdout)
	texts := checkDense(t, all)
	followed := waitLines(t, reader, len(all))
	if fmt.Sprint(followed[:len(all)]) != fmt.Sprint(all) {
		t.Fatalf("bob's reader printed\n%v\nthe room holds\n%v", followed, all)
	}
	for text, seq := range printed {
		if texts[text] != seq {
			t.Errorf("carol's chat printed %q as %d; the room holds it as %d", text, seq, texts[text])
		}
	}
	for _, s := range acked {
		if texts[s.text] != s.seq {
			t.Errorf("alice's %q was acknowledged as %d; the room holds it as %d", s.text, s.seq, texts[s.text])
		}
	}
	if texts["carol is back"] == 0 {
		t.Error("carol's message after the kill is not stored")
	}
	stored := 0
	for _, line := range all {
		if line.sender == carolID && strings.HasPrefix(line.text, "carol-") {
			stored++
		}
	}
	t.Logf("carol's chat printed %d of its messages before SIGKILL, %d are stored; alice sent %d; the room holds %d",
		len(printed), stored, len(acked), len(all))
}
