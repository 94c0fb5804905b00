// Package multicast moves datagrams over UDP multicast, IPv4 and IPv6, on
// interfaces named explicitly. It knows nothing of lanpeer: package
// discovery owns the bytes it moves (DESIGN.md §1 and §8).
//
// # Sockets
//
// [Listen] opens two sockets on each interface it is given, and pins both
// to that interface before they are bound:
//
//   - a group socket bound to the group address itself and the port (with
//     SO_REUSEADDR, so several processes share the port; unicast to the
//     port never reaches it), joined to the group on that
//     interface only. IP_MULTICAST_ALL / IPV6_MULTICAST_ALL are off, so it
//     receives only what arrives on the interface it joined, never traffic
//     for a group another socket on the machine joined elsewhere. An IPv6
//     link-local group is bound with the interface as its zone;
//   - a send socket bound to a unicast address of the interface (127.0.0.1
//     or ::1 on a loopback interface, the interface's first IPv4 address or
//     its IPv6 link-local address otherwise, port chosen by the system).
//     Multicast leaves it through IP_MULTICAST_IF / IPV6_MULTICAST_IF,
//     unicast through IP_UNICAST_IF / IPV6_UNICAST_IF, both set to the
//     interface: a datagram never leaves by the default route. Unicast
//     datagrams sent to it (answers) are received too.
//
// On a loopback interface the hop limit is always 0, so nothing sent there
// can leave the machine; elsewhere it is [Config.HopLimit] (default 1, the
// link). Multicast loopback is on, so processes on one machine hear each
// other (and a sender hears itself).
//
// The options are set with golang.org/x/sys/unix (Linux). Package
// golang.org/x/net/ipv4 cannot switch IP_MULTICAST_ALL off or set
// IP_UNICAST_IF, and both matter here. On other systems every interface
// fails with [ErrUnsupported], so [Listen] fails with [ErrNoInterface].
//
// # Receiving
//
// Each socket has one reader goroutine with one read buffer, reused; every
// datagram is copied out into a [Datagram] and offered to the channel
// [Conn.Recv] returns. When the consumer lags and the channel is full the
// datagram is dropped and counted ([Stats.Dropped]); a reader never blocks.
// A datagram longer than [Config.MaxDatagram] is delivered with Truncated
// set and no data. When the context given to Listen is done, or Close is
// called, the sockets are closed so that blocked reads return, and the
// channel is closed once every reader has stopped.
//
// # Joins
//
// Only interfaces where every step succeeded count as joined. An interface
// that fails is closed and reported by [Conn.Failed]; if none joins,
// Listen fails with an error wrapping [ErrNoInterface] and each
// interface's reason.
package multicast
