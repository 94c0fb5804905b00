package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNamespacesPeersAndDial runs the built lanpeer on three "hosts":
// network namespaces joined by veth pairs to a bridge that lives in a
// fourth namespace, so nothing touches this machine's own network. Each
// host runs listen --discovery; peers on each host lists the other two
// with their LAN addresses; dial PEERID from one host reaches another. The
// namespaces have no multicast route: only pinned sockets can send.
func TestNamespacesPeersAndDial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: creating network namespaces needs root (make test runs as root)")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("skipped: `ip netns` is not available: %v %s", err, out)
	}
	var r [4]byte
	rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	sw := "lpcli-" + tag + "-sw"
	hosts := []string{"lpcli-" + tag + "-1", "lpcli-" + tag + "-2", "lpcli-" + tag + "-3"}
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range append([]string{sw}, hosts...) {
		ip("netns", "add", n)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v %s", n, err, out)
			}
		})
	}
	ip("-n", sw, "link", "add", "br0", "type", "bridge")
	ip("-n", sw, "link", "set", "br0", "up")
	for i, h := range hosts {
		port := fmt.Sprintf("p%d", i+1)
		ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h)
		ip("-n", sw, "link", "set", port, "master", "br0", "up")
		// Without duplicate address detection the link-local address is
		// usable at once instead of "tentative" for about 2 s.
		ip("netns", "exec", h, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
		ip("-n", h, "addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", "eth0")
		ip("-n", h, "link", "set", "lo", "up")
		ip("-n", h, "link", "set", "eth0", "up")
	}

	bin, env := lanpeerBin(t)
	lanpeerIn := func(ctx context.Context, host string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", host, filepath.Join(bin, "lanpeer")}, args...)...)
		cmd.Env = env
		return cmd
	}
	for _, fam := range []struct {
		name, group, tcp string
		addr             func(host int) string // the address peers list for a host, as a regexp
	}{
		{"ipv4", fmt.Sprintf("239.255.%d.%d", 1+mrand.IntN(250), 1+mrand.IntN(250)), "0.0.0.0:7700",
			func(h int) string { return fmt.Sprintf(`10\.77\.0\.%d:7700`, h+1) }},
		{"ipv6", fmt.Sprintf("ff02::4c50:%x", 1+mrand.IntN(0xfffe)), "[::]:7701",
			func(int) string { return `\[fe80::[0-9a-f:]+%eth0\]:7701` }},
	} {
		t.Run(fam.name, func(t *testing.T) {
			disc := []string{"--iface", "eth0", "--discovery-group", fam.group, "--discovery-port", strconv.Itoa(20000 + mrand.IntN(10000))}
			ids := make([]string, len(hosts))
			homes := make([]string, len(hosts))
			listeners := make([]*syncBuffer, len(hosts))
			// ip netns exec execs lanpeer, so the process is lanpeer itself
			// and a signal stops it.
			for i, h := range hosts {
				homes[i] = filepath.Join(t.TempDir(), "home")
				cmd := lanpeerIn(context.Background(), h, append([]string{"listen", "--home", homes[i], "--key", "ed25519",
					"--tcp", fam.tcp, "--discovery", "--name", "host" + strconv.Itoa(i+1)}, disc...)...)
				p := runProc(t, cmd)
				ids[i] = waitMatch(t, p.stderr, `lanpeer: listening on \S+ as ([0-9a-f]{64})\n`)[1]
				waitMatch(t, p.stderr, `lanpeer: announcing on eth0 `)
				listeners[i] = p.stdout
			}
			for i, h := range hosts {
				ctx, cancel := context.WithTimeout(context.Background(), hang)
				cmd := lanpeerIn(ctx, h, append([]string{"peers", "--timeout", "2s"}, disc...)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				cancel()
				if err != nil {
					t.Fatalf("peers on %s: %v\n%s", h, err, stderr.String())
				}
				for j := range hosts {
					want := fmt.Sprintf(`(?m)^%s\thost%d\t%s\t`, ids[j], j+1, fam.addr(j))
					if j != i && !regexp.MustCompile(want).MatchString(stdout.String()) {
						t.Errorf("peers on %s does not list %s:\n%s", h, want, stdout.String())
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			cmd := lanpeerIn(ctx, hosts[0], append(append([]string{"dial", "--home", homes[0]}, disc...), ids[1], "msg", "across the bridge")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("dial PEERID msg from %s to %s: %v\n%s", hosts[0], hosts[1], err, out)
			}
			waitMatch(t, listeners[1], ids[0]+" across the bridge\n")
			// A room hosted across the bridge, reached by peer ID alone.
			cmd = lanpeerIn(ctx, hosts[0], append(append([]string{"dial", "--home", homes[0]}, disc...), ids[1], "room", "create", "bridge")...)
			var roomErr bytes.Buffer
			cmd.Stderr = &roomErr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("dial PEERID room create from %s to %s: %v\n%s", hosts[0], hosts[1], err, roomErr.String())
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).Match(out) {
				t.Fatalf("room create printed %q, want a room id", out)
			}
		})
	}
}

// runProc starts cmd with its output in buffers. When the test ends, a
// process still running gets SIGTERM, then SIGKILL after the hang
// deadline.
func runProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{args: cmd.Args, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(hang):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("%q did not stop on SIGINT", cmd.Args)
		}
	})
	return p
}
