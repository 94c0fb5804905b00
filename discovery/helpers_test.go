package discovery

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"golang.org/x/sys/unix"
)

// hang is the deadline of every wait: discovery on loopback takes
// milliseconds, so it only keeps a broken test from hanging.
const hang = 20 * time.Second

// testNet returns a random group in 239.255.0.0/16 (never the default) and a
// UDP port the system just handed out, so parallel runs do not collide.
func testNet(t testing.TB) (netip.Addr, uint16) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	for {
		g := netip.AddrFrom4([4]byte{239, 255, byte(1 + rand.IntN(250)), byte(1 + rand.IntN(250))})
		if g.String() != DefaultGroupIPv4 {
			return g, uint16(port)
		}
	}
}

// loConfig is a Config on lo only: every datagram stays on this machine.
// Its debug log goes to the test's output (shown when the test fails).
func loConfig(t testing.TB, group netip.Addr, port uint16) Config {
	return Config{Interfaces: []string{"lo"}, Group: group, Port: port, Interval: time.Minute,
		Limits: Limits{SourceRate: 1e6, SourceBurst: 1e6},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// start runs a Service until the test ends and waits until it has joined.
// A machine that cannot join multicast on lo fails the test, loudly.
func start(t testing.TB, cfg Config) *Service {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(hang):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(hang):
		t.Fatal("Run did not join within the hang deadline")
	}
	if s.runErr != nil {
		t.Fatalf("cannot join the multicast group on lo; these tests need IPv4 multicast on the loopback interface: %v", s.runErr)
	}
	return s
}

// waitFor polls cond until it holds or the hang deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within the hang deadline", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1764036000000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ed25519ID(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seededEd25519ID returns the same Ed25519 identity in every process, so a
// fuzz target's signed seed is byte-identical in the coordinator and in its
// workers (Ed25519 signatures are deterministic).
func seededEd25519ID(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5a}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fixtureID loads a committed RSA test key (tests never generate RSA).
func fixtureID(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sender is a raw test socket: bound to a loopback address, multicast
// pinned to lo with TTL 0. It injects datagrams and reads unicast answers.
type sender struct {
	t     testing.TB
	conn  *net.UDPConn
	group netip.AddrPort
}

func newSender(t testing.TB, src string, group netip.Addr, port uint16) *sender {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) {
			err = errors.Join(
				unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(lo.Index)}),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 0),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1))
		})
		return err
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", src+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &sender{t: t, conn: pc.(*net.UDPConn), group: netip.AddrPortFrom(group, port)}
}

func (s *sender) send(b []byte) {
	s.t.Helper()
	if _, err := s.conn.WriteToUDPAddrPort(b, s.group); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sender) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// read waits for one unicast datagram.
func (s *sender) read() ([]byte, netip.AddrPort) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(hang))
	buf := make([]byte, 65536)
	n, from, err := s.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		s.t.Fatalf("no unicast datagram: %v", err)
	}
	return buf[:n], from
}

// annSpec describes an announcement a test signs itself.
type annSpec struct {
	id        *cryptosuite.Identity
	instance  [InstanceIDSize]byte
	tcp, http []netip.AddrPort
	https     bool
	name      string
	interval  time.Duration
	at        time.Time
}

func (a annSpec) datagram(t testing.TB) []byte {
	t.Helper()
	iv := a.interval
	if iv == 0 {
		iv = time.Second
	}
	b, err := encodeAnnouncement(a.id, &announcement{
		peer: a.id.PeerID(), instance: a.instance, tcp: a.tcp, http: a.http, https: a.https, name: a.name,
		interval: uint64(iv / time.Millisecond), millis: uint64(a.at.UnixMilli()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signBlob wraps any blob in an envelope signed by id (for blobs that
// encodeAnnouncement would refuse to build).
func signBlob(t testing.TB, id *cryptosuite.Identity, label string, blob []byte) []byte {
	t.Helper()
	sig, err := id.Sign(label, blob)
	if err != nil {
		t.Fatal(err)
	}
	return appendEnvelope(nil, id.Public().SPKI(), blob, sig)
}

// rawBlob builds an announcement blob field by field.
func rawBlob(peer cryptosuite.PeerID, inst [InstanceIDSize]byte, tcp [][]byte, name string, interval, millis uint64) []byte {
	return canon.Announce(peer, inst, tcp, nil, "", name, interval, millis)
}

// schemeBlob builds an announcement blob with n HTTP addresses (0 or 1)
// and the HTTP scheme field scheme, whatever it holds.
func schemeBlob(peer cryptosuite.PeerID, scheme string, n int, at time.Time) []byte {
	http := encodeAddrs([]netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:8080")})[:n]
	return canon.Announce(peer, instanceID(7), nil, http, scheme, "x", 1000, uint64(at.UnixMilli()))
}

func instanceID(b byte) (id [InstanceIDSize]byte) {
	for i := range id {
		id[i] = b
	}
	return id
}

func u16(b []byte, off int, v uint16) []byte {
	b = append([]byte(nil), b...)
	binary.BigEndian.PutUint16(b[off:], v)
	return b
}

// readPublicFixture returns the SPKI DER of a committed public-key fixture.
func readPublicFixture(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", name+".pem"))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block in " + name)
	}
	return blk.Bytes, nil
}
