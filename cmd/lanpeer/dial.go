package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// finishTimeout bounds the wait for the listener to confirm that it has
// read every message before the session closes.
const finishTimeout = 10 * time.Second

// quitCommand ends an interactive session.
const quitCommand = "/quit"

// dialCommands are the words that may follow TARGET.
var dialCommands = []string{"msg", "room", "send", "read"}

func kexNames() []string {
	var names []string
	for _, s := range cryptosuite.KEXs() {
		names = append(names, s.CLIName)
	}
	return names
}

func dialCommand() *cli.Command {
	return command(&cli.Command{
		Name:  "dial",
		Usage: "open a session with a listening peer: send a direct message, chat, or use the rooms it hosts",
		UsageText: "lanpeer dial [--home DIR] [--kex MODE] [--allow-rsa] [--tls=false] [--json] TARGET [COMMAND [ARGS]]\n" +
			"   lanpeer dial [flags] TARGET msg [--] TEXT\n" +
			"   lanpeer dial [flags] TARGET",
		Description: "TARGET is HOST:PORT or PEERID@HOST:PORT (an IPv6 HOST in brackets). With PEERID the peer must have\n" +
			"that ID. A bare PEERID is looked up on the LAN (--iface, --lookup-timeout), then in the directory at\n" +
			"--directory URL, and dialed as PEERID@HOST:PORT. Without PEERID, the first session records the peer's\n" +
			"ID for HOST:PORT in DIR/known_peers (trust on first use) and every later session must show the same\n" +
			"ID: a changed key is refused with the way to resolve it. Flags go before TARGET. On first run the identity is created (of the --key type).\n" +
			"\n" +
			"Commands:\n" +
			"   msg TEXT   send TEXT as one direct message; exit 0 once the listener has read it. TEXT \"-\" reads\n" +
			"              standard input (CRLF becomes LF, one final line end is dropped); after \"--\" TEXT is\n" +
			"              literal ('msg -- -5 degrees'). At most 16384 bytes of UTF-8, no control characters\n" +
			"              but tab and line feed.\n" +
			"   room create [--cipher CIPHER] NAME, room list, room info ROOM, room join ROOM,\n" +
			"   room invite ROOM PEERID, room remove ROOM PEERID, room rotate ROOM, room leave ROOM, room delete ROOM\n" +
			"              the rooms TARGET hosts (end-to-end encrypted; see 'lanpeer dial TARGET room --help')\n" +
			"   send ROOM TEXT   send TEXT to a room; prints its sequence number\n" +
			"   read [--after N] [--limit N] [--follow] ROOM   print a room's messages: SEQ SENDER TEXT lines\n" +
			"   (none)     a chat, line by line: /join ROOM, then each line typed goes to the room and its messages\n" +
			"              are printed as they arrive (SEQ SENDER TEXT, verified); /help lists the commands (/rooms,\n" +
			"              /join, /create, /invite, /remove, /rotate, /info, /leave, /history, /msg, /quit). Before\n" +
			"              a room is joined, each line is a direct message to TARGET; what its operator sends\n" +
			"              (@PEERID TEXT) is printed as 'lanpeer listen' prints messages (--json: JSON lines).\n" +
			"              End of input or /quit ends it.\n" +
			"\n" +
			"--kex chooses the key agreement: x25519 (the default), p256, x25519-mlkem768 (hybrid, post-quantum),\n" +
			"or rsa, where the listener chooses the session key and sends it encrypted to this peer's RSA key.\n" +
			"rsa has NO FORWARD SECRECY: whoever obtains this peer's private key later can decrypt recorded\n" +
			"sessions. It needs --allow-rsa here and on the listener, and an RSA identity here.",
		Flags: append([]cli.Flag{
			homeFlag(),
			&cli.StringFlag{Name: "kex", Value: "x25519", Usage: "key-agreement `MODE`: " + strings.Join(kexNames(), ", ") + " (rsa: no forward secrecy)"},
			allowRSAFlag("allow --kex rsa, which has no forward secrecy (the listener needs --allow-rsa too)"),
			tlsFlag(),
			jsonFlag("print incoming messages as JSON objects with from, text, time and session"),
			createKeyFlag(),
			handshakeTimeoutFlag(),
			logLevelFlag(),
		}, append(rekeyFlags(), resolveFlags()...)...),
		BashComplete: completer(func(c *cli.Context) []string {
			if c.NArg() == 1 {
				return dialCommands
			}
			return nil
		}),
		Action: dialAction,
	})
}

