package room

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// BenchmarkMessage256 seals a 256-byte room message (sender key, random
// IV, A256CBC-HS512, Ed25519 signature) and opens it on another member
// (signature, chain and membership checks, sender key, open, text check).
func BenchmarkMessage256(b *testing.B) {
	for _, s := range cryptosuite.AEADs() {
		b.Run(s.Name, func(b *testing.B) {
			alice := newPeer(b, "alice", "ed25519", 0)
			bob := newPeer(b, "bob", "ed25519", 0)
			p1 := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "bench", Suite: s.ID, Now: t0}))(b)
			sa := join(b, alice, p1, alice, nil)
			p2 := must(sa.Invite(alice.id, kps(alice, bob), t0, bob.pid()))(b)
			if err := sa.ApplyProposal(p2, alice.secrets); err != nil {
				b.Fatal(err)
			}
			sb := join(b, alice, p2, bob, nil)
			text := strings.Repeat("x", 256)
			b.SetBytes(256)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m, err := sa.SealMessage(alice.secrets, text, msgID(byte(i)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sb.OpenMessage(m, alice.kp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRotate makes a rotation's proposal for a room of n members: a
// commit signed by an Ed25519 master and one HPKE (X25519) wrap plus
// signature per member.
func BenchmarkRotate(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			alice := newPeer(b, "alice", "ed25519", 0)
			p := must(NewRoom(RoomConfig{Master: alice.id, KeyPackage: alice.kp, Name: "bench", Now: t0}))(b)
			st := join(b, alice, p, alice, nil)
			all := []*KeyPackage{alice.kp}
			var ids []cryptosuite.PeerID
			for i := 1; i < n; i++ {
				m := newPeer(b, "m", "ed25519", 0)
				all = append(all, m.kp)
				ids = append(ids, m.pid())
			}
			p2 := must(st.Invite(alice.id, all, t0, ids...))(b)
			if err := st.ApplyProposal(p2, alice.secrets); err != nil {
				b.Fatal(err)
			}
			now := t0.Add(time.Minute)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Rotate(alice.id, all, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
