package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
	"go.uber.org/goleak"
)

// Services run their loop and the socket readers as goroutines; none may
// outlive its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// accounted checks the Stats invariant: every datagram read is counted
// once more, as accepted, as a query, or under one drop class.
func accounted(t testing.TB, s Stats) {
	t.Helper()
	sum := s.Accepted + s.Queries + s.Oversized + s.Malformed + s.Version + s.Unsigned + s.BadKey +
		s.KeyMismatch + s.BadSignature + s.Stale + s.Replayed + s.Duplicate + s.Self + s.RateLimited + s.CacheFull
	if sum != s.Received {
		t.Errorf("stats do not add up: received %d, counted %d: %+v", s.Received, sum, s)
	}
}

// TestFindEachOther: four peers on lo, one with an RSA key, find each other
// and see what each announced.
func TestFindEachOther(t *testing.T) {
	group, port := testNet(t)
	ids := []*cryptosuite.Identity{ed25519ID(t), ed25519ID(t), fixtureID(t, "rsa3072"), ed25519ID(t)}
	svcs := make([]*Service, len(ids))
	for i, id := range ids {
		cfg := loConfig(t, group, port)
		cfg.Identity, cfg.Name = id, fmt.Sprintf("peer %d", i)
		cfg.Interval = 500 * time.Millisecond
		cfg.TCPAddrs = []netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("0.0.0.0:%d", 7000+i))}
		cfg.HTTPAddrs = []netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("127.0.0.%d:%d", 10+i, 8000+i))}
		cfg.HTTPS = i%2 == 1
		svcs[i] = start(t, cfg)
	}
	for i, s := range svcs {
		waitFor(t, fmt.Sprintf("peer %d sees the other three and itself", i), func() bool {
			return len(s.Peers()) == len(svcs)-1 && s.Stats().Self > 0
		})
	}
	for i, s := range svcs {
		for _, p := range s.Peers() {
			j := -1
			for k, id := range ids {
				if id.PeerID() == p.ID {
					j = k
				}
			}
			if j < 0 || j == i {
				t.Fatalf("peer %d lists %v", i, p.ID)
			}
			wantTCP := []netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", 7000+j))}
			wantHTTP := []netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("127.0.0.%d:%d", 10+j, 8000+j))}
			wantURL := []string{fmt.Sprintf("http://127.0.0.%d:%d", 10+j, 8000+j)}
			if j%2 == 1 {
				wantURL[0] = "https" + wantURL[0][len("http"):]
			}
			if !reflect.DeepEqual(p.HTTPURLs(), wantURL) || p.HTTPS != (j%2 == 1) {
				t.Errorf("peer %d sees peer %d's HTTP shim at %v (https %v), want %v", i, j, p.HTTPURLs(), p.HTTPS, wantURL)
			}
			if p.Name != fmt.Sprintf("peer %d", j) || !reflect.DeepEqual(p.TCPAddrs, wantTCP) ||
				!reflect.DeepEqual(p.HTTPAddrs, wantHTTP) || p.Instance != svcs[j].Instance() || p.Interface != "lo" ||
				p.Interval != 500*time.Millisecond || p.Source != svcs[j].Interfaces()[0].Local {
				t.Errorf("peer %d sees %+v, want peer %d at %v / %v from %v", i, p, j, wantTCP, wantHTTP, svcs[j].Interfaces()[0].Local)
			}
		}
	}
	for i, s := range svcs {
		st := s.Stats()
		accounted(t, st)
		// Replayed and Duplicate happen between honest peers: an answer and
		// an announcement overtake each other (two sockets, two readers).
		if st.Malformed+st.BadSignature+st.BadKey+st.KeyMismatch+st.Stale+st.Unsigned+st.Version+st.RateLimited != 0 {
			t.Errorf("peer %d: %+v, want nothing refused", i, st)
		}
	}
}

