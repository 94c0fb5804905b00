package multicast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of a Config.
const (
	// DefaultMaxDatagram is the read buffer's payload size when the Config
	// names none.
	DefaultMaxDatagram = 1500
	// MaxMaxDatagram bounds Config.MaxDatagram: a UDP payload is at most
	// 65507 bytes over IPv4.
	MaxMaxDatagram = 65507
	// DefaultQueueLen is the receive channel's capacity when the Config
	// names none.
	DefaultQueueLen = 64
	// MaxQueueLen bounds Config.QueueLen.
	MaxQueueLen = 4096
	// MaxInterfaces bounds Config.Interfaces: each costs two sockets and
	// two goroutines.
	MaxInterfaces = 32
)

// Errors of Listen, Send and SendTo.
var (
	// ErrNoInterface means no interface could be joined; the error that
	// wraps it lists each interface's reason.
	ErrNoInterface = errors.New("multicast: no interface joined")
	// ErrUnsupported is returned by Listen where this package has no socket
	// code (every system but Linux).
	ErrUnsupported = errors.New("multicast: not supported on this system")
	// ErrBadConfig wraps every refusal of a Config.
	ErrBadConfig = errors.New("multicast: bad config")
	// ErrOffLink is returned by SendTo for a destination that is not on the
	// interface's link: answers go only to neighbours.
	ErrOffLink = errors.New("multicast: destination is not on the interface's link")
	// ErrTooLarge is returned by Send and SendTo for a datagram over
	// Config.MaxDatagram (a local bug).
	ErrTooLarge = errors.New("multicast: datagram larger than MaxDatagram")
	// ErrUnknownInterface is returned by SendTo for an interface index the
	// Conn has not joined.
	ErrUnknownInterface = errors.New("multicast: interface not joined")
)

// Config describes the group, port and interfaces of a Conn. It is not
// modified by Listen.
type Config struct {
	// Group is an IPv4 or IPv6 multicast address; its family decides the
	// family of every socket.
	Group netip.Addr
	// Port is the group's UDP port; 0 is refused.
	Port uint16
	// Interfaces are the names of the interfaces to join and send on; at
	// least one, at most MaxInterfaces. There is no default: a caller names
	// every interface its datagrams may leave by.
	Interfaces []string
	// HopLimit is the TTL (IPv4) or hop limit (IPv6) of multicast sent on
	// a non-loopback interface: 0 means 1 (the link). On a loopback
	// interface it is always 0.
	HopLimit int
	// MaxDatagram is the largest payload delivered; a longer datagram is
	// delivered with Truncated set. 0 means DefaultMaxDatagram.
	MaxDatagram int
	// QueueLen is the receive channel's capacity; 0 means DefaultQueueLen.
	QueueLen int
}

func (c *Config) check() error {
	switch {
	case !c.Group.IsMulticast():
		return fmt.Errorf("%w: group %v is not a multicast address", ErrBadConfig, c.Group)
	case c.Group.Zone() != "":
		return fmt.Errorf("%w: group %v carries a zone; name the interfaces instead", ErrBadConfig, c.Group)
	case c.Port == 0:
		return fmt.Errorf("%w: port 0", ErrBadConfig)
	case len(c.Interfaces) == 0:
		return fmt.Errorf("%w: no interface named", ErrBadConfig)
	case len(c.Interfaces) > MaxInterfaces:
		return fmt.Errorf("%w: %d interfaces (max %d)", ErrBadConfig, len(c.Interfaces), MaxInterfaces)
	case c.HopLimit < 0 || c.HopLimit > 255:
		return fmt.Errorf("%w: hop limit %d (want 0..255)", ErrBadConfig, c.HopLimit)
	case c.MaxDatagram < 0 || c.MaxDatagram > MaxMaxDatagram:
		return fmt.Errorf("%w: max datagram %d (want 1..%d)", ErrBadConfig, c.MaxDatagram, MaxMaxDatagram)
	case c.QueueLen < 0 || c.QueueLen > MaxQueueLen:
		return fmt.Errorf("%w: queue length %d (want 1..%d)", ErrBadConfig, c.QueueLen, MaxQueueLen)
	}
	seen := map[string]bool{}
	for _, n := range c.Interfaces {
		if n == "" || seen[n] {
			return fmt.Errorf("%w: interface name %q empty or repeated", ErrBadConfig, n)
		}
		seen[n] = true
	}
	return nil
}

// Datagram is one datagram received. Data is the Datagram's own copy.
type Datagram struct {
	// Data is the payload; nil when Truncated.
	Data []byte
	// Truncated means the datagram was longer than Config.MaxDatagram; it
	// was not copied.
	Truncated bool
	// From is the sender's address and port (with the interface as zone for
	// an IPv6 link-local sender).
	From netip.AddrPort
	// Interface and IfIndex name the interface it arrived on.
	Interface string
	IfIndex   int
	// Multicast is true for a datagram that arrived on the group socket,
	// false for one sent to the send socket by unicast.
	Multicast bool
}

// InterfaceError is why one interface was not joined.
type InterfaceError struct {
	Interface string
	Err       error
}

