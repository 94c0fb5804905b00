package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/discovery"
)

// Directory registration timers of `lanpeer listen --directory`.
const (
	// registerTTL is the life of a registered record.
	registerTTL = 10 * time.Minute
	// registerRefresh is how often the record is registered again: at
	// half its life, so one lost refresh does not let it expire.
	registerRefresh = registerTTL / 2
	// registerRetry is the wait after a failed registration.
	registerRetry = 30 * time.Second
	// directoryTimeout bounds one request to the directory.
	directoryTimeout = 10 * time.Second
)

// discoveryFlags are the flags that listen, peers and dial share to reach
// the LAN's discovery group.
func discoveryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "iface",
			Usage: "discovery on interface `NAME` (repeat the flag for more); default: every interface that is up, multicast-capable, not loopback"},
		&cli.StringFlag{Name: "discovery-group", Value: discovery.DefaultGroupIPv4,
			Usage: "discovery multicast `GROUP`: in 239.255.0.0/16, or in ff02::/16 for IPv6"},
		&cli.UintFlag{Name: "discovery-port", Value: discovery.DefaultPort, Usage: "discovery UDP `PORT`"},
	}
}

func directoryURLFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "directory", Usage: usage}
}

// discoveryConfig reads the discovery flags into a passive Config.
func discoveryConfig(c *cli.Context, log *slog.Logger) (discovery.Config, error) {
	cfg := discovery.Config{Logger: log}
	group, err := netip.ParseAddr(c.String("discovery-group"))
	if err != nil {
		return cfg, usagef("--discovery-group %q: want an IP address in 239.255.0.0/16 or ff02::/16", c.String("discovery-group"))
	}
	port := c.Uint("discovery-port")
	if port == 0 || port > 65535 {
		return cfg, usagef("--discovery-port %d: want 1 to 65535", port)
	}
	cfg.Group, cfg.Port = group, uint16(port)
	cfg.Interfaces = c.StringSlice("iface")
	if len(cfg.Interfaces) == 0 {
		if cfg.Interfaces, err = discovery.DefaultInterfaces(); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// checkDirectoryURL checks a --directory URL's form.
func checkDirectoryURL(u string) error {
	if u == "" {
		return nil
	}
	if _, _, err := directory.ParseURL(u); err != nil {
		return usagef("--directory: %s (where 'lanpeer directory' serves)", strings.TrimPrefix(err.Error(), "directory: "))
	}
	return nil
}

// usageIfBadConfig makes discovery's config errors (from the flags)
// usage errors.
func usageIfBadConfig(err error) error {
	if errors.Is(err, discovery.ErrBadConfig) {
		return usagef("discovery: %s", strings.TrimPrefix(err.Error(), "discovery: bad config: "))
	}
	return err
}

// runDiscovery starts svc.Run on wg and returns once it has joined the
// group, or with the error that kept it from joining.
func runDiscovery(ctx context.Context, wg *sync.WaitGroup, svc *discovery.Service) error {
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- svc.Run(ctx)
	}()
	select {
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		return err
	case <-svc.Ready():
		if len(svc.Interfaces()) == 0 {
			return <-errc
		}
		return nil
	}
}

// finders are what `lanpeer listen` runs beside its server so that peers
// find it: discovery on the LAN, registration with a directory.
type finders struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// stop ends the finders and waits for them.
func (f *finders) stop() {
	f.cancel()
	f.wg.Wait()
}

// startFinders starts what --discovery and --directory ask for; addr is
// the listener's TCP address, httpAddr its HTTP shim's (nil without
// --http), which serves HTTPS with --https: announcements and the
// directory record say which.
func startFinders(c *cli.Context, p *peerSetup, id *cryptosuite.Identity, addr, httpAddr net.Addr) (*finders, error) {
	if err := checkDirectoryURL(c.String("directory")); err != nil {
		return nil, err
	}
	if !c.Bool("discovery") {
		for _, f := range []string{"iface", "discovery-group", "discovery-port", "name"} {
			if c.IsSet(f) {
				return nil, usagef("--%s is for --discovery, which is off: add --discovery to announce this listener on the LAN", f)
			}
		}
	}
	ctx, cancel := context.WithCancel(c.Context)
	f := &finders{cancel: cancel}
	tcp, err := listenAddrPort(addr)
	if err != nil {
		cancel()
		return nil, err
	}
	var web []netip.AddrPort // the HTTP shim's address, if it serves
	if httpAddr != nil {
		ap, err := listenAddrPort(httpAddr)
		if err != nil {
			cancel()
			return nil, err
		}
		web = []netip.AddrPort{ap}
	}
	https := c.Bool("https") && len(web) > 0
	if c.Bool("discovery") {
		if err := f.announce(ctx, c, p, id, tcp, web, https); err != nil {
			f.stop()
			return nil, err
		}
	}
	if u := c.String("directory"); u != "" {
		var addrs directory.Addrs
		if addrs.TCP, err = registerAddrs(tcp, "--tcp"); err != nil {
			f.stop()
			return nil, err
		}
		for _, w := range web {
			if addrs.HTTP, err = registerAddrs(w, "--http"); err != nil {
				f.stop()
				return nil, err
			}
		}
		scheme := "http://"
		if https {
			scheme = "https://"
		}
		for i, a := range addrs.HTTP {
			addrs.HTTP[i] = scheme + a // the record's HTTP addresses are URLs
		}
		for _, a := range append([]netip.AddrPort{tcp}, web...) {
			if a.Addr().IsLoopback() && !loopbackURL(u) {
				p.notef("registering %s, an address of this machine only: peers elsewhere cannot dial it; listen with --tcp :PORT or --tcp PUBLIC-ADDRESS:PORT (--http likewise)", a)
			}
		}
		dc, err := directoryClient(u)
		if err != nil {
			f.stop()
			return nil, err
		}
		r := &registrar{dc: dc, id: id, addrs: addrs,
			note: p.notef, ttl: registerTTL, refresh: registerRefresh, retry: registerRetry}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			r.run(ctx)
		}()
	}
	return f, nil
}

