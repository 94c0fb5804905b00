package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/discovery"
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
		cfg, err := discoveryConfig(c, d.p.log)
		if err != nil {
			return err
		}
		addr, err := lookupLAN(ctx, cfg, id, timeout)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			d.target = id.String() + "@" + addr
			return nil
		case !errors.Is(err, discovery.ErrNotFound):
			return fmt.Errorf("looking %s up on the LAN: %w", id, err)
		}
		tried = append(tried, fmt.Sprintf("it did not answer on the LAN (interfaces %v) within %s", cfg.Interfaces, timeout))
	}
	if u := c.String("directory"); u != "" {
		dc := &directory.Client{BaseURL: u, HTTPClient: directoryHTTP()}
		defer dc.HTTPClient.CloseIdleConnections()
		rec, err := dc.Lookup(ctx, id)
		switch {
		case err == nil && len(rec.Addrs.TCP) > 0:
			d.p.log.Debug("resolved through the directory", "peer", id, "addrs", rec.Addrs.TCP)
			d.target = id.String() + "@" + rec.Addrs.TCP[0]
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
// returns its first TCP address.
func lookupLAN(ctx context.Context, cfg discovery.Config, id cryptosuite.PeerID, timeout time.Duration) (string, error) {
	svc, err := discovery.New(cfg)
	if err != nil {
		return "", usageIfBadConfig(err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := runDiscovery(ctx, &wg, svc); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%w: %w", discovery.ErrNotFound, err)
		}
		return "", fmt.Errorf("%w: name interfaces that exist and can multicast with --iface", err)
	}
	p, err := svc.Lookup(ctx, id)
	if err != nil {
		return "", err
	}
	if len(p.TCPAddrs) == 0 {
		return "", fmt.Errorf("%w: %s announces no TCP address", discovery.ErrNotFound, id)
	}
	return p.TCPAddrs[0].String(), nil
}
