package discovery

import (
	"sync"
	"sync/atomic"
)

// Stats counts what a Service did. Every datagram it read (Received) is
// counted exactly once more: as Accepted, as a well-formed Query, or under
// one drop class (Oversized ... CacheFull).
type Stats struct {
	Received uint64
	// Accepted announcements added or refreshed a cache entry; Restarts of
	// them replaced a known peer's instance.
	Accepted, Restarts uint64
	// Queries counts well-formed queries received.
	Queries uint64

	// Drop classes.
	Oversized    uint64 // longer than MaxDatagram
	Malformed    uint64 // bad magic, unknown type, bad lengths or fields, query of the wrong size or padding
	Version      uint64 // another discovery version
	Unsigned     uint64 // announcement with an empty signature
	BadKey       uint64 // identity key refused (type, size, non-canonical encoding)
	KeyMismatch  uint64 // peer ID is not SHA-256 of the key carried
	BadSignature uint64 // signature does not verify
	Stale        uint64 // timestamp outside the accepted window
	Replayed     uint64 // not newer than what was seen from that peer, or from an instance it replaced
	Duplicate    uint64 // the announcement already accepted, again (answers, several interfaces)
	Self         uint64 // this peer's own announcements, looped back
	RateLimited  uint64 // the source had no token
	CacheFull    uint64 // a new peer while the cache held MaxPeers

	// QueueFull counts datagrams the socket readers dropped because the
	// Service lagged (not in Received).
	QueueFull uint64
	// AnswersDropped counts queries not answered because MaxPendingAnswers
	// answers were waiting; AnswersSent, AnnouncementsSent and QueriesSent
	// count datagrams sent, SendErrors sends that failed on every
	// interface.
	AnswersDropped, AnswersSent, AnnouncementsSent, QueriesSent, SendErrors uint64
}

// counters: received and the verdicts change together under mu, so a
// snapshot always adds up; the others are atomic.
type counters struct {
	mu       sync.Mutex
	received uint64
	verdicts [numVerdicts]uint64

	restarts, answersDropped, answersSent, announcements atomic.Uint64
	queriesSent, sendErrors                              atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.st.mu.Lock()
	v := s.st.verdicts
	st := Stats{Received: s.st.received}
	s.st.mu.Unlock()
	st.Accepted, st.Queries = v[verdictAccepted], v[verdictQuery]
	st.Oversized, st.Malformed, st.Version, st.Unsigned = v[dropOversized], v[dropMalformed], v[dropVersion], v[dropUnsigned]
	st.BadKey, st.KeyMismatch, st.BadSignature = v[dropBadKey], v[dropKeyMismatch], v[dropBadSignature]
	st.Stale, st.Replayed, st.Duplicate, st.Self = v[dropStale], v[dropReplayed], v[dropDuplicate], v[dropSelf]
	st.RateLimited, st.CacheFull = v[dropRateLimited], v[dropCacheFull]
	st.Restarts = s.st.restarts.Load()
	st.AnswersDropped, st.AnswersSent = s.st.answersDropped.Load(), s.st.answersSent.Load()
	st.AnnouncementsSent, st.QueriesSent = s.st.announcements.Load(), s.st.queriesSent.Load()
	st.SendErrors = s.st.sendErrors.Load()
	select {
	case <-s.ready:
		if s.conn != nil {
			st.QueueFull = s.conn.Stats().Dropped
		}
	default:
	}
	return st
}
