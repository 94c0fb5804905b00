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
}

// NewReplayCache returns a cache holding at most max nonces, each for ttl
// (twice the clock skew, so a hello stamped at the edge of the window is
// still remembered until it would be refused as stale).
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
	var k [NonceSize]byte
	if len(nonce) != NonceSize {
		return ErrUnexpectedMessage
	}
	copy(k[:], nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[k]; ok && now.Before(exp) {
		return ErrReplay
	}
	if len(c.seen) >= c.max {
		c.expire(now)
		if len(c.seen) >= c.max {
			return ErrBusy
		}
	}
	c.seen[k] = now.Add(c.ttl)
	return nil
}

func (c *ReplayCache) expire(now time.Time) {
	for k, exp := range c.seen {
		if !now.Before(exp) {
			delete(c.seen, k)
		}
	}
}

// Len reports how many nonces are held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