// TestRestart: a peer that restarts (same key, new instance) replaces its
// entry; the old instance's late announcements are dropped, even one with
// a newer timestamp.
func TestRestart(t *testing.T) {
	group, port := testNet(t)
	bcfg := loConfig(t, group, port)
	b := start(t, bcfg)
	id := ed25519ID(t)

	// The real thing: a Service stops and one with the same key starts.
	acfg := loConfig(t, group, port)
	acfg.Identity, acfg.Name = id, "first"
	ctx1, stop1 := context.WithCancel(context.Background())
	a1, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	done1 := make(chan error, 1)
	go func() { done1 <- a1.Run(ctx1) }()
	waitFor(t, "b sees the first instance", func() bool {
		p, ok, _ := b.livePeer(id.PeerID())
		return ok && p.Instance == a1.Instance()
	})
	stop1()
	<-done1
	acfg.Name = "second"
	a2 := start(t, acfg)
	waitFor(t, "b sees the second instance", func() bool {
		p, ok, _ := b.livePeer(id.PeerID())
		return ok && p.Instance == a2.Instance() && p.Name == "second"
	})
	if st := b.Stats(); st.Restarts != 1 {
		t.Fatalf("restarts = %d, want 1", st.Restarts)
	}

	// Late announcements of the first instance, signed by the same key.
	var inst1 [InstanceIDSize]byte
	copy(inst1[:], a1.instance[:])
	inj := newSender(t, "127.0.0.1", group, port)
	before := b.Stats()
	now := time.Now()
	inj.send(annSpec{id: id, instance: inst1, name: "first", at: now.Add(-time.Second)}.datagram(t))
	inj.send(annSpec{id: id, instance: inst1, name: "first", at: now.Add(time.Minute)}.datagram(t))
	waitFor(t, "both dropped as replays", func() bool { return b.Stats().Replayed == before.Replayed+2 })
	if p, _, _ := b.livePeer(id.PeerID()); p.Instance != a2.Instance() || p.Name != "second" {
		t.Fatalf("entry is %+v after the old instance's late announcements", p)
	}
	accounted(t, b.Stats())
}

// TestExpiry: an entry expires three of its sender's intervals after the
// last announcement; replaying that announcement does not bring it back.
func TestExpiry(t *testing.T) {
	group, port := testNet(t)
	clock := newClock()
	cfg := loConfig(t, group, port)
	cfg.Now = clock.Now
	b := start(t, cfg)
	inj := newSender(t, "127.0.0.1", group, port)
	id := ed25519ID(t)
	ann := annSpec{id: id, instance: instanceID(1), interval: time.Second, at: clock.Now()}.datagram(t)

	inj.send(ann)
	waitFor(t, "accepted", func() bool { return b.Stats().Accepted == 1 })
	clock.Advance(3 * time.Second)
	if len(b.Peers()) != 1 {
		t.Fatal("entry expired before three intervals")
	}
	clock.Advance(time.Millisecond)
	if len(b.Peers()) != 0 {
		t.Fatal("entry outlived three intervals")
	}
	if _, err := b.Lookup(timeoutCtx(t, 300*time.Millisecond), id.PeerID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup of an expired peer: %v", err)
	}

	inj.send(ann) // replayed while its timestamp is still in the window
	waitFor(t, "replay dropped", func() bool { return b.Stats().Duplicate == 1 })
	clock.Advance(b.window)
	inj.send(ann) // and once it is out of the window
	waitFor(t, "stale replay dropped", func() bool { return b.Stats().Stale == 1 })
	if len(b.Peers()) != 0 {
		t.Fatal("a replay brought the entry back")
	}

	// A fresh announcement brings it back.
	inj.send(annSpec{id: id, instance: instanceID(1), interval: time.Second, at: clock.Now()}.datagram(t))
	waitFor(t, "fresh announcement accepted", func() bool { return len(b.Peers()) == 1 })
	accounted(t, b.Stats())
}

