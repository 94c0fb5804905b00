package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
)

// `lanpeer dial TARGET` with no command: a line-oriented chat over one
// session with TARGET. Lines that start with '/' are commands; other lines
// go to the room joined, or, before any, to TARGET as direct messages.
// Standard output carries what arrives and what commands print (room
// messages as SEQ SENDER TEXT, direct messages as PEERID TEXT, as read and
// listen print them); standard error carries notes.

// chatHelp is what /help prints.
const chatHelp = `/rooms                      list this peer's rooms on the host: ID NAME ROLE EPOCH
/join ROOM                  switch to ROOM (its id or a unique prefix); what you type then goes to it
/create [--cipher C] NAME   create a room with this peer as master, print its id and switch to it
/invite PEERID              invite PEERID to the room (master; PEERID must have dialed the host once)
/remove PEERID              remove PEERID from the room under a new room key (master)
/rotate                     give the room a new room key (master)
/info                       print the room's epoch and members
/leave                      leave the room (a master deletes its room instead: 'room delete')
/history [N]                print the room's last N messages (default 20)
/msg PEERID TEXT            send TEXT as a direct message to PEERID, the host (its id or a prefix)
/help                       print this
/quit                       end the chat (so does the end of input)
//TEXT                      send /TEXT (a text that starts with '/')
TEXT                        send TEXT to the room joined; before any, a direct message to the host
`

// defaultHistory is /history's N when none is given.
const defaultHistory = 20

// maxChatLine bounds one line of chat input: "/msg PEERID " and a text.
const maxChatLine = max(session.MaxDirectTextSize, room.MaxTextSize) + 128

// chat is the state of one chat: its session and the room joined.
type chat struct {
	d      *dialer
	s      *roomSession
	ds     *dialSession
	joined bool
	room   store.RoomID // the room joined, when joined
	cursor uint64       // the last sequence number of room printed (or skipped)
}

// errChatEnd ends the chat without an error of its own: the session's
// failure or end is reported by the caller.
var errChatEnd = errors.New("chat ended")

