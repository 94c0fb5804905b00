package bench

import (
	"crypto/rand"
	"slices"
	"sync/atomic"
	"time"
)

// latencyRun records, for n messages with consecutive sequence numbers
// from base, when each was sent and when it reached each of slots
// receivers.
type latencyRun struct {
	base  uint64
	n     int
	slots int
	t0    time.Time
	sent  []atomic.Int64 // ns after t0, per message
	seen  []atomic.Int64 // ns after t0, per slot*n + message; 0: not yet
}

func newLatencyRun(base uint64, n, slots int) *latencyRun {
	return &latencyRun{base: base, n: n, slots: slots, t0: time.Now(),
		sent: make([]atomic.Int64, n), seen: make([]atomic.Int64, n*slots)}
}

func (l *latencyRun) since(t time.Time) int64 { return max(int64(t.Sub(l.t0)), 1) }

// sending stamps message i's send.
func (l *latencyRun) sending(i int) { l.sent[i].Store(l.since(time.Now())) }

// arrived stamps message seq's arrival at slot (outside the run: ignored).
func (l *latencyRun) arrived(slot int, seq uint64, t time.Time) {
	if seq < l.base || seq-l.base >= uint64(l.n) || slot < 0 || slot >= l.slots {
		return
	}
	l.seen[slot*l.n+int(seq-l.base)].CompareAndSwap(0, l.since(t))
}

// complete reports whether message i reached every slot.
func (l *latencyRun) complete(i int) bool {
	for s := range l.slots {
		if l.seen[s*l.n+i].Load() == 0 {
			return false
		}
	}
	return true
}

// latencies returns the sorted delays of the arrivals, and how many
// arrivals are missing.
func (l *latencyRun) latencies() (sorted []time.Duration, missing int) {
	sorted = make([]time.Duration, 0, len(l.seen))
	for s := range l.slots {
		for i := range l.n {
			a := l.seen[s*l.n+i].Load()
			if a == 0 {
				missing++
				continue
			}
			sorted = append(sorted, time.Duration(a-l.sent[i].Load()))
		}
	}
	slices.Sort(sorted)
	return sorted, missing
}

func fillRandom(b []byte) { _, _ = rand.Read(b) }
