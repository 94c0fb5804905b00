package discovery

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// The namespace test runs this test binary inside each namespace, in helper
// mode, selected by these environment variables.
const (
	envHelper = "LANPEER_DISCOVERY_HELPER"
	envKey    = "LANPEER_DISCOVERY_KEY"   // PEM file of the helper's identity
	envPeer   = "LANPEER_DISCOVERY_PEER"  // peer ID the helper must find
	envGroup  = "LANPEER_DISCOVERY_GROUP" // group address
	envPort   = "LANPEER_DISCOVERY_PORT"
	envIface  = "LANPEER_DISCOVERY_IFACE"
	envName   = "LANPEER_DISCOVERY_NAME"
)

// helperResult is what a helper reports on one stdout line after "RESULT ".
type helperResult struct {
	Announced Peer   `json:"announced"` // the other peer, as the announcing Service cached it
	Queried   Peer   `json:"queried"`   // the other peer, as a passive Service's Query found it
	Local     string `json:"local"`     // the helper's own send socket
	Stats     Stats  `json:"stats"`
}

// TestNamespaces runs discovery between two network namespaces joined by a
// veth pair, over IPv6 link-local multicast (lo has no IPv6 multicast) and
// over IPv4. Nothing is sent outside the namespaces, and the namespaces
// have no route for multicast: only a pinned socket can send there.
func TestNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: creating network namespaces needs root (make test runs as root)")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("skipped: `ip netns` is not available: %v %s", err, out)
	}
	var r [4]byte
	rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	ns := []string{"lpdisc-" + tag + "-a", "lpdisc-" + tag + "-b"}
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range ns {
		ip("netns", "add", n)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v %s", n, err, out)
			}
		})
	}
	ip("-n", ns[0], "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", ns[1])
	for i, n := range ns {
		// Without duplicate address detection the link-local address is
		// usable at once instead of "tentative" for about 2 s.
		ip("netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.veth0.accept_dad=0")
		ip("-n", n, "addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", "veth0")
		ip("-n", n, "link", "set", "lo", "up")
		ip("-n", n, "link", "set", "veth0", "up")
	}
	for _, n := range ns {
		waitFor(t, "link-local address on veth0 in "+n, func() bool {
			out, _ := exec.Command("ip", "-n", n, "-6", "addr", "show", "dev", "veth0", "scope", "link").Output()
			return strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative")
		})
	}

	dir := t.TempDir()
	ids := []*cryptosuite.Identity{ed25519ID(t), ed25519ID(t)}
	keys := make([]string, 2)
	for i, id := range ids {
		pem, err := id.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = filepath.Join(dir, fmt.Sprintf("key%d.pem", i))
		if err := os.WriteFile(keys[i], pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	for _, fam := range []struct{ name, group string }{
		{"ipv6", fmt.Sprintf("ff02::4c50:%x", 1+mrand.IntN(0xfffe))},
		{"ipv4", fmt.Sprintf("239.255.%d.%d", 1+mrand.IntN(250), 1+mrand.IntN(250))},
	} {
		t.Run(fam.name, func(t *testing.T) {
			port := strconv.Itoa(20000 + mrand.IntN(10000)) // the namespaces are fresh: any port is free
			ctx, cancel := context.WithTimeout(context.Background(), 3*hang)
			defer cancel()
			type proc struct {
				cmd   *exec.Cmd
				stdin io.WriteCloser
				res   chan helperResult
				errs  chan string
			}
			procs := make([]*proc, 2)
			for i, n := range ns {
				cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envHelper+"=1", envKey+"="+keys[i], envPeer+"="+ids[1-i].PeerID().String(),
					envGroup+"="+fam.group, envPort+"="+port, envIface+"=veth0", envName+"="+n)
				p := &proc{cmd: cmd, res: make(chan helperResult, 1), errs: make(chan string, 1)}
				if p.stdin, err = cmd.StdinPipe(); err != nil {
					t.Fatal(err)
				}
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = cmd.Stdout
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.stdin.Close(); cmd.Wait() })
				go func() {
					var log strings.Builder
					sc := bufio.NewScanner(stdout)
					for sc.Scan() {
						line := sc.Text()
						if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
							var r helperResult
							if err := json.Unmarshal([]byte(rest), &r); err != nil {
								p.errs <- "bad result line: " + line
								return
							}
							p.res <- r
							io.Copy(io.Discard, stdout)
							return
						}
						log.WriteString(line + "\n")
					}
					p.errs <- log.String()
				}()
				procs[i] = p
			}
			results := make([]helperResult, 2)
			for i, p := range procs {
				select {
				case results[i] = <-p.res:
				case out := <-p.errs:
					t.Fatalf("helper in %s failed:\n%s", ns[i], out)
				case <-ctx.Done():
					t.Fatalf("helper in %s: no result within the hang deadline", ns[i])
				}
			}
			for _, p := range procs {
				p.stdin.Close() // lets the helpers stop their Services and exit
			}
			for i, p := range procs {
				if err := p.cmd.Wait(); err != nil {
					t.Errorf("helper in %s: %v", ns[i], err)
				}
			}
			for i, r := range results {
				other := results[1-i]
				src := netip.MustParseAddrPort(other.Local)
				for how, p := range map[string]Peer{"announcement": r.Announced, "query": r.Queried} {
					want := []netip.AddrPort{netip.AddrPortFrom(src.Addr(), 7000)}
					if p.ID != ids[1-i].PeerID() || p.Name != ns[1-i] || p.Interface != "veth0" || p.Source != src ||
						!slices.Equal(p.TCPAddrs, want) {
						t.Errorf("%s found by %s: %+v; want %s from %v at %v", ns[i], how, p, ns[1-i], src, want)
					}
				}
				if fam.name == "ipv6" && !src.Addr().IsLinkLocalUnicast() {
					t.Errorf("IPv6 source %v is not link-local", src)
				}
				accounted(t, r.Stats)
			}
		})
	}
}

