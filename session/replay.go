package session

import (
	"sync"
	"time"
)

// DefaultReplayCacheSize bounds the hello nonces a responder remembers.
const DefaultReplayCacheSize = 1 << 16

// ReplayCache remembers the nonces of accepted hellos for as long as their
// timestamps could still pass the clock-skew check, so a recorded hello can
// never be accepted twice. It is bounded: when full of unexpired nonces it
// refuses new handshakes (ErrBusy) rather than forget one. Safe for
// concurrent use.
type ReplayCache struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	seen map[[NonceSize]byte]time.Time // nonce -> expiry
	// next is no later than the earliest expiry in seen, so a full cache
	// is scanned only once something in it can have expired: a flood of
	// hellos against a full cache costs a comparison each, not a scan.
	next  time.Time
	scans int // expiry scans, for tests
}

// NewReplayCache returns a cache holding at most max nonces, each for at
// least ttl (default twice the default clock skew, so a hello stamped at the
// edge of the window is still remembered until it would be refused as
// stale). A responder keeps a nonce longer when its own clock skew needs it:
// until the hello's timestamp plus the skew has passed.
func NewReplayCache(max int, ttl time.Duration) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayCacheSize
	}
	if ttl <= 0 {
		ttl = 2 * DefaultMaxClockSkew
	}
	return &ReplayCache{max: max, ttl: ttl, seen: make(map[[NonceSize]byte]time.Time)}
}

// Add records nonce, or returns ErrReplay if it was seen within its
// lifetime, or ErrBusy if the cache is full.
func (c *ReplayCache) Add(nonce []byte, now time.Time) error {
	return c.add(nonce, now, now)
}

// add records nonce until the later of now+ttl and until.
func (c *ReplayCache) add(nonce []byte, now, until time.Time) error {
	var k [NonceSize]byte
	if len(nonce) != NonceSize {
		return ErrUnexpectedMessage
	}
	copy(k[:], nonce)
	exp := now.Add(c.ttl)
	if until.After(exp) {
		exp = until
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.seen[k]; ok && now.Before(old) {
		return ErrReplay
	}
	if len(c.seen) >= c.max {
		if now.Before(c.next) {
			return ErrBusy
		}
		c.expire(now)
		if len(c.seen) >= c.max {
			return ErrBusy
		}
	}
	c.seen[k] = exp
	if len(c.seen) == 1 || exp.Before(c.next) {
		c.next = exp
	}
	return nil
}

// seenAt reports whether nonce is remembered and unexpired at now. It
// records nothing, so unauthenticated input can call it.
func (c *ReplayCache) seenAt(nonce []byte, now time.Time) bool {
	var k [NonceSize]byte
	if len(nonce) != NonceSize {
		return false
	}
	copy(k[:], nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.seen[k]
	return ok && now.Before(exp)
}

// expire drops the expired nonces and recomputes next.
func (c *ReplayCache) expire(now time.Time) {
	c.scans++
	c.next = time.Time{}
	for k, exp := range c.seen {
		if !now.Before(exp) {
			delete(c.seen, k)
		} else if c.next.IsZero() || exp.Before(c.next) {
			c.next = exp
		}
	}
}

// Len reports how many nonces are held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
