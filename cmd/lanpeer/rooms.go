package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/store/mongo"
	"github.com/lanpeer/lanpeer/wire"
)

// roomTimeout bounds one room command's exchanges with the host (not
// read --follow's wait for pushes).
const roomTimeout = 30 * time.Second

// maxPages bounds the paged fetches of one command (commits, messages,
// rooms): each page holds up to wire.MaxListLimit entries.
const maxPages = 1024

// Listening side.

// storeFlags choose where `lanpeer listen` keeps the rooms it hosts.
func storeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "store", Value: "memory",
			Usage: "where the hosted rooms are kept: `memory` (lost when listen stops) or a MongoDB URI, mongodb://HOST[:PORT]/DB (kept; every message until its room is deleted)"},
		&cli.IntFlag{Name: "history", Value: memory.DefaultHistoryPerRoom,
			Usage: "with --store memory, keep the newest `N` messages of each room; older ones are dropped"},
		&cli.DurationFlag{Name: "poll-interval", Value: node.DefaultPollInterval,
			Usage: "with a MongoDB store, look this often (`D`uration) for what other lanpeer processes sharing the database stored, and push it to the members connected here; 0: never (this process is the database's only one)"},
		&cli.BoolFlag{Name: "verify-message-signatures", Value: true,
			Usage: "verify each room message's Ed25519 signature before storing it; =false stores without this check (members verify every message they read anyway: docs/SECURITY.md)"},
	}
}

// roomService makes the room service listen serves with the --store and
// --history flags (svc.Configure puts it in a Config). close releases it
// and its store.
func roomService(c *cli.Context, log *slog.Logger) (svc *node.Service, close func(), err error) {
	var st store.Store
	poll := c.Duration("poll-interval")
	switch where := c.String("store"); {
	case where == "memory":
		if c.IsSet("poll-interval") {
			return nil, nil, usagef("--poll-interval applies to a MongoDB store only: a memory store is never shared")
		}
		poll = 0
		if c.Int("history") < 1 {
			return nil, nil, usagef("--history %d: want at least 1", c.Int("history"))
		}
		if st, err = newRoomStore(c.Int("history")); err != nil {
			return nil, nil, usagef("%v", err)
		}
	case strings.HasPrefix(where, "mongodb://") || strings.HasPrefix(where, "mongodb+srv://"):
		if c.IsSet("history") {
			return nil, nil, usagef("--history applies to --store memory only: a MongoDB store keeps every message until its room is deleted")
		}
		if poll != 0 && (poll < node.MinPollInterval || poll > node.MaxPollInterval) {
			return nil, nil, usagef("--poll-interval %v: want 0 (off) or %v to %v", poll, node.MinPollInterval, node.MaxPollInterval)
		}
		st, err = mongo.Open(c.Context, where, mongo.Options{})
		if errors.Is(err, mongo.ErrBadOptions) {
			return nil, nil, usagef("--store: %v", err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--store: %w", err)
		}
	default:
		return nil, nil, usagef("--store %q: want memory or a MongoDB URI (mongodb://HOST[:PORT]/DB)", where)
	}
	if svc, err = node.NewService(node.ServiceConfig{Store: st, Logger: log, PollInterval: poll,
		SkipMessageSignatures: !c.Bool("verify-message-signatures")}); err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, func() { svc.Close(); st.Close() }, nil
}

// newRoomStore makes the store of --store memory (a variable: the tests
// look into it).
var newRoomStore = func(history int) (store.Store, error) {
	return memory.New(memory.Options{HistoryPerRoom: history})
}

// Dialing side.

// cipherNames maps --cipher to the room AEAD suites.
var cipherNames = map[string]cryptosuite.AEADID{
	"a256cbc-hs512":    cryptosuite.AEADA256CBCHS512,
	"aes256gcm":        cryptosuite.AEADAES256GCM,
	"chacha20poly1305": cryptosuite.AEADChaCha20Poly1305,
}

// roomSession is a session with a host for room commands.
type roomSession struct {
	d       *dialer
	id      *cryptosuite.Identity
	conn    *node.Conn
	rc      *node.RoomClient
	pushes  *node.Pushes
	home    *roomHome
	secrets *room.KeyPackageSecrets
	kps     map[[room.HashSize]byte]*room.KeyPackage // verified key packages of senders
	// held are the pushes awaitKey took while it waited, for the chat to
	// handle after (at most node.DefaultPushBuffer, else one PushLost).
	held []node.Push
}

func (s *roomSession) host() cryptosuite.PeerID { return s.conn.Peer() }

// connectRooms dials the target, with a handler for pushes (and handlers,
// if any, for other streams), and publishes this peer's key package.
func (d *dialer) connectRooms(ctx context.Context, handlers map[node.StreamKind]node.Handler) (*roomSession, error) {
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
	s := &roomSession{d: d, id: id, pushes: node.NewPushes(0), home: newRoomHome(d.p.home),
		kps: map[[room.HashSize]byte]*room.KeyPackage{}}
	if s.secrets, err = s.home.currentSecrets(id, time.Now()); err != nil {
		return nil, err
	}
	hs := map[node.StreamKind]node.Handler{node.KindNotify: s.pushes}
	for k, h := range handlers {
		hs[k] = h
	}
	cfg := &node.Config{
		Identity:         id,
		KEX:              d.kex.ID,
		AllowRSA:         d.c.Bool("allow-rsa"),
		Trust:            kp,
		Insecure:         !d.c.Bool("tls"),
		Handlers:         hs,
		Logger:           d.p.log,
		HandshakeTimeout: d.c.Duration("handshake-timeout"),
	}
	if s.conn, err = d.dial(ctx, cfg); err != nil {
		return nil, d.explain(err, id, cfg)
	}
	s.rc = node.NewRoomClient(s.conn)
	pctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	if err := s.rc.PublishKeyPackage(pctx, s.secrets.KeyPackage().Blob()); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("publishing this peer's key package to %s: %w", s.host(), hostErr(err))
	}
	return s, nil
}

