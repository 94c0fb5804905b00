package discovery

import (
	mrand "math/rand/v2"
	"sort"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
)

// handle processes one datagram and counts it once; it reports whether a
// new peer (or a new instance of a known one) was accepted.
func (s *Service) handle(d multicast.Datagram) bool {
	now := s.cfg.Now()
	v, peer, a := s.judge(d, now)
	// Counted before it is stored, so whoever sees the entry sees the count.
	s.st.mu.Lock()
	s.st.received++
	s.st.verdicts[v]++
	s.st.mu.Unlock()
	if v == verdictAccepted {
		return s.commit(a, d, now)
	}
	if v != verdictQuery && v != dropSelf && v != dropDuplicate {
		if peer != nil {
			s.log.Debug("discovery: dropped", "class", v.String(), "from", d.From, "interface", d.Interface, "peer", *peer)
		} else {
			s.log.Debug("discovery: dropped", "class", v.String(), "from", d.From, "interface", d.Interface)
		}
	}
	return false
}

// judge decides what becomes of a datagram: the verdict, the peer it
// claims to be from once that is known, and, when accepted, the verified
// announcement to store. A query's answer is scheduled here.
func (s *Service) judge(d multicast.Datagram, now time.Time) (verdict, *cryptosuite.PeerID, *announcement) {
	if d.Truncated {
		return dropOversized, nil, nil
	}
	if !s.lim.allow(d.From.Addr(), now) {
		return dropRateLimited, nil, nil
	}
	typ, v := classify(d.Data)
	if v != dropNone {
		return v, nil, nil
	}
	if typ == typeQuery {
		return s.onQuery(d), nil, nil
	}
	return s.onAnnounce(d, now)
}

// onQuery schedules an answer to a well-formed query meant for this peer.
func (s *Service) onQuery(d multicast.Datagram) verdict {
	target, v := parseQuery(d.Data)
	if v != dropNone {
		return v
	}
	if !s.Announcing() || (!target.IsZero() && target != s.own) {
		return verdictQuery
	}
	if s.conn != nil {
		for _, i := range s.conn.Interfaces() {
			if i.Local == d.From {
				return verdictQuery // our own query, looped back
			}
		}
	}
	for _, p := range s.pending {
		if p.to == d.From {
			return verdictQuery // an answer to that address is already waiting
		}
	}
	if len(s.pending) >= MaxPendingAnswers {
		s.st.answersDropped.Add(1)
		return verdictQuery
	}
	due := time.Now().Add(mrand.N(MaxAnswerDelay + 1))
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].due.After(due) })
	s.pending = append(s.pending, pendingAnswer{})
	copy(s.pending[i+1:], s.pending[i:])
	s.pending[i] = pendingAnswer{due: due, to: d.From, ifIndex: d.IfIndex}
	return verdictQuery
}

// onAnnounce runs the checks from cheapest to dearest; nothing is stored
// before the signature verifies, and the blob is parsed in full only after.
func (s *Service) onAnnounce(d multicast.Datagram, now time.Time) (verdict, *cryptosuite.PeerID, *announcement) {
	env, pk, v := inspect(d.Data)
	if v != dropNone {
		return v, nil, nil
	}
	if s.Announcing() && pk.peer == s.own {
		return dropSelf, nil, nil
	}
	// A timestamp past int64 reads as negative: stale.
	ts := time.UnixMilli(int64(pk.millis))
	if pk.millis > 1<<62 || ts.Before(now.Add(-s.window)) || ts.After(now.Add(s.cfg.Limits.MaxClockSkew)) {
		return dropStale, &pk.peer, nil
	}

	s.mu.Lock()
	e := s.cache[pk.peer]
	full := false
	if e == nil && len(s.cache) >= s.cfg.Limits.MaxPeers {
		s.purgeLocked(now)
		full = len(s.cache) >= s.cfg.Limits.MaxPeers
	}
	judged := dropNone
	switch {
	case full:
		judged = dropCacheFull
	case e == nil:
	case e.wasSuperseded(pk.instance):
		judged = dropReplayed
	case pk.millis > e.millis:
	case pk.millis == e.millis && pk.instance == e.instance:
		judged = dropDuplicate
	default:
		judged = dropReplayed
	}
	s.mu.Unlock()
	if judged != dropNone {
		return judged, &pk.peer, nil
	}

	a, v := verify(env, pk)
	if v != dropNone {
		return v, &pk.peer, nil
	}
	return verdictAccepted, &pk.peer, a
}
