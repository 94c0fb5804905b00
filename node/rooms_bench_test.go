package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store/memory"
)

// benchRoom is a room on a host with members online, each draining its
// pushes, and the first member the sender.
func benchRoom(b *testing.B, online int) (*roomHost, []*roomPeer) {
	b.Helper()
	h := startRoomHost(b, memory.Options{HistoryPerRoom: 1 << 20, MaxBytes: 4 << 30}, func(c *Config, _ *ServiceConfig) {
		c.MaxSessionsPerPeer = -1
	})
	peers := make([]*roomPeer, online)
	for i := range peers {
		peers[i] = h.newRoomPeer(b, fmt.Sprintf("m%d", i))
	}
	id := peers[0].createRoom(b, "bench")
	if online > 1 {
		peers[0].invite(b, peers[1:]...)
		for _, p := range peers[1:] {
			p.joinRoom(b, id, peers[0].pid())
		}
	}
	return h, peers
}

// BenchmarkRoomSend measures messages per second through one host: 256
// bytes of text, sealed beforehand, sent by 8 concurrent requests on the
// sender's session, each stored and pushed with its blob to every member
// online (the sender included).
func BenchmarkRoomSend(b *testing.B) {
	for _, online := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("online=%d", online), func(b *testing.B) {
			_, peers := benchRoom(b, online)
			var pushed atomic.Int64
			done := make(chan struct{})
			var wg sync.WaitGroup
			for _, p := range peers {
				wg.Add(1)
				go func(p *roomPeer) {
					defer wg.Done()
					for {
						select {
						case q := <-p.pushes.C():
							if q.Kind == PushMessage {
								pushed.Add(1)
							}
						case <-done:
							return
						}
					}
				}(p)
			}
			defer func() { close(done); wg.Wait() }()
			sender := peers[0]
			text := strings.Repeat("x", 256)
			blobs := make([][]byte, b.N)
			for i := range blobs {
				blobs[i] = sender.seal(b, text)
			}
			var next atomic.Int64
			b.SetBytes(int64(len(blobs[0])))
			b.ResetTimer()
			var swg sync.WaitGroup
			for range 8 {
				swg.Add(1)
				go func() {
					defer swg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(blobs)) {
							return
						}
						if _, err := sender.rc.Send(context.Background(), sender.room, blobs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			swg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(pushed.Load())/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// BenchmarkRoomPushLatency measures the delay from the start of a send to
// another member's push of it, at a fixed low rate (one message every 5
// ms), with 2 and 10 members online: p50 and p99.
func BenchmarkRoomPushLatency(b *testing.B) {
	for _, online := range []int{2, 10} {
		b.Run(fmt.Sprintf("online=%d", online), func(b *testing.B) {
			_, peers := benchRoom(b, online)
			sender, receiver := peers[0], peers[online-1]
			for _, p := range peers[:online-1] {
				drainBench(b, p)
			}
			blobs := make([][]byte, b.N)
			for i := range blobs {
				blobs[i] = sender.seal(b, strings.Repeat("y", 256))
			}
			lat := make([]time.Duration, 0, b.N)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for i := range b.N {
				<-tick.C
				start := time.Now()
				seq, err := sender.rc.Send(context.Background(), sender.room, blobs[i])
				if err != nil {
					b.Fatal(err)
				}
				for {
					p := receiver.nextPush(b, "the message", func(p Push) bool { return p.Kind == PushMessage || p.Kind == PushLost })
					if p.Kind == PushLost {
						b.Fatalf("pushes lost at a low rate")
					}
					if p.Message.Seq == seq {
						break
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// drainBench discards p's pushes until the benchmark ends.
func drainBench(b *testing.B, p *roomPeer) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-p.pushes.C():
			case <-done:
				return
			}
		}
	}()
	b.Cleanup(func() { close(done); wg.Wait() })
}