func (e *InterfaceError) Error() string {
	return fmt.Sprintf("multicast: interface %s: %v", e.Interface, e.Err)
}

func (e *InterfaceError) Unwrap() error { return e.Err }

// SendError is the error of a Send that failed on some interfaces. Sent
// counts the interfaces it left by; when it is 0 nothing was sent.
type SendError struct {
	Sent   int
	Failed []*InterfaceError
}

func (e *SendError) Error() string {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return fmt.Sprintf("multicast: sent on %d of %d interfaces: %v", e.Sent, e.Sent+len(e.Failed), errors.Join(errs...))
}

// Unwrap returns the per-interface errors.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// Interface is one joined interface.
type Interface struct {
	Name  string
	Index int
	// Local is the send socket's address: the source of everything sent on
	// this interface and where unicast answers arrive.
	Local netip.AddrPort
	// Loopback is true for a loopback interface (hop limit 0).
	Loopback bool
}

// Stats counts what the readers did.
type Stats struct {
	// Received counts datagrams read, Dropped those the full channel
	// refused, ReadErrors reads that failed with something other than a
	// closed socket.
	Received, Dropped, ReadErrors uint64
}

// link is one joined interface: its two sockets.
type link struct {
	Interface
	ifi   *net.Interface
	group *net.UDPConn
	send  *net.UDPConn
	dst   netip.AddrPort // the group, with the interface as zone for IPv6
}

// Conn is a set of pinned multicast sockets, two per joined interface. Its
// methods are safe for concurrent use.
type Conn struct {
	cfg   Config
	links []*link
	fail  []*InterfaceError
	ch    chan Datagram

	readers  sync.WaitGroup
	done     chan struct{}
	stopOnce sync.Once
	watcher  chan struct{}

	received, dropped, readErrors atomic.Uint64
}

// Listen joins cfg.Group on each of cfg.Interfaces and starts one reader per
// socket. The Conn closes when ctx is done or Close is called. It fails with
// an error wrapping ErrNoInterface when no interface could be joined.
func Listen(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.Interfaces = append([]string(nil), cfg.Interfaces...)
	if cfg.HopLimit == 0 {
		cfg.HopLimit = 1
	}
	if cfg.MaxDatagram == 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	c := &Conn{
		cfg:     cfg,
		ch:      make(chan Datagram, cfg.QueueLen),
		done:    make(chan struct{}),
		watcher: make(chan struct{}),
	}
	for _, name := range cfg.Interfaces {
		l, err := openLink(&cfg, name)
		if err != nil {
			c.fail = append(c.fail, &InterfaceError{Interface: name, Err: err})
			continue
		}
		c.links = append(c.links, l)
	}
	if len(c.links) == 0 {
		errs := make([]error, len(c.fail))
		for i, f := range c.fail {
			errs[i] = f
		}
		return nil, fmt.Errorf("%w on group %v port %d: %w", ErrNoInterface, cfg.Group, cfg.Port, errors.Join(errs...))
	}
	for _, l := range c.links {
		c.readers.Add(2)
		go c.read(l, l.group, true)
		go c.read(l, l.send, false)
	}
	go func() {
		defer close(c.watcher)
		select {
		case <-ctx.Done():
			c.stop()
		case <-c.done:
		}
	}()
	return c, nil
}

// openLink opens and pins the two sockets of one interface; on any failure
// it closes what it opened.
func openLink(cfg *Config, name string) (*link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, errors.New("interface is down")
	}
	l := &link{ifi: ifi}
	l.Name, l.Index = ifi.Name, ifi.Index
	l.Loopback = ifi.Flags&net.FlagLoopback != 0
	src, err := sourceAddr(ifi, cfg.Group.Is4(), l.Loopback)
	if err != nil {
		return nil, err
	}
	hops := cfg.HopLimit
	if l.Loopback {
		hops = 0
	}
	l.dst = netip.AddrPortFrom(cfg.Group, cfg.Port)
	if cfg.Group.Is6() && needsZone(cfg.Group) {
		l.dst = netip.AddrPortFrom(cfg.Group.WithZone(ifi.Name), cfg.Port)
	}
	l.group, err = listenGroup(ifi, l.dst, hops)
	if err != nil {
		return nil, fmt.Errorf("group socket: %w", err)
	}
	l.send, err = listenSend(ifi, src, cfg.Group.Is4(), hops)
	if err != nil {
		l.group.Close()
		return nil, fmt.Errorf("send socket: %w", err)
	}
	l.Local = l.send.LocalAddr().(*net.UDPAddr).AddrPort()
	return l, nil
}

// needsZone reports whether an IPv6 multicast address has interface- or
// link-local scope, so that binding it needs the interface as zone.
func needsZone(a netip.Addr) bool {
	return a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast()
}

// sourceAddr picks the send socket's unicast address on ifi: the loopback
// address on a loopback interface, else the first IPv4 address, or the
// first IPv6 link-local address with the interface as zone.
func sourceAddr(ifi *net.Interface, v4, loopback bool) (netip.Addr, error) {
	if loopback {
		if v4 {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
		}
		return netip.IPv6Loopback(), nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		ip := p.Addr()
		if v4 && ip.Is4() {
			return ip, nil
		}
		if !v4 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip.WithZone(ifi.Name), nil
		}
	}
	if v4 {
		return netip.Addr{}, errors.New("no IPv4 address")
	}
	return netip.Addr{}, errors.New("no IPv6 link-local address")
}

