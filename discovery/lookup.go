package discovery

import (
	"context"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// waitReady waits until Run has joined the group.
func (s *Service) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		if s.runErr != nil {
			return s.runErr
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.stopped:
		return ErrStopped
	default:
		return nil
	}
}

// Query asks who is there (what `lanpeer peers` does): it waits until Run
// has joined, sends a query to the group (and a second one halfway through
// a timeout of at least 500 ms, in case the first was lost), waits for the
// timeout, and returns Peers. Peers answer by unicast after a random delay
// of at most MaxAnswerDelay; a timeout of a second or two is plenty.
func (s *Service) Query(ctx context.Context, timeout time.Duration) ([]Peer, error) {
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := s.query(cryptosuite.PeerID{}); err != nil {
		return nil, err
	}
	end := time.NewTimer(timeout)
	defer end.Stop()
	again := time.NewTimer(timeout / 2)
	defer again.Stop()
	if timeout < 500*time.Millisecond {
		again.Stop()
	}
	for {
		select {
		case <-again.C:
			s.query(cryptosuite.PeerID{})
		case <-end.C:
			return s.Peers(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopped:
			return nil, ErrStopped
		}
	}
}

// Lookup returns the live entry for id (what `lanpeer dial PEERID` does).
// When the cache has none it waits until Run has joined and asks that peer
// alone, again after 200 ms and with doubling gaps (at most five queries),
// until an announcement from it is accepted or ctx is done; a ctx without
// deadline gets DefaultLookupTimeout. It fails with an error wrapping
// ErrNotFound and the context's error.
func (s *Service) Lookup(ctx context.Context, id cryptosuite.PeerID) (Peer, error) {
	if p, ok, _ := s.livePeer(id); ok {
		return p, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLookupTimeout)
		defer cancel()
	}
	if err := s.waitReady(ctx); err != nil {
		return Peer{}, fmt.Errorf("%w: %v: %w", ErrNotFound, id, err)
	}
	next := time.NewTimer(0)
	defer next.Stop()
	gap, sent := lookupFirstGap, 0
	for {
		p, ok, changed := s.livePeer(id)
		if ok {
			return p, nil
		}
		select {
		case <-changed:
		case <-next.C:
			if sent < lookupQueries {
				s.query(id)
				sent++
				next.Reset(gap)
				gap *= 2
			}
		case <-ctx.Done():
			return Peer{}, fmt.Errorf("%w: %v: %w", ErrNotFound, id, ctx.Err())
		case <-s.stopped:
			return Peer{}, ErrStopped
		}
	}
}
