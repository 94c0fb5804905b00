package httpshim

import (
	"errors"
	"net/netip"
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
	inUse    int                  // requests and streams being served
	nonces   map[string]time.Time // nonce -> until when it is remembered
	nextExp  time.Time            // no later than the earliest expiry in nonces
	tokens   float64
	tokensAt time.Time
	ended    bool
}

func newHTTPSession(k *session.Keys, now time.Time) *httpSession {
	hs := &httpSession{
		id: k.SessionID, peer: k.Peer, peerID: k.Peer.PeerID(), kex: k.KEX.ID, aead: k.AEAD.ID,
		authKey: k.AuthKey, done: make(chan struct{}), lastUsed: now, nonces: map[string]time.Time{},
		tokens: -1,
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
	errNonceFull   = errors.New("httpshim: nonce cache full")
)

// addNonce remembers nonce until until, or refuses a nonce already
// remembered. A full cache is swept once something in it can have
// expired; still full, it refuses.
func (hs *httpSession) addNonce(nonce string, now, until time.Time, max int) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if exp, ok := hs.nonces[nonce]; ok && now.Before(exp) {
		return errNonceReplay
	}
	if len(hs.nonces) >= max {
		if now.Before(hs.nextExp) {
			return errNonceFull
		}
		hs.nextExp = time.Time{}
		for n, exp := range hs.nonces {
			if !now.Before(exp) {
				delete(hs.nonces, n)
			} else if hs.nextExp.IsZero() || exp.Before(hs.nextExp) {
				hs.nextExp = exp
			}
		}
		if len(hs.nonces) >= max {
			return errNonceFull
		}
	}
	hs.nonces[nonce] = until
	if len(hs.nonces) == 1 || until.Before(hs.nextExp) {
		hs.nextExp = until
	}
	return nil
}
