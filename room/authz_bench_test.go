package room

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// BenchmarkAuthorize measures the host's authorization checks over a
// memory store, on a room of alice (master) and bob: a member's check
// (every member operation's: the room, then the membership), the master's
// check, and a stranger's refusal.
func BenchmarkAuthorize(b *testing.B) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := must(NewHost(HostConfig{Store: st, Now: func() time.Time { return t0 }}))(b)
	ctx := context.Background()
	alice, bob, eve := newPeer(b, "alice", "ed25519", 0), newPeer(b, "bob", "ed25519", 0), newPeer(b, "eve", "ed25519", 0)
	for _, p := range []*peer{alice, bob} {
		if _, err := h.PublishKeyPackage(ctx, p.id.Public(), p.kp.Blob()); err != nil {
			b.Fatal(err)
		}
	}
	create := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "bench", Now: t0}))(b)
	if _, err := h.CreateRoom(ctx, alice.id.Public(), create.Commit); err != nil {
		b.Fatal(err)
	}
	id := store.RoomID(create.Info.Room)
	sa := join(b, alice, create, alice, nil)
	inv := must(sa.Invite(alice.id, kps(alice, bob), t0, bob.pid()))(b)
	if _, err := h.ApplyCommit(ctx, alice.id.Public(), id, inv.Commit); err != nil {
		b.Fatal(err)
	}
	b.Run("member", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := h.member(ctx, id, bob.pid()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("master", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.master(ctx, id, alice.pid()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stranger", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := h.member(ctx, id, eve.pid()); !errors.Is(err, ErrNotMember) {
				b.Fatal(err)
			}
		}
	})
}
