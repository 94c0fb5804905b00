package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
)

// defaultListenAddr is where `lanpeer listen` listens without --tcp: this
// machine only, until the user chooses to serve the LAN.
const defaultListenAddr = "127.0.0.1:7700"

// sendTimeout bounds sending one typed line to one session: a peer that
// stops reading must not hold up the prompt.
const sendTimeout = 10 * time.Second

// minPeerPrefix is the shortest peer ID prefix @PEERID accepts.
const minPeerPrefix = 8

// Flags that listen and dial share.

func tlsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "tls", Value: true,
		Usage: "TLS 1.3 under the handshake; --tls=false sends the streams in clear text, for debugging only (both sides must agree)"}
}

func allowRSAFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "allow-rsa", Usage: usage, DisableDefaultText: true}
}

func jsonFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: usage, DisableDefaultText: true}
}

func logLevelFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log `LEVEL` on standard error: debug, info, warn or error"}
}

func handshakeTimeoutFlag() cli.Flag {
	return &cli.DurationFlag{Name: "handshake-timeout", Value: node.DefaultHandshakeTimeout,
		Usage: "`D`uration from TCP connect to an established session (TLS and handshake); a rekey's flights too"}
}

// rekeyFlags set the rekey policy of every session (docs/PROTOCOL.md
// §15.1).
func rekeyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Uint64Flag{Name: "rekey-messages", Value: session.DefaultRekeyAfterMessages,
			Usage: "rekey a session once this side has sent `N` messages under its keys (at most 4294967296)"},
		&cli.DurationFlag{Name: "rekey-interval", Value: session.DefaultRekeyAfterTime,
			Usage: "rekey a session once this side has sent under its keys for this `D`uration"},
	}
}

// directConfig reads the rekey flags.
func directConfig(c *cli.Context, onMessage func(node.Received)) (node.DirectConfig, error) {
	cfg := node.DirectConfig{OnMessage: onMessage, Rekey: session.RekeyPolicy{
		AfterMessages: c.Uint64("rekey-messages"),
		AfterTime:     c.Duration("rekey-interval"),
	}}
	if cfg.Rekey.AfterMessages > session.MaxMessagesPerEpoch {
		return cfg, usagef("--rekey-messages %d: at most %d", cfg.Rekey.AfterMessages, uint64(session.MaxMessagesPerEpoch))
	}
	if cfg.Rekey.AfterTime < 0 {
		return cfg, usagef("--rekey-interval %v: must be positive", cfg.Rekey.AfterTime)
	}
	return cfg, nil
}

func createKeyFlag() cli.Flag {
	return &cli.StringFlag{Name: "key", Value: string(cryptosuite.DefaultKeyType),
		Usage: "`TYPE` of the identity created on first run: " + strings.Join(keyTypeNames(), ", ")}
}

// limitFlags are listen's limits (node/doc.go, "Flags"; docs/PROTOCOL.md
// §17.8), each defaulting to node's default.
func limitFlags() []cli.Flag {
	return []cli.Flag{
		handshakeTimeoutFlag(),
		&cli.Float64Flag{Name: "handshake-rate", Value: node.DefaultHandshakeRate,
			Usage: "`N` new connections per second from one address (IPv4 address, IPv6 /64), refused at TCP accept beyond it; negative: no limit"},
		&cli.IntFlag{Name: "handshake-burst", Value: node.DefaultHandshakeBurst, Usage: "`N` connections in a burst above --handshake-rate"},
		&cli.IntFlag{Name: "max-pending", Value: node.DefaultMaxPendingHandshakes, Usage: "`N` connections short of an established session"},
		&cli.IntFlag{Name: "max-sessions", Value: node.DefaultMaxSessions, Usage: "`N` established sessions"},
		&cli.IntFlag{Name: "max-sessions-per-peer", Value: node.DefaultMaxSessionsPerPeer, Usage: "`N` sessions of one peer ID; negative: no limit"},
		&cli.IntFlag{Name: "max-sessions-per-addr", Value: node.DefaultMaxSessionsPerAddr, Usage: "`N` connections from one address; negative: no limit"},
		&cli.IntFlag{Name: "max-streams", Value: node.DefaultMaxStreams, Usage: "`N` streams a peer may have open on one session"},
		&cli.IntFlag{Name: "max-frame", Value: node.DefaultMaxControlFrame, Usage: "largest frame a peer may send on a stream, in `BYTES` (1024 to 16777216)"},
		&cli.DurationFlag{Name: "drain-timeout", Value: node.DefaultDrainTimeout, Usage: "at SIGINT or SIGTERM, how long sessions get to finish (`D`uration)"},
	}
}

