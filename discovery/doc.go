// Package discovery finds lanpeer peers on the LAN: signed announcements
// and queries on a UDP multicast group, answered by unicast (DESIGN.md §8;
// the byte layout, timers, limits and counters are docs/PROTOCOL.md §19).
// It owns the datagram format, the signatures, the cache and the timers;
// package multicast below it only moves datagrams.
//
// # Hints, not proof
//
// An accepted announcement proves that the holder of the key whose SHA-256
// is the peer ID signed these addresses recently. It does not prove that
// whoever answers at those addresses holds that key: a dialer still runs
// the handshake, which pins the peer ID (DESIGN.md §4). Discovery tells
// where to knock, the handshake who opened.
//
// # Using it from the CLI
//
//	// lanpeer listen --discovery [--iface I ...]
//	ifaces := flagIfaces // or discovery.DefaultInterfaces()
//	svc, err := discovery.New(discovery.Config{
//		Identity: id, Name: name,
//		TCPAddrs: []netip.AddrPort{tcpListenAddr}, // [::]:7000 means "my source address"
//		HTTPAddrs: httpAddrs,
//		Interfaces: ifaces, Group: group, Port: port, Logger: log,
//	})
//	go svc.Run(ctx) // returns at once with an error if no interface joins
//
//	// lanpeer peers [--timeout D] [--json]: a passive Service (no Identity)
//	svc, _ := discovery.New(discovery.Config{Interfaces: ifaces, Group: group, Port: port})
//	go svc.Run(ctx)
//	peers, err := svc.Query(ctx, timeout) // each Peer has ID, Name, addresses, LastSeen (Age)
//
//	// lanpeer dial PEERID: passive too, then pin the peer ID in the handshake
//	p, err := svc.Lookup(ctx, peerID) // errors.Is(err, discovery.ErrNotFound): try the directory
//
// Announcing is opt-in: a Service without Identity never announces and
// never answers. Config.Interfaces is required; DefaultInterfaces lists
// what --iface means when it is not given. Every socket pins its interface
// (package multicast), and on a loopback interface nothing is sent with a
// hop limit above 0. Group and Port are configurable (tests use their own);
// an IPv4 group must lie in 239.255.0.0/16, an IPv6 group in ff02::/16. A
// Service speaks one family: run two for IPv4 and IPv6.
//
// # Lifecycle
//
// New checks the Config. Run joins the group, announces at once (when it
// has an Identity) and asks who is there, then announces every Interval
// less a random quarter; it returns nil when its context is done. Query and
// Lookup wait until Run has joined (or failed), so `go svc.Run(ctx)`
// followed by svc.Query is fine. Peers, Query, Lookup and Stats are safe for
// concurrent use.
//
// # What is dropped
//
// A datagram is dropped and counted (Stats, one counter per class) when it
// is oversized, malformed, of another version, unsigned, carries a refused
// key, a peer ID that is not the key's hash, a bad signature, a timestamp
// outside the window, a replay (not newer than the last accepted one from
// that peer, or from an instance a newer one replaced), a duplicate of the
// last accepted one, this peer's own announcement, or when its source has
// no rate-limit token or a new peer finds the cache full. Checks run from
// cheapest to dearest; nothing is stored before the signature verifies.
package discovery
