package directory

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client: rate tokens a second up to burst.
// Clients are IPv4 addresses and IPv6 /64 prefixes (one host usually holds
// a whole /64). The map holds at most max clients: when it is full, the
// clients whose buckets have refilled are dropped (a full bucket is the
// same as none); if none has, a new client is refused until one does.
// Safe for concurrent use.
type limiter struct {
	rate  float64
	burst float64
	max   int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	pruned  time.Time // last full scan, at most one a second
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, buckets: make(map[netip.Addr]*bucket)}
}

// clientKey maps an address to its bucket key.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes one token from a's bucket at now and reports whether there
// was one.
func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	k := clientKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.max && !l.prune(now) {
			return false
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune drops the buckets that have refilled and reports whether room was
// made. It scans at most once a second, so a flood of new clients costs one
// scan a second, not one per request. The caller holds mu.
func (l *limiter) prune(now time.Time) bool {
	if now.Sub(l.pruned) < time.Second {
		return false
	}
	l.pruned = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.max
}