func (s *roomSession) close() { s.conn.Close() }

// hostErr makes a host's refusal readable.
func hostErr(err error) error {
	switch {
	case errors.Is(err, room.ErrMissingKeyPackage):
		return fmt.Errorf("%w: the invitee must run a room command on this host once ('lanpeer dial TARGET room list'), which publishes its key package", err)
	case errors.Is(err, room.ErrNoRoom):
		return fmt.Errorf("%w: it was deleted, or the host lost it (a host with --store memory forgets its rooms when it stops)", err)
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%w: the host cannot reach its database; try again later (sending again is safe)", err)
	}
	return err
}

// withState runs f (nil: nothing) on the member state of room id, brought
// up to date with the host, while holding the room's lock in this home:
// f saves what it changes (s.home.saveState) before it returns.
func (s *roomSession) withState(ctx context.Context, id store.RoomID, f func(*room.MemberState) error) error {
	lctx, cancel := context.WithTimeout(ctx, roomTimeout)
	unlock, err := s.home.lockRoom(lctx, s.host(), id)
	cancel()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.state(ctx, id)
	if err != nil || f == nil {
		return err
	}
	return f(st)
}

// state returns the member state of room id, brought up to date with the
// host: the commits after its head, and the room keys of the epochs that
// list this peer; the room's master also turns the leave requests of
// members into a remove commit (applyLeaves). The first command on a room
// this peer was invited to makes the state (it joins). The caller holds
// the room's lock (withState).
func (s *roomSession) state(ctx context.Context, id store.RoomID) (*room.MemberState, error) {
	st, err := s.home.loadState(s.host(), id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		if st, err = s.join(ctx, id); err != nil {
			return nil, err
		}
	}
	if err := s.catchUp(ctx, id, st); err != nil {
		return nil, err
	}
	if err := s.home.saveState(s.host(), st); err != nil {
		return nil, err
	}
	if err := s.applyLeaves(ctx, id, st); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The room stays usable; the next command tries again.
		s.d.p.notef("room %s: the members that left are not removed yet: %v", id, err)
	}
	return st, nil
}

// applyLeaves, when this peer is room id's master, turns the leave
// requests the host holds (room info's left members) into one remove
// commit: each request is verified under the member's identity key (from
// the key package the head epoch lists for it) and checked against st
// (room.MemberState.AcceptLeave); the host applied them already, so the
// members read and post no more, and the commit starts an epoch whose key
// they do not get. A request that fails the checks is reported and left.
func (s *roomSession) applyLeaves(ctx context.Context, id store.RoomID, st *room.MemberState) error {
	if st.Master() != s.id.PeerID() {
		return nil
	}
	info, err := s.rc.RoomInfo(ctx, id)
	if err != nil {
		return hostErr(err)
	}
	head, _ := st.Head()
	members, err := st.Members(head)
	if err != nil {
		return err
	}
	var leaving []cryptosuite.PeerID
	for _, mi := range info.Members {
		if !mi.Left {
			continue
		}
		m, ok := findMember(members, mi.Peer)
		if !ok {
			continue // not in the verified head: nothing to remove
		}
		if err := s.checkLeave(ctx, id, st, m); err != nil {
			s.d.p.notef("room %s: the leave request of %s is refused: %v", id, m.Peer, err)
			continue
		}
		leaving = append(leaving, m.Peer)
	}
	if len(leaving) == 0 {
		return nil
	}
	err = s.proposeOn(ctx, st, func(peers []cryptosuite.PeerID) []cryptosuite.PeerID { return without(peers, leaving) },
		func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error) {
			return st.Remove(s.id, kps, now, leaving...)
		}, s.rc.Remove)
	if err != nil {
		return err
	}
	for _, p := range leaving {
		s.d.p.notef("room %s: removed %s, who left", id, p)
	}
	return nil
}

// checkLeave fetches and verifies member m's leave request of room id.
func (s *roomSession) checkLeave(ctx context.Context, id store.RoomID, st *room.MemberState, m room.Member) error {
	blob, err := s.rc.FetchLeave(ctx, id, m.Peer)
	if err != nil {
		return hostErr(err)
	}
	kp, err := s.keyPackageByHash(ctx, m.KeyPackage)
	if err != nil {
		return err
	}
	if kp.Owner != m.Peer {
		return fmt.Errorf("the host served a key package of %s for %s", kp.Owner, m.Peer)
	}
	lr, err := room.VerifyLeaveRequest(blob, kp.IdentityKey)
	if err != nil {
		return err
	}
	return st.AcceptLeave(lr)
}