// chat runs the interactive session until the end of input, /quit, or the
// session's end.
func (d *dialer) chat(c *cli.Context) error {
	dcfg, err := directConfig(d.c, d.p.print.message)
	if err != nil {
		return err
	}
	msg := node.NewMessaging(dcfg)
	s, err := d.connectRooms(c.Context, msg.Handlers())
	if err != nil {
		return err
	}
	ds := &dialSession{msg: msg, conn: s.conn}
	defer ds.close()
	if ds.m, err = msg.Attach(s.conn); err != nil {
		return err
	}
	keys := s.conn.Keys()
	d.p.notef("connected to %s at %s (%s, %s); /help lists the commands; a line is a direct message to %s until you /join a room; %s or end of input ends the chat",
		s.host(), s.conn.RemoteAddr(), keys.KEX.CLIName, keys.AEAD.Name, s.host().Short(), quitCommand)
	ch := &chat{d: d, s: s, ds: ds}
	done := make(chan struct{})
	defer close(done)
	lines := readLines(d.stdin, maxChatLine, done)
	ctx := c.Context
	for {
		// Pushes that a send set aside while it waited for a room key.
		for len(s.held) > 0 {
			p := s.held[0]
			s.held = s.held[1:]
			ch.push(ctx, p)
		}
		select {
		case in, ok := <-lines:
			switch {
			case !ok || in.text == quitCommand:
				return ds.finish(ctx)
			case errors.Is(in.err, errLineTooLong):
				d.p.notef("not sent: a line is at most %d bytes", maxChatLine)
				continue
			case in.err != nil:
				return fmt.Errorf("reading standard input: %w", in.err)
			case in.text == "":
				continue
			}
			if err := ch.line(ctx, in.text); errors.Is(err, errChatEnd) {
				return ds.failed(nil)
			} else if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				d.p.notef("%v", err)
			}
		case p := <-s.pushes.C():
			ch.push(ctx, p)
		case <-s.conn.Done():
			return ds.failed(nil)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// line runs one line of input: a command, or a text to send.
func (ch *chat) line(ctx context.Context, text string) error {
	if !strings.HasPrefix(text, "/") || strings.HasPrefix(text, "//") {
		if strings.HasPrefix(text, "//") {
			text = text[1:]
		}
		if ch.joined {
			return ch.sendRoom(ctx, text)
		}
		return ch.sendDirect(ctx, text)
	}
	name, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	args := strings.Fields(rest)
	s := ch.s
	need := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	switch name {
	case "/help":
		_, err := io.WriteString(ch.d.p.stdout, chatHelp)
		return err
	case "/rooms":
		if err := need(0, "/rooms"); err != nil {
			return err
		}
		return s.list(ctx, nil)
	case "/join":
		if err := need(1, "/join ROOM"); err != nil {
			return err
		}
		return ch.join(ctx, args[0])
	case "/create":
		return ch.create(ctx, args)
	case "/invite", "/remove":
		if err := need(1, name+" PEERID"); err != nil {
			return err
		}
		if _, err := parsePeerArg(args[0]); err != nil {
			return err
		}
		id, err := ch.current()
		if err != nil {
			return err
		}
		if name == "/invite" {
			return s.invite(ctx, []string{id.String(), args[0]})
		}
		return s.remove(ctx, []string{id.String(), args[0]})
	case "/rotate", "/info", "/leave":
		if err := need(0, name); err != nil {
			return err
		}
		id, err := ch.current()
		if err != nil {
			return err
		}
		switch name {
		case "/rotate":
			return s.rotate(ctx, []string{id.String()})
		case "/info":
			return s.info(ctx, []string{id.String()})
		}
		if err := s.leave(ctx, []string{id.String()}); err != nil {
			return err
		}
		ch.joined = false
		return nil
	case "/history":
		n := defaultHistory
		if len(args) > 1 {
			return errors.New("usage: /history [N]")
		}
		if len(args) == 1 {
			v, err := strconv.Atoi(args[0])
			if err != nil || v < 1 {
				return fmt.Errorf("/history %s: want a number of messages, 1 or more", args[0])
			}
			n = v
		}
		return ch.history(ctx, n)
	case "/msg":
		peer, text, _ := strings.Cut(rest, " ")
		if peer == "" || text == "" {
			return errors.New("usage: /msg PEERID TEXT")
		}
		host := s.host().String()
		if p := strings.ToLower(peer); len(p) < minPeerPrefix || !strings.HasPrefix(host, p) {
			return fmt.Errorf("/msg %s: direct messages go to the peer this session is with, %s (its id or a prefix of at least %d characters); to write to another peer, dial it",
				peer, host, minPeerPrefix)
		}
		return ch.sendDirect(ctx, text)
	}
	return fmt.Errorf("unknown command %s: /help lists the commands (a text that starts with '/' is sent as //TEXT)", name)
}

// current returns the room joined.
func (ch *chat) current() (store.RoomID, error) {
	if !ch.joined {
		return store.RoomID{}, errors.New("no room joined: /join ROOM first (/rooms lists them)")
	}
	return ch.room, nil
}

// sendDirect sends text to the host as a direct message.
func (ch *chat) sendDirect(ctx context.Context, text string) error {
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	err := ch.ds.m.Send(sctx, text)
	if errors.Is(err, session.ErrDirectText) {
		return fmt.Errorf("not sent: %s", strings.TrimPrefix(err.Error(), "session: "))
	}
	if err != nil {
		ch.d.p.notef("sending to %s: %v", ch.ds.peer(), err)
		return errChatEnd
	}
	return nil
}

// sendRoom sends text to the room joined; it comes back as a push and is
// printed then, with its sequence number, as everyone's lines are.
func (ch *chat) sendRoom(ctx context.Context, text string) error {
	if err := room.CheckText(text); err != nil {
		return fmt.Errorf("not sent: %s", strings.TrimPrefix(err.Error(), "room: "))
	}
	var msgID [room.MessageIDSize]byte
	rand.Read(msgID[:]) // never fails
	_, err := ch.s.sendText(ctx, ch.room, text, msgID)
	return err
}

// join switches to the room ref names: it fetches the room's commits and
// this peer's key, and prints what arrives in it from then on.
func (ch *chat) join(ctx context.Context, ref string) error {
	r, err := parseRoomRef(ref)
	if err != nil {
		return err
	}
	id, err := ch.s.resolve(ctx, r)
	if err != nil {
		return err
	}
	return ch.switchTo(ctx, id)
}

func (ch *chat) switchTo(ctx context.Context, id store.RoomID) error {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	var name string
	var epoch uint64
	err := ch.s.withState(ctx, id, func(st *room.MemberState) error {
		name, epoch = st.Name(), 0
		epoch, _ = st.Head()
		if !st.IsMember() {
			return fmt.Errorf("this peer is not a member of room %s at its epoch %d", id, epoch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	info, err := ch.s.rc.RoomInfo(ctx, id)
	if err != nil {
		return hostErr(err)
	}
	ch.joined, ch.room, ch.cursor = true, id, info.Span.Last
	ch.d.p.notef("in room %s %q (epoch %d, %d messages); what you type goes to it; /history N prints its last N",
		id, name, epoch, info.Span.Last)
	return nil
}

// create makes a room and switches to it.
func (ch *chat) create(ctx context.Context, args []string) error {
	suite := cryptosuite.AEADA256CBCHS512
	if len(args) > 0 && strings.HasPrefix(args[0], "--cipher") {
		v, ok := strings.CutPrefix(args[0], "--cipher=")
		rest := args[1:]
		if !ok {
			if len(args) < 2 {
				return errors.New("usage: /create [--cipher CIPHER] NAME")
			}
			v, rest = args[1], args[2:]
		}
		s, ok := cipherNames[v]
		if !ok {
			return fmt.Errorf("--cipher %q: want a256cbc-hs512, aes256gcm or chacha20poly1305", v)
		}
		suite, args = s, rest
	}
	name := strings.Join(args, " ")
	if name == "" {
		return errors.New("usage: /create [--cipher CIPHER] NAME")
	}
	if err := room.CheckName(name); err != nil {
		return fmt.Errorf("NAME: %s", strings.TrimPrefix(err.Error(), "room: "))
	}
	id, err := ch.s.create(ctx, name, suite)
	if err != nil {
		return err
	}
	return ch.switchTo(ctx, id)
}

// history prints the last n messages of the room joined.
func (ch *chat) history(ctx context.Context, n int) error {
	id, err := ch.current()
	if err != nil {
		return err
	}
	info, err := ch.s.rc.RoomInfo(ctx, id)
	if err != nil {
		return hostErr(err)
	}
	if info.Span.Last == 0 {
		ch.d.p.notef("room %s has no messages yet", id)
		return nil
	}
	after := uint64(0)
	if info.Span.Last > uint64(n) {
		after = info.Span.Last - uint64(n)
	}
	if info.Span.First > after+1 {
		after = info.Span.First - 1
	}
	last, err := ch.s.readHistory(ctx, id, after, n, ch.refused(id))
	ch.cursor = max(ch.cursor, last)
	return err
}

// refused reports a message of room id that does not open, and the chat
// goes on.
func (ch *chat) refused(id store.RoomID) func(uint64, error) {
	return func(seq uint64, err error) {
		ch.d.p.notef("room %s: message %d refused: %v", id, seq, err)
	}
}

// fill prints the messages of the room joined after the cursor.
func (ch *chat) fill(ctx context.Context) {
	last, err := ch.s.readHistory(ctx, ch.room, ch.cursor, 0, ch.refused(ch.room))
	ch.cursor = max(ch.cursor, last)
	if err != nil && ctx.Err() == nil {
		ch.d.p.notef("room %s: %v", ch.room, err)
	}
}

// push handles one push: a message of the room joined is verified,
// opened and printed; a key-sync push fetches, opens and acknowledges
// this peer's new room key; a membership change brings the room's state up
// to date (the master's client turns a leave into a remove commit there).
func (ch *chat) push(ctx context.Context, p node.Push) {
	switch p.Kind {
	case node.PushLost:
		if ch.joined {
			ch.fill(ctx)
		}
	case node.PushMessage:
		if !ch.joined || p.Room != ch.room {
			return
		}
		m := p.Message
		if m.Seq <= ch.cursor {
			return
		}
		if m.Seq == ch.cursor+1 {
			pt, err := ch.s.openLive(ctx, p.Room, m.Blob)
			switch {
			case err == nil:
				ch.s.printMessage(m.Seq, m.Stored, pt)
				ch.cursor = m.Seq
				return
			case !errors.Is(err, room.ErrUnknownEpoch) && !errors.Is(err, room.ErrNoEpochKey):
				ch.refused(p.Room)(m.Seq, err)
				ch.cursor = m.Seq
				return
			}
			// Under an epoch this state has not caught up with: reading
			// by cursor catches up first.
		}
		ch.fill(ctx)
	case node.PushKeySync:
		if st, err := ch.s.home.loadState(ch.s.host(), p.Room); err == nil && st != nil && st.HasKey(p.Epoch) {
			return // this peer's own epoch (the master's), or one it caught up with
		}
		ch.update(ctx, p.Room)
	case node.PushMembership:
		switch p.Event {
		case node.EventDelete:
			ch.d.p.notef("room %s was deleted by its master", p.Room)
			if ch.joined && ch.room == p.Room {
				ch.joined = false
			}
		case node.EventLeave:
			ch.d.p.notef("room %s: %s left", p.Room, p.Peer)
			ch.update(ctx, p.Room)
		case node.EventCreate:
		default:
			ch.update(ctx, p.Room)
		}
	}
}

// update brings this peer's state of room id up to date (it joins a room
// it was invited to), and notes a room key it did not hold before.
func (ch *chat) update(ctx context.Context, id store.RoomID) {
	ctx, cancel := context.WithTimeout(ctx, roomTimeout)
	defer cancel()
	before, _ := ch.s.home.loadState(ch.s.host(), id) // nil: none yet, or unreadable (withState says why)
	var head uint64
	var newKey bool
	err := ch.s.withState(ctx, id, func(st *room.MemberState) error {
		head, _ = st.Head()
		newKey = st.HasKey(head) && (before == nil || !before.HasKey(head))
		if !st.IsMember() {
			ch.d.p.notef("room %s: this peer is not a member of its epoch %d", id, head)
			if ch.joined && ch.room == id {
				ch.joined = false
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, room.ErrNotMember) || errors.Is(err, room.ErrLeft):
		ch.d.p.notef("room %s: this peer is no longer a member", id)
		if ch.joined && ch.room == id {
			ch.joined = false
		}
	case err != nil && ctx.Err() == nil:
		ch.d.p.notef("room %s: %v", id, err)
	case err == nil && newKey:
		ch.d.p.notef("room %s: the room key of epoch %d is here", id, head)
	}
}
