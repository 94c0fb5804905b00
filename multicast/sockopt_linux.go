//go:build linux

package multicast

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pin sets the options that tie a socket to one interface: where its
// multicast and unicast sends leave, their hop limit, multicast loopback,
// and (for a group socket) that it hears only groups it joined itself. It
// runs before bind, so no datagram ever leaves an unpinned socket.
func pin(fd int, ifi *net.Interface, v4 bool, hops int) error {
	type opt struct {
		name string
		set  func() error
	}
	var opts []opt
	// IP_UNICAST_IF and IPV6_UNICAST_IF take the index in network byte
	// order.
	var be [4]byte
	binary.BigEndian.PutUint32(be[:], uint32(ifi.Index))
	unicastIf := int(int32(binary.NativeEndian.Uint32(be[:])))
	if v4 {
		opts = []opt{
			{"IP_MULTICAST_IF", func() error {
				return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
			}},
			{"IP_UNICAST_IF", func() error {
				return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_UNICAST_IF, unicastIf)
			}},
			{"IP_MULTICAST_TTL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, hops) }},
			{"IP_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1) }},
			{"IP_MULTICAST_ALL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0) }},
		}
	} else {
		opts = []opt{
			{"IPV6_V6ONLY", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1) }},
			{"IPV6_MULTICAST_IF", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index) }},
			{"IPV6_UNICAST_IF", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_IF, unicastIf) }},
			{"IPV6_MULTICAST_HOPS", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hops) }},
			{"IPV6_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 1) }},
			{"IPV6_MULTICAST_ALL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0) }},
		}
	}
	for _, o := range opts {
		if err := o.set(); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return nil
}

// join adds the socket to group on ifi only.
func join(fd int, ifi *net.Interface, group netip.Addr) error {
	if group.Is4() {
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)})
	}
	return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
		&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifi.Index)})
}

// listen binds a UDP socket to addr after control has configured it.
func listen(addr netip.AddrPort, control func(fd int) error) (*net.UDPConn, error) {
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = control(int(fd)) }); cerr != nil {
			return cerr
		}
		return err
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// listenGroup opens the group socket: pinned, joined on ifi, bound to the
// group address itself (so unicast to the port never reaches it) with
// SO_REUSEADDR. net.ListenConfig would bind a multicast address as the
// wildcard, so the socket is made here and handed to the net package.
func listenGroup(ifi *net.Interface, group netip.AddrPort, hops int) (*net.UDPConn, error) {
	v4 := group.Addr().Is4()
	family, sa := unix.AF_INET6, unix.Sockaddr(nil)
	if v4 {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(group.Port()), Addr: group.Addr().As4()}
	} else {
		sa6 := &unix.SockaddrInet6{Port: int(group.Port()), Addr: group.Addr().As16()}
		if group.Addr().Zone() != "" {
			sa6.ZoneId = uint32(ifi.Index)
		}
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	err = func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
		if err := pin(fd, ifi, v4, hops); err != nil {
			return err
		}
		if err := join(fd, ifi, group.Addr().WithZone("")); err != nil {
			return fmt.Errorf("join %v: %w", group.Addr().WithZone(""), err)
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %v: %w", group, err)
		}
		return nil
	}()
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "multicast "+group.String())
	pc, err := net.FilePacketConn(f) // duplicates the descriptor
	f.Close()
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// listenSend opens the send socket: pinned to ifi, bound to src with a port
// the system picks.
func listenSend(ifi *net.Interface, src netip.Addr, v4 bool, hops int) (*net.UDPConn, error) {
	return listen(netip.AddrPortFrom(src, 0), func(fd int) error {
		return pin(fd, ifi, v4, hops)
	})
}