// without returns peers less those in gone.
func without(peers, gone []cryptosuite.PeerID) []cryptosuite.PeerID {
	var rest []cryptosuite.PeerID
	for _, p := range peers {
		if !slices.Contains(gone, p) {
			rest = append(rest, p)
		}
	}
	return rest
}

// join makes this peer's state of a room it was invited to: from the
// master's key (the host's room info carries it; RoomInfo checked it
// against the master's peer ID) and the first commit that lists this peer.
func (s *roomSession) join(ctx context.Context, id store.RoomID) (*room.MemberState, error) {
	info, err := s.rc.RoomInfo(ctx, id)
	if err != nil {
		return nil, hostErr(err)
	}
	// RoomInfo checked the master's key against its peer ID.
	master, mk := info.Room.Master, info.MasterKey
	var after uint64
	for range maxPages {
		commits, _, err := s.rc.FetchCommits(ctx, id, after, wire.MaxListLimit)
		if err != nil {
			return nil, hostErr(err)
		}
		if len(commits) == 0 {
			break
		}
		for i, b := range commits {
			c, err := room.VerifyCommit(b, mk, nil)
			if err != nil {
				return nil, fmt.Errorf("a commit of room %s: %w", id, err)
			}
			after = c.Epoch
			for _, m := range c.Members {
				if m.Peer != s.id.PeerID() {
					continue
				}
				st, err := room.NewMemberState(b, mk, s.id.PeerID(), nil)
				if err != nil {
					return nil, err
				}
				for _, rest := range commits[i+1:] {
					if err := st.ApplyCommit(rest); err != nil {
						return nil, err
					}
				}
				s.d.p.notef("joined room %s %q of master %s", id, st.Name(), master)
				return st, nil
			}
		}
	}
	return nil, fmt.Errorf("room %s: no commit lists this peer (%s)", id, s.id.PeerID())
}

// catchUp applies the commits after st's head and opens the room keys of
// the epochs that list this peer.
func (s *roomSession) catchUp(ctx context.Context, id store.RoomID, st *room.MemberState) error {
	if _, err := s.rc.CatchUp(ctx, st); err != nil {
		var re *node.RoomError
		if errors.As(err, &re) {
			return hostErr(err)
		}
		return fmt.Errorf("room %s: %w", id, err)
	}
	oldest, newest := st.Epochs()
	for e := newest; e >= oldest && e > 0; e-- {
		if st.HasKey(e) {
			break // the earlier ones were opened then, or cannot be
		}
		members, err := st.Members(e)
		if err != nil {
			return err
		}
		m, ok := findMember(members, s.id.PeerID())
		if !ok {
			if e == newest {
				continue
			}
			break
		}
		blob, err := s.rc.FetchWrappedKey(ctx, id, e)
		if errors.Is(err, room.ErrNoWrappedKey) && e == newest {
			// The master uploads an epoch's wrapped keys after its commit:
			// this one is on its way (a key-sync push announces it). A
			// command that needs it says so (room.ErrNoEpochKey).
			continue
		}
		if err != nil {
			if e == newest {
				return fmt.Errorf("the room key of epoch %d: %w", e, hostErr(err))
			}
			break
		}
		sec, err := s.home.secretsFor(m.KeyPackage)
		if err != nil {
			return err
		}
		if _, err := st.OpenWrappedKey(blob, sec); err != nil {
			return fmt.Errorf("the room key of epoch %d: %w", e, err)
		}
		if err := s.rc.Ack(ctx, id, e); err != nil {
			return hostErr(err)
		}
	}
	return nil
}

func findMember(ms []room.Member, p cryptosuite.PeerID) (room.Member, bool) {
	for _, m := range ms {
		if m.Peer == p {
			return m, true
		}
	}
	return room.Member{}, false
}

// keyPackages returns a key package, valid now, of each member of the
// next epoch: this peer's current one, the latest on the host for others.
func (s *roomSession) keyPackages(ctx context.Context, peers []cryptosuite.PeerID, now time.Time) ([]*room.KeyPackage, error) {
	var kps []*room.KeyPackage
	for _, p := range peers {
		if p == s.id.PeerID() {
			kps = append(kps, s.secrets.KeyPackage())
			continue
		}
		blob, err := s.rc.LatestKeyPackage(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("the key package of %s: %w", p, hostErr(err))
		}
		kp, err := room.VerifyKeyPackage(blob, now)
		if err != nil {
			return nil, fmt.Errorf("the key package of %s: %w", p, err)
		}
		if kp.Owner != p {
			return nil, fmt.Errorf("the host served a key package of %s for %s", kp.Owner, p)
		}
		kps = append(kps, kp)
	}
	return kps, nil
}

// headPeers lists the members of st's head epoch.
func headPeers(st *room.MemberState) ([]cryptosuite.PeerID, error) {
	head, _ := st.Head()
	ms, err := st.Members(head)
	if err != nil {
		return nil, err
	}
	var peers []cryptosuite.PeerID
	for _, m := range ms {
		peers = append(peers, m.Peer)
	}
	return peers, nil
}

