package adversarial

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
)

// TestAdversarialRoomAuthorization (THREATS.md R1, R2): a room's master
// creates it on a peer; Mallory, a peer with a session but no membership,
// tries to read its messages, fetch its wrapped key and commits, delete
// it, and commit the master's own create commit again. Each is refused
// with the host's typed error (not-member: the host checks membership
// before anything else), the room stays as the master made it, and
// honest clients are served all the while. (A removed member, a member
// acting as master, and a host that forges or replays commits and
// messages: node's TestRoomRefusals, TestRoomStory and TestEvilHost*,
// room's TestRemovedMemberPosts, TestHostAddsMember and TestForgedSender.)
func TestAdversarialRoomAuthorization(t *testing.T) {
	p := startPeer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	dial := func() (*node.RoomClient, *room.KeyPackageSecrets, *cryptosuite.Identity) {
		id := newID(t)
		c, err := node.Dial(ctx, p.target(), &node.Config{Identity: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		rc := node.NewRoomClient(c)
		if err := rc.PublishKeyPackage(ctx, secrets.KeyPackage().Blob()); err != nil {
			t.Fatal(err)
		}
		return rc, secrets, id
	}
	master, ms, mid := dial()
	prop, err := room.NewRoom(room.RoomConfig{Master: mid, KeyPackage: ms.KeyPackage(), Name: "lab", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := master.CreateProposal(ctx, prop); err != nil {
		t.Fatal(err)
	}
	id := store.RoomID(prop.Info.Room)
	mallory, _, _ := dial()
	whileServing(t, p, "", func() {
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"read", func() error { _, err := mallory.Read(ctx, id, 0, 10); return err }(), room.ErrNotMember},
			{"fetch wrapped key", func() error { _, err := mallory.FetchWrappedKey(ctx, id, 1); return err }(), room.ErrNotMember},
			{"fetch commits", func() error { _, _, err := mallory.FetchCommits(ctx, id, 0, 10); return err }(), room.ErrNotMember},
			{"delete", mallory.Delete(ctx, id), room.ErrNotMember},
			{"commit the create again", mallory.Commit(ctx, id, prop.Commit), room.ErrNotMember},
		} {
			var re *node.RoomError
			if !errors.As(tc.err, &re) || !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: %v, want a RoomError matching %v", tc.name, tc.err, tc.want)
			}
		}
	})
	cs, head, err := master.FetchCommits(ctx, id, 0, 10)
	if err != nil || head != 1 || len(cs) != 1 {
		t.Fatalf("the room after the attack: %d commits, head %d, %v", len(cs), head, err)
	}
}
