package httpshim

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
)

// httpSession is one established HTTP session: the peer, the
// authentication key, the nonces seen, the rate bucket.
type httpSession struct {
	id      [session.SessionIDSize]byte
	peer    *cryptosuite.PublicKey
	peerID  cryptosuite.PeerID
	kex     cryptosuite.KEXID
	aead    cryptosuite.AEADID
	authKey [session.AuthKeySize]byte
	journal *journal     // set under Server.mu before the session is visible
	addr    netip.Prefix // the address it was begun from (Server.perAddr)

	done     chan struct{} // closed when the session ends
	doneOnce sync.Once

	mu       sync.Mutex
	lastUsed time.Time
	inUse    int // requests and streams being served
	// The replay window (addNonce): the nonces remembered, with their
	// timestamps, in order of arrival, and the floor.
	nonces   map[string]int64 // nonce -> its request's timestamp, Unix ms
	order    []string         // ring of the nonces in nonces, oldest at next
	next     int              // the ring's oldest entry once it is full
	floor    int64            // requests at or below it are refused; see addNonce
	tokens   float64
	tokensAt time.Time
	ended    bool
}

func newHTTPSession(k *session.Keys, now time.Time) *httpSession {
	hs := &httpSession{
		id: k.SessionID, peer: k.Peer, peerID: k.Peer.PeerID(), kex: k.KEX.ID, aead: k.AEAD.ID,
		authKey: k.AuthKey, done: make(chan struct{}), lastUsed: now, nonces: map[string]int64{},
		tokens: -1, floor: math.MinInt64,
	}
	return hs
}

// acquire marks a request in progress, unless the session ended.
func (hs *httpSession) acquire() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.ended {
		return false
	}
	hs.inUse++
	return true
}

// release ends a request or stream; the idle clock starts again.
func (hs *httpSession) release(now time.Time) {
	hs.mu.Lock()
	hs.inUse--
	hs.lastUsed = now
	hs.mu.Unlock()
}

// idle reports a session without requests for longer than d.
func (hs *httpSession) idle(now time.Time, d time.Duration) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.inUse == 0 && now.Sub(hs.lastUsed) > d
}

// end marks the session ended, closes done (its streams return) and wipes
// its key.
func (hs *httpSession) end() {
	hs.mu.Lock()
	hs.ended = true
	clear(hs.authKey[:])
	clear(hs.nonces)
	hs.order = nil
	hs.mu.Unlock()
	hs.doneOnce.Do(func() { close(hs.done) })
}

// allowRate takes one token of the session's bucket.
func (hs *httpSession) allowRate(now time.Time, rate float64, burst int) bool {
	if rate < 0 {
		return true
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.tokens < 0 { // first request: a full bucket
		hs.tokens, hs.tokensAt = float64(burst), now
	}
	if el := now.Sub(hs.tokensAt).Seconds(); el > 0 {
		hs.tokens = min(float64(burst), hs.tokens+el*rate)
	}
	hs.tokensAt = now
	if hs.tokens < 1 {
		return false
	}
	hs.tokens--
	return true
}

var (
	errNonceReplay = errors.New("httpshim: nonce replayed")
	errNonceStale  = errors.New("httpshim: timestamp at or below the session's replay floor")
)

// addNonce admits a request's nonce, whose timestamp ts (Unix ms) the
// caller found within the window, or refuses it. The session remembers
// its last limit nonces; when it forgets the oldest, the floor rises to
// that nonce's timestamp, and every request at or below the floor is
// refused (errNonceStale). Every nonce ever admitted is thus either
// remembered or at or below the floor: a replay is refused whenever it
// comes (errNonceReplay or errNonceStale), and a session's rate is not
// bounded by limit. An honest client's timestamps increase, so the floor
// stays behind its requests; one held back while limit later ones
// overtook it is refused, and sent again, newly signed.
func (hs *httpSession) addNonce(nonce string, ts int64, limit int) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if ts <= hs.floor {
		return errNonceStale
	}
	if _, ok := hs.nonces[nonce]; ok {
		return errNonceReplay
	}
	nonce = strings.Clone(nonce) // kept: hold no more than its bytes
	if len(hs.order) < limit {
		hs.order = append(hs.order, nonce)
	} else {
		old := hs.order[hs.next]
		hs.floor = max(hs.floor, hs.nonces[old])
		delete(hs.nonces, old)
		hs.order[hs.next] = nonce
		hs.next = (hs.next + 1) % limit
	}
	hs.nonces[nonce] = ts
	return nil
}
