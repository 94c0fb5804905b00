package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
)

// DefaultChurnClients is the churn scenario's default number of clients.
const DefaultChurnClients = 50

// Churn runs clients (Options.Clients, default 50; each its own identity
// and loopback address) that connect and drop at random for the
// duration: most open a session, make a request, hold it a few
// milliseconds and close it; some give up at random points (after the
// TCP connect, or in the middle of the handshake). Meanwhile a room of 10
// members gets one message every 10 ms. It reports sessions per second,
// the connect latency, the room's push latency under churn, the honest
// clients' errors (a failed session or request; must be zero), and what
// the host still holds once every client is gone (sessions and
// goroutines beyond the room's: leaks).
func Churn(ctx context.Context, o *Options) ([]Result, error) {
	k := o.Clients
	if k == 0 {
		k = DefaultChurnClients
	}
	if k < 1 || k > 1000 {
		return nil, fmt.Errorf("bench: churn with %d clients (1 to 1000)", k)
	}
	h, err := startHost(ctx, o, nil, nil)
	if err != nil {
		return nil, err
	}
	defer h.close()
	br, err := newBenchRoom(ctx, h, 10, 0)
	if err != nil {
		return nil, err
	}
	defer br.close()
	for i, m := range br.members {
		m.recv.slot = i
	}
	// Let the room's sessions settle, then count what the host holds.
	time.Sleep(200 * time.Millisecond)
	baseSessions := h.srv.Stats().Sessions
	baseGoroutines := runtime.NumGoroutine()

	var (
		sessions, abandoned, errs atomic.Int64
		mu                        sync.Mutex
		connect                   []time.Duration
		firstErr                  atomic.Value
	)
	start := time.Now()
	deadline := start.Add(o.duration())
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
			if err != nil {
				errs.Add(1)
				return
			}
			addr := loopbackAddr(20 + i)
			cfg := &node.Config{Identity: id, LocalAddr: addr + ":0", Handlers: map[node.StreamKind]node.Handler{node.KindNotify: discard{}}}
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(deadline) {
				switch x := rng.IntN(100); {
				case x < 10:
					// Connect and drop before TLS.
					if abandon(ctx, addr, h.srv.Addr().String(), 0) {
						abandoned.Add(1)
					}
				case x < 20:
					// Drop in the middle of the handshake.
					if abandon(ctx, addr, h.srv.Addr().String(), 1+rng.IntN(200)) {
						abandoned.Add(1)
					}
				default:
					t := time.Now()
					dctx, cancel := context.WithTimeout(ctx, hang)
					c, err := node.Dial(dctx, h.target(), cfg)
					if err == nil {
						mine = append(mine, time.Since(t))
						_, err = node.NewRoomClient(c).ListRooms(dctx, [16]byte{}, 10)
						if err == nil {
							time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
						}
						c.Close()
					}
					cancel()
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					sessions.Add(1)
				}
			}
			mu.Lock()
			connect = append(connect, mine...)
			mu.Unlock()
		}()
	}
	lat, latErrs, err := relayLatency(ctx, br, 256, latencyMessages(o))
	wg.Wait()
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	if e, _ := firstErr.Load().(error); e != nil {
		o.logger().Warn("churn: an honest client failed", "err", e)
	}
	// Every churning client is gone: the host should be back where it was.
	_ = waitForLong(ctx, func() bool { return h.srv.Stats().Sessions <= baseSessions }, 10*time.Second)
	_ = waitForLong(ctx, func() bool { return runtime.NumGoroutine() <= baseGoroutines }, 10*time.Second)
	_, lost, bad := br.totals()
	slices.Sort(connect)
	return []Result{{
		{"clients", k},
		{"sessions_per_s", float64(sessions.Load()) / elapsed.Seconds()},
		{"abandoned", abandoned.Load()},
		{"connect_p50_ms", ms(percentile(connect, 50))},
		{"connect_p99_ms", ms(percentile(connect, 99))},
		{"p50_ms", ms(percentile(lat, 50))},
		{"p99_ms", ms(percentile(lat, 99))},
		{"errors", errs.Load() + int64(latErrs) + lost + bad},
		{"leaked_sessions", max(h.srv.Stats().Sessions-baseSessions, 0)},
		{"leaked_goroutines", max(runtime.NumGoroutine()-baseGoroutines, 0)},
	}}, nil
}

// abandon connects to addr from local and, after writing garbage bytes
// of n (0: nothing), drops the connection. It reports whether the
// connect succeeded.
func abandon(ctx context.Context, local, addr string, n int) bool {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: hang}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	if n > 0 {
		// A TLS record header announcing a handshake, then noise.
		b := make([]byte, n)
		b[0] = 0x16
		_, _ = c.Write(b)
	}
	c.Close()
	return true
}