// dialer is a `lanpeer dial` command line, checked.
type dialer struct {
	c       *cli.Context // dial's own, whose flags these are
	p       *peerSetup
	target  string
	others  []string // more PEERID@HOST:PORT of a resolved bare PEERID, tried in turn
	kex     *cryptosuite.KEXSuite
	literal bool // "--" came before TEXT
	stdin   io.Reader
}

func dialAction(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return usagef("missing TARGET: 'lanpeer dial [flags] TARGET [COMMAND [ARGS]]'")
	}
	target, tail := args[0], args[1:]
	if len(tail) > 0 && len(tail[0]) > 1 && tail[0][0] == '-' {
		return usagef("flag %s comes after TARGET %q: dial's flags go before TARGET, as in 'lanpeer dial [flags] TARGET [COMMAND [ARGS]]'", tail[0], target)
	}
	if _, err := node.ParseTarget(target); err != nil && !isBarePeerID(target) {
		return usagef("%s; a bare PEERID (64 hex characters) is looked up on the LAN and in --directory", strings.TrimPrefix(err.Error(), "node: "))
	}
	kex, ok := cryptosuite.KEXByCLIName(c.String("kex"))
	if !ok {
		return usagef("--kex: unknown mode %q (want %s)", c.String("kex"), strings.Join(kexNames(), ", "))
	}
	if kex.ID == cryptosuite.KEXRSAOAEPSHA256 && !c.Bool("allow-rsa") {
		return usagef("--kex rsa needs --allow-rsa: the rsa mode has no forward secrecy, so both sides enable it explicitly (the listener with 'lanpeer listen --allow-rsa')")
	}
	p, err := newPeerSetup(c)
	if err != nil {
		return err
	}
	// Checked before anything is dialed; connect reads them again.
	if _, err := directConfig(c, nil); err != nil {
		return err
	}
	d := &dialer{c: c, p: p, target: target, kex: kex, stdin: c.App.Reader}
	if len(tail) == 0 {
		return d.chat(c)
	}
	d.literal = len(tail) > 1 && tail[1] == "--"
	return d.runCommand(c, tail)
}

// runCommand runs the words after TARGET through their own cli.App, as
// urfave/cli cannot put a positional argument before a subcommand.
func (d *dialer) runCommand(c *cli.Context, tail []string) error {
	name := "lanpeer dial " + d.target
	app := &cli.App{
		Name:            name,
		HelpName:        name,
		Usage:           "a command on a session with " + d.target,
		UsageText:       name + " COMMAND [ARGS]",
		Reader:          c.App.Reader,
		Writer:          c.App.Writer,
		ErrWriter:       c.App.ErrWriter,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError:    onUsageError,
		Action: func(cc *cli.Context) error {
			return usagef("unknown dial command %q (want %s; with none, an interactive session): run 'lanpeer dial --help'",
				cc.Args().First(), strings.Join(dialCommands, ", "))
		},
		Commands: append([]*cli.Command{d.msgCommand()}, d.roomCommands()...),
	}
	return app.RunContext(c.Context, append([]string{name}, tail...))
}

