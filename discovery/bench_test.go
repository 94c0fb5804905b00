package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// BenchmarkFirstSighting: from starting two peers on lo until each lists
// the other; reports the median over the runs (ms/sighting-median).
func BenchmarkFirstSighting(b *testing.B) {
	ida, idb := ed25519ID(b), ed25519ID(b)
	var took []time.Duration
	for b.Loop() {
		group, port := testNet(b)
		ctx, cancel := context.WithCancel(context.Background())
		began := time.Now()
		var svcs []*Service
		var done []chan error
		for _, id := range []*cryptosuite.Identity{ida, idb} {
			cfg := Config{Identity: id, Interfaces: []string{"lo"}, Group: group, Port: port}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ch := make(chan error, 1)
			go func() { ch <- s.Run(ctx) }()
			svcs, done = append(svcs, s), append(done, ch)
		}
		waitFor(b, "mutual sighting", func() bool {
			_, ok1, _ := svcs[0].livePeer(idb.PeerID())
			_, ok2, _ := svcs[1].livePeer(ida.PeerID())
			return ok1 && ok2
		})
		took = append(took, time.Since(began))
		cancel()
		for _, ch := range done {
			if err := <-ch; err != nil {
				b.Fatal(err)
			}
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms/sighting-median")
}

// BenchmarkAnnounce: signing an announcement (build) and the receiver's
// checks of a new one (verify: bounds, key hash, key parse, signature,
// full parse), per identity key type.
func BenchmarkAnnounce(b *testing.B) {
	for _, kt := range []string{"ed25519", "rsa3072"} {
		var id *cryptosuite.Identity
		if kt == "ed25519" {
			id = ed25519ID(b)
		} else {
			id = fixtureID(b, kt)
		}
		a := &announcement{peer: id.PeerID(), instance: instanceID(1), name: "bench",
			tcp:      []netip.AddrPort{netip.MustParseAddrPort("[::]:7000")},
			interval: 30000, millis: uint64(time.Now().UnixMilli())}
		b.Run(fmt.Sprintf("build/%s", kt), func(b *testing.B) {
			for b.Loop() {
				if _, err := encodeAnnouncement(id, a); err != nil {
					b.Fatal(err)
				}
			}
		})
		d, err := encodeAnnouncement(id, a)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("verify/%s", kt), func(b *testing.B) {
			for b.Loop() {
				env, pk, v := inspect(d)
				if v != dropNone {
					b.Fatal(v)
				}
				if _, v := verify(env, pk); v != dropNone {
					b.Fatal(v)
				}
			}
		})
	}
}
