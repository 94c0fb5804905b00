package discovery

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
)

// FuzzAnnounce feeds arbitrary datagrams to a Service (passive, not
// running: handle needs no socket). Whatever arrives, nothing panics, every
// datagram is counted exactly once, what reaches the cache is within
// bounds, and only the one correctly signed datagram is ever accepted:
// every byte of an announcement is either checked or signed, and Ed25519
// signatures are not malleable.
func FuzzAnnounce(f *testing.F) {
	id := seededEd25519ID(f)
	now := time.UnixMilli(1764036000000)
	good := annSpec{id: id, instance: instanceID(3), name: "seed", at: now,
		tcp: []netip.AddrPort{netip.MustParseAddrPort("[::]:7000")}}.datagram(f)
	f.Add(good)
	f.Add(encodeQuery(cryptosuite.PeerID{}))
	f.Add(encodeQuery(id.PeerID()))
	f.Add(good[:HeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(Config{Interfaces: []string{"lo"}, Now: func() time.Time { return now },
			Limits: Limits{SourceRate: 1e6, SourceBurst: 1e6}})
		if err != nil {
			t.Fatal(err)
		}
		d := multicast.Datagram{Data: data, From: netip.MustParseAddrPort("127.0.0.1:9"), Interface: "lo", IfIndex: 1,
			Truncated: len(data) > MaxDatagram}
		s.handle(d)
		s.handle(d)
		st := s.Stats()
		accounted(t, st)
		if st.Received != 2 || st.Accepted > 1 {
			t.Fatalf("%+v", st)
		}
		if st.Accepted > 0 && !bytes.Equal(data, good) {
			t.Fatalf("accepted a datagram that is not the signed one: %x", data)
		}
		for _, p := range s.Peers() {
			if len(p.TCPAddrs) > MaxAddrs || len(p.HTTPAddrs) > MaxAddrs || !validName(p.Name) {
				t.Fatalf("out of bounds: %+v", p)
			}
		}
	})
}