func (d *dialer) msgCommand() *cli.Command {
	cmd := command(&cli.Command{
		Name:      "msg",
		Usage:     "send TEXT as one direct message and exit once the listener has read it",
		UsageText: "lanpeer dial [flags] TARGET msg [--] TEXT",
		Description: "TEXT \"-\" reads standard input (CRLF becomes LF, one final line end is dropped). After \"--\", TEXT\n" +
			"is taken as it is, even \"-\" or a text that starts with '-'. TEXT is 1 to 16384 bytes of UTF-8 without\n" +
			"control characters other than tab and line feed.",
		Action: d.msgAction,
	})
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return usagef("%v: msg takes no flags (dial's go before TARGET; a TEXT that starts with '-' goes after '--': 'msg -- TEXT')", err)
	}
	return cmd
}

func (d *dialer) msgAction(c *cli.Context) error {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return usagef("missing TEXT: 'lanpeer dial [flags] TARGET msg TEXT' (TEXT - reads standard input)")
	case len(args) > 1 && len(args[1]) > 1 && args[1][0] == '-':
		return usagef("flag %s comes after TEXT: dial's flags go before TARGET, as in 'lanpeer dial [flags] TARGET msg TEXT'", args[1])
	case len(args) > 1:
		return usagef("too many arguments (%q): TEXT is one argument, so quote it: 'lanpeer dial TARGET msg \"two words\"'", args[1])
	}
	text := args[0]
	if text == "-" && !d.literal {
		var err error
		if text, err = readText(d.stdin); err != nil {
			return err
		}
	} else if err := session.CheckDirectText(text); err != nil {
		return usagef("TEXT: %s", strings.TrimPrefix(err.Error(), "session: "))
	}
	s, err := d.connect(c.Context, nil)
	if err != nil {
		return err
	}
	defer s.close()
	sctx, cancel := context.WithTimeout(c.Context, sendTimeout)
	defer cancel()
	if err := s.m.Send(sctx, text); err != nil {
		return s.failed(fmt.Errorf("sending to %s: %w", s.peer(), err))
	}
	return s.finish(c.Context)
}

// readText reads a message text from standard input: CRLF becomes LF and
// one final line end is dropped.
func readText(r io.Reader) (string, error) {
	// CRLF line ends may double the size before they become LF.
	const max = 2*session.MaxDirectTextSize + 2
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if len(b) > max {
		return "", fmt.Errorf("standard input holds more than a direct message: at most %d bytes", session.MaxDirectTextSize)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	if err := session.CheckDirectText(text); err != nil {
		return "", fmt.Errorf("standard input: %s", strings.TrimPrefix(err.Error(), "session: "))
	}
	return text, nil
}

// dialSession is an open session of `lanpeer dial`.
type dialSession struct {
	msg  *node.Messaging
	conn *node.Conn
	m    *node.Messenger
}

// connect dials the target; onMessage gets what the listener sends (nil:
// dropped).
func (d *dialer) connect(ctx context.Context, onMessage func(node.Received)) (*dialSession, error) {
	if err := d.resolve(ctx); err != nil {
		return nil, err
	}
	id, err := d.p.identity(d.c)
	if err != nil {
		return nil, err
	}
	kp, err := session.LoadKnownPeers(filepath.Join(d.p.home, session.KnownPeersFile))
	if err != nil {
		return nil, err
	}
	dcfg, err := directConfig(d.c, onMessage)
	if err != nil {
		return nil, err
	}
	s := &dialSession{msg: node.NewMessaging(dcfg)}
	cfg := &node.Config{
		Identity:         id,
		KEX:              d.kex.ID,
		AllowRSA:         d.c.Bool("allow-rsa"),
		Trust:            kp,
		Insecure:         !d.c.Bool("tls"),
		Handlers:         s.msg.Handlers(),
		Logger:           d.p.log,
		HandshakeTimeout: d.c.Duration("handshake-timeout"),
	}
	if s.conn, err = d.dial(ctx, cfg); err != nil {
		return nil, d.explain(err, id, cfg)
	}
	if s.m, err = s.msg.Attach(s.conn); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *dialSession) peer() cryptosuite.PeerID { return s.conn.Peer() }

// finish waits until the listener has read every message sent.
func (s *dialSession) finish(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, finishTimeout)
	defer cancel()
	if err := s.m.Finish(fctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.failed(fmt.Errorf("%s did not confirm that it read every message: %w", s.peer(), err))
	}
	return nil
}

