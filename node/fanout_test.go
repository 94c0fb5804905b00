package node

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/wire"
)

// fanOutBench is a Service with n subscribers and a message push encoded
// once, as Send publishes it.
type fanOutBench struct {
	svc   *Service
	subs  []*Subscription
	peers []cryptosuite.PeerID
	push  Push
	w     *framing.Writer
	batch [][]byte
}

func newFanOutBench(t testing.TB, n int) *fanOutBench {
	t.Helper()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ServiceConfig{Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); mem.Close() })
	f := &fanOutBench{svc: svc, w: framing.NewWriter(io.Discard, framing.MaxControlFrame)}
	for i := range n {
		var peer cryptosuite.PeerID
		peer[0], peer[1] = byte(i), byte(i>>8)
		sub, err := svc.Subscribe(peer)
		if err != nil {
			t.Fatal(err)
		}
		svc.mu.Lock()
		sub.frames = true // as a session's push loop
		svc.mu.Unlock()
		f.subs = append(f.subs, sub)
		f.peers = append(f.peers, peer)
	}
	f.push = Push{Kind: PushMessage, Room: store.RoomID{1}, Message: StoredMessage{Seq: 1, Stored: time.UnixMilli(1), Blob: make([]byte, 400)}}
	if f.push.frame, err = wire.Encode(pushToWire(f.push)); err != nil {
		t.Fatal(err)
	}
	return f
}

// one fans one message out and writes each subscriber's pending frames as
// its push loop does, to a sink.
func (f *fanOutBench) one(t testing.TB) {
	f.svc.fanOut(&f.push, f.peers)
	for _, sub := range f.subs {
		var err error
		f.batch, _, err = sub.nextBatch(nil, f.batch[:0])
		if err == nil {
			err = f.w.WriteFrames(f.batch...)
		}
		if err != nil {
			t.Fatal(err)
		}
		clear(f.batch)
	}
}

// BenchmarkFanOut measures one room message's fan-out to n subscribers:
// queueing the shared frame for each, then each subscriber's batch
// written to an io.Writer sink (the push loop without yamux and TLS).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := newFanOutBench(b, n)
			f.one(b)
			b.ReportAllocs()
			for b.Loop() {
				f.one(b)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// TestFanOutAllocs: fanning a message out to 100 members and writing
// their frames allocates nothing per message: the frame is encoded once
// and shared, queues and writers reuse their buffers.
func TestFanOutAllocs(t *testing.T) {
	f := newFanOutBench(t, 100)
	f.one(t)
	if a := testing.AllocsPerRun(100, func() { f.one(t) }); a != 0 {
		t.Errorf("fan-out to 100 members: %v allocations per message, want 0", a)
	}
}

// TestPublishEncodesOnce: every subscriber of a published message gets
// the same frame bytes, encoded once.
func TestPublishEncodesOnce(t *testing.T) {
	f := newFanOutBench(t, 3)
	p := f.push
	p.frame = nil
	f.svc.publish(p, f.peers)
	var first []byte
	for i, sub := range f.subs {
		batch, n, err := sub.nextBatch(nil, nil)
		if err != nil || n != 1 || len(batch) != 1 {
			t.Fatalf("subscriber %d: %d pushes, %d frames, %v", i, n, len(batch), err)
		}
		if first == nil {
			first = batch[0]
		} else if &first[0] != &batch[0][0] {
			t.Errorf("subscriber %d got its own encoding of the push", i)
		}
		m, err := wire.Decode(batch[0])
		if err != nil {
			t.Fatal(err)
		}
		if mp, ok := m.(*wire.MessagePush); !ok || mp.Seq != 1 {
			t.Errorf("subscriber %d: frame decodes to %#v", i, m)
		}
	}
}

// TestPublishWithoutFrameWriters: when no subscriber of a message writes
// frames (the HTTP shim's journal), publish encodes none, and the push
// still reaches them whole.
func TestPublishWithoutFrameWriters(t *testing.T) {
	f := newFanOutBench(t, 2)
	f.svc.mu.Lock()
	for _, sub := range f.subs {
		sub.frames = false
	}
	f.svc.mu.Unlock()
	p := f.push
	p.frame = nil
	f.svc.publish(p, f.peers)
	for i, sub := range f.subs {
		select {
		case q := <-sub.ch:
			if q.frame != nil {
				t.Errorf("subscriber %d: a frame was encoded for a reader that writes none", i)
			}
			if q.Kind != PushMessage || q.Message.Seq != 1 || len(q.Message.Blob) != 400 {
				t.Errorf("subscriber %d: push %+v", i, q)
			}
		default:
			t.Fatalf("subscriber %d: no push", i)
		}
	}
}