func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDropClasses injects every malformed or forged datagram class and
// checks that each is dropped and counted in its own counter, and that
// nothing but the one good announcement reaches the cache.
func TestDropClasses(t *testing.T) {
	group, port := testNet(t)
	b := start(t, loConfig(t, group, port))
	inj := newSender(t, "127.0.0.1", group, port)
	x, y := ed25519ID(t), ed25519ID(t)
	now := time.Now()
	addr := netip.MustParseAddrPort("192.0.2.7:7000")
	good := annSpec{id: x, instance: instanceID(7), name: "x", at: now, tcp: []netip.AddrPort{addr}}.datagram(t)
	addrAt := bytes.Index(good, encodeAddrs([]netip.AddrPort{addr})[0])
	rsa1024, err := readPublicFixture("rsa1024_pub")
	if err != nil {
		t.Fatal(err)
	}
	sig := func(d []byte) []byte { return d[len(d)-64:] } // Ed25519 signature, last
	flip := func(d []byte, i int) []byte { d = append([]byte(nil), d...); d[i] ^= 1; return d }
	ok := func(d []byte) []byte { return d }

	for _, c := range []struct {
		name  string
		data  []byte
		class func(Stats) uint64
	}{
		{"oversized", append(append([]byte(nil), good...), make([]byte, MaxDatagram+1-len(good))...), func(s Stats) uint64 { return s.Oversized }},
		{"short", []byte("lan"), func(s Stats) uint64 { return s.Malformed }},
		{"bad magic", flip(good, 0), func(s Stats) uint64 { return s.Malformed }},
		{"other version", flip(good, 4), func(s Stats) uint64 { return s.Version }},
		{"unknown type", append(append([]byte(nil), good[:5]...), append([]byte{9}, good[6:]...)...), func(s Stats) uint64 { return s.Malformed }},
		{"trailing byte", append(append([]byte(nil), good...), 0), func(s Stats) uint64 { return s.Malformed }},
		{"truncated", good[:len(good)-1], func(s Stats) uint64 { return s.Malformed }},
		{"key length past the end", u16(good, HeaderSize, 2000), func(s Stats) uint64 { return s.Malformed }},
		{"key over the bound", appendEnvelope(nil, make([]byte, MaxSPKISize+1), envOf(t, good).blob, sig(good)), func(s Stats) uint64 { return s.Malformed }},
		{"blob too short", signBlob(t, x, "lanpeer/v1 announce", []byte("lanpeer/v1 announce\x00")), func(s Stats) uint64 { return s.Malformed }},
		{"unsigned", appendEnvelope(nil, x.Public().SPKI(), envOf(t, good).blob, nil), func(s Stats) uint64 { return s.Unsigned }},
		{"refused key (RSA-1024)", appendEnvelope(nil, rsa1024, rawBlob(cryptosuite.PeerIDFromSPKI(rsa1024), instanceID(1), nil, "", 1000, uint64(now.UnixMilli())), make([]byte, 128)), func(s Stats) uint64 { return s.BadKey }},
		{"peer ID of another key", appendEnvelope(nil, y.Public().SPKI(), envOf(t, good).blob, sig(good)), func(s Stats) uint64 { return s.KeyMismatch }},
		{"flipped signature", flip(good, len(good)-1), func(s Stats) uint64 { return s.BadSignature }},
		{"flipped name", flip(good, len(good)-64-2-24-1), func(s Stats) uint64 { return s.BadSignature }},
		{"changed address", flip(good, addrAt+15), func(s Stats) uint64 { return s.BadSignature }},
		{"signed by another key", appendEnvelope(nil, x.Public().SPKI(), envOf(t, good).blob, sig(signBlob(t, y, "lanpeer/v1 announce", envOf(t, good).blob))), func(s Stats) uint64 { return s.BadSignature }},
		{"signature for a directory record", signAs(t, x, "lanpeer/v1 directory record", envOf(t, good).blob), func(s Stats) uint64 { return s.BadSignature }},
		{"too old", annSpec{id: x, instance: instanceID(7), at: now.Add(-b.window - time.Minute)}.datagram(t), func(s Stats) uint64 { return s.Stale }},
		{"too far ahead", annSpec{id: x, instance: instanceID(7), at: now.Add(DefaultMaxClockSkew + time.Minute)}.datagram(t), func(s Stats) uint64 { return s.Stale }},
		{"time past int64", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), nil, "", 1000, 1<<63)), func(s Stats) uint64 { return s.Stale }},
		{"control character in name", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), nil, "a\x1b[2Jb", 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"bidi override in name", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), nil, "a\u202eb", 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"name too long", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), nil, string(make65('n')), 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"port 0", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), [][]byte{make([]byte, AddrSize)}, "", 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"address of 17 bytes", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), [][]byte{make([]byte, AddrSize-1)}, "", 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"five addresses", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), encodeAddrs(fiveAddrs()), "", 1000, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"HTTP scheme ftp", signBlob(t, x, "lanpeer/v1 announce", schemeBlob(x.PeerID(), "ftp", 1, now)), func(s Stats) uint64 { return s.Malformed }},
		{"HTTP scheme HTTPS (upper case)", signBlob(t, x, "lanpeer/v1 announce", schemeBlob(x.PeerID(), "HTTPS", 1, now)), func(s Stats) uint64 { return s.Malformed }},
		{"HTTP scheme as a URL prefix", signBlob(t, x, "lanpeer/v1 announce", schemeBlob(x.PeerID(), "https://", 1, now)), func(s Stats) uint64 { return s.Malformed }},
		{"HTTP addresses without a scheme", signBlob(t, x, "lanpeer/v1 announce", schemeBlob(x.PeerID(), "", 1, now)), func(s Stats) uint64 { return s.Malformed }},
		{"HTTP scheme without addresses", signBlob(t, x, "lanpeer/v1 announce", schemeBlob(x.PeerID(), "http", 0, now)), func(s Stats) uint64 { return s.Malformed }},
		{"interval 0", signBlob(t, x, "lanpeer/v1 announce", rawBlob(x.PeerID(), instanceID(7), nil, "", 0, uint64(now.UnixMilli()))), func(s Stats) uint64 { return s.Malformed }},
		{"short query", encodeQuery(cryptosuite.PeerID{})[:QuerySize-1], func(s Stats) uint64 { return s.Malformed }},
		{"query with padding", flip(encodeQuery(cryptosuite.PeerID{}), QuerySize-1), func(s Stats) uint64 { return s.Malformed }},
		{"query", encodeQuery(cryptosuite.PeerID{}), func(s Stats) uint64 { return s.Queries }},
		{"good", ok(good), func(s Stats) uint64 { return s.Accepted }},
		{"good again", good, func(s Stats) uint64 { return s.Duplicate }},
		{"older", annSpec{id: x, instance: instanceID(7), name: "x", at: now.Add(-time.Second)}.datagram(t), func(s Stats) uint64 { return s.Replayed }},
	} {
		before := b.Stats()
		inj.send(c.data)
		waitFor(t, c.name+" processed", func() bool { return c.class(b.Stats()) == c.class(before)+1 })
		after := b.Stats()
		if after.Received != before.Received+1 {
			t.Fatalf("%s: received %d datagrams, want 1", c.name, after.Received-before.Received)
		}
		accounted(t, after)
	}
	if p := b.Peers(); len(p) != 1 || p[0].ID != x.PeerID() || p[0].Name != "x" {
		t.Fatalf("cache holds %+v, want the one good announcement", p)
	}
	if st := b.Stats(); st.AnswersSent != 0 {
		t.Fatalf("a passive service answered: %+v", st)
	}
}

