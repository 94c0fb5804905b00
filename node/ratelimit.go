package node

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// addrKey is the unit per-address limits count by: an IPv4 address, or
// the /64 prefix of an IPv6 address (one host usually holds a whole /64,
// so counting single IPv6 addresses would let it pick a fresh one for
// every connection).
type addrKey = netip.Prefix

func keyOf(a net.Addr) addrKey {
	var ip netip.Addr
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return netip.Prefix{} // not an IP address: all such share one key
	}
	return p
}

// rateLimiter is a token bucket per address key: rate tokens per second up
// to burst, one token per new connection. It remembers at most max keys,
// least recently seen first out; a key whose bucket has refilled is
// forgotten as soon as it is the oldest, since forgetting it loses
// nothing. Safe for concurrent use.
type rateLimiter struct {
	rate  float64
	burst float64
	max   int

	mu      sync.Mutex
	entries map[addrKey]*list.Element // of *bucket
	lru     *list.List                // front: most recently seen
}

type bucket struct {
	key    addrKey
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst, max int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), max: max, entries: map[addrKey]*list.Element{}, lru: list.New()}
}

// allow takes a token for key at time now and reports whether there was
// one.
func (r *rateLimiter) allow(key addrKey, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetIdle(now, 2)
	if e, ok := r.entries[key]; ok {
		b := e.Value.(*bucket)
		b.tokens = r.refill(b, now)
		b.last = now
		r.lru.MoveToFront(e)
		if b.tokens < 1 {
			return false
		}
		b.tokens--
		return true
	}
	if len(r.entries) >= r.max {
		// Full of recently seen keys: forget the least recent. It starts
		// again with a full bucket if it comes back, so under such churn
		// the limit loosens by one burst per forgotten key; the pending
		// handshake limit still bounds the work.
		r.remove(r.lru.Back())
	}
	r.entries[key] = r.lru.PushFront(&bucket{key: key, tokens: r.burst - 1, last: now})
	return true
}

func (r *rateLimiter) refill(b *bucket, now time.Time) float64 {
	elapsed := max(now.Sub(b.last).Seconds(), 0)
	return min(r.burst, b.tokens+elapsed*r.rate)
}

// forgetIdle drops up to n of the least recently seen keys whose buckets
// are full again.
func (r *rateLimiter) forgetIdle(now time.Time, n int) {
	for range n {
		e := r.lru.Back()
		if e == nil || r.refill(e.Value.(*bucket), now) < r.burst {
			return
		}
		r.remove(e)
	}
}

func (r *rateLimiter) remove(e *list.Element) {
	delete(r.entries, e.Value.(*bucket).key)
	r.lru.Remove(e)
}

func (r *rateLimiter) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}