// listenAddrPort is a listener's address as announced and registered.
func listenAddrPort(a net.Addr) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return ap, fmt.Errorf("listen address %s: %w", a, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// announce runs an announcing discovery Service for the listener at tcp,
// with its HTTP shim at web (empty without --http), serving HTTPS if
// https. An unspecified
// address is announced as it is: receivers put the announcement's source
// address in its place.
func (f *finders) announce(ctx context.Context, c *cli.Context, p *peerSetup, id *cryptosuite.Identity, tcp netip.AddrPort, web []netip.AddrPort, https bool) error {
	cfg, err := discoveryConfig(c, p.log)
	if err != nil {
		return err
	}
	cfg.Identity = id
	cfg.TCPAddrs = []netip.AddrPort{tcp}
	cfg.HTTPAddrs, cfg.HTTPS = web, https
	if cfg.Name = c.String("name"); !c.IsSet("name") {
		if h, err := os.Hostname(); err == nil {
			cfg.Name = h
		}
	}
	svc, err := discovery.New(cfg)
	if errors.Is(err, discovery.ErrBadConfig) && !c.IsSet("name") && cfg.Name != "" {
		cfg.Name = "" // a host name discovery cannot announce: no name
		svc, err = discovery.New(cfg)
	}
	if errors.Is(err, discovery.ErrBadConfig) && strings.Contains(err.Error(), "name must") {
		return usagef("--name %q: at most %d bytes of printable UTF-8 (no tabs or other control characters)", cfg.Name, discovery.MaxNameSize)
	}
	if err != nil {
		return usageIfBadConfig(err)
	}
	if err := runDiscovery(ctx, &f.wg, svc); err != nil {
		return fmt.Errorf("%w: name interfaces that exist and can multicast with --iface", err)
	}
	var names []string
	for _, i := range svc.Interfaces() {
		names = append(names, i.Name)
	}
	p.notef("announcing on %s (group %s port %d) as %q", strings.Join(names, ", "), cfg.Group, cfg.Port, cfg.Name)
	if tcp.Addr().IsLoopback() && !allLoopback(names) {
		p.notef("announcing %s, an address of this machine only: peers on the LAN cannot dial it; listen with --tcp :PORT or --tcp LAN-ADDRESS:PORT", tcp)
	}
	for _, w := range web {
		if w.Addr().IsLoopback() && !allLoopback(names) {
			p.notef("announcing HTTP %s, an address of this machine only: peers on the LAN cannot reach it; serve with --http 0.0.0.0:PORT or --http LAN-ADDRESS:PORT", w)
		}
	}
	return nil
}

// loopbackURL reports whether u names a loopback host.
func loopbackURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	if pu.Hostname() == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(pu.Hostname())
	return err == nil && a.IsLoopback()
}

