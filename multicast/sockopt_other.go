//go:build !linux

package multicast

import (
	"net"
	"net/netip"
)

func listenGroup(*net.Interface, netip.AddrPort, int) (*net.UDPConn, error) {
	return nil, ErrUnsupported
}

func listenSend(*net.Interface, netip.Addr, bool, int) (*net.UDPConn, error) {
	return nil, ErrUnsupported
}
