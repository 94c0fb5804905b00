package cryptosuite

import "testing"

// The master wraps one room key per member at every rotation (up to 1,000
// members by default); each member unwraps one.

func BenchmarkWrapRoomKey(b *testing.B) {
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		b.Run(kem.String(), func(b *testing.B) {
			pk := testHPKEKey(b, kem, 1).PublicKey()
			info := testWrapInfo(1)
			key := GenerateRoomKey()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := WrapRoomKey(pk, info, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnwrapRoomKey(b *testing.B) {
	for _, kem := range []KEMID{KEMX25519, KEMMLKEM768X25519} {
		b.Run(kem.String(), func(b *testing.B) {
			sk := testHPKEKey(b, kem, 1)
			info := testWrapInfo(1)
			enc, wrapped, err := WrapRoomKey(sk.PublicKey(), info, GenerateRoomKey())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := UnwrapRoomKey(sk, enc, info, wrapped); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSenderKey(b *testing.B) {
	s, _ := AEADByID(AEADA256CBCHS512)
	key := GenerateRoomKey()
	var room [16]byte
	var sender PeerID
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SenderKey(key, room, 1, sender, s); err != nil {
			b.Fatal(err)
		}
	}
}
