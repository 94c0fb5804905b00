package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
)

// Sessions parameters.
const (
	// DefaultSessions is the sessions scenario's default count.
	DefaultSessions = 1000
	// MaxSessions bounds it (the host holds one descriptor per session).
	MaxSessions = 50_000
	// perChild is how many sessions one client process opens at most.
	perChild = 2500
	// childDialers is how many sessions a client process dials at once.
	childDialers = 16
	// sessionsHang bounds the wait for every session to come up.
	sessionsHang = 5 * time.Minute
)

// Sessions holds N idle sessions (Options.Sessions, default 1,000) on a
// host in this process, their clients in child processes (Options.Child)
// from 250 loopback addresses, each session with its own identity. It
// reports the host's RSS growth per session, beside the same figure for
// bare TLS 1.3 + yamux sessions (the node's TLS profile and yamux
// configuration, a goroutine accepting streams on each) held the same
// way in the same run (ratio_to_bare), and the messages per second a room
// of 10 members gets through the host while all are connected.
func Sessions(ctx context.Context, o *Options) ([]Result, error) {
	n := o.Sessions
	if n == 0 {
		n = DefaultSessions
	}
	if n < 1 || n > MaxSessions {
		return nil, fmt.Errorf("bench: %d sessions (1 to %d)", n, MaxSessions)
	}
	if o.Child == nil {
		return nil, errors.New("bench: the sessions scenario needs a way to start client processes")
	}
	RaiseFileLimit()
	log := o.logger()

	log.Info("sessions: bare TLS + yamux", "sessions", n)
	bh, err := startBareHost()
	if err != nil {
		return nil, err
	}
	bareBytes, _, bareErrs, err := holdSessions(ctx, o, n, "bare", bh.ln.Addr().String(), "", bh.count)
	bh.close()
	if err != nil {
		return nil, fmt.Errorf("bench: bare sessions: %w", err)
	}

	log.Info("sessions: lanpeer", "sessions", n)
	h, err := startHost(ctx, o, nil, nil)
	if err != nil {
		return nil, err
	}
	defer h.close()
	var delivered float64
	var relayErrs int64
	count := func() int64 { return int64(h.srv.Stats().Sessions) }
	lpBytes, gor, lpErrs, err := holdSessions(ctx, o, n, "lanpeer", h.srv.Addr().String(), h.id.PeerID().String(), count,
		func() error {
			// While every session is held: a room of 10 members at full
			// load.
			log.Info("sessions: messages while connected")
			br, err := newBenchRoom(ctx, h, 10, 0)
			if err != nil {
				return err
			}
			defer br.close()
			f, err := relayFull(ctx, br, 256, o.duration())
			if err != nil {
				return err
			}
			_, lost, bad := br.totals()
			t := throughput{}
			t.add(f)
			delivered, relayErrs = t.perS(), f.errors+lost+bad
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("bench: lanpeer sessions: %w", err)
	}
	return []Result{{
		{"sessions", n},
		{"bytes_per_session", lpBytes},
		{"bare_bytes_per_session", bareBytes},
		{"ratio_to_bare", ratio(lpBytes, bareBytes)},
		{"goroutines_per_session", gor},
		{"delivered_per_s", delivered},
		{"errors", lpErrs + bareErrs + relayErrs},
	}}, nil
}

// holdSessions starts client processes that open n sessions of mode to
// addr, waits until the host counts them all, measures the host's RSS
// growth per session, runs during (if set) while they are held, and ends
// the clients. errs counts the sessions that failed or were lost.
func holdSessions(ctx context.Context, o *Options, n int, mode, addr, peer string, count func() int64, during ...func() error) (perSession, goroutinesPer float64, errs int64, err error) {
	rss0, err := rss()
	if err != nil {
		return 0, 0, 0, err
	}
	g0 := runtime.NumGoroutine()
	var children []*child
	defer func() {
		for _, c := range children {
			c.stop()
		}
	}()
	for first := 0; first < n; first += perChild {
		k := min(perChild, n-first)
		args := []string{"--mode", mode, "--target", addr, "--peer", peer, "--first", strconv.Itoa(first), "--count", strconv.Itoa(k)}
		c, err := startChild(ctx, o, args)
		if err != nil {
			return 0, 0, 0, err
		}
		children = append(children, c)
	}
	for _, c := range children {
		ok, failed, err := c.ready()
		if err != nil {
			return 0, 0, 0, err
		}
		errs += failed
		_ = ok
	}
	want := int64(n) - errs
	if err := waitForLong(ctx, func() bool { return count() >= want }, sessionsHang); err != nil {
		return 0, 0, 0, fmt.Errorf("the host holds %d of %d sessions: %w", count(), want, err)
	}
	// Let the last handshakes' garbage and yamux's first exchanges settle.
	time.Sleep(500 * time.Millisecond)
	rss1, err := rss()
	if err != nil {
		return 0, 0, 0, err
	}
	g1 := runtime.NumGoroutine()
	for _, f := range during {
		if err := f(); err != nil {
			return 0, 0, 0, err
		}
	}
	if held := count(); held < want {
		errs += want - held
	}
	return float64(rss1-rss0) / float64(n), float64(g1-g0) / float64(n), errs, nil
}

func waitForLong(ctx context.Context, cond func() bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("bench: timed out")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// child is one client process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	done  chan error
}

func startChild(ctx context.Context, o *Options, args []string) (*child, error) {
	cmd := o.Child(ctx, args)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting a client process: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), done: make(chan error, 1)}
	return c, nil
}