// failed explains why the session could not go on: the failure that made
// this side close it, else err, else the session's end.
func (s *dialSession) failed(err error) error {
	if merr := s.m.Err(); merr != nil {
		return fmt.Errorf("the session with %s failed: %w", s.peer(), merr)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("the session with %s ended (%v)", s.peer(), s.conn.Err())
}

// close ends the session and waits for its goroutines.
func (s *dialSession) close() {
	s.conn.Close()
	s.msg.Wait()
}

// explain turns Dial's errors into what the user can do about them.
func (d *dialer) explain(err error, id *cryptosuite.Identity, cfg *node.Config) error {
	var (
		mismatch *node.PeerMismatchError
		changed  *session.KeyChangedError
		refused  *session.PeerError
		notTLS   tls.RecordHeaderError
	)
	t := d.target
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &mismatch):
		return fmt.Errorf("refusing %s: it presented peer ID %s, not the pinned %s: someone else answers at that address, or the pinned ID is wrong (check it with 'lanpeer id' on that peer)",
			mismatch.Target, mismatch.Got, mismatch.Want)
	case errors.As(err, &changed):
		return errors.New(strings.TrimPrefix(changed.Error(), "session: "))
	case errors.Is(err, cryptosuite.ErrKEXNeedsRSA):
		return fmt.Errorf("--kex rsa needs an RSA identity, and this peer's (%s) is %s: dial with --home DIR holding an RSA identity ('lanpeer init --key rsa-3072 --home DIR'), or use another --kex",
			id.PeerID(), id.KeyType())
	case errors.As(err, &refused):
		return fmt.Errorf("%s refused the session: %s", t, refusal(refused.Code, id, d.kex))
	case errors.Is(err, node.ErrClosedByServer):
		return fmt.Errorf("%s closed the connection during the TLS handshake: it refuses connections beyond its limits (new connections per second, connections per address, sessions), so try again later; or it runs with --tls=false", t)
	case errors.Is(err, node.ErrHandshakeTimeout):
		return fmt.Errorf("no session with %s within %s (--handshake-timeout): is a lanpeer listener there, with the same --tls setting?", t, cfg.HandshakeTimeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens at %s (connection refused): start 'lanpeer listen' there, or check the port", t)
	case errors.As(err, &notTLS):
		return fmt.Errorf("%s does not answer with TLS: it may run with --tls=false (then dial with --tls=false too, for debugging only)", t)
	case cfg.Insecure:
		return fmt.Errorf("%w (this dial runs with --tls=false: the listener must too)", err)
	}
	return err
}

// refusal says what a handshake refusal's code means for the user.
func refusal(code wire.ErrorCode, id *cryptosuite.Identity, kex *cryptosuite.KEXSuite) string {
	switch code {
	case wire.CodePolicy:
		return fmt.Sprintf("policy: this peer (%s) is not on its --allow list, or it is this peer's own identity (dial from another --home)", id.PeerID())
	case wire.CodeBusy:
		return "busy: this peer has as many sessions there as it allows (--max-sessions-per-peer), or too many handshakes are pending; try again later"
	case wire.CodeKEXRefused:
		return fmt.Sprintf("key-agreement mode %s refused: the rsa mode needs --allow-rsa on the listener too", kex.CLIName)
	case wire.CodeStaleTimestamp:
		return "the two machines' clocks differ by more than it allows (2 minutes by default)"
	case wire.CodeNoCommonSuite:
		return "no AEAD suite in common"
	case wire.CodeVersion:
		return "it speaks another version of the protocol"
	}
	return code.Text()
}