func make65(c byte) []byte {
	b := make([]byte, MaxNameSize+1)
	for i := range b {
		b[i] = c
	}
	return b
}

func fiveAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for i := range MaxAddrs + 1 {
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 7000))
	}
	return out
}

func envOf(t testing.TB, d []byte) envelope {
	t.Helper()
	env, cls := splitEnvelope(d)
	if cls != dropNone {
		t.Fatalf("test datagram does not split: %v", cls)
	}
	return env
}

// signAs signs blob under another purpose's label, keeping the envelope.
func signAs(t testing.TB, id *cryptosuite.Identity, label string, blob []byte) []byte {
	t.Helper()
	// canon.SignatureInput refuses a layout that does not start with its
	// label, so sign the signature input by hand: the input the other
	// purpose's verifier would build over these bytes.
	sig, err := id.Sign(label, append([]byte(label+"\x00"), blob[len("lanpeer/v1 announce")+1:]...))
	if err != nil {
		t.Fatal(err)
	}
	return appendEnvelope(nil, id.Public().SPKI(), blob, sig)
}

// TestSelf: an announcing peer hears its own announcements (multicast
// loopback) and lists nobody.
func TestSelf(t *testing.T) {
	group, port := testNet(t)
	cfg := loConfig(t, group, port)
	cfg.Identity = ed25519ID(t)
	s := start(t, cfg)
	waitFor(t, "own announcement heard", func() bool { return s.Stats().Self > 0 })
	if p := s.Peers(); len(p) != 0 {
		t.Fatalf("lists %+v", p)
	}
	// Its own start-up query is not answered: it came from its own socket.
	waitFor(t, "own query heard", func() bool { return s.Stats().Queries > 0 })
	if st := s.Stats(); st.AnswersSent != 0 {
		t.Fatalf("answered itself: %+v", st)
	}
}

