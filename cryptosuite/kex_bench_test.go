package cryptosuite

import (
	"testing"

	"github.com/lanpeer/lanpeer/canon"
)

// BenchmarkKEX measures one full key agreement per iteration: requestor key
// generation, Respond and Finish. rsa runs once per RSA identity size.
func BenchmarkKEX(b *testing.B) {
	for _, s := range KEXs() {
		if s.ID != KEXRSAOAEPSHA256 {
			b.Run(s.Name, func(b *testing.B) { benchKEX(b, s, RequestorKEXConfig{}, nil) })
			continue
		}
		for _, name := range []string{"rsa2048", "rsa3072", "rsa4096"} {
			id := sigFixture(b, name)
			b.Run(s.Name+"/"+name, func(b *testing.B) { benchKEX(b, s, RequestorKEXConfig{Identity: id}, id.Public()) })
		}
	}
}

func benchKEX(b *testing.B, s *KEXSuite, rcfg RequestorKEXConfig, requestor *PublicKey) {
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.NewRequestor(rcfg)
		if err != nil {
			b.Fatal(err)
		}
		resp, _, err := s.Respond(r.Share(), requestor, ResponderKEXConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Finish(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSigIdentities lists the identity keys in a stable order.
func benchSigIdentities(b *testing.B) []struct {
	name string
	id   *Identity
} {
	return []struct {
		name string
		id   *Identity
	}{
		{"ed25519", sigEd25519(b)},
		{"rsa2048", sigFixture(b, "rsa2048")},
		{"rsa3072", sigFixture(b, "rsa3072")},
		{"rsa4096", sigFixture(b, "rsa4096")},
	}
}

// BenchmarkSign measures Identity.Sign over a small layout (the signature
// input is a fixed-size hash, so the layout's size barely matters).
func BenchmarkSign(b *testing.B) {
	layout, _ := sigLayouts()
	for _, k := range benchSigIdentities(b) {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := k.id.Sign(canon.LabelAnnounce, layout); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify measures PublicKey.Verify of a good signature.
func BenchmarkVerify(b *testing.B) {
	layout, _ := sigLayouts()
	for _, k := range benchSigIdentities(b) {
		sig, err := k.id.Sign(canon.LabelAnnounce, layout)
		if err != nil {
			b.Fatal(err)
		}
		pub := k.id.Public()
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if err := pub.Verify(canon.LabelAnnounce, layout, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
