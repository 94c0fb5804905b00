package storetest

import (
	"sync/atomic"
	"testing"

	"github.com/lanpeer/lanpeer/store"
)

// Bench runs the store benchmarks against the stores newStore makes, one
// store per sub-benchmark, so that two backends can be compared in one
// run:
//
//   - Append: one appender, one room, 256-byte messages.
//   - AppendParallel: GOMAXPROCS appenders (b.RunParallel), one room.
//   - AppendParallelRooms: GOMAXPROCS appenders, a room each.
//   - Read: pages of 100 messages from a room holding 1,000.
//
// Each reports messages per second (msgs/s).
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	b.Run("Append", func(b *testing.B) {
		s, f := benchStore(b, newStore, 1)
		m := message(f.room.ID, f.members[1].Peer, 0, 1)
		m.Blob = blob("bench", 256)
		b.SetBytes(int64(len(m.Blob)))
		b.ResetTimer()
		for i := range b.N {
			m.ID = msgID(i + 1)
			if _, err := s.AppendMessage(b.Context(), m); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, b.N)
	})
	b.Run("AppendParallel", func(b *testing.B) {
		s, f := benchStore(b, newStore, 1)
		var next atomic.Int64
		b.SetBytes(256)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			m := message(f.room.ID, f.members[1].Peer, 0, 1)
			m.Blob = blob("bench", 256)
			for pb.Next() {
				m.ID = msgID(int(next.Add(1)))
				if _, err := s.AppendMessage(b.Context(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N)
	})
	b.Run("AppendParallelRooms", func(b *testing.B) {
		s := newStore(b)
		b.Cleanup(func() { _ = s.Close() })
		var rooms, next atomic.Int64
		b.SetBytes(256)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			f := newFixture(int(rooms.Add(1)))
			if err := s.CreateRoom(b.Context(), f.room, f.create, f.members); err != nil {
				b.Error(err)
				return
			}
			m := message(f.room.ID, f.members[1].Peer, 0, 1)
			m.Blob = blob("bench", 256)
			for pb.Next() {
				m.ID = msgID(int(next.Add(1)))
				if _, err := s.AppendMessage(b.Context(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, b.N)
	})
	b.Run("Read", func(b *testing.B) {
		const held, page = 1000, 100
		s, f := benchStore(b, newStore, 1)
		for i := range held {
			m := message(f.room.ID, f.members[1].Peer, i+1, 1)
			m.Blob = blob("bench", 256)
			if _, err := s.AppendMessage(b.Context(), m); err != nil {
				b.Fatal(err)
			}
		}
		sp, err := s.MessageSpan(b.Context(), f.room.ID)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(page * 256)
		b.ResetTimer()
		after := sp.First - 1
		for range b.N {
			msgs, err := s.ReadMessages(b.Context(), f.room.ID, after, page)
			if err != nil {
				b.Fatal(err)
			}
			if after += uint64(len(msgs)); after+page > sp.Last {
				after = sp.First - 1
			}
		}
		reportRate(b, b.N*page)
	})
}

func benchStore(b *testing.B, newStore func(b *testing.B) store.Store, room int) (store.Store, fixture) {
	b.Helper()
	s := newStore(b)
	b.Cleanup(func() { _ = s.Close() })
	f := newFixture(room)
	if err := s.CreateRoom(b.Context(), f.room, f.create, f.members); err != nil {
		b.Fatal(err)
	}
	return s, f
}

func reportRate(b *testing.B, msgs int) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(msgs)/sec, "msgs/s")
	}
}