// TestQueryAnswer: a passive peer's query is answered by unicast, and the
// answer is never larger than the query.
func TestQueryAnswer(t *testing.T) {
	group, port := testNet(t)
	acfg := loConfig(t, group, port)
	acfg.Identity, acfg.Name = ed25519ID(t), "a"
	acfg.Interval = MaxInterval // one announcement at start, then quiet
	a := start(t, acfg)
	waitFor(t, "a's first announcement", func() bool { return a.Stats().AnnouncementsSent == 1 })

	// Raw: a query from a plain socket gets a unicast answer back to it.
	inj := newSender(t, "127.0.0.3", group, port)
	q := encodeQuery(cryptosuite.PeerID{})
	inj.send(q)
	ans, from := inj.read()
	if from != a.Interfaces()[0].Local {
		t.Fatalf("answer from %v, want a's socket %v", from, a.Interfaces()[0].Local)
	}
	if len(ans) > len(q) {
		t.Fatalf("answer of %d bytes to a query of %d: amplification", len(ans), len(q))
	}
	env := envOf(t, ans)
	pk, _ := peekBlob(env.blob)
	if pk.peer != acfg.Identity.PeerID() {
		t.Fatalf("answer from peer %v", pk.peer)
	}

	// A passive Service's Query: only the answer can tell it about a, which
	// announced once before it started.
	c := start(t, loConfig(t, group, port))
	peers, err := c.Query(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].ID != acfg.Identity.PeerID() || peers[0].Name != "a" || peers[0].Source != a.Interfaces()[0].Local {
		t.Fatalf("query found %+v; querier %+v; a %+v", peers, c.Stats(), a.Stats())
	}
	if st := c.Stats(); st.QueriesSent != 2 || st.Accepted == 0 {
		t.Fatalf("querier stats %+v", st)
	}

	// Lookup: found by a targeted query; an unknown ID is not found.
	d := start(t, loConfig(t, group, port))
	if p, err := d.Lookup(t.Context(), acfg.Identity.PeerID()); err != nil || p.Name != "a" {
		t.Fatalf("lookup: %+v, %v", p, err)
	}
	if _, err := d.Lookup(timeoutCtx(t, 500*time.Millisecond), ed25519ID(t).PeerID()); !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lookup of nobody: %v", err)
	}
}

// TestAnswerRules drives onQuery directly: who is answered, and how many
// answers may wait.
func TestAnswerRules(t *testing.T) {
	group, port := testNet(t)
	cfg := loConfig(t, group, port)
	cfg.Identity = ed25519ID(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("127.0.0.9:5000")
	q := func(target cryptosuite.PeerID, from netip.AddrPort) multicast.Datagram {
		return multicast.Datagram{Data: encodeQuery(target), From: from, IfIndex: 1, Interface: "lo", Multicast: true}
	}
	s.onQuery(q(ed25519ID(t).PeerID(), from))
	if len(s.pending) != 0 {
		t.Fatal("answered a query for another peer")
	}
	s.onQuery(q(cfg.Identity.PeerID(), from))
	s.onQuery(q(cryptosuite.PeerID{}, from))
	if len(s.pending) != 1 || s.pending[0].to != from {
		t.Fatalf("pending %+v, want one answer to %v (repeats coalesce)", s.pending, from)
	}
	for i := range MaxPendingAnswers + 5 {
		s.onQuery(q(cryptosuite.PeerID{}, netip.AddrPortFrom(from.Addr(), uint16(6000+i))))
	}
	if len(s.pending) != MaxPendingAnswers || s.Stats().AnswersDropped != 6 {
		t.Fatalf("%d pending, %d dropped; want %d and 6", len(s.pending), s.Stats().AnswersDropped, MaxPendingAnswers)
	}
	for i := 1; i < len(s.pending); i++ {
		if s.pending[i].due.Before(s.pending[i-1].due) {
			t.Fatal("pending answers out of order")
		}
	}
	passive, _ := New(loConfig(t, group, port))
	passive.onQuery(q(cryptosuite.PeerID{}, from))
	if len(passive.pending) != 0 {
		t.Fatal("a passive service answers")
	}
}

// TestSizes: the largest announcement there can be (RSA-4096, full address
// lists, longest name) is exactly MaxAnnounceSize, a query is as large, and
// both fit one Ethernet frame over IPv6.
func TestSizes(t *testing.T) {
	var addrs []netip.AddrPort
	for i := range MaxAddrs {
		addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", i+1)), 7000))
	}
	d := annSpec{id: fixtureID(t, "rsa4096"), tcp: addrs, http: addrs, https: true, name: string(make65('n')[:MaxNameSize]),
		at: time.Now()}.datagram(t)
	if len(d) != MaxAnnounceSize || QuerySize < len(d) || len(encodeQuery(cryptosuite.PeerID{})) != QuerySize {
		t.Fatalf("largest announcement %d bytes, MaxAnnounceSize %d, QuerySize %d", len(d), MaxAnnounceSize, QuerySize)
	}
	if MaxDatagram+40+8 > 1500 {
		t.Fatalf("a %d-byte datagram does not fit a 1500-byte frame over IPv6", MaxDatagram)
	}
	if small := (annSpec{id: ed25519ID(t), at: time.Now()}).datagram(t); len(small) > QuerySize {
		t.Fatal("impossible")
	}
}

// TestFloodRateLimited: with the clock frozen, one source gets exactly its
// burst through; the next second refills it; another source has its own
// bucket.
func TestFloodRateLimited(t *testing.T) {
	group, port := testNet(t)
	clock := newClock()
	cfg := loConfig(t, group, port)
	cfg.Now = clock.Now
	cfg.Limits = Limits{SourceRate: 3, SourceBurst: 5, MaxSources: 2}
	b := start(t, cfg)
	junk := []byte("not a lanpeer datagram")
	flood := func(s *sender, n int) {
		for range n {
			before := b.Stats().Received
			s.send(junk)
			waitFor(t, "datagram read", func() bool { st := b.Stats(); return st.Malformed+st.RateLimited == before+1 })
		}
	}
	one := newSender(t, "127.0.0.1", group, port)
	flood(one, 50)
	if st := b.Stats(); st.Malformed != 5 || st.RateLimited != 45 {
		t.Fatalf("after 50 from one source: %+v, want 5 through and 45 limited", st)
	}
	clock.Advance(time.Second)
	flood(one, 10)
	if st := b.Stats(); st.Malformed != 8 || st.RateLimited != 52 {
		t.Fatalf("a second later: %+v, want 3 more through", st)
	}
	flood(newSender(t, "127.0.0.2", group, port), 10)
	if st := b.Stats(); st.Malformed != 13 {
		t.Fatalf("a second source: %+v, want its own burst of 5", st)
	}
	accounted(t, b.Stats())
}

// TestLimiterBounded: the buckets held never exceed MaxSources; sources
// beyond share one bucket; idle buckets are forgotten.
func TestLimiterBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(1, 2, 4)
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	for i := range 1000 {
		l.allow(src(i), now)
		if len(l.buckets) > 4 {
			t.Fatalf("%d buckets held", len(l.buckets))
		}
	}
	// Sources 4..999 shared the overflow bucket: 2 tokens, then nothing.
	if l.allow(src(5000), now) {
		t.Fatal("the overflow bucket let more than its burst through")
	}
	// src(0) has one token of its burst left, whatever the others did.
	if !l.allow(src(0), now) || l.allow(src(0), now) {
		t.Fatal("a known source's bucket was touched by the flood")
	}
	// Once the known sources are idle long enough to refill, they are
	// forgotten and a new source gets a bucket of its own.
	later := now.Add(10 * time.Second)
	if !l.allow(src(6000), later) || len(l.buckets) != 1 {
		t.Fatalf("after idling: %d buckets", len(l.buckets))
	}
}