// propose runs one master operation on room id: make the proposal,
// upload it, apply it, save. members turns the head epoch's members into
// those of the next epoch, whose key packages the proposal wraps the new
// room key to.
func (s *roomSession) propose(ctx context.Context, id store.RoomID, members func([]cryptosuite.PeerID) []cryptosuite.PeerID,
	build func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error),
	upload func(context.Context, *room.Proposal) error) error {
	return s.withState(ctx, id, func(st *room.MemberState) error { return s.proposeOn(ctx, st, members, build, upload) })
}

// proposeOn is propose on st, whose room's lock the caller holds.
func (s *roomSession) proposeOn(ctx context.Context, st *room.MemberState, members func([]cryptosuite.PeerID) []cryptosuite.PeerID,
	build func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error),
	upload func(context.Context, *room.Proposal) error) error {
	id := store.RoomID(st.Room())
	peers, err := headPeers(st)
	if err != nil {
		return err
	}
	now := time.Now()
	kps, err := s.keyPackages(ctx, members(peers), now)
	if err != nil {
		return err
	}
	p, err := build(st, kps, now)
	if err != nil {
		return err
	}
	if err := upload(ctx, p); err != nil {
		return hostErr(err)
	}
	if err := st.ApplyProposal(p, s.secrets); err != nil {
		return err
	}
	if err := s.home.saveState(s.host(), st); err != nil {
		return err
	}
	if err := s.rc.Ack(ctx, id, p.Info.Epoch); err != nil {
		return hostErr(err)
	}
	s.d.p.notef("room %s is at epoch %d", id, p.Info.Epoch)
	return nil
}

// senderKey returns the verified key package a message names.
func (s *roomSession) senderKey(ctx context.Context, blob []byte) (*room.KeyPackage, error) {
	_, hash, err := room.MessageSigner(blob)
	if err != nil {
		return nil, err
	}
	return s.keyPackageByHash(ctx, hash)
}

// keyPackageByHash returns the verified key package with hash, from the
// host (once per session).
func (s *roomSession) keyPackageByHash(ctx context.Context, hash [room.HashSize]byte) (*room.KeyPackage, error) {
	if kp, ok := s.kps[hash]; ok {
		return kp, nil
	}
	b, err := s.rc.FetchKeyPackage(ctx, hash)
	if err != nil {
		return nil, hostErr(err)
	}
	kp, err := room.VerifyStoredKeyPackage(b)
	if err != nil {
		return nil, err
	}
	if kp.Hash() != hash {
		return nil, fmt.Errorf("the host served another key package than %x", hash[:8])
	}
	s.kps[hash] = kp
	return kp, nil
}

// Commands.

// roomCommands are dial's room commands.
func (d *dialer) roomCommands() []*cli.Command {
	return []*cli.Command{
		d.roomCommand(),
		command(&cli.Command{
			Name:      "send",
			Usage:     "send TEXT to ROOM; print its sequence number",
			UsageText: "lanpeer dial [flags] TARGET send [--id HEX] ROOM TEXT",
			Description: "TEXT \"-\" reads standard input (CRLF becomes LF, one final line end is dropped). The room's\n" +
				"commits and this peer's room key are fetched first.\n\n" +
				"Each message has a 16-byte id; the host stores a message id of one sender once. Without --id\n" +
				"a random one is chosen. A script that may have to send again after a failure whose outcome it\n" +
				"does not know (a timeout, a killed process) picks the id itself (openssl rand -hex 16) and\n" +
				"passes the same --id every time: the message is stored once and every attempt prints its\n" +
				"sequence number.",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "id", Usage: "the message id, 32 hex digits (default: random)"}},
			Action: d.sendAction,
		}),
		command(&cli.Command{
			Name:      "read",
			Usage:     "print ROOM's messages as SEQ SENDER TEXT lines, decrypted and verified",
			UsageText: "lanpeer dial [flags] TARGET read [--after N] [--limit N] [--follow] ROOM",
			Description: "Prints the messages after sequence number --after (default 0: from the oldest kept), at most\n" +
				"--limit (0: all). With --json, one JSON object a line: {\"seq\", \"sender\", \"text\", \"time\"}.\n" +
				"--follow then stays and prints new messages as they arrive, until interrupted.",
			Flags: []cli.Flag{
				&cli.Uint64Flag{Name: "after", Usage: "print the messages after sequence number `N`"},
				&cli.IntFlag{Name: "limit", Usage: "print at most `N` messages (0: all)"},
				&cli.BoolFlag{Name: "follow", Usage: "stay and print new messages as they arrive", DisableDefaultText: true},
			},
			Action: d.readAction,
		}),
	}
}

