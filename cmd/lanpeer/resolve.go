package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/discovery"
	"github.com/lanpeer/lanpeer/node"
)

// resolveFlags are dial's flags for a TARGET that is a bare peer ID.
func resolveFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.DurationFlag{Name: "lookup-timeout", Value: discovery.DefaultLookupTimeout,
			Usage: "wait up to `D`uration for a bare PEERID to answer on the LAN; 0 skips the LAN"},
		directoryURLFlag("look a bare PEERID up in the directory at `URL` when the LAN does not answer"),
	}, discoveryFlags()...)
}

// isBarePeerID reports whether target is a peer ID alone.
func isBarePeerID(target string) bool {
	_, ok := barePeerID(target)
	return ok
}

// barePeerID reports whether target is a peer ID alone (64 hex digits),
// which dial resolves before dialing.
func barePeerID(target string) (cryptosuite.PeerID, bool) {
	if len(target) != 64 {
		return cryptosuite.PeerID{}, false
	}
	id, err := cryptosuite.ParsePeerID(target)
	return id, err == nil
}

// resolve turns a bare peer ID target into PEERID@HOST:PORT: through the
// LAN's discovery, then through the directory if --directory names one.
// Other targets are left as they are. The peer ID is pinned either way:
// the handshake refuses whoever answers with another key.
func (d *dialer) resolve(ctx context.Context) error {
	id, ok := barePeerID(d.target)
	if !ok {
		return nil
	}
	c := d.c
	if err := checkDirectoryURL(c.String("directory")); err != nil {
		return err
	}
	var tried []string
	if timeout := c.Duration("lookup-timeout"); timeout > 0 {
		addrs, err := d.lookupLAN(ctx, id, timeout)
		var usage *usageError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			d.pin(id, addrs)
			return nil
		case errors.As(err, &usage):
			return err
		}
		tried = append(tried, err.Error())
	}
	if u := c.String("directory"); u != "" {
		dc, err := directoryClient(u)
		if err != nil {
			return err
		}
		defer dc.HTTPClient.CloseIdleConnections()
		rec, err := dc.Lookup(ctx, id)
		switch {
		case err == nil && len(rec.Addrs.TCP) > 0:
			d.p.log.Debug("resolved through the directory", "peer", id, "addrs", rec.Addrs.TCP)
			d.pin(id, rec.Addrs.TCP)
			return nil
		case err == nil:
			tried = append(tried, "the directory "+u+" holds no TCP address for it")
		case errors.Is(err, directory.ErrNotFound):
			tried = append(tried, "the directory "+u+" holds no record of it (is 'lanpeer listen --directory' running there?)")
		default:
			return fmt.Errorf("looking %s up in the directory %s: %w", id, u, err)
		}
	}
	msg := fmt.Sprintf("cannot find peer %s", id)
	for _, t := range tried {
		msg += ": " + t
	}
	return errors.New(msg + "; is 'lanpeer listen --discovery' running there? Name the LAN's interface with --iface, " +
		"give a directory with --directory URL, or dial PEERID@HOST:PORT")
}

// lookupLAN asks the LAN for id with a passive discovery Service and
// returns its TCP addresses. A failure says what was asked.
func (d *dialer) lookupLAN(ctx context.Context, id cryptosuite.PeerID, timeout time.Duration) ([]string, error) {
	cfg, err := discoveryConfig(d.c, d.p.log)
	if err != nil {
		return nil, err
	}
	svc, err := discovery.New(cfg)
	if err != nil {
		return nil, usageIfBadConfig(err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := runDiscovery(ctx, &wg, svc); err != nil {
		return nil, fmt.Errorf("the LAN could not be asked (%w): name interfaces that exist and can multicast with --iface", err)
	}
	p, err := svc.Lookup(ctx, id)
	switch {
	case errors.Is(err, discovery.ErrNotFound):
		return nil, fmt.Errorf("it did not answer on the LAN (interfaces %v) within %s", cfg.Interfaces, timeout)
	case err != nil:
		return nil, err
	case len(p.TCPAddrs) == 0:
		return nil, fmt.Errorf("it announces no TCP address on the LAN")
	}
	return addrStrings(p.TCPAddrs), nil
}

// pin makes the target PEERID@ADDR for the first address, the others
// alternatives.
func (d *dialer) pin(id cryptosuite.PeerID, addrs []string) {
	d.p.log.Debug("resolved", "peer", id, "addrs", addrs)
	d.target, d.others = id.String()+"@"+addrs[0], nil
	for _, a := range addrs[1:] {
		d.others = append(d.others, id.String()+"@"+a)
	}
}

// dial dials the target, then, while nothing can be reached there (no
// listener, no route), each alternative a resolved peer ID gave. Any other
// failure (a refusal, another key, a timeout) ends the tries: the address
// was reached.
func (d *dialer) dial(ctx context.Context, cfg *node.Config) (*node.Conn, error) {
	conn, err := node.Dial(ctx, d.target, cfg)
	for err != nil && len(d.others) > 0 && ctx.Err() == nil && unreachable(err) {
		d.p.log.Info("cannot reach this address, trying the next", "target", d.target, "err", err)
		d.target, d.others = d.others[0], d.others[1:]
		conn, err = node.Dial(ctx, d.target, cfg)
	}
	return conn, err
}

// unreachable reports whether a dial failed before reaching a listener.
func unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}