// TestCacheBound: the cache never holds more than MaxPeers; known peers
// still refresh when it is full; expired ones make room once forgotten.
func TestCacheBound(t *testing.T) {
	group, port := testNet(t)
	clock := newClock()
	cfg := loConfig(t, group, port)
	cfg.Now = clock.Now
	cfg.Limits.MaxPeers = 3
	b := start(t, cfg)
	inj := newSender(t, "127.0.0.1", group, port)
	ids := []*cryptosuite.Identity{ed25519ID(t), ed25519ID(t), ed25519ID(t), ed25519ID(t), ed25519ID(t)}
	for i, id := range ids {
		inj.send(annSpec{id: id, instance: instanceID(1), at: clock.Now()}.datagram(t))
		waitFor(t, "processed", func() bool { st := b.Stats(); return st.Accepted+st.CacheFull == uint64(i+1) })
	}
	if st := b.Stats(); st.Accepted != 3 || st.CacheFull != 2 || len(b.Peers()) != 3 {
		t.Fatalf("%+v, %d peers; want 3 accepted, 2 refused", st, len(b.Peers()))
	}
	inj.send(annSpec{id: ids[0], instance: instanceID(1), at: clock.Now().Add(time.Millisecond)}.datagram(t))
	waitFor(t, "refresh accepted", func() bool { return b.Stats().Accepted == 4 })

	clock.Advance(b.window + time.Minute)
	inj.send(annSpec{id: ids[4], instance: instanceID(1), at: clock.Now()}.datagram(t))
	waitFor(t, "new peer accepted after the old ones expired", func() bool { return b.Stats().Accepted == 5 })
	if p := b.Peers(); len(p) != 1 || p[0].ID != ids[4].PeerID() {
		t.Fatalf("peers %+v", p)
	}
	b.mu.Lock()
	n := len(b.cache)
	b.mu.Unlock()
	if n > 3 {
		t.Fatalf("cache holds %d records", n)
	}
}