// allLoopback reports whether every named interface is a loopback one.
func allLoopback(names []string) bool {
	for _, n := range names {
		if i, err := net.InterfaceByName(n); err != nil || i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// registerAddrs are the addresses a directory record gives for the
// listener at tcp (the TCP listener, or the HTTP shim: flag names its
// flag): tcp itself, or, for an unspecified address, the machine's global
// unicast addresses of that family (IPv6 listeners serve IPv4 too).
func registerAddrs(tcp netip.AddrPort, flag string) ([]string, error) {
	if !tcp.Addr().IsUnspecified() {
		return []string{tcp.String()}, nil
	}
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's addresses for --directory: %w", err)
	}
	var out []string
	for _, a := range ifas {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if !ip.IsGlobalUnicast() || (tcp.Addr().Is4() && !ip.Is4()) {
			continue
		}
		if len(out) < directory.MaxAddrs {
			out = append(out, netip.AddrPortFrom(ip, tcp.Port()).String())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--directory: listening on %s, and this machine has no global address to register; listen on a specific address with %s", tcp, flag)
	}
	return out, nil
}

// directoryClient is the client of a --directory URL that checkDirectoryURL
// accepted (an https://PEERID@HOST:PORT URL pins the directory's key).
func directoryClient(u string) (*directory.Client, error) {
	dc, err := directory.NewClient(u, directoryTimeout)
	if err != nil {
		return nil, usagef("--directory: %s", strings.TrimPrefix(err.Error(), "directory: "))
	}
	return dc, nil
}

// registrar keeps a listener's record registered with a directory.
type registrar struct {
	dc    *directory.Client
	id    *cryptosuite.Identity
	addrs directory.Addrs
	note  func(format string, a ...any)
	// ttl is each record's life; the record is registered again every
	// refresh, or retry after a failure.
	ttl, refresh, retry time.Duration
}

// run registers at once and again every refresh (retry after a failure)
// until ctx is done. Failures are noted; the listener goes on.
func (r *registrar) run(ctx context.Context) {
	defer r.dc.HTTPClient.CloseIdleConnections()
	ok := false
	for {
		wait := r.refresh
		err := r.once(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.note("registering with the directory %s failed, retrying in %s: %v", r.dc.BaseURL, r.retry, err)
			wait, ok = r.retry, false
		case !ok:
			what := strings.Join(r.addrs.TCP, ", ")
			if len(r.addrs.HTTP) > 0 {
				what += " (HTTP " + strings.Join(r.addrs.HTTP, ", ") + ")"
			}
			r.note("registered %s with the directory %s", what, r.dc.BaseURL)
			ok = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// once signs a fresh record and registers it.
func (r *registrar) once(ctx context.Context) error {
	rec, err := directory.BuildRecord(r.id, r.addrs, r.ttl, time.Now())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, directoryTimeout)
	defer cancel()
	return r.dc.Register(rctx, rec)
}

// finderFlags are listen's flags for being found.
func finderFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.BoolFlag{Name: "discovery", DisableDefaultText: true,
			Usage: "announce this listener on the LAN and answer 'lanpeer peers' and 'lanpeer dial PEERID' (off unless asked)"},
		&cli.StringFlag{Name: "name", Usage: "display `NAME` announced with --discovery (default: the host name)"},
		directoryURLFlag("register this listener's addresses with the directory at `URL` and keep them registered"),
	}, discoveryFlags()...)
}
