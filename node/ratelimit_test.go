package node

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

func key(s string) addrKey { return keyOf(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))) }

func TestRateLimiterBucket(t *testing.T) {
	r := newRateLimiter(1, 3, 16)
	t0 := time.Unix(1000, 0)
	a, b := key("10.0.0.1:1"), key("10.0.0.2:1")
	for i := range 3 {
		if !r.allow(a, t0) {
			t.Fatalf("burst connection %d refused", i)
		}
	}
	if r.allow(a, t0) {
		t.Fatal("connection beyond the burst allowed")
	}
	if !r.allow(b, t0) {
		t.Fatal("another address refused")
	}
	if r.allow(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("allowed before a token refilled")
	}
	if !r.allow(a, t0.Add(1600*time.Millisecond)) {
		t.Fatal("refused after a token refilled")
	}
	if r.allow(a, t0.Add(1600*time.Millisecond)) {
		t.Fatal("one token spent twice")
	}
	if r.allow(a, t0.Add(-time.Hour)) {
		t.Fatal("a clock going back refilled the bucket")
	}
}

func TestRateLimiterBounded(t *testing.T) {
	r := newRateLimiter(1, 2, 4)
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		r.allow(key(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()+":1"), t0)
		if r.len() > 4 {
			t.Fatalf("%d addresses remembered, max 4", r.len())
		}
	}
	// Idle addresses are forgotten as soon as their buckets are full.
	later := t0.Add(time.Minute)
	r.allow(key("10.1.0.1:1"), later)
	r.allow(key("10.1.0.1:1"), later)
	if r.len() > 2 {
		t.Fatalf("%d addresses remembered after all went idle", r.len())
	}
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:7700", "[2001:db8:1:2:ffff::9]:1"}, // one /64
		{"[::ffff:192.0.2.1]:7700", "192.0.2.1:1"},             // v4-mapped
		{"[fe80::1%eth0]:7700", "[fe80::2%eth1]:7700"},         // zones ignored
	} {
		if key(c.a) != key(c.b) {
			t.Errorf("%s and %s counted apart", c.a, c.b)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:7700", "[2001:db8:1:3::1]:7700"},
		{"127.0.0.2:1", "127.0.0.3:1"},
	} {
		if key(c.a) == key(c.b) {
			t.Errorf("%s and %s counted together", c.a, c.b)
		}
	}
}

func TestParseTarget(t *testing.T) {
	id := identity(t, "ed-a").PeerID()
	for _, c := range []struct {
		in   string
		name string
		pin  cryptosuite.PeerID
	}{
		{"127.0.0.1:7700", "127.0.0.1:7700", cryptosuite.PeerID{}},
		{"Alice.LAN:07700", "alice.lan:7700", cryptosuite.PeerID{}},
		{"[::1]:7700", "[::1]:7700", cryptosuite.PeerID{}},
		{id.String() + "@127.0.0.1:7700", "127.0.0.1:7700", id},
		{strings.ToUpper(id.String()) + "@host:1", "host:1", id},
	} {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.Name != c.name || got.Pin != c.pin {
			t.Errorf("%s: name %q pin %v", c.in, got.Name, got.Pin)
		}
	}
	for _, in := range []string{"", "host", ":7700", "host:", "::1:7700", "host:0", "abc@host:1", id.String() + "@", id.String() + "@host", "a b:1"} {
		if _, err := ParseTarget(in); !errors.Is(err, ErrBadTarget) {
			t.Errorf("%q: %v, want ErrBadTarget", in, err)
		}
	}
}