func TestConfigRefused(t *testing.T) {
	group, port := testNet(t)
	for name, mod := range map[string]func(*Config){
		"group outside 239.255/16": func(c *Config) { c.Group = netip.MustParseAddr("239.1.2.3") },
		"mDNS group":               func(c *Config) { c.Group = netip.MustParseAddr("224.0.0.251") },
		"site-local IPv6 group":    func(c *Config) { c.Group = netip.MustParseAddr("ff05::4c50") },
		"unicast group":            func(c *Config) { c.Group = netip.MustParseAddr("10.0.0.1") },
		"no interface":             func(c *Config) { c.Interfaces = nil },
		"interval too short":       func(c *Config) { c.Interval = MinInterval - time.Millisecond },
		"interval too long":        func(c *Config) { c.Interval = MaxInterval + time.Millisecond },
		"control character":        func(c *Config) { c.Name = "a\nb" },
		"name too long":            func(c *Config) { c.Name = string(make65('a')) },
		"too many addresses":       func(c *Config) { c.TCPAddrs = fiveAddrs() },
		"zoned address":            func(c *Config) { c.TCPAddrs = []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%lo]:7000")} },
		"HTTPS without HTTP":       func(c *Config) { c.HTTPS, c.HTTPAddrs = true, nil },
		"port 0":                   func(c *Config) { c.HTTPAddrs = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")} },
		"negative rate":            func(c *Config) { c.Limits.SourceRate = -1 },
	} {
		cfg := loConfig(t, group, port)
		mod(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}

// TestNoInterface: Run fails at once, and says why, when no interface
// joins; Query and Lookup report the same error.
func TestNoInterface(t *testing.T) {
	group, port := testNet(t)
	cfg := loConfig(t, group, port)
	cfg.Interfaces = []string{"lanpeer-nope0"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, multicast.ErrNoInterface) {
		t.Fatalf("Run: %v, want multicast.ErrNoInterface", err)
	}
	if _, err := s.Query(t.Context(), time.Second); !errors.Is(err, multicast.ErrNoInterface) {
		t.Fatalf("Query: %v", err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

// TestForcedAnnounce: a new peer makes an announcing peer announce at once,
// so the newcomer learns of it; more newcomers within ForcedAnnounceGap
// share one more announcement at the end of the gap; a known peer's
// refresh forces nothing.
func TestForcedAnnounce(t *testing.T) {
	group, port := testNet(t)
	cfg := loConfig(t, group, port)
	cfg.Identity, cfg.Interval = ed25519ID(t), MaxInterval // no periodic announcement during the test
	a := start(t, cfg)
	waitFor(t, "start-up announcement", func() bool { return a.Stats().AnnouncementsSent == 1 })
	inj := newSender(t, "127.0.0.1", group, port)
	x, y, z := ed25519ID(t), ed25519ID(t), ed25519ID(t)

	inj.send(annSpec{id: x, instance: instanceID(1), at: time.Now()}.datagram(t))
	waitFor(t, "forced announcement for x", func() bool { return a.Stats().AnnouncementsSent == 2 })
	sent := time.Now()
	inj.send(annSpec{id: y, instance: instanceID(1), at: time.Now()}.datagram(t))
	inj.send(annSpec{id: z, instance: instanceID(1), at: time.Now()}.datagram(t))
	inj.send(annSpec{id: x, instance: instanceID(1), at: time.Now().Add(time.Millisecond)}.datagram(t))
	waitFor(t, "y, z and x's refresh accepted", func() bool { return a.Stats().Accepted == 4 })
	// The gap (2 s) is a thousand times what processing took; only a
	// machine stalled for seconds could see the deferred announcement here.
	if n := a.Stats().AnnouncementsSent; n != 2 && time.Since(sent) < ForcedAnnounceGap {
		t.Fatalf("%d announcements: a newcomer within the gap was announced to at once", n)
	}
	waitFor(t, "one deferred announcement for y and z", func() bool { return a.Stats().AnnouncementsSent == 3 })
	if time.Since(sent) < ForcedAnnounceGap-100*time.Millisecond {
		t.Fatalf("deferred announcement after %v, before the gap of %v", time.Since(sent), ForcedAnnounceGap)
	}
}

// TestPassiveNeverSends: a Service without identity sends nothing unless
// asked (Query, Lookup): announcing one's presence is a choice.
func TestPassiveNeverSends(t *testing.T) {
	group, port := testNet(t)
	p := start(t, loConfig(t, group, port))
	inj := newSender(t, "127.0.0.1", group, port)
	inj.send(annSpec{id: ed25519ID(t), instance: instanceID(1), at: time.Now()}.datagram(t)) // a new peer
	inj.send(encodeQuery(cryptosuite.PeerID{}))                                              // a query
	waitFor(t, "both processed", func() bool { st := p.Stats(); return st.Accepted == 1 && st.Queries == 1 })
	if st := p.Stats(); st.AnnouncementsSent+st.AnswersSent+st.QueriesSent != 0 {
		t.Fatalf("a passive service sent: %+v", st)
	}
}

// TestResignedDuplicate: the same announcement signed twice (RSA-PSS gives
// a new signature each time) is a duplicate, not a new announcement:
// replay state is keyed by what is signed, never by signature bytes.
func TestResignedDuplicate(t *testing.T) {
	group, port := testNet(t)
	b := start(t, loConfig(t, group, port))
	inj := newSender(t, "127.0.0.1", group, port)
	spec := annSpec{id: fixtureID(t, "rsa2048"), instance: instanceID(1), at: time.Now()}
	one, two := spec.datagram(t), spec.datagram(t)
	if bytes.Equal(one, two) {
		t.Fatal("RSA-PSS signed the same blob twice with one signature")
	}
	inj.send(one)
	inj.send(two)
	waitFor(t, "both processed", func() bool { st := b.Stats(); return st.Accepted+st.Duplicate == 2 })
	if st := b.Stats(); st.Accepted != 1 || st.Duplicate != 1 {
		t.Fatalf("%+v, want one accepted and one duplicate", st)
	}
}

// TestFloodDoesNotStarve: 10,000 forged announcements from one source, sent
// as fast as the socket takes them, cost at most as many signature checks
// as that source's token bucket allows, and a real announcement from
// another source still gets through meanwhile.
func TestFloodDoesNotStarve(t *testing.T) {
	group, port := testNet(t)
	cfg := loConfig(t, group, port)
	cfg.Limits = Limits{} // the defaults
	b := start(t, cfg)
	x, y := ed25519ID(t), ed25519ID(t)
	forged := annSpec{id: x, instance: instanceID(1), at: time.Now()}.datagram(t)
	forged[len(forged)-1] ^= 1
	began := time.Now()
	flooded := make(chan struct{})
	s := newSender(t, "127.0.0.1", group, port)
	go func() {
		defer close(flooded)
		for range 10000 {
			s.conn.WriteToUDPAddrPort(forged, s.group)
		}
	}()
	real := newSender(t, "127.0.0.2", group, port)
	waitFor(t, "the real announcement accepted during the flood", func() bool {
		if _, ok, _ := b.livePeer(y.PeerID()); ok {
			return true
		}
		real.send(annSpec{id: y, instance: instanceID(2), at: time.Now()}.datagram(t))
		time.Sleep(10 * time.Millisecond)
		return false
	})
	<-flooded
	// Let the flood drain through the queue, then bound the work it caused.
	waitFor(t, "flood drained", func() bool { return len(b.conn.Recv()) == 0 })
	elapsed := time.Since(began).Seconds()
	st := b.Stats()
	if limit := DefaultSourceBurst + DefaultSourceRate*elapsed + 1; float64(st.BadSignature) > limit {
		t.Fatalf("%d signature checks for the flood in %.2fs; the bucket allows %.0f", st.BadSignature, elapsed, limit)
	}
	if st.RateLimited == 0 {
		t.Fatalf("nothing rate limited: %+v", st)
	}
	t.Logf("in %.2fs: %d rate limited, %d checked and refused, %d dropped by the lagging queue", elapsed, st.RateLimited, st.BadSignature, st.QueueFull)
	accounted(t, st)
}

// TestDefaultInterfaces: what --iface means when it is not given: up,
// multicast-capable interfaces, never loopback or point-to-point.
func TestDefaultInterfaces(t *testing.T) {
	names, err := DefaultInterfaces()
	if err != nil {
		// Only possible on a machine with no such interface; say so.
		if !strings.Contains(err.Error(), "--iface") {
			t.Fatalf("error does not say what to do: %v", err)
		}
		return
	}
	for _, n := range names {
		i, err := net.InterfaceByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagMulticast == 0 || i.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0 {
			t.Errorf("%s (%v) is not a default interface", n, i.Flags)
		}
	}
}
