package room

import (
	"bytes"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/store/memory"
)

// TestHostMessageSignatureSetting: a host that verifies message
// signatures (the default) refuses a message whose signature does not
// verify; one configured to skip the check stores it, and the member
// reading it refuses it all the same. Every other rule of Send holds
// either way.
func TestHostMessageSignatureSetting(t *testing.T) {
	for _, skip := range []bool{false, true} {
		name := "verify"
		if skip {
			name = "skip"
		}
		t.Run(name, func(t *testing.T) {
			f := newHostFixture(t, memory.Options{})
			sb := f.joinBob(t)
			h := must(NewHost(HostConfig{Store: f.h.Store(), Now: func() time.Time { return t0 }, SkipMessageSignatures: skip}))(t)

			good := must(sb.SealMessage(f.bob.secrets, "signed", msgID(1)))(t)
			bad := must(sb.SealMessage(f.bob.secrets, "tampered", msgID(2)))(t)
			bad = bytes.Clone(bad)
			bad[len(bad)-1] ^= 1 // the last byte of the signature
			if _, err := VerifyMessage(bad, f.bob.kp); err == nil {
				t.Fatal("the tampered message verifies")
			}

			if _, err := h.Send(f.ctx, f.bob.pid(), f.id, good); err != nil {
				t.Fatalf("a good message: %v", err)
			}
			stored, err := h.Send(f.ctx, f.bob.pid(), f.id, bad)
			if !skip {
				wantErr(t, err, ErrBadSignature)
			} else {
				if err != nil {
					t.Fatalf("a host that skips the check refused the message: %v", err)
				}
				// Alice reads it and refuses it, as from any host.
				ms := must(h.Read(f.ctx, f.alice.pid(), f.id, stored.Seq-1, 1))(t)
				if len(ms) != 1 || !bytes.Equal(ms[0].Blob, bad) {
					t.Fatalf("read back %d messages", len(ms))
				}
				_, err = f.sa.OpenMessage(ms[0].Blob, f.bob.kp)
				wantErr(t, err, ErrBadSignature)
			}

			// The other rules hold with either setting: a message posted
			// by another peer than its sender, one with a signature of the
			// wrong size, and one by a non-member are refused.
			other := must(sb.SealMessage(f.bob.secrets, "bob's", msgID(3)))(t)
			_, err = h.Send(f.ctx, f.alice.pid(), f.id, other)
			wantErr(t, err, ErrNotOwner)
			short := must(sb.SealMessage(f.bob.secrets, "short signature", msgID(4)))(t)
			short = bytes.Clone(short)
			short[len(short)-65]-- // the signature's length field (4 bytes before it): 63
			short = short[:len(short)-1]
			_, err = h.Send(f.ctx, f.bob.pid(), f.id, short)
			wantErr(t, err, ErrBadSignature)
			_, err = h.Send(f.ctx, f.carol.pid(), f.id, other)
			wantErr(t, err, ErrNotMember)
		})
	}
}