// peerSetup is what listen and dial read from their common flags.
type peerSetup struct {
	home   string
	stdout *lockedWriter
	stderr *lockedWriter
	log    *slog.Logger
	print  *printer
}

func newPeerSetup(c *cli.Context) (*peerSetup, error) {
	level, ok := logLevels[c.String("log-level")]
	if !ok {
		return nil, usagef("--log-level: unknown level %q (want debug, info, warn or error)", c.String("log-level"))
	}
	if _, err := cryptosuite.ParseKeyType(c.String("key")); err != nil {
		return nil, usagef("--key: %v", err)
	}
	home, err := homeDir(c)
	if err != nil {
		return nil, err
	}
	p := &peerSetup{home: home, stdout: &lockedWriter{w: c.App.Writer}, stderr: &lockedWriter{w: c.App.ErrWriter}}
	p.log = newLogger(p.stderr, level)
	p.print = &printer{w: p.stdout, json: c.Bool("json")}
	return p, nil
}

func (p *peerSetup) notef(format string, a ...any) { notef(p.stderr, format, a...) }

// identity loads the home's identity, creating one of the --key type on
// first run as 'lanpeer id --create' does, and says so.
func (p *peerSetup) identity(c *cli.Context) (*cryptosuite.Identity, error) {
	id, path, err := loadIdentity(p.home)
	if !errors.As(err, new(*noIdentityError)) {
		if err == nil && c.IsSet("key") && string(id.KeyType()) != c.String("key") {
			p.notef("--key %s ignored: %s already holds a %s identity", c.String("key"), path, id.KeyType())
		}
		return id, err
	}
	kt, err := keyType(c)
	if err != nil {
		return nil, err
	}
	id, path, err = createIdentity(c.Context, p.home, kt, false)
	switch {
	case errors.As(err, new(*identityExistsError)):
		id, _, err = loadIdentity(p.home) // another process created it meanwhile
	case err == nil:
		p.notef("created a new %s identity in %s", kt, path)
	}
	return id, err
}

func listenCommand() *cli.Command {
	flags := []cli.Flag{
		homeFlag(),
		&cli.StringFlag{Name: "tcp", Value: defaultListenAddr,
			Usage: "listen on TCP `ADDR`; the default serves this machine only, --tcp 0.0.0.0:7700 (or :7700) the LAN"},
		&cli.StringSliceFlag{Name: "allow", Usage: "accept sessions only from `PEERID` (repeat the flag for more); default: every peer"},
		allowRSAFlag("accept the rsa key-agreement mode, which has no forward secrecy (the dialer needs --allow-rsa too)"),
		tlsFlag(),
		jsonFlag("print each message as a JSON object with from, text, time and session"),
		createKeyFlag(),
		logLevelFlag(),
	}
	flags = append(flags, finderFlags()...)
	return command(&cli.Command{
		Name:  "listen",
		Usage: "accept sessions: print the direct messages peers send, send what you type as @PEERID TEXT",
		UsageText: "lanpeer listen [--home DIR] [--tcp ADDR] [--http ADDR [--https]] [--allow PEERID]... [--allow-rsa] [--tls=false]\n" +
			"   [--json] [--key TYPE] [--log-level LEVEL] [limit flags]",
		Description: "Listens on ADDR (default " + defaultListenAddr + ": this machine only; --tcp 0.0.0.0:7700 or --tcp :7700\n" +
			"serves the LAN) and serves the peers that run 'lanpeer dial'. On first run it creates the identity\n" +
			"(of the --key type). It says \"lanpeer: listening on ADDR as PEERID\" on standard error.\n" +
			"\n" +
			"Each direct message a peer sends is printed on standard output, one a line: the sender's peer ID, a\n" +
			"space and the text, with backslash, tab and line feed written as \\\\, \\t and \\n. --json prints one JSON\n" +
			"object a line instead: {\"from\": PEERID, \"text\": TEXT, \"time\": RFC 3339, \"session\": hex session id}.\n" +
			"\n" +
			"Each line of standard input of the form \"@PEERID TEXT\" sends TEXT to the connected peer with that ID\n" +
			"(to each of its sessions). PEERID may be shortened to a prefix of at least 8 characters that only\n" +
			"one connected peer's ID starts with. Other lines get a note on standard error. The end of standard\n" +
			"input does not stop the server.\n" +
			"\n" +
			"--http ADDR also serves the HTTP shim (docs/HTTP.md): the same handshake, rooms and messages as JSON\n" +
			"over HTTP for curl and scripts, over the same rooms; a bare PORT means 127.0.0.1:PORT. --https serves\n" +
			"it over TLS with the identity certificate (curl -k --pinnedpubkey sha256//BASE64, BASE64 being the\n" +
			"peer ID's 32 bytes in base64). It says \"lanpeer: serving HTTP on URL\" on standard error.\n" +
			"\n" +
			"--discovery announces this listener on the LAN (UDP multicast on the --iface interfaces) so that\n" +
			"'lanpeer peers' lists it and 'lanpeer dial PEERID' finds it. --directory URL registers its addresses\n" +
			"with a 'lanpeer directory' (a record signed by the identity, valid 10 minutes, renewed every 5).\n" +
			"Both give the --tcp address and, with --http, the HTTP shim's (without a scheme: with --https it\n" +
			"is HTTPS);\n" +
			"a failed registration is noted on standard error and retried, and the listener goes on.\n" +
			"\n" +
			"The rooms it hosts live in its memory (--store memory, the default: lost when it stops; it says so\n" +
			"at start) or in MongoDB (--store mongodb://HOST[:PORT]/DB: kept across restarts; a send is\n" +
			"acknowledged once it is stored). Several listeners may share one --home and one database and serve\n" +
			"the same rooms: each polls the database every --poll-interval for what the others stored and\n" +
			"pushes it to the members connected to it.\n" +
			"\n" +
			"Serves until SIGINT or SIGTERM, then stops accepting, lets sessions finish for up to --drain-timeout\n" +
			"and exits 0. The limits below refuse what exceeds them, one connection or stream at a time; a value\n" +
			"of 0 means the default.",
		Flags:  append(append(append(append(flags, httpFlags()...), storeFlags()...), rekeyFlags()...), limitFlags()...),
		Action: listenAction,
	})
}

func listenAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	p, err := newPeerSetup(c)
	if err != nil {
		return err
	}
	var allow []cryptosuite.PeerID
	for _, s := range c.StringSlice("allow") {
		id, err := cryptosuite.ParsePeerID(s)
		if err != nil {
			return usagef("--allow %q: want a peer ID, 64 hex characters ('lanpeer id' on that peer prints it)", s)
		}
		allow = append(allow, id)
	}
	dcfg, err := directConfig(c, p.print.message)
	if err != nil {
		return err
	}
	rooms, closeRooms, err := roomService(c, p.log)
	if err != nil {
		return err
	}
	defer closeRooms()
	if c.String("store") == "memory" {
		p.notef("--store memory: the rooms hosted here live in this process's memory and are lost when it stops (--store mongodb://HOST/DB keeps them)")
	}
	id, err := p.identity(c)
	if err != nil {
		return err
	}

	l := &listener{p: p, msg: node.NewMessaging(dcfg)}
	cfg := &node.Config{
		Identity:             id,
		Handlers:             l.msg.Handlers(),
		Logger:               p.log,
		Insecure:             !c.Bool("tls"),
		AllowRSA:             c.Bool("allow-rsa"),
		Allow:                allow,
		OnSession:            l.onSession,
		HandshakeTimeout:     c.Duration("handshake-timeout"),
		HandshakeRate:        c.Float64("handshake-rate"),
		HandshakeBurst:       c.Int("handshake-burst"),
		MaxPendingHandshakes: c.Int("max-pending"),
		MaxSessions:          c.Int("max-sessions"),
		MaxSessionsPerPeer:   c.Int("max-sessions-per-peer"),
		MaxSessionsPerAddr:   c.Int("max-sessions-per-addr"),
		MaxStreams:           c.Int("max-streams"),
		MaxControlFrame:      c.Int("max-frame"),
		DrainTimeout:         c.Duration("drain-timeout"),
	}
	rooms.Configure(cfg)
	l.srv, err = node.Listen(c.String("tcp"), cfg)
	if errors.Is(err, node.ErrConfig) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	p.notef("listening on %s as %s", l.srv.Addr(), id.PeerID())
	shim, err := startHTTP(c, p, id, rooms, cfg)
	if err != nil {
		l.srv.Close()
		return err
	}
	f, err := startFinders(c, p, id, l.srv.Addr(), shim.Addr())
	if err != nil {
		shim.stop(cfg.DrainTimeout)
		l.srv.Close()
		return err
	}
	defer f.stop()

	served := make(chan error, 1)
	go func() { served <- l.srv.Serve(c.Context) }()
	done := make(chan struct{})
	defer close(done)
	lines := readLines(c.App.Reader, maxInputLine, done)
	for {
		select {
		case in, ok := <-lines:
			if !ok {
				lines = nil // the end of input: keep serving
				continue
			}
			l.command(c.Context, in)
		case err := <-served:
			shim.stop(max(cfg.DrainTimeout, time.Second))
			l.msg.Wait()
			l.notes.Wait()
			p.notef("stopped")
			return err
		}
	}
}

