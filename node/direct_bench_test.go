package node

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// benchDirect sets up one session with Messaging on both sides, in AEAD
// suite aead. onServer and onClient receive the messages.
func benchDirect(b *testing.B, aead cryptosuite.AEADID, onServer, onClient func(Received)) (client, server *Messenger) {
	b.Helper()
	sm := NewMessaging(DirectConfig{OnMessage: func(r Received) { onServer(r) }})
	b.Cleanup(sm.Wait)
	scfg := benchServerConfig(identity(b, "ed-s"))
	scfg.Handlers, scfg.AEADs = sm.Handlers(), []cryptosuite.AEADID{aead}
	sessions := make(chan *Conn, 1)
	scfg.OnSession = func(c *Conn) { sessions <- c }
	srv := startServer(b, scfg)
	cm := NewMessaging(DirectConfig{OnMessage: onClient})
	b.Cleanup(cm.Wait)
	ccfg := clientConfig(identity(b, "ed-a"))
	ccfg.Handlers, ccfg.AEADs = cm.Handlers(), []cryptosuite.AEADID{aead}
	conn := mustDial(b, pinned(srv), ccfg)
	var err error
	if client, err = cm.Attach(conn); err != nil {
		b.Fatal(err)
	}
	select {
	case sc := <-sessions:
		if server, err = sm.Attach(sc); err != nil {
			b.Fatal(err)
		}
	case <-time.After(hang):
		b.Fatal("no session on the server")
	}
	return client, server
}

// BenchmarkDirectRoundTrip: a 64-byte direct message to the server, which
// sends it back on its own direct stream: sealing, framing, yamux and TLS
// both ways on one session.
func BenchmarkDirectRoundTrip(b *testing.B) {
	for _, s := range cryptosuite.AEADs() {
		b.Run(s.Name, func(b *testing.B) {
			back := make(chan struct{}, 1)
			var server atomic.Pointer[Messenger]
			var finished atomic.Bool
			client, srv := benchDirect(b, s.ID,
				func(r Received) {
					// The last answer may report the session's end (the
					// client closes it as soon as it has the answer).
					if err := server.Load().Send(context.Background(), r.Text); err != nil && !finished.Load() {
						b.Error(err)
					}
				},
				func(Received) { back <- struct{}{} })
			server.Store(srv)
			text := strings.Repeat("x", 64)
			for b.Loop() {
				if err := client.Send(context.Background(), text); err != nil {
					b.Fatal(err)
				}
				select {
				case <-back:
				case <-time.After(hang):
					b.Fatal("no answer")
				}
			}
			finished.Store(true)
		})
	}
}

// BenchmarkDirectThroughput: 1 KiB direct messages one way as fast as the
// session carries them, until the server confirms it read them all
// (Finish).
func BenchmarkDirectThroughput(b *testing.B) {
	for _, s := range cryptosuite.AEADs() {
		b.Run(s.Name, func(b *testing.B) {
			var got atomic.Int64
			client, _ := benchDirect(b, s.ID, func(Received) { got.Add(1) }, nil)
			text := strings.Repeat("x", 1024)
			b.SetBytes(int64(len(text)))
			b.ResetTimer()
			for range b.N {
				if err := client.Send(context.Background(), text); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			if err := client.Finish(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got.Load() != int64(b.N) {
				b.Fatalf("the server read %d of %d messages", got.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
