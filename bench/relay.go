package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/wire"
)

// Relay parameters.
const (
	// relaySenders is how many sends the sender has in flight at full
	// load (each on its own request stream).
	relaySenders = 8
	// relayWindow bounds how far the sender runs ahead of the slowest
	// member, in messages: below the host's push queue, so that full
	// load is the most the host delivers, not pushes dropped.
	relayWindow = 128
	// latencyInterval is the fixed low rate of the latency phase: one
	// message every so often, whatever the machine, so that the delay
	// measured is the path's, not a queue's.
	latencyInterval = 10 * time.Millisecond
	// minLatencyMessages and maxLatencyMessages bound the latency
	// phase's messages.
	minLatencyMessages = 20
	maxLatencyMessages = 500
)

// Relay measures room messages from one sender to n online members (the
// sender excluded) through a host in this process: delivered = a push
// frame decoded by a member's connection. Full load: the sender keeps 8
// sends in flight and at most 128 messages ahead of the slowest member.
// Latency: one message every 10 ms, p50 and p99 of the delay from the
// start of the send to each member's push. Beside it, the transport: the
// same frames (msgpack pushes of the same size) over TLS on loopback from
// one writer to n readers with no lanpeer logic, at full load (a writer
// goroutine per connection) and at the same fixed rate (one goroutine
// writing to each connection in turn).
func Relay(ctx context.Context, o *Options) ([]Result, error) {
	members := o.Members
	if len(members) == 0 {
		members = []int{1, 10, 100}
	}
	sizes := o.Sizes
	if len(sizes) == 0 {
		sizes = []int{256, 4096}
	}
	var out []Result
	for _, n := range members {
		for _, size := range sizes {
			if n < 1 || n > 999 || size < 1 || size > 16384 {
				return nil, fmt.Errorf("bench: relay to %d members of %d-byte messages", n, size)
			}
			o.logger().Info("relay", "members", n, "size", size)
			r, err := relayCase(ctx, o, n, size)
			if err != nil {
				return nil, fmt.Errorf("bench: relay to %d members, %d bytes: %w", n, size, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// relayRounds is how many times the relay alternates between lanpeer
// and the transport: on a machine whose load changes, each side gets its
// share of every period.
const relayRounds = 4

func relayCase(ctx context.Context, o *Options, n, size int) (Result, error) {
	h, err := startHost(ctx, o, nil, nil)
	if err != nil {
		return nil, err
	}
	defer h.close()
	br, err := newBenchRoom(ctx, h, n, 0)
	if err != nil {
		return nil, err
	}
	defer br.close()
	for i, m := range br.members {
		m.recv.slot = i
	}
	tp, err := newTransportPair(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	defer tp.close()
	sample, err := br.seal(strings.Repeat("x", size))
	if err != nil {
		return nil, err
	}
	push := &wire.MessagePush{Room: br.id[:], Seq: 1, Stored: time.Now().UnixMilli(), Blob: sample}

	per := o.duration() / relayRounds
	var lp, tr throughput
	var errs int64
	for range relayRounds {
		f, err := relayFull(ctx, br, size, per)
		if err != nil {
			return nil, err
		}
		lp.add(f)
		errs += f.errors
		if f, err = tp.full(ctx, push, per); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		tr.add(f)
	}
	k := latencyMessages(o) / 2
	var lpLat, trLat []time.Duration
	for range 2 {
		lat, missing, err := relayLatency(ctx, br, size, k)
		if err != nil {
			return nil, err
		}
		lpLat = append(lpLat, lat...)
		errs += int64(missing)
		if lat, err = tp.latency(ctx, push, k); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		trLat = append(trLat, lat...)
	}
	slices.Sort(lpLat)
	slices.Sort(trLat)
	_, lost, bad := br.totals()
	errs += lost + bad
	p99, tp99 := percentile(lpLat, 99), percentile(trLat, 99)
	return Result{
		{"members", n},
		{"size", size},
		{"delivered_per_s", lp.perS()},
		{"transport_per_s", tr.perS()},
		{"ratio_to_transport", ratio(lp.perS(), tr.perS())},
		{"p50_ms", ms(percentile(lpLat, 50))},
		{"p99_ms", ms(p99)},
		{"transport_p50_ms", ms(percentile(trLat, 50))},
		{"transport_p99_ms", ms(tp99)},
		{"p99_ratio", ratio(ms(p99), ms(tp99))},
		{"errors", errs},
	}, nil
}

// fullLoad is one timed run at full load.
type fullLoad struct {
	delivered int64
	elapsed   time.Duration
	errors    int64
}

// throughput sums runs.
type throughput struct {
	delivered int64
	elapsed   time.Duration
}

func (t *throughput) add(f fullLoad) { t.delivered += f.delivered; t.elapsed += f.elapsed }

func (t *throughput) perS() float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(t.delivered) / t.elapsed.Seconds()
}

// sealPool seals count messages of size bytes of text.
func sealPool(br *benchRoom, count, size int) ([][]byte, error) {
	text := strings.Repeat("x", size)
	pool := make([][]byte, count)
	for i := range pool {
		var err error
		if pool[i], err = br.seal(text); err != nil {
			return nil, err
		}
	}
	return pool, nil
}

// relayFull runs full load for d (or until the sealed messages run out)
// and waits until every member has every message.
func relayFull(ctx context.Context, br *benchRoom, size int, d time.Duration) (fullLoad, error) {
	n := len(br.members)
	// Enough messages for d at the most a host delivers on these
	// machines (it verifies each message's signature: about 12,000
	// sends/s alone, 300,000 pushes/s), sealed beforehand: sealing is the
	// client's cost (e2e). The run ends early if they run out.
	count := min(max(int(d.Seconds()*float64(min(12_000, 300_000/n))), 100), 50_000)
	if size > 1024 {
		count = min(count, 10_000)
	}
	pool, err := sealPool(br, count, size)
	if err != nil {
		return fullLoad{}, err
	}
	before, _, _ := br.totals()
	floor := br.minDelivered()
	var next, sent, sendErrs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range relaySenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(len(pool)) {
					return
				}
				// Stay within the window of the slowest member.
				for wait := time.Now(); floor+i-br.minDelivered() > relayWindow; {
					if time.Since(wait) > hang {
						firstErr.CompareAndSwap(nil, errors.New("members stopped receiving"))
						return
					}
					time.Sleep(50 * time.Microsecond)
				}
				sctx, cancel := context.WithTimeout(ctx, hang)
				_, err := br.sender.rc.Send(sctx, br.id, pool[i])
				cancel()
				if err != nil {
					sendErrs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					if sendErrs.Load() > 100 {
						return
					}
					continue
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil && sent.Load() == 0 {
		return fullLoad{}, err
	}
	want := before + sent.Load()*int64(n)
	if err := waitFor(ctx, func() bool {
		d, lost, _ := br.totals()
		return d+lost >= want
	}); err != nil {
		return fullLoad{}, fmt.Errorf("waiting for the pushes: %w", err)
	}
	elapsed := time.Since(start)
	delivered, _, _ := br.totals()
	return fullLoad{delivered: delivered - before, elapsed: elapsed, errors: sendErrs.Load()}, nil
}

// latencyMessages is how many messages the latency phase sends.
func latencyMessages(o *Options) int {
	return min(max(int(o.duration()/latencyInterval), minLatencyMessages), maxLatencyMessages)
}

// relayLatency sends k messages, one per latencyInterval, and returns
// the delays from each send's start to each member's push (sorted), and
// how many pushes did not arrive.
func relayLatency(ctx context.Context, br *benchRoom, size, k int) ([]time.Duration, int, error) {
	pool, err := sealPool(br, k+1, size)
	if err != nil {
		return nil, 0, err
	}
	sctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	// A first message gives the sequence number the run starts after.
	base, err := br.sender.rc.Send(sctx, br.id, pool[0])
	if err != nil {
		return nil, 0, err
	}
	l := newLatencyRun(base+1, k, len(br.members))
	for _, m := range br.members {
		m.recv.lat.Store(l)
	}
	defer func() {
		for _, m := range br.members {
			m.recv.lat.Store(nil)
		}
	}()
	tick := time.NewTicker(latencyInterval)
	defer tick.Stop()
	for i := range k {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		l.sending(i)
		seq, err := br.sender.rc.Send(sctx, br.id, pool[i+1])
		if err != nil {
			return nil, 0, err
		}
		if seq != base+1+uint64(i) {
			return nil, 0, fmt.Errorf("message %d stored as %d, want %d: another sender?", i, seq, base+1+uint64(i))
		}
	}
	_ = waitFor(ctx, func() bool { return l.complete(k - 1) })
	lat, missing := l.latencies()
	return lat, missing, nil
}

// waitFor polls cond until it holds, for at most the hang deadline.
func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("bench: timed out")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// full runs the baseline at full load for d: a writer goroutine per
// connection encodes each push (push with its own sequence number) and
// writes its frame; it returns once the readers have decoded them all.
func (tp *transportPair) full(ctx context.Context, push *wire.MessagePush, d time.Duration) (fullLoad, error) {
	before := tp.delivered()
	start := time.Now()
	deadline := start.Add(d)
	var written atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for _, w := range tp.ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := *push
			for seq := uint64(1); ctx.Err() == nil && time.Now().Before(deadline); seq++ {
				p.Seq = seq
				b, err := wire.Encode(&p)
				if err == nil {
					err = w.WriteFrame(b)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				written.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fullLoad{}, err
	}
	if err := waitFor(ctx, func() bool { return tp.delivered()-before >= written.Load() }); err != nil {
		return fullLoad{}, err
	}
	return fullLoad{delivered: tp.delivered() - before, elapsed: time.Since(start)}, nil
}

// latency sends k pushes, one per latencyInterval, each encoded once and
// written by one goroutine to every connection in turn, and returns the
// delays to each reader (sorted).
func (tp *transportPair) latency(ctx context.Context, push *wire.MessagePush, k int) ([]time.Duration, error) {
	tp.base += 1 << 20
	l := newLatencyRun(tp.base, k, len(tp.ws))
	tp.lat.Store(l)
	defer tp.lat.Store(nil)
	tick := time.NewTicker(latencyInterval)
	defer tick.Stop()
	p := *push
	for i := range k {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.sending(i)
		p.Seq = tp.base + uint64(i)
		b, err := wire.Encode(&p)
		if err != nil {
			return nil, err
		}
		for _, w := range tp.ws {
			if err := w.WriteFrame(b); err != nil {
				return nil, err
			}
		}
	}
	if err := waitFor(ctx, func() bool { return l.complete(k - 1) }); err != nil {
		return nil, err
	}
	lat, _ := l.latencies()
	return lat, nil
}

// transportPair is n TLS connections on loopback with the node's TLS
// profiles: the server ends write, the client ends (from distinct
// addresses) read and decode.
type transportPair struct {
	ln      net.Listener
	base    uint64 // sequence numbers of the latency runs
	ws      []*framing.Writer
	writers []*tls.Conn
	readers []*tls.Conn
	counts  []atomic.Int64
	lat     atomic.Pointer[latencyRun]
	wg      sync.WaitGroup
}

func newTransportPair(ctx context.Context, n int) (*transportPair, error) {
	srvID, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	cliID, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	bt, err := node.NewBareTransport(srvID, cliID, nil)
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", bt.Server)
	if err != nil {
		return nil, err
	}
	tp := &transportPair{ln: ln, counts: make([]atomic.Int64, n)}
	ok := false
	defer func() {
		if !ok {
			tp.close()
		}
	}()
	accepted := make(chan error, 1)
	go func() {
		for range n {
			sc, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			tc := sc.(*tls.Conn)
			hctx, cancel := context.WithTimeout(ctx, hang)
			err = tc.HandshakeContext(hctx)
			cancel()
			tp.writers = append(tp.writers, tc)
			if err != nil {
				accepted <- err
				return
			}
		}
		accepted <- nil
	}()
	var dialErr error
	for i := range n {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(loopbackAddr(i + 1))}, Timeout: hang}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), bt.Client)
		if err != nil {
			dialErr = err
			ln.Close() // ends the accept loop
			break
		}
		tp.readers = append(tp.readers, c)
	}
	if err := <-accepted; err != nil || dialErr != nil {
		return nil, errors.Join(dialErr, err)
	}
	for _, c := range tp.writers {
		tp.ws = append(tp.ws, framing.NewWriter(c, framing.MaxControlFrame))
	}
	for i, c := range tp.readers {
		tp.wg.Add(1)
		go tp.read(i, c)
	}
	ok = true
	return tp, nil
}

// read decodes frames from c until it ends.
func (tp *transportPair) read(slot int, c *tls.Conn) {
	defer tp.wg.Done()
	r := framing.NewReader(c, framing.MaxControlFrame)
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return
		}
		m, err := wire.Decode(p)
		if err != nil {
			return
		}
		tp.counts[slot].Add(1)
		if l := tp.lat.Load(); l != nil {
			if mp, ok := m.(*wire.MessagePush); ok {
				l.arrived(slot, mp.Seq, time.Now())
			}
		}
	}
}

func (tp *transportPair) delivered() int64 {
	var n int64
	for i := range tp.counts {
		n += tp.counts[i].Load()
	}
	return n
}

func (tp *transportPair) close() {
	tp.ln.Close()
	for _, c := range tp.writers {
		c.Close()
	}
	for _, c := range tp.readers {
		c.Close()
	}
	tp.wg.Wait()
}