func prefixOf(a net.Addr) (netip.Prefix, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	ip = ip.Unmap()
	if ip.Is4() && ones > 32 {
		ones -= 96
	}
	// The address itself, not the masked network: it is also the source.
	p := netip.PrefixFrom(ip, ones)
	return p, p.IsValid()
}

// read is one socket's reader: one buffer, reused, each datagram copied out.
func (c *Conn) read(l *link, s *net.UDPConn, multicast bool) {
	defer c.readers.Done()
	buf := make([]byte, c.cfg.MaxDatagram+1)
	for {
		n, from, err := s.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.readErrors.Add(1)
			// A persistent error must not spin: pause, bounded by Close.
			select {
			case <-c.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		c.received.Add(1)
		d := Datagram{From: from, Interface: l.Name, IfIndex: l.Index, Multicast: multicast}
		if n > c.cfg.MaxDatagram {
			d.Truncated = true
		} else {
			d.Data = bytes.Clone(buf[:n])
		}
		select {
		case c.ch <- d:
		default:
			c.dropped.Add(1)
		}
	}
}

// Recv returns the channel of received datagrams. It is closed after the
// Conn closes and every reader has stopped.
func (c *Conn) Recv() <-chan Datagram { return c.ch }

// Interfaces lists the joined interfaces.
func (c *Conn) Interfaces() []Interface {
	out := make([]Interface, len(c.links))
	for i, l := range c.links {
		out[i] = l.Interface
	}
	return out
}

// Failed lists the interfaces that could not be joined, with the reasons.
func (c *Conn) Failed() []*InterfaceError { return append([]*InterfaceError(nil), c.fail...) }

// Stats returns a snapshot of the readers' counters.
func (c *Conn) Stats() Stats {
	return Stats{Received: c.received.Load(), Dropped: c.dropped.Load(), ReadErrors: c.readErrors.Load()}
}

// Send sends b to the group on every joined interface. It returns a
// *SendError naming the interfaces where it failed; Sent tells whether it
// left by any.
func (c *Conn) Send(b []byte) error {
	if len(b) > c.cfg.MaxDatagram {
		return ErrTooLarge
	}
	se := &SendError{}
	for _, l := range c.links {
		if _, err := l.send.WriteToUDPAddrPort(b, l.dst); err != nil {
			se.Failed = append(se.Failed, &InterfaceError{Interface: l.Name, Err: err})
			continue
		}
		se.Sent++
	}
	if len(se.Failed) > 0 {
		return se
	}
	return nil
}

// SendTo sends b by unicast to dst through the send socket of the joined
// interface ifIndex. dst must be on that interface's link: inside one of
// its address prefixes, or IPv6 link-local; anything else is ErrOffLink,
// so a forged source address cannot point answers beyond the link.
func (c *Conn) SendTo(b []byte, dst netip.AddrPort, ifIndex int) error {
	if len(b) > c.cfg.MaxDatagram {
		return ErrTooLarge
	}
	var l *link
	for _, x := range c.links {
		if x.Index == ifIndex {
			l = x
		}
	}
	if l == nil {
		return ErrUnknownInterface
	}
	ok, err := onLink(l, dst.Addr())
	if err != nil {
		return err
	}
	if !ok || dst.Port() == 0 {
		return fmt.Errorf("%w: %v on %s", ErrOffLink, dst, l.Name)
	}
	if dst.Addr().Is6() && dst.Addr().IsLinkLocalUnicast() {
		dst = netip.AddrPortFrom(dst.Addr().WithZone(l.Name), dst.Port())
	}
	_, err = l.send.WriteToUDPAddrPort(b, dst)
	return err
}

// onLink reports whether a is a unicast address on l's link.
func onLink(l *link, a netip.Addr) (bool, error) {
	a = a.Unmap()
	if !a.IsValid() || a.IsMulticast() || a.IsUnspecified() || a.Is4() != l.dst.Addr().Is4() {
		return false, nil
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a.Zone() == "" || a.Zone() == l.Name, nil
	}
	addrs, err := l.ifi.Addrs()
	if err != nil {
		return false, err
	}
	a = a.WithZone("")
	for _, x := range addrs {
		if p, ok := prefixOf(x); ok && p.Contains(a) {
			return true, nil
		}
	}
	return false, nil
}

// stop closes the sockets once, waits for the readers and closes the
// channel.
func (c *Conn) stop() {
	c.stopOnce.Do(func() {
		close(c.done)
		for _, l := range c.links {
			l.group.Close()
			l.send.Close()
		}
		c.readers.Wait()
		close(c.ch)
	})
}

// Close closes every socket and waits until the readers have stopped and
// the Recv channel is closed. It is idempotent and returns nil.
func (c *Conn) Close() error {
	c.stop()
	<-c.watcher
	return nil
}