func (d *dialer) roomCommand() *cli.Command {
	sub := func(name, usage string, names []string, run func(*roomSession, context.Context, []string) error) *cli.Command {
		return command(&cli.Command{
			Name: name, Usage: usage, UsageText: strings.Join(append([]string{"lanpeer dial [flags] TARGET room", name}, names...), " "),
			Action: func(c *cli.Context) error {
				args, err := positionals(c, len(names), names...)
				if err != nil {
					return err
				}
				var ref roomRef
				for i, n := range names { // checked before anything is dialed
					switch n {
					case "ROOM":
						ref, err = parseRoomRef(args[i])
					case "PEERID":
						_, err = parsePeerArg(args[i])
					}
					if err != nil {
						return err
					}
				}
				return d.withRooms(c.Context, func(ctx context.Context, s *roomSession) error {
					if len(names) > 0 && names[0] == "ROOM" {
						id, err := s.resolve(ctx, ref)
						if err != nil {
							return err
						}
						args[0] = id.String()
					}
					return run(s, ctx, args)
				})
			},
		})
	}
	create := sub("create", "create a room with this peer as its master; print its id", nil, nil)
	create.UsageText = "lanpeer dial [flags] TARGET room create [--cipher CIPHER] NAME"
	create.Flags = []cli.Flag{&cli.StringFlag{Name: "cipher", Value: "a256cbc-hs512",
		Usage: "the room's `CIPHER`: a256cbc-hs512, aes256gcm or chacha20poly1305"}}
	create.Action = func(c *cli.Context) error {
		args, err := positionals(c, 1, "NAME")
		if err != nil {
			return err
		}
		suite, ok := cipherNames[c.String("cipher")]
		if !ok {
			return usagef("--cipher %q: want a256cbc-hs512, aes256gcm or chacha20poly1305", c.String("cipher"))
		}
		if err := room.CheckName(args[0]); err != nil {
			return usagef("NAME: %s", strings.TrimPrefix(err.Error(), "room: "))
		}
		return d.withRooms(c.Context, func(ctx context.Context, s *roomSession) error {
			_, err := s.create(ctx, args[0], suite)
			return err
		})
	}
	cmd := command(&cli.Command{
		Name:      "room",
		Usage:     "manage the rooms hosted by TARGET",
		UsageText: "lanpeer dial [flags] TARGET room COMMAND [ARGS]",
		Description: "TARGET ('lanpeer listen') hosts the rooms: it stores and forwards their signed, encrypted objects\n" +
			"and can read none of the messages. The room's master (its creator) invites, removes and rotates;\n" +
			"every member checks each commit against the master's signature itself.\n" +
			"\n" +
			"Every room command publishes this peer's key package to the host first, so a peer that is to be\n" +
			"invited runs one room command there ('room list') before the master invites it. An invited peer\n" +
			"joins with its first command on the room (any of them; 'room join' does only that): it fetches\n" +
			"the commits and its room key. Each command catches up with the room's commits first.\n" +
			"\n" +
			"ROOM is a room id or a unique prefix of one (at least 4 hex characters). A member's leave is\n" +
			"applied by the host at once; the master's next command on the room (or its chat, or read\n" +
			"--follow, at once) removes it with a new epoch. The master cannot leave: it deletes the room.\n" +
			"\n" +
			"State: DIR/rooms/keypackages/HASH.pem holds this peer's key package secrets (0600; renewed a week\n" +
			"before they expire, the old ones kept), DIR/rooms/HOSTPEERID/ROOMID.json each room's verified\n" +
			"state (0600), changed under a flock on ROOMID.lock beside it, so commands from one DIR may run at\n" +
			"once.",
		Subcommands: []*cli.Command{
			create,
			sub("list", "list this peer's rooms on the host: id, name, role, epoch", nil, (*roomSession).list),
			sub("info", "print a room's epoch and members (role, acknowledged epoch)", []string{"ROOM"}, (*roomSession).info),
			sub("join", "fetch a room's commits and this peer's room key (every room command does it)", []string{"ROOM"}, (*roomSession).joinCmd),
			sub("invite", "add PEERID to ROOM (master); PEERID must have dialed the host once", []string{"ROOM", "PEERID"}, (*roomSession).invite),
			sub("remove", "remove PEERID from ROOM under a new room key (master)", []string{"ROOM", "PEERID"}, (*roomSession).remove),
			sub("rotate", "give ROOM a new room key (master)", []string{"ROOM"}, (*roomSession).rotate),
			sub("leave", "leave ROOM", []string{"ROOM"}, (*roomSession).leave),
			sub("delete", "delete ROOM and its messages on the host (master)", []string{"ROOM"}, (*roomSession).delete),
		},
	})
	cmd.CustomHelpTemplate = cli.SubcommandHelpTemplate
	cmd.Action = func(c *cli.Context) error {
		if c.NArg() == 0 {
			return usagef("missing COMMAND: 'lanpeer dial [flags] TARGET room COMMAND [ARGS]' (create, list, info, join, invite, remove, rotate, leave, delete)")
		}
		return usagef("unknown room command %q (want create, list, info, join, invite, remove, rotate, leave or delete)", c.Args().First())
	}
	return cmd
}

// withRooms runs f on a session with the host.
func (d *dialer) withRooms(ctx context.Context, f func(context.Context, *roomSession) error) error {
	s, err := d.connectRooms(ctx, nil)
	if err != nil {
		return err
	}
	defer s.close()
	return f(ctx, s)
}

