package multicast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hang is the deadline of every wait below: loopback delivery takes
// microseconds, so it only stops a broken test from hanging.
const hang = 10 * time.Second

// testGroup returns a random group in 239.255.0.0/16 (never the default
// lanpeer group) and a UDP port the system just handed out, so parallel
// runs and other programs do not collide.
func testGroup(t *testing.T) (netip.Addr, uint16) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	return netip.AddrFrom4([4]byte{239, 255, byte(1 + rand.IntN(250)), byte(1 + rand.IntN(250))}), uint16(port)
}

// listenLo joins on lo only: every test datagram stays on this machine
// (pinned to lo, TTL 0, sent from 127.0.0.1).
func listenLo(t *testing.T, ctx context.Context, group netip.Addr, port uint16, mod func(*Config)) *Conn {
	t.Helper()
	cfg := Config{Group: group, Port: port, Interfaces: []string{"lo"}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := Listen(ctx, cfg)
	if err != nil {
		t.Fatalf("cannot join multicast group %v on lo (the discovery tests need multicast on the loopback interface): %v", group, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *Conn) Datagram {
	t.Helper()
	select {
	case d, ok := <-c.Recv():
		if !ok {
			t.Fatal("receive channel closed")
		}
		return d
	case <-time.After(hang):
		t.Fatal("no datagram within the hang deadline")
	}
	return Datagram{}
}

// waitFor polls cond until it holds or the hang deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within the hang deadline", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLoopbackSendRecv(t *testing.T) {
	group, port := testGroup(t)
	ctx := t.Context()
	a := listenLo(t, ctx, group, port, nil)
	b := listenLo(t, ctx, group, port, nil)
	la, lb := a.Interfaces()[0], b.Interfaces()[0]
	if !la.Loopback || la.Name != "lo" || la.Local.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("interface %+v, want lo with source 127.0.0.1", la)
	}
	if err := a.Send([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send([]byte("two")); err != nil {
		t.Fatal(err)
	}
	// Exactly one copy of each, in order, on either side (loopback delivery
	// happens inside the send call): a second copy of "one" would come
	// before "two".
	for _, c := range []*Conn{b, a} {
		for _, want := range []string{"one", "two"} {
			d := recv(t, c)
			if string(d.Data) != want || !d.Multicast || d.From != la.Local || d.Interface != "lo" || d.IfIndex != la.Index {
				t.Fatalf("got %q multicast=%v from %v on %s, want %q from %v on lo", d.Data, d.Multicast, d.From, d.Interface, want, la.Local)
			}
		}
	}
	// Unicast back to the sender's send socket.
	if err := b.SendTo([]byte("answer"), la.Local, lb.Index); err != nil {
		t.Fatal(err)
	}
	d := recv(t, a)
	if string(d.Data) != "answer" || d.Multicast || d.From != lb.Local {
		t.Fatalf("got %q multicast=%v from %v, want a unicast answer from %v", d.Data, d.Multicast, d.From, lb.Local)
	}
}

// TestPinned reads the options back from every socket: each names lo for
// unicast, sends multicast with TTL 0, loops back, and hears only groups
// it joined.
func TestPinned(t *testing.T) {
	group, port := testGroup(t)
	c := listenLo(t, t.Context(), group, port, func(c *Config) { c.HopLimit = 5 })
	l := c.links[0]
	for _, s := range []*net.UDPConn{l.group, l.send} {
		rc, err := s.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got [4]int
		var gerr error
		rc.Control(func(fd uintptr) {
			for i, o := range []int{unix.IP_UNICAST_IF, unix.IP_MULTICAST_TTL, unix.IP_MULTICAST_LOOP, unix.IP_MULTICAST_ALL} {
				if got[i], err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, o); err != nil {
					gerr = err
				}
			}
		})
		if gerr != nil {
			t.Fatal(gerr)
		}
		// IP_UNICAST_IF reads back as set: the index in network byte order.
		var be [4]byte
		be[0], be[1], be[2], be[3] = byte(l.Index>>24), byte(l.Index>>16), byte(l.Index>>8), byte(l.Index)
		wantUC := int(int32(uint32(be[0]) | uint32(be[1])<<8 | uint32(be[2])<<16 | uint32(be[3])<<24))
		if got != [4]int{wantUC, 0, 1, 0} {
			t.Errorf("%v: unicast_if, ttl, loop, multicast_all = %v, want [%d 0 1 0] (TTL 0 on lo whatever HopLimit says)", s.LocalAddr(), got, wantUC)
		}
	}
	if la := l.group.LocalAddr().(*net.UDPAddr).AddrPort(); la != netip.AddrPortFrom(group, port) {
		t.Errorf("group socket bound to %v, want the group %v:%d", la, group, port)
	}
}

func TestNoInterfaceJoined(t *testing.T) {
	group, port := testGroup(t)
	_, err := Listen(t.Context(), Config{Group: group, Port: port, Interfaces: []string{"lanpeer-nope0"}})
	if !errors.Is(err, ErrNoInterface) || !strings.Contains(err.Error(), "lanpeer-nope0") {
		t.Fatalf("got %v, want ErrNoInterface naming lanpeer-nope0", err)
	}
	// One interface joined out of two: Listen succeeds and reports the other.
	c := listenLo(t, t.Context(), group, port, func(c *Config) { c.Interfaces = []string{"lanpeer-nope0", "lo"} })
	if n := len(c.Interfaces()); n != 1 {
		t.Fatalf("%d interfaces joined, want 1", n)
	}
	if f := c.Failed(); len(f) != 1 || f[0].Interface != "lanpeer-nope0" {
		t.Fatalf("failed = %v, want lanpeer-nope0", f)
	}
}

// TestLaggingConsumer: a consumer that does not read loses datagrams, counted,
// and the reader goes on; what is delivered is an intact copy of the first.
func TestLaggingConsumer(t *testing.T) {
	group, port := testGroup(t)
	a := listenLo(t, t.Context(), group, port, nil)
	b := listenLo(t, t.Context(), group, port, func(c *Config) { c.QueueLen = 1 })
	const n = 20
	for i := range n {
		if err := a.Send([]byte(fmt.Sprintf("datagram %02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b reads every datagram", func() bool { return b.Stats().Received == n })
	if s := b.Stats(); s.Dropped != n-1 {
		t.Fatalf("stats %+v, want %d dropped", s, n-1)
	}
	if d := recv(t, b); string(d.Data) != "datagram 00" {
		t.Fatalf("queued %q, want the first datagram unchanged by the reads after it", d.Data)
	}
}

func TestTruncated(t *testing.T) {
	group, port := testGroup(t)
	a := listenLo(t, t.Context(), group, port, nil)
	b := listenLo(t, t.Context(), group, port, func(c *Config) { c.MaxDatagram = 100 })
	for _, size := range []int{101, 100, 1400} {
		if err := a.Send(bytes.Repeat([]byte{'x'}, size)); err != nil {
			t.Fatal(err)
		}
		d := recv(t, b)
		if d.Truncated != (size > 100) || (d.Truncated && d.Data != nil) || (!d.Truncated && len(d.Data) != size) {
			t.Fatalf("%d bytes: truncated=%v len=%d", size, d.Truncated, len(d.Data))
		}
	}
	if err := b.Send(make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("sending 101 bytes with MaxDatagram 100: %v, want ErrTooLarge", err)
	}
}

func TestCloseOnContextDone(t *testing.T) {
	group, port := testGroup(t)
	ctx, cancel := context.WithCancel(t.Context())
	c := listenLo(t, ctx, group, port, nil)
	cancel()
	select {
	case _, ok := <-c.Recv():
		for ok {
			_, ok = <-c.Recv()
		}
	case <-time.After(hang):
		t.Fatal("receive channel still open after the context was cancelled")
	}
	if err := c.Send([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send after close: %v, want net.ErrClosed", err)
	}
	c.Close()
	c.Close()
}

func TestSendToRefusesOffLink(t *testing.T) {
	group, port := testGroup(t)
	c := listenLo(t, t.Context(), group, port, nil)
	idx := c.Interfaces()[0].Index
	for _, dst := range []string{"192.0.2.1:9", "10.0.0.1:9", "239.255.1.1:9", "0.0.0.0:9", "127.0.0.1:0", "[::1]:9"} {
		if err := c.SendTo([]byte("x"), netip.MustParseAddrPort(dst), idx); !errors.Is(err, ErrOffLink) {
			t.Errorf("SendTo %s on lo: %v, want ErrOffLink", dst, err)
		}
	}
	if err := c.SendTo([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9"), idx+1000); !errors.Is(err, ErrUnknownInterface) {
		t.Errorf("SendTo on an interface not joined: %v", err)
	}
	if err := c.SendTo([]byte("x"), netip.MustParseAddrPort("127.0.0.2:9"), idx); err != nil {
		t.Errorf("SendTo 127.0.0.2 on lo: %v", err)
	}
}

func TestConfigRefused(t *testing.T) {
	group, port := testGroup(t)
	for name, mod := range map[string]func(*Config){
		"unicast group": func(c *Config) { c.Group = netip.MustParseAddr("10.1.2.3") },
		"zoned group":   func(c *Config) { c.Group = netip.MustParseAddr("ff02::1%lo") },
		"port 0":        func(c *Config) { c.Port = 0 },
		"no interface":  func(c *Config) { c.Interfaces = nil },
		"repeated":      func(c *Config) { c.Interfaces = []string{"lo", "lo"} },
		"empty name":    func(c *Config) { c.Interfaces = []string{""} },
		"hop limit":     func(c *Config) { c.HopLimit = 256 },
		"max datagram":  func(c *Config) { c.MaxDatagram = MaxMaxDatagram + 1 },
		"queue":         func(c *Config) { c.QueueLen = -1 },
		"too many ifaces": func(c *Config) {
			c.Interfaces = make([]string, MaxInterfaces+1)
		},
	} {
		cfg := Config{Group: group, Port: port, Interfaces: []string{"lo"}}
		mod(&cfg)
		if _, err := Listen(t.Context(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}

// TestPrefixOf: an interface address keeps its host part (it is the send
// socket's source) and its prefix length, for IPv4 in either slice form.
func TestPrefixOf(t *testing.T) {
	for _, c := range []struct {
		n    net.IPNet
		want string
	}{
		{net.IPNet{IP: net.IPv4(10, 77, 0, 2).To4(), Mask: net.CIDRMask(24, 32)}, "10.77.0.2/24"},
		{net.IPNet{IP: net.IPv4(10, 77, 0, 2), Mask: net.CIDRMask(120, 128)}, "10.77.0.2/24"},
		{net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}, "fe80::1/64"},
	} {
		p, ok := prefixOf(&c.n)
		if !ok || p.String() != c.want {
			t.Errorf("%v: got %v %v, want %s", c.n, p, ok, c.want)
		}
		if !p.Contains(p.Addr()) {
			t.Errorf("%v does not contain its own address", p)
		}
	}
}
