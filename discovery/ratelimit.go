package discovery

import (
	"net/netip"
	"time"
)

// limiter holds one token bucket per source address, at most max of them;
// sources beyond that share one overflow bucket, so a flood of forged
// source addresses costs bounded memory and cannot starve known sources.
// It is used by Run's goroutine only.
type limiter struct {
	rate, burst float64
	max         int
	buckets     map[netip.Addr]*bucket
	overflow    bucket
	lastPurge   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, buckets: make(map[netip.Addr]*bucket),
		overflow: bucket{tokens: float64(burst)}}
}

// take refills the bucket for the time since its last use and takes one
// token if there is one. A clock that went back refills nothing.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if el := now.Sub(b.at).Seconds(); el > 0 && !b.at.IsZero() {
		b.tokens = min(burst, b.tokens+el*rate)
	}
	if b.at.IsZero() || now.After(b.at) {
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// allow reports whether src may have one more datagram processed now.
func (l *limiter) allow(src netip.Addr, now time.Time) bool {
	b, ok := l.buckets[src]
	if !ok {
		if len(l.buckets) >= l.max && now.Sub(l.lastPurge) >= time.Second {
			// Forget buckets that have refilled: their sources are idle.
			l.lastPurge = now
			full := time.Duration(l.burst / l.rate * float64(time.Second))
			for a, b := range l.buckets {
				if now.Sub(b.at) >= full {
					delete(l.buckets, a)
				}
			}
		}
		if len(l.buckets) >= l.max {
			return l.overflow.take(now, l.rate, l.burst)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[src] = b
	}
	return b.take(now, l.rate, l.burst)
}
