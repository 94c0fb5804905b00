package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store/memory"
)

// TestServiceMessageSignatureSetting: ServiceConfig.SkipMessageSignatures
// reaches the host. By default a message whose signature does not verify
// is refused with room's error over the wire; with the check skipped it
// is stored, and the member that reads it refuses it.
func TestServiceMessageSignatureSetting(t *testing.T) {
	for _, skip := range []bool{false, true} {
		name := "verify"
		if skip {
			name = "skip"
		}
		t.Run(name, func(t *testing.T) {
			h := startRoomHost(t, memory.Options{}, func(_ *Config, s *ServiceConfig) { s.SkipMessageSignatures = skip })
			alice := h.newRoomPeer(t, "alice")
			alice.createRoom(t, "r")
			bad := bytes.Clone(alice.seal(t, "tampered"))
			bad[len(bad)-1] ^= 1 // the signature's last byte
			seq, err := alice.rc.Send(tctx(t), alice.room, bad)
			if !skip {
				if !errors.Is(err, room.ErrBadSignature) {
					t.Fatalf("send: %v, want room.ErrBadSignature", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("send to a host that skips the check: %v", err)
			}
			ms, err := alice.rc.Read(tctx(t), alice.room, seq-1, 1)
			if err != nil || len(ms) != 1 || !bytes.Equal(ms[0].Blob, bad) {
				t.Fatalf("read back: %d messages, %v", len(ms), err)
			}
			if _, err := alice.st.OpenMessage(ms[0].Blob, alice.signer(t, ms[0].Blob)); !errors.Is(err, room.ErrBadSignature) {
				t.Fatalf("the member opened a message that does not verify: %v", err)
			}
		})
	}
}