// ready waits for the child's "ready OK FAILED" line.
func (c *child) ready() (ok, failed int64, err error) {
	got := make(chan error, 1)
	go func() {
		if !c.lines.Scan() {
			got <- fmt.Errorf("bench: a client process ended before it was ready: %v", c.lines.Err())
			return
		}
		f := strings.Fields(c.lines.Text())
		if len(f) != 3 || f[0] != "ready" {
			got <- fmt.Errorf("bench: a client process said %q", c.lines.Text())
			return
		}
		ok, _ = strconv.ParseInt(f[1], 10, 64)
		failed, _ = strconv.ParseInt(f[2], 10, 64)
		got <- nil
	}()
	select {
	case err := <-got:
		return ok, failed, err
	case <-time.After(sessionsHang):
		return 0, 0, errors.New("bench: a client process was not ready in time")
	}
}

// stop closes the child's standard input, which ends it, and waits;
// past a deadline it kills it.
func (c *child) stop() {
	c.stdin.Close()
	go func() { c.done <- c.cmd.Wait() }()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// bareHost accepts TLS connections with the node's profile and runs a
// yamux server on each, a goroutine accepting its streams, as a node's
// session has.
type bareHost struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	n     atomic.Int64
	wg    sync.WaitGroup
}

func startBareHost() (*bareHost, error) {
	srvID, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	bt, err := node.NewBareTransport(srvID, srvID, nil)
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", bt.Server)
	if err != nil {
		return nil, err
	}
	bh := &bareHost{ln: ln}
	bh.wg.Add(1)
	go func() {
		defer bh.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			bh.mu.Lock()
			bh.conns = append(bh.conns, nc)
			bh.mu.Unlock()
			bh.wg.Add(1)
			go func() {
				defer bh.wg.Done()
				_ = nc.SetDeadline(time.Now().Add(node.DefaultHandshakeTimeout))
				if nc.(*tls.Conn).Handshake() != nil {
					nc.Close()
					return
				}
				_ = nc.SetDeadline(time.Time{})
				mux, err := yamux.Server(nc, bt.Yamux)
				if err != nil {
					nc.Close()
					return
				}
				bh.n.Add(1)
				for {
					s, err := mux.AcceptStream()
					if err != nil {
						break
					}
					s.Close()
				}
				mux.Close()
			}()
		}
	}()
	return bh, nil
}

func (bh *bareHost) count() int64 { return bh.n.Load() }

func (bh *bareHost) close() {
	bh.ln.Close()
	bh.mu.Lock()
	for _, c := range bh.conns {
		c.Close()
	}
	bh.mu.Unlock()
	bh.wg.Wait()
}

// RunChild is a client process of the sessions scenario: it opens the
// sessions args ask for, writes "ready OK FAILED" on stdout, holds them
// until stdin ends (at most an hour), closes them and returns.
func RunChild(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench child", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mode := fs.String("mode", "lanpeer", "lanpeer or bare")
	target := fs.String("target", "", "HOST:PORT")
	peer := fs.String("peer", "", "the host's peer ID (lanpeer)")
	first := fs.Int("first", 0, "index of the first session (its address)")
	count := fs.Int("count", 0, "sessions to open")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench: child: %w", err)
	}
	if *count < 1 || *count > MaxSessions || *target == "" || (*mode != "bare" && *mode != "lanpeer") {
		return fmt.Errorf("bench: child: bad arguments %q", args)
	}
	RaiseFileLimit()
	var (
		mu      sync.Mutex
		closers []io.Closer
		failed  atomic.Int64
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range childDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= *count {
					return
				}
				c, err := childSession(ctx, *mode, *target, *peer, *first+i)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				closers = append(closers, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(stdout, "ready %d %d\n", len(closers), failed.Load())
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	case <-time.After(time.Hour):
	}
	var cw sync.WaitGroup
	for _, c := range closers {
		cw.Add(1)
		go func() {
			defer cw.Done()
			c.Close()
		}()
	}
	cw.Wait()
	return nil
}

// discard is a notify-stream handler that reads and drops pushes.
type discard struct{}

func (discard) ServeStream(ctx context.Context, s *node.Stream) {
	for {
		if _, err := s.ReadFrame(); err != nil {
			return
		}
	}
}

// childSession opens session i: its own identity, from address i.
func childSession(ctx context.Context, mode, target, peer string, i int) (io.Closer, error) {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	if mode == "lanpeer" {
		return node.Dial(dctx, peer+"@"+target, &node.Config{
			Identity: id, LocalAddr: loopbackAddr(i) + ":0",
			Handlers: map[node.StreamKind]node.Handler{node.KindNotify: discard{}},
		})
	}
	bt, err := node.NewBareTransport(id, id, nil)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(loopbackAddr(i))}}
	nc, err := d.DialContext(dctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, bt.Client)
	if err := tc.HandshakeContext(dctx); err != nil {
		nc.Close()
		return nil, err
	}
	mux, err := yamux.Client(tc, bt.Yamux)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return mux, nil
}