// maxInputLine bounds a line typed to listen: "@", a peer ID, a space and
// the longest text.
const maxInputLine = 1 + 64 + 1 + session.MaxDirectTextSize

// listener is a running `lanpeer listen`.
type listener struct {
	p     *peerSetup
	msg   *node.Messaging
	srv   *node.Server
	notes sync.WaitGroup // the goroutines that note a session's end
}

// onSession notes each session and its end on standard error, so the
// operator knows whom @PEERID can reach.
func (l *listener) onSession(c *node.Conn) {
	l.p.notef("%s connected from %s", c.Peer(), c.RemoteAddr())
	l.notes.Add(1)
	go func() {
		defer l.notes.Done()
		<-c.Done()
		l.p.notef("%s disconnected", c.Peer())
	}()
}

// command handles one typed line: "@PEERID TEXT" sends TEXT to that peer.
func (l *listener) command(ctx context.Context, in inputLine) {
	if in.err != nil {
		if errors.Is(in.err, errLineTooLong) {
			l.p.notef("input line longer than %d bytes ignored", maxInputLine)
		} else {
			l.p.notef("reading standard input: %v", in.err)
		}
		return
	}
	line := strings.TrimSpace(in.text)
	if line == "" {
		return
	}
	target, text := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		target, text = line[:i], strings.TrimLeft(line[i:], " \t")
	}
	if !strings.HasPrefix(target, "@") {
		l.p.notef("to send a message, type @PEERID TEXT (PEERID: a connected peer's ID, or its first %d characters or more)", minPeerPrefix)
		return
	}
	if text == "" {
		l.p.notef("nothing to send to %s: type @PEERID TEXT", target)
		return
	}
	conns, err := l.match(strings.ToLower(target[1:]))
	if err != nil {
		l.p.notef("%v", err)
		return
	}
	for _, c := range conns {
		m, err := l.msg.Attach(c)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, sendTimeout)
			err = m.Send(sctx, text)
			cancel()
		}
		if err != nil {
			l.p.notef("not sent to %s: %v", c.Peer(), err)
		}
	}
}

// match returns the sessions of the one connected peer whose ID starts
// with prefix.
func (l *listener) match(prefix string) ([]*node.Conn, error) {
	sessions := l.srv.Sessions()
	var ids []cryptosuite.PeerID
	for _, c := range sessions {
		ids = append(ids, c.Peer())
	}
	id, err := pickPeer(ids, prefix)
	if err != nil {
		return nil, err
	}
	var conns []*node.Conn
	for _, c := range sessions {
		if c.Peer() == id {
			conns = append(conns, c)
		}
	}
	return conns, nil
}

// pickPeer returns the one peer among ids (repeats allowed) whose ID
// starts with prefix, a lower-case peer ID or one of its prefixes of at
// least minPeerPrefix characters.
func pickPeer(ids []cryptosuite.PeerID, prefix string) (cryptosuite.PeerID, error) {
	if len(prefix) < minPeerPrefix || len(prefix) > 64 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return cryptosuite.PeerID{}, fmt.Errorf("@%s: want a peer ID, or at least its first %d hex characters", prefix, minPeerPrefix)
	}
	matches := map[cryptosuite.PeerID]bool{}
	for _, id := range ids {
		if strings.HasPrefix(id.String(), prefix) {
			matches[id] = true
		}
	}
	var found []string
	for id := range matches {
		if len(matches) == 1 {
			return id, nil
		}
		found = append(found, id.String())
	}
	if len(found) == 0 {
		return cryptosuite.PeerID{}, fmt.Errorf("no connected peer has an ID starting with %s", prefix)
	}
	sort.Strings(found)
	return cryptosuite.PeerID{}, fmt.Errorf("@%s is ambiguous: the IDs %s start with it; type more of the ID", prefix, strings.Join(found, ", "))
}