// resolve returns the room ref names: a whole id as it is, a prefix
// matched against the rooms this peer has on the host (room list) and
// those this home holds a state of there.
func (s *roomSession) resolve(ctx context.Context, ref roomRef) (store.RoomID, error) {
	if ref.prefix == "" {
		return ref.id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	known := map[store.RoomID]string{}
	local, err := s.home.localRooms(s.host())
	if err != nil {
		return store.RoomID{}, err
	}
	for _, id := range local {
		known[id] = ""
	}
	err = s.eachRoom(ctx, func(r node.RoomEntry) {
		known[r.Room.ID] = ""
		if room.CheckName(r.Room.Name) == nil {
			known[r.Room.ID] = r.Room.Name
		}
	})
	if err != nil {
		return store.RoomID{}, err
	}
	return matchRoom(ref, known)
}

// eachRoom calls f on each of this peer's rooms on the host.
func (s *roomSession) eachRoom(ctx context.Context, f func(node.RoomEntry)) error {
	var after store.RoomID
	for range maxPages {
		rooms, err := s.rc.ListRooms(ctx, after, wire.MaxListLimit)
		if err != nil {
			return hostErr(err)
		}
		for _, r := range rooms {
			f(r)
			after = r.Room.ID
		}
		if len(rooms) < wire.MaxListLimit {
			return nil
		}
	}
	return nil
}

// create makes a room with this peer as its master and prints its id.
func (s *roomSession) create(ctx context.Context, name string, suite cryptosuite.AEADID) (store.RoomID, error) {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	p, err := room.NewRoom(room.RoomConfig{Master: s.id, KeyPackage: s.secrets.KeyPackage(), Name: name, Suite: suite, Now: time.Now()})
	if err != nil {
		return store.RoomID{}, err
	}
	id := store.RoomID(p.Info.Room)
	if err := s.rc.CreateProposal(ctx, p); err != nil {
		return id, hostErr(err)
	}
	st, err := room.NewMemberState(p.Commit, s.id.Public(), s.id.PeerID(), nil)
	if err != nil {
		return id, err
	}
	if _, err := st.OpenWrappedKey(p.Wrapped[0].Blob, s.secrets); err != nil {
		return id, err
	}
	if err := s.home.saveState(s.host(), st); err != nil {
		return id, err
	}
	if err := s.rc.Ack(ctx, id, 1); err != nil {
		return id, hostErr(err)
	}
	fmt.Fprintln(s.d.p.stdout, id)
	return id, nil
}

func (s *roomSession) list(ctx context.Context, _ []string) error {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.eachRoom(ctx, func(r node.RoomEntry) {
		name := r.Room.Name
		if room.CheckName(name) != nil {
			name = "(bad name)"
		}
		role := r.Role.String()
		if r.Left {
			role += ",left"
		}
		fmt.Fprintf(s.d.p.stdout, "%s %s %s %d\n", r.Room.ID, escapeLine(name), role, r.Room.Epoch)
	})
}

func (s *roomSession) info(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	// The master's client turns pending leaves into a remove commit first,
	// so the members shown are those of the room's epoch to come.
	if st, err := s.home.loadState(s.host(), id); err == nil && st != nil && st.Master() == s.id.PeerID() {
		if err := s.withState(ctx, id, nil); err != nil {
			return err
		}
	}
	info, err := s.rc.RoomInfo(ctx, id)
	if err != nil {
		return hostErr(err)
	}
	name := info.Room.Name
	if room.CheckName(name) != nil {
		name = "(bad name)"
	}
	out := s.d.p.stdout
	fmt.Fprintf(out, "room %s %s\nepoch %d\nmessages %d-%d\n", info.Room.ID, escapeLine(name), info.Room.Epoch, info.Span.First, info.Span.Last)
	for _, m := range info.Members {
		left := ""
		if m.Left {
			left = " left"
		}
		fmt.Fprintf(out, "member %s %s acked %d%s\n", m.Peer, m.Role, m.AckedEpoch, left)
	}
	return nil
}

func (s *roomSession) joinCmd(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.withState(ctx, id, func(st *room.MemberState) error {
		head, _ := st.Head()
		s.d.p.notef("room %s %q at epoch %d, member: %v", id, st.Name(), head, st.IsMember())
		return nil
	})
}

func parsePeerArg(s string) (cryptosuite.PeerID, error) {
	p, err := cryptosuite.ParsePeerID(s)
	if err != nil {
		return p, usagef("PEERID %q: want a peer ID, 64 hex characters ('lanpeer id' on that peer prints it)", s)
	}
	return p, nil
}

func (s *roomSession) invite(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	peer, err := parsePeerArg(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.propose(ctx, id, func(peers []cryptosuite.PeerID) []cryptosuite.PeerID { return append(peers, peer) },
		func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error) {
			return st.Invite(s.id, kps, now, peer)
		}, s.rc.Invite)
}

func (s *roomSession) remove(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	peer, err := parsePeerArg(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.propose(ctx, id, func(peers []cryptosuite.PeerID) []cryptosuite.PeerID {
		return without(peers, []cryptosuite.PeerID{peer})
	}, func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error) {
		return st.Remove(s.id, kps, now, peer)
	}, s.rc.Remove)
}

func (s *roomSession) rotate(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.propose(ctx, id, func(peers []cryptosuite.PeerID) []cryptosuite.PeerID { return peers },
		func(st *room.MemberState, kps []*room.KeyPackage, now time.Time) (*room.Proposal, error) {
			return st.Rotate(s.id, kps, now)
		}, s.rc.Rotate)
}

func (s *roomSession) leave(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	return s.withState(ctx, id, func(st *room.MemberState) error {
		blob, err := st.Leave(s.id, time.Now())
		if errors.Is(err, room.ErrMasterCannotLeave) {
			return fmt.Errorf("this peer is room %s's master, and the master cannot leave its room: delete the room instead ('lanpeer dial TARGET room delete %s': its messages go too)", id, id)
		}
		if err != nil {
			return err
		}
		if err := s.rc.Leave(ctx, id, blob); err != nil {
			return hostErr(err)
		}
		s.d.p.notef("left room %s; its master removes this peer with its next commit", id)
		return nil
	})
}

func (s *roomSession) delete(ctx context.Context, args []string) error {
	id, err := parseRoomID(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	unlock, err := s.home.lockRoom(ctx, s.host(), id)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.rc.Delete(ctx, id); err != nil {
		return hostErr(err)
	}
	if err := os.Remove(s.home.statePath(s.host(), id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.d.p.notef("deleted room %s", id)
	return nil
}

// maxSendRetries bounds the resends of one message after the room moved
// to a newer epoch.
const maxSendRetries = 3

func (d *dialer) sendAction(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) != 2 {
		return usagef("want ROOM and TEXT: 'lanpeer dial [flags] TARGET send ROOM TEXT' (TEXT - reads standard input; quote a TEXT of several words)")
	}
	ref, err := parseRoomRef(args[0])
	if err != nil {
		return err
	}
	var msgID [room.MessageIDSize]byte
	if h := c.String("id"); h != "" {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != room.MessageIDSize {
			return usagef("--id: want %d hex digits, got %q", 2*room.MessageIDSize, h)
		}
		copy(msgID[:], b)
	} else {
		rand.Read(msgID[:]) // never fails
	}
	text := args[1]
	if text == "-" {
		if text, err = readRoomText(d.stdin); err != nil {
			return err
		}
	} else if err := room.CheckText(text); err != nil {
		return usagef("TEXT: %s", strings.TrimPrefix(err.Error(), "room: "))
	}
	return d.withRooms(c.Context, func(ctx context.Context, s *roomSession) error {
		id, err := s.resolve(ctx, ref)
		if err != nil {
			return err
		}
		seq, err := s.sendText(ctx, id, text, msgID)
		if err != nil {
			return err
		}
		fmt.Fprintln(s.d.p.stdout, seq)
		return nil
	})
}

// errAwaitKey is sendText's signal, under the room's lock, that the head
// epoch's key is not uploaded yet: it is awaited after the lock is let go.
var errAwaitKey = errors.New("await the head epoch's key")

// sendText seals text for room id and sends it; it returns the message's
// sequence number. A send refused under an old epoch is sealed again
// under the new one with the same message id, msgID.
func (s *roomSession) sendText(ctx context.Context, id store.RoomID, text string, msgID [room.MessageIDSize]byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	for range maxSendRetries {
		var head uint64
		var blob []byte
		err := s.withState(ctx, id, func(st *room.MemberState) error {
			head, _ = st.Head()
			members, err := st.Members(head)
			if err != nil {
				return err
			}
			m, ok := findMember(members, s.id.PeerID())
			if !ok {
				return fmt.Errorf("this peer is not a member of room %s at its epoch %d", id, head)
			}
			if !st.HasKey(head) {
				// The master has made the epoch and not uploaded its
				// keys yet: wait for the push that says they are there.
				return errAwaitKey
			}
			sec, err := s.home.secretsFor(m.KeyPackage)
			if err != nil {
				return err
			}
			if blob, err = st.SealMessage(sec, text, msgID); err != nil {
				return err
			}
			// The seal counter persists before the message leaves.
			return s.home.saveState(s.host(), st)
		})
		if errors.Is(err, errAwaitKey) {
			if err := s.awaitKey(ctx, id, head); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if beforeRoomSend != nil {
			beforeRoomSend()
		}
		seq, err := s.rc.Send(ctx, id, blob)
		if errors.Is(err, room.ErrOldEpoch) {
			continue // catch up and seal again with the same id
		}
		if err != nil {
			return 0, hostErr(err)
		}
		return seq, nil
	}
	return 0, fmt.Errorf("room %s moved to a newer epoch %d times while sending; try again", id, maxSendRetries)
}

// awaitKey waits for the push that announces this peer's wrapped key of
// epoch in room id, until ctx ends.
func (s *roomSession) awaitKey(ctx context.Context, id store.RoomID, epoch uint64) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the room key of epoch %d of room %s: the master has not uploaded it (%w)", epoch, id, ctx.Err())
		case <-s.conn.Done():
			return fmt.Errorf("the session with %s ended (%v)", s.host(), s.conn.Err())
		case p := <-s.pushes.C():
			s.hold(p)
			if p.Kind == node.PushLost || (p.Kind == node.PushKeySync && p.Room == id && p.Epoch >= epoch) {
				return nil
			}
		}
	}
}

// hold sets a push aside for the chat; past the bound they all become one
// PushLost, after which the chat reads by cursor.
func (s *roomSession) hold(p node.Push) {
	if len(s.held) >= node.DefaultPushBuffer {
		s.held = []node.Push{{Kind: node.PushLost, Lost: uint64(len(s.held)) + 1}}
		return
	}
	s.held = append(s.held, p)
}

// openLive verifies and opens a pushed message of room id with the state
// as this home holds it (no round trip: a message of an epoch it has not
// caught up with is room.ErrUnknownEpoch or room.ErrNoEpochKey; reading by
// cursor catches up). The state file is replaced atomically, so reading
// it needs no lock.
func (s *roomSession) openLive(ctx context.Context, id store.RoomID, blob []byte) (*room.Plaintext, error) {
	st, err := s.home.loadState(s.host(), id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w: no state of room %s in this home yet", room.ErrNoEpochKey, id)
	}
	return s.openStored(ctx, st, blob, true)
}

// beforeRoomSend, when set (by tests), runs between sealing a message and
// sending it.
var beforeRoomSend func()

// readRoomText reads a room message's text from standard input: CRLF
// becomes LF and one final line end is dropped.
func readRoomText(r io.Reader) (string, error) {
	const max = 2*room.MaxTextSize + 2
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if len(b) > max {
		return "", fmt.Errorf("standard input holds more than a room message: at most %d bytes", room.MaxTextSize)
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if err := room.CheckText(text); err != nil {
		return "", fmt.Errorf("standard input: %s", strings.TrimPrefix(err.Error(), "room: "))
	}
	return text, nil
}

// roomLine is read's JSON form of a message.
type roomLine struct {
	Seq    uint64 `json:"seq"`
	Sender string `json:"sender"`
	Text   string `json:"text"`
	Time   string `json:"time"`
}

func (s *roomSession) printMessage(seq uint64, stored time.Time, pt *room.Plaintext) {
	if s.d.p.print.json {
		b, _ := json.Marshal(roomLine{Seq: seq, Sender: pt.Sender.String(), Text: pt.Text, Time: stored.Format(time.RFC3339Nano)})
		fmt.Fprintf(s.d.p.stdout, "%s\n", b)
		return
	}
	fmt.Fprintf(s.d.p.stdout, "%d %s %s\n", seq, pt.Sender, escapeLine(pt.Text))
}

func (d *dialer) readAction(c *cli.Context) error {
	args, err := positionals(c, 1, "ROOM")
	if err != nil {
		return err
	}
	ref, err := parseRoomRef(args[0])
	if err != nil {
		return err
	}
	limit := c.Int("limit")
	if limit < 0 {
		return usagef("--limit %d: want 0 (all) or more", limit)
	}
	return d.withRooms(c.Context, func(ctx context.Context, s *roomSession) error {
		id, err := s.resolve(ctx, ref)
		if err != nil {
			return err
		}
		cursor, err := s.readHistory(ctx, id, c.Uint64("after"), limit, nil)
		if err != nil || !c.Bool("follow") {
			return err
		}
		return s.follow(ctx, id, cursor)
	})
}

// readHistory prints the messages after cursor, at most limit (0: all),
// and returns the last sequence number printed (or cursor). A message
// that does not open ends it with an error, unless refused is set: then
// refused reports it and reading goes on past it.
func (s *roomSession) readHistory(ctx context.Context, id store.RoomID, cursor uint64, limit int,
	refused func(seq uint64, err error)) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	err := s.withState(ctx, id, func(st *room.MemberState) error {
		printed := 0
		for range maxPages {
			want := wire.MaxListLimit
			if limit > 0 {
				want = min(want, limit-printed)
			}
			if want == 0 {
				break
			}
			msgs, err := s.rc.Read(ctx, id, cursor, want)
			var trimmed *store.HistoryTrimmedError
			if errors.As(err, &trimmed) && printed == 0 && trimmed.Oldest > cursor+1 {
				s.d.p.notef("the host keeps room %s's messages from %d on; %d to %d are gone", id, trimmed.Oldest, cursor+1, trimmed.Oldest-1)
				cursor = trimmed.Oldest - 1
				continue
			}
			if err != nil {
				return hostErr(err)
			}
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				pt, err := s.openStored(ctx, st, m.Blob, false)
				if err != nil && refused == nil {
					return fmt.Errorf("message %d: %w", m.Seq, err)
				}
				if err != nil {
					refused(m.Seq, err)
				} else {
					s.printMessage(m.Seq, m.Stored, pt)
				}
				cursor = m.Seq
				printed++
			}
		}
		return nil
	})
	return cursor, err
}

// openStored verifies and opens a message blob with st: as a new message
// (live: a push) or as history.
func (s *roomSession) openStored(ctx context.Context, st *room.MemberState, blob []byte, live bool) (*room.Plaintext, error) {
	kp, err := s.senderKey(ctx, blob)
	if err != nil {
		return nil, err
	}
	if live {
		return st.OpenMessage(blob, kp)
	}
	return st.OpenHistory(blob, kp)
}

// follow prints the pushed messages of room id until ctx ends or the
// session does; a gap (lost pushes, a new epoch) is filled by cursor.
func (s *roomSession) follow(ctx context.Context, id store.RoomID, cursor uint64) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.conn.Done():
			return fmt.Errorf("the session with %s ended (%v)", s.host(), s.conn.Err())
		case p := <-s.pushes.C():
			if p.Kind != node.PushLost && p.Room != id {
				continue
			}
			if p.Kind == node.PushMessage && p.Message.Seq <= cursor {
				continue
			}
			// Every push moves the cursor forward the same way: read by
			// cursor, which also catches up commits and room keys.
			next, err := s.readHistory(ctx, id, cursor, 0, nil)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			cursor = next
		}
	}
}