// TestHelperProcess is not a test: TestNamespaces runs it inside a
// namespace. It announces, waits until it has found the other peer, then
// asks with a passive Service, prints RESULT and serves until stdin closes.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process of TestNamespaces; runs only when started by it")
	}
	fail := func(format string, args ...any) {
		fmt.Printf(format+"\n", args...)
		os.Exit(1)
	}
	pem, err := os.ReadFile(os.Getenv(envKey))
	if err != nil {
		fail("%v", err)
	}
	id, err := cryptosuite.ParseIdentityPEM(pem)
	if err != nil {
		fail("%v", err)
	}
	other, err := cryptosuite.ParsePeerID(os.Getenv(envPeer))
	if err != nil {
		fail("%v", err)
	}
	group := netip.MustParseAddr(os.Getenv(envGroup))
	port, _ := strconv.Atoi(os.Getenv(envPort))
	unspec := netip.IPv4Unspecified()
	if group.Is6() {
		unspec = netip.IPv6Unspecified()
	}
	cfg := Config{
		Identity: id, Name: os.Getenv(envName), Interfaces: []string{os.Getenv(envIface)},
		Group: group, Port: uint16(port), Interval: MaxInterval, // one announcement, then answers only
		TCPAddrs: []netip.AddrPort{netip.AddrPortFrom(unspec, 7000)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*hang)
	defer cancel()
	svc, err := New(cfg)
	if err != nil {
		fail("%v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	// The peers start together: each learns of the other from its
	// announcement, or from the answer to its start-up query.
	found, err := svc.Lookup(ctx, other)
	if err != nil {
		fail("announcing service: %v (stats %+v)", err, svc.Stats())
	}
	passive, err := New(Config{Interfaces: cfg.Interfaces, Group: group, Port: uint16(port)})
	if err != nil {
		fail("%v", err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- passive.Run(pctx) }()
	// It hears this namespace's announcing Service too; keep the other.
	peers, err := passive.Query(ctx, time.Second)
	i := slices.IndexFunc(peers, func(p Peer) bool { return p.ID == other })
	if err != nil || i < 0 {
		fail("passive query: %v, %+v", err, peers)
	}
	pcancel()
	<-pdone
	res, _ := json.Marshal(helperResult{Announced: found, Queried: peers[i],
		Local: svc.Interfaces()[0].Local.String(), Stats: svc.Stats()})
	fmt.Printf("RESULT %s\n", res)
	// Serve (answer the other's passive query) until the test closes stdin.
	io.Copy(io.Discard, os.Stdin)
	cancel()
	if err := <-done; err != nil {
		fail("%v", err)
	}
}
