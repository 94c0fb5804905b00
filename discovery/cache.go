package discovery

import (
	"encoding/hex"
	"net/netip"
	"sort"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/multicast"
)

// Peer is one cache entry: what a verified announcement said, and where it
// came from. It is a hint: the handshake still checks that whoever answers
// at these addresses holds the key of ID.
type Peer struct {
	ID        cryptosuite.PeerID `json:"peer_id"`
	Name      string             `json:"name"`
	Instance  string             `json:"instance"` // hex; changes when the peer restarts
	TCPAddrs  []netip.AddrPort   `json:"tcp"`
	HTTPAddrs []netip.AddrPort   `json:"http"`
	// HTTPS says the HTTP addresses serve HTTPS rather than plain HTTP;
	// HTTPURLs gives them with their scheme.
	HTTPS bool `json:"https"`
	// Interface is where the last accepted announcement arrived, Source the
	// address it came from.
	Interface string         `json:"interface"`
	Source    netip.AddrPort `json:"source"`
	// Announced is the announcement's signed timestamp, LastSeen the local
	// time it was accepted.
	Announced time.Time     `json:"announced"`
	LastSeen  time.Time     `json:"last_seen"`
	Interval  time.Duration `json:"interval_ns"`
}

// HTTPURLs are the HTTP addresses as base URLs with their scheme,
// "http://192.0.2.7:8080" or "https://[2001:db8::7]:8443".
func (p *Peer) HTTPURLs() []string {
	scheme := schemeHTTP
	if p.HTTPS {
		scheme = schemeHTTPS
	}
	out := make([]string, len(p.HTTPAddrs))
	for i, a := range p.HTTPAddrs {
		out[i] = scheme + "://" + a.String()
	}
	return out
}

// Age is how long ago the last announcement was accepted.
func (p *Peer) Age(now time.Time) time.Duration { return now.Sub(p.LastSeen) }

// entry is one cache record. An expired entry stays (not listed) until its
// last timestamp falls out of the accepted window, so replaying its last
// announcement cannot bring it back.
type entry struct {
	peer       Peer
	instance   [InstanceIDSize]byte
	millis     uint64
	interval   time.Duration
	superseded [maxSuperseded][InstanceIDSize]byte
	nSup       int
}

func (e *entry) live(now time.Time) bool {
	return now.Sub(e.peer.LastSeen) <= ExpiryIntervals*e.interval
}

func (e *entry) wasSuperseded(inst [InstanceIDSize]byte) bool {
	for i := 0; i < e.nSup && i < maxSuperseded; i++ {
		if e.superseded[i] == inst {
			return true
		}
	}
	return false
}

// commit stores a verified announcement.
func (s *Service) commit(a *announcement, d multicast.Datagram, now time.Time) bool {
	s.mu.Lock()
	e := s.cache[a.peer]
	fresh := e == nil || !e.live(now)
	restart := e != nil && e.instance != a.instance
	if e == nil {
		e = &entry{}
		s.cache[a.peer] = e
	}
	if restart {
		e.superseded[e.nSup%maxSuperseded] = e.instance
		e.nSup++
	}
	e.instance, e.millis = a.instance, a.millis
	e.interval = time.Duration(a.interval) * time.Millisecond
	e.peer = Peer{
		ID: a.peer, Name: a.name, Instance: hex.EncodeToString(a.instance[:]),
		TCPAddrs: substitute(a.tcp, d.From), HTTPAddrs: substitute(a.http, d.From), HTTPS: a.https,
		Interface: d.Interface, Source: d.From,
		Announced: time.UnixMilli(int64(a.millis)), LastSeen: now, Interval: e.interval,
	}
	if restart {
		s.st.restarts.Add(1)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if fresh || restart {
		s.log.Debug("discovery: peer seen", "peer", a.peer, "name", a.name, "from", d.From, "restart", restart)
	}
	return fresh || restart
}

// substitute replaces unspecified addresses by the datagram's source
// address (keeping the announced port) and drops repeats.
func substitute(as []netip.AddrPort, from netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(as))
	for _, a := range as {
		if a.Addr().IsUnspecified() {
			a = netip.AddrPortFrom(from.Addr(), a.Port())
		}
		dup := false
		for _, o := range out {
			dup = dup || o == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// purgeLocked forgets expired entries whose last timestamp is out of the
// accepted window (a replay of it would be stale anyway).
func (s *Service) purgeLocked(now time.Time) {
	for id, e := range s.cache {
		if !e.live(now) && now.Sub(time.UnixMilli(int64(e.millis))) > s.window {
			delete(s.cache, id)
		}
	}
}

// Peers returns the live entries, sorted by peer ID. The slice and
// everything in it belong to the caller.
func (s *Service) Peers() []Peer {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Peer, 0, len(s.cache))
	for _, e := range s.cache {
		if e.live(now) {
			out = append(out, e.peer.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].ID[:]) < string(out[j].ID[:]) })
	return out
}

func (p Peer) clone() Peer {
	p.TCPAddrs = append([]netip.AddrPort(nil), p.TCPAddrs...)
	p.HTTPAddrs = append([]netip.AddrPort(nil), p.HTTPAddrs...)
	return p
}

// livePeer returns the live entry for id and the channel that closes on the
// next change.
func (s *Service) livePeer(id cryptosuite.PeerID) (Peer, bool, <-chan struct{}) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cache[id]; e != nil && e.live(now) {
		return e.peer.clone(), true, s.changed
	}
	return Peer{}, false, s.changed
}
