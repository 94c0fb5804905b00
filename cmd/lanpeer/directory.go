package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/store/mongo"
)

// defaultDirectoryAddr is where `lanpeer directory` listens by default:
// loopback, so a directory reaches the network only when asked to.
const defaultDirectoryAddr = "127.0.0.1:8470"

func directoryCommand() *cli.Command {
	return command(&cli.Command{
		Name:  "directory",
		Usage: "serve a lookup server where peers register their addresses (beyond the LAN)",
		UsageText: "lanpeer directory [--http ADDR] [--https [--home DIR] [--key TYPE]] [--store URI] [--rate N]\n" +
			"   [--register-rate N] [--max-clients N] [--log-level LEVEL]",
		Description: "Serves the directory API of docs/HTTP.md until interrupted (SIGINT, SIGTERM).\n" +
			"Peers register records signed by their identity keys; a lookup returns the signed\n" +
			"record and the client verifies it, so the directory is not trusted. Records expire\n" +
			"(at most 24 h after they were issued) and are swept every minute.\n" +
			"\n" +
			"--https serves over TLS with the certificate of the identity in --home (created on first\n" +
			"run, of the --key type, as listen does); it says \"lanpeer: directory serving on\n" +
			"https://ADDR ...\" and the peer ID clients pin: listen and dial take --directory\n" +
			"https://PEERID@HOST:PORT and accept only that key. Without --https it serves plain HTTP.\n" +
			"\n" +
			"--store memory (the default) keeps the records in this process, lost when it stops;\n" +
			"--store mongodb://HOST[:PORT]/DB keeps them in MongoDB. The directory keeps no state\n" +
			"outside its store, so several directories may share one database (behind one name, or\n" +
			"each with its own).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http", Value: defaultDirectoryAddr, Usage: "listen on `ADDR` (host:port; port 0 picks one)"},
			&cli.BoolFlag{Name: "https", Usage: "serve HTTPS with the identity certificate of --home", DisableDefaultText: true},
			homeFlag(),
			createKeyFlag(),
			&cli.StringFlag{Name: "store", Value: "memory", Usage: "where records are kept: `memory` or a MongoDB URI, mongodb://HOST[:PORT]/DB"},
			&cli.Float64Flag{Name: "rate", Value: directory.DefaultLookupRate, Usage: "lookups a second per client address (`N`; bursts of twice that)"},
			&cli.Float64Flag{Name: "register-rate", Value: directory.DefaultRegisterRate, Usage: "registrations a second per client address (`N`; bursts of 5)"},
			&cli.IntFlag{Name: "max-clients", Value: directory.DefaultMaxClients, Usage: "client addresses the rate limiters remember (`N`)"},
			logLevelFlag(),
		},
		Action: directoryAction,
	})
}

func directoryAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	rate, regRate, maxClients := c.Float64("rate"), c.Float64("register-rate"), c.Int("max-clients")
	if !(rate > 0) || !(regRate > 0) || maxClients < 1 {
		return usagef("--rate and --register-rate must be above 0, --max-clients at least 1")
	}
	p, err := newPeerSetup(c)
	if err != nil {
		return err
	}
	if !c.Bool("https") && (c.IsSet("home") || c.IsSet("key")) {
		return usagef("--home and --key choose the identity of --https; without --https the directory has none")
	}
	st, where, err := directoryStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := directory.NewHandler(st, directory.Config{
		LookupRate:   rate,
		LookupBurst:  max(1, int(2*rate)),
		RegisterRate: regRate,
		MaxClients:   maxClients,
		Logger:       p.log,
	})
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	pin := ""
	if c.Bool("https") {
		id, err := p.identity(c)
		if err != nil {
			return err
		}
		cert, err := node.NewCertificate(id, time.Now())
		if err != nil {
			return err
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
		pin = id.PeerID().String()
	}
	ln, err := net.Listen("tcp", c.String("http"))
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if tlsCfg != nil {
		p.notef("directory serving on https://%s (store %s) as %s: clients use --directory https://%s@%s",
			ln.Addr(), where, pin, pin, ln.Addr())
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		p.notef("directory serving on http://%s (store %s)", ln.Addr(), where)
	}
	if err := h.Serve(c.Context, ln); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	p.notef("directory stopped")
	return nil
}

// directoryStore opens the store of --store and returns it with a name
// for it that holds no credentials.
func directoryStore(c *cli.Context) (store.Store, string, error) {
	uri := c.String("store")
	switch {
	case uri == "memory":
		st, err := memory.New(memory.Options{})
		return st, uri, err
	case strings.HasPrefix(uri, "mongodb://") || strings.HasPrefix(uri, "mongodb+srv://"):
		st, err := mongo.Open(c.Context, uri, mongo.Options{})
		if errors.Is(err, mongo.ErrBadOptions) {
			return nil, "", usagef("--store: %v", err)
		}
		if err != nil {
			return nil, "", fmt.Errorf("--store: %w", err)
		}
		where := "mongodb"
		if u, err := url.Parse(uri); err == nil {
			where = u.Redacted()
		}
		return st, where, nil
	}
	return nil, "", usagef("--store %q: want memory or a MongoDB URI (mongodb://HOST[:PORT]/DB)", uri)
}
