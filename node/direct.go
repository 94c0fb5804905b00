package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// Direct messages and rekey on a session (docs/PROTOCOL.md, "13.1 Stream
// kinds", "14. Direct messages", "15. Rekey"). A [Messaging] serves both
// for every session of a peer; each session gets one [Messenger], which
// holds the session's session.DirectSender, session.DirectReceiver and
// session.Rekey and moves their messages:
//
//   - this side's direct stream, opened on the first Send and kept for the
//     session, carries the messages DirectSender seals, sealed and written
//     under one lock so that they leave in Seq order;
//   - the other side's direct stream is read by a Handler that opens each
//     message with DirectReceiver and hands the text to
//     DirectConfig.OnMessage;
//   - the control stream carries the rekey exchanges: the requestor opens
//     it as soon as its Messenger exists (call Attach right after Dial),
//     the responder serves it with a Handler. Rekey.Poll runs after each
//     Seal and when Rekey.NextDue comes; each flight of an exchange must
//     follow within DirectConfig.RekeyTimeout.
//
// Any failure to open a direct message or to rekey closes the session:
// the refusing side writes an Error with the failure's code on the stream
// (session.Code), logs the typed error at warn level, and closes the
// connection; Messenger.Err returns the error.

// Direct-message and rekey errors of this package; the session package's
// (session.ErrDirectOpen, *session.SeqError, session.ErrRekeyBadConfirm,
// ...) come through as they are.
var (
	// ErrRekeyTimeout: a rekey exchange waited longer than
	// DirectConfig.RekeyTimeout for the other side's next flight. The
	// session is closed: until the exchange completes it cannot rekey.
	ErrRekeyTimeout = errors.New("node: rekey exchange stalled: the peer did not answer in time")
	// ErrNotDirectMessage: a direct stream carried a message other than
	// DirectMessage. The session is closed.
	ErrNotDirectMessage = errors.New("node: a direct stream carries only DirectMessage")
	// ErrDirectFinished: Send after Finish.
	ErrDirectFinished = errors.New("node: this side's direct messages are finished for the session")
	// ErrUnconfirmed: Finish could not confirm that the other side read
	// every message: the session ended first, or the other side wrote on
	// a stream where it may only close.
	ErrUnconfirmed = errors.New("node: the peer did not confirm reading the direct messages")
)

// DirectConfig configures a Messaging. The zero value works: messages are
// checked and dropped, the rekey policy is session's default.
type DirectConfig struct {
	// OnMessage receives every direct message the other side of a
	// session sends, in order for each session. It runs on that
	// session's direct-stream handler: the session's next message waits
	// until it returns, so it must return promptly. nil drops messages
	// (after they are opened and checked).
	OnMessage func(Received)
	// Rekey is the rekey policy of every session (the zero value: the
	// session package's defaults).
	Rekey session.RekeyPolicy
	// RekeyTimeout bounds the wait for each flight of a rekey exchange
	// (default: the session's Config.HandshakeTimeout).
	RekeyTimeout time.Duration
}

// Received is a direct message as OnMessage gets it.
type Received struct {
	From    cryptosuite.PeerID // the sender, proven by the session's handshake
	Text    string             // passed session.CheckDirectText; may hold tabs and line feeds
	Seq     uint64             // the message's number in the sender's direction
	Epoch   uint32             // the key epoch it was sealed under
	Time    time.Time          // when it was opened here
	Session [session.SessionIDSize]byte
	Conn    *Conn
}

// Messaging serves direct messages and rekey for every session of a peer:
// put Handlers in Config.Handlers, and call Attach for each session that
// sends (on the dialing side right after Dial, so that the control stream
// opens at once). It is safe for concurrent use.
type Messaging struct {
	cfg DirectConfig

	mu sync.Mutex
	m  map[*Conn]*Messenger
	wg sync.WaitGroup // one per Messenger, until its goroutines have ended
}

// NewMessaging returns a Messaging with cfg.
func NewMessaging(cfg DirectConfig) *Messaging {
	return &Messaging{cfg: cfg, m: map[*Conn]*Messenger{}}
}

// Handlers returns the handlers of the direct and control streams, to put
// in Config.Handlers (merged with handlers of other kinds).
func (d *Messaging) Handlers() map[StreamKind]Handler {
	return map[StreamKind]Handler{
		KindDirect:  HandlerFunc(d.serveDirect),
		KindControl: HandlerFunc(d.serveControl),
	}
}

// Attach returns the session's Messenger, making it on first use. It
// fails with ErrClosed once the session has ended.
func (d *Messaging) Attach(c *Conn) (*Messenger, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.m[c]; ok {
		return m, nil
	}
	m, err := newMessenger(d, c)
	if err != nil {
		return nil, err
	}
	d.m[c] = m
	d.wg.Add(1)
	go m.run()
	return m, nil
}

// Wait waits until the Messenger of every session has ended, which it
// does once its session has. Call it after the sessions are closed
// (Server.Serve has returned, Conn.Close).
func (d *Messaging) Wait() { d.wg.Wait() }

func (d *Messaging) forget(c *Conn) {
	d.mu.Lock()
	delete(d.m, c)
	d.mu.Unlock()
}

// Messenger sends this side's direct messages on one session and runs its
// rekey exchanges. Its methods are safe for concurrent use.
type Messenger struct {
	d       *Messaging
	c       *Conn
	log     *slog.Logger
	role    session.Role
	sid     [session.SessionIDSize]byte
	timeout time.Duration
	now     func() time.Time

	// The session's secrets, copied from its Keys when the Messenger was
	// made; sender, receiver and rekey own them and end() zeroes them.
	c2s, s2c, rekeySecret []byte
	sender                *session.DirectSender
	receiver              *session.DirectReceiver
	rekey                 *session.Rekey

	sendMu   sync.Mutex
	out      *Stream // this side's direct stream, opened by the first Send
	outErr   error   // a failed open or write: the stream is done for
	finished bool    // Finish was called
	ended    bool    // the session has ended; guarded by sendMu and ctrlMu

	ctrlMu   sync.Mutex
	ctrl     *Stream   // the control stream, once open; nil after it ends
	stallAt  time.Time // an exchange waits for the peer's flight until then
	idlePoll time.Time // a timed Poll found nothing due (see nextWake)

	kick     chan struct{} // wakes run to recompute its timer
	failOnce sync.Once
	failed   chan struct{} // closed by fail; run then closes the session
	err      error         // why; set before failed is closed
	done     chan struct{}
}

func newMessenger(d *Messaging, c *Conn) (*Messenger, error) {
	keys, err := c.liveKeys()
	if err != nil {
		return nil, err
	}
	m := &Messenger{
		d: d, c: c, log: c.logger(), role: keys.Role, sid: keys.SessionID, now: c.cfg.now,
		timeout: d.cfg.RekeyTimeout,
		c2s:     keys.C2S, s2c: keys.S2C, rekeySecret: keys.RekeySecret,
		kick: make(chan struct{}, 1), failed: make(chan struct{}), done: make(chan struct{}),
	}
	if m.timeout <= 0 {
		m.timeout = c.lim.handshakeTimeout
	}
	if m.sender, err = session.NewDirectSender(keys, nil); err == nil {
		if m.receiver, err = session.NewDirectReceiver(keys); err == nil {
			m.rekey, err = session.NewRekey(keys, m.sender, m.receiver, session.RekeyConfig{
				Identity: c.cfg.Identity, Policy: d.cfg.Rekey, Now: c.cfg.Now,
			})
		}
	}
	if err != nil {
		keys.Wipe()
		return nil, err
	}
	return m, nil
}

// liveKeys returns a copy of the session's keys, secrets included, or
// ErrClosed once the session has ended and wiped them.
func (c *Conn) liveKeys() (*session.Keys, error) {
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	if c.wiped {
		return nil, ErrClosed
	}
	k := *c.keys
	k.AuthKey = [session.AuthKeySize]byte{} // not needed here
	k.C2S = append([]byte(nil), k.C2S...)
	k.S2C = append([]byte(nil), k.S2C...)
	k.RekeySecret = append([]byte(nil), k.RekeySecret...)
	return &k, nil
}

// Conn returns the session.
func (m *Messenger) Conn() *Conn { return m.c }

// Epoch returns the key epoch this side sends under: 0 until the first
// rekey completes.
func (m *Messenger) Epoch() uint32 { return m.rekey.Epoch() }

// Done is closed once the session has ended and the Messenger's
// goroutines have returned.
func (m *Messenger) Done() <-chan struct{} { return m.done }

// Err returns the failure that made the Messenger close the session (a
// direct message that did not open, a failed or stalled rekey), or nil.
func (m *Messenger) Err() error {
	select {
	case <-m.failed:
		return m.err
	default:
		return nil
	}
}

// Send seals text as this side's next direct message and writes it on
// this side's direct stream, opening the stream on first use. ctx bounds
// the open and the write; a write that fails or times out leaves the
// stream unusable (the receiver accepts only the next Seq), and every
// later Send returns that error. (A write the session's end interrupts
// may have reached the peer all the same: Finish tells.) A text that
// session.CheckDirectText refuses is refused before anything happens
// (session.ErrDirectText).
func (m *Messenger) Send(ctx context.Context, text string) error {
	if err := session.CheckDirectText(text); err != nil {
		return err
	}
	m.sendMu.Lock()
	err := m.sendLocked(ctx, text)
	m.sendMu.Unlock()
	if err != nil {
		return err
	}
	m.poll()
	return nil
}

func (m *Messenger) sendLocked(ctx context.Context, text string) error {
	switch {
	case m.ended:
		return ErrClosed
	case m.outErr != nil:
		return m.outErr
	case m.finished:
		return ErrDirectFinished
	}
	if m.out == nil {
		s, err := m.c.OpenStream(ctx, KindDirect)
		if err != nil {
			err = fmt.Errorf("node: opening the direct stream: %w", err)
			if !errors.Is(err, ErrTooManyStreams) {
				m.outErr = err // the one direct stream of the session is spent
			}
			return err
		}
		m.out = s
	}
	dm, err := m.sender.Seal(text)
	if err != nil {
		return err // nothing consumed
	}
	b, err := wire.Encode(dm)
	if err != nil {
		m.outErr = fmt.Errorf("node: encoding a direct message: %w", err) // Seq consumed
		return m.outErr
	}
	err = withDeadline(ctx, m.out.SetWriteDeadline, func() error { return m.out.WriteFrame(b) })
	if err != nil {
		m.outErr = fmt.Errorf("node: sending a direct message: %w", err)
		return m.outErr
	}
	return nil
}

// withDeadline runs f, which blocks on a stream, with set applying ctx's
// deadline and cancellation, and clears the deadline afterwards.
func withDeadline(ctx context.Context, set func(time.Time) error, f func() error) error {
	if ctx.Done() == nil {
		return f() // never cancelled, no deadline
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = set(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = set(time.Unix(1, 0))
	})
	err := f()
	if !stop() {
		<-fired // it has run, or is running: let it finish before clearing
	}
	_ = set(time.Time{})
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Finish ends this side's direct messages in the session: it closes the
// sending side of this side's direct stream and waits (within ctx) until
// the other side has read every message and closed its side too, which
// its handler does only after it has handed each message on. It returns
// nil if nothing was sent, and ErrUnconfirmed (or the other side's
// *StreamError) when that cannot be confirmed. Later Sends fail with
// ErrDirectFinished.
func (m *Messenger) Finish(ctx context.Context) error {
	m.sendMu.Lock()
	m.finished = true
	s, outErr := m.out, m.outErr
	m.sendMu.Unlock()
	switch {
	case outErr != nil:
		return outErr
	case s == nil:
		return nil
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("node: closing the direct stream: %w", err)
	}
	// The acceptor writes nothing on a direct stream but an Error before
	// it closes; the first frame or the end decides.
	err := withDeadline(ctx, s.SetReadDeadline, func() error {
		_, err := s.ReadFrame()
		return err
	})
	switch {
	case errors.Is(err, io.EOF) && !m.c.mux.IsClosed():
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the session ended first", ErrUnconfirmed)
	case err == nil:
		return fmt.Errorf("%w: it wrote on the direct stream", ErrUnconfirmed)
	}
	return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
}

// serveDirect reads the other side's direct stream.
func (d *Messaging) serveDirect(ctx context.Context, s *Stream) {
	m, err := d.Attach(s.Conn())
	if err != nil {
		return // the session has ended
	}
	for {
		p, err := s.ReadFrame()
		if err != nil {
			if !m.closing(err) {
				m.fail(fmt.Errorf("node: reading the direct stream: %w", err))
			}
			return
		}
		text, dm, err := m.open(p)
		if err != nil {
			s.Fail(streamCode(err))
			m.fail(err)
			return
		}
		if d.cfg.OnMessage != nil {
			d.cfg.OnMessage(Received{From: s.Conn().Peer(), Text: text, Seq: dm.Seq, Epoch: dm.Epoch,
				Time: m.now(), Session: m.sid, Conn: s.Conn()})
		}
	}
}

func (m *Messenger) open(p []byte) (string, *wire.DirectMessage, error) {
	msg, err := wire.Decode(p)
	if err != nil {
		return "", nil, err
	}
	dm, ok := msg.(*wire.DirectMessage)
	if !ok {
		return "", nil, fmt.Errorf("%w: got %v", ErrNotDirectMessage, msg.Type())
	}
	text, err := m.receiver.Open(dm)
	return text, dm, err
}

// closing reports whether a stream error is the session ending (or the
// other side closing its stream at a frame boundary) rather than a fault.
func (m *Messenger) closing(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, ErrClosed) || errors.Is(err, yamux.ErrRemoteGoAway) || m.sessionEnding()
}

// sessionEnding reports whether the session is closing or draining.
func (m *Messenger) sessionEnding() bool { return m.c.ctx.Err() != nil || m.c.mux.IsClosed() }

// serveControl serves the control stream the requestor opened.
func (d *Messaging) serveControl(ctx context.Context, s *Stream) {
	m, err := d.Attach(s.Conn())
	if err != nil {
		return
	}
	m.ctrlMu.Lock()
	m.ctrl = s
	m.pollLocked() // a rekey may have come due before the stream
	m.ctrlMu.Unlock()
	m.wake()
	m.readControl(s)
}

// openControl opens the requestor's control stream and reads it until the
// session ends.
func (m *Messenger) openControl() {
	ctx, cancel := context.WithTimeout(m.c.ctx, m.timeout)
	s, err := m.c.OpenStream(ctx, KindControl)
	cancel()
	if err != nil {
		// A responder that is shutting down refuses new streams (GoAway,
		// or a reset if the GoAway crossed the open): no rekey is needed
		// on a session about to end, and the sender never exceeds its
		// limit without one (session.ErrRekeyRequired).
		if m.closing(err) || errors.Is(err, yamux.ErrConnectionReset) {
			m.log.Debug("no control stream: no rekey in this session", "err", err)
			return
		}
		m.fail(fmt.Errorf("node: opening the control stream: %w", err))
		return
	}
	defer s.Close()
	m.ctrlMu.Lock()
	m.ctrl = s
	m.pollLocked()
	m.ctrlMu.Unlock()
	m.wake()
	m.readControl(s)
}

// readControl hands each rekey message to the state machine and writes
// its answer, until the stream or the session ends.
func (m *Messenger) readControl(s *Stream) {
	defer func() {
		m.ctrlMu.Lock()
		if m.ctrl == s {
			m.ctrl = nil // rekeying ends with the control stream
		}
		m.ctrlMu.Unlock()
	}()
	for {
		p, err := s.ReadFrame()
		if err != nil {
			switch {
			case m.closing(err):
				m.log.Debug("control stream ended", "err", err)
			default:
				m.fail(fmt.Errorf("node: reading the control stream: %w", err))
			}
			return
		}
		msg, err := wire.Decode(p)
		m.ctrlMu.Lock()
		if m.ctrl == nil {
			m.ctrlMu.Unlock()
			return // failed meanwhile
		}
		var reply wire.Message
		epoch := m.rekey.Epoch()
		if err == nil {
			reply, err = m.rekey.Consume(msg)
		}
		if err == nil && reply != nil {
			err = m.writeControlLocked(reply)
		}
		if err != nil {
			m.failControlLocked(err)
			m.ctrlMu.Unlock()
			return
		}
		m.progressLocked()
		if e := m.rekey.Epoch(); e != epoch {
			m.log.Info("rekeyed", "epoch", e)
		}
		m.ctrlMu.Unlock()
		m.wake()
	}
}

func (m *Messenger) writeControlLocked(msg wire.Message) error {
	b, err := wire.Encode(msg)
	if err != nil {
		return err
	}
	// The peer reads the control stream all the time; a write that stalls
	// this long is a stalled exchange.
	_ = m.ctrl.SetWriteDeadline(m.now().Add(m.timeout))
	err = m.ctrl.WriteFrame(b)
	_ = m.ctrl.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("node: writing the control stream: %w", err)
	}
	return nil
}

// failControlLocked refuses on the control stream with err's code and
// fails the session, unless the session is ending anyway. The caller holds
// ctrlMu.
func (m *Messenger) failControlLocked(err error) {
	ctrl := m.ctrl
	m.ctrl = nil
	if m.sessionEnding() {
		return
	}
	if ctrl != nil {
		ctrl.Fail(streamCode(err))
	}
	m.fail(err)
}

// streamCode is the wire code a refusal of err carries.
func streamCode(err error) wire.ErrorCode {
	if errors.Is(err, ErrNotDirectMessage) {
		return wire.CodeProtocol
	}
	return session.Code(err)
}

// poll starts a rekey exchange if the policy asks for one (after a Seal).
func (m *Messenger) poll() {
	m.ctrlMu.Lock()
	m.pollLocked()
	m.ctrlMu.Unlock()
	m.wake()
}

func (m *Messenger) pollLocked() {
	if m.ctrl == nil || m.ended {
		return
	}
	msg, err := m.rekey.Poll()
	if err == nil && msg != nil {
		err = m.writeControlLocked(msg)
	}
	if err != nil {
		m.failControlLocked(err)
		return
	}
	m.progressLocked()
}

// progressLocked restarts the stall deadline after a flight: while an
// exchange runs (NextDue is zero) the peer's next flight is due within
// the timeout.
func (m *Messenger) progressLocked() {
	if m.rekey.NextDue().IsZero() {
		m.stallAt = m.now().Add(m.timeout)
	} else {
		m.stallAt = time.Time{}
	}
}

// nextWake is when run must look again: the policy's next due time or the
// stall deadline, whichever is first; zero for never.
func (m *Messenger) nextWake() time.Time {
	m.ctrlMu.Lock()
	defer m.ctrlMu.Unlock()
	if m.ctrl == nil || m.ended {
		return time.Time{}
	}
	t := m.rekey.NextDue()
	if !t.IsZero() && !t.After(m.idlePoll) {
		// A timed Poll at or after t started nothing (the epochs are used
		// up): look again in a while rather than spin.
		t = m.idlePoll.Add(time.Second)
	}
	if !m.stallAt.IsZero() && (t.IsZero() || m.stallAt.Before(t)) {
		t = m.stallAt
	}
	return t
}

// onTimer fails a stalled exchange or polls the policy.
func (m *Messenger) onTimer() {
	m.ctrlMu.Lock()
	defer m.ctrlMu.Unlock()
	if m.ctrl == nil || m.ended {
		return
	}
	now := m.now()
	if !m.stallAt.IsZero() && !now.Before(m.stallAt) {
		m.ctrl.Fail(wire.CodeTimeout)
		m.ctrl = nil
		m.fail(ErrRekeyTimeout)
		return
	}
	m.pollLocked()
	if t := m.rekey.NextDue(); !t.IsZero() && !t.After(now) {
		m.idlePoll = now // due, yet nothing started
	}
}

func (m *Messenger) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// fail records the first failure, logs it and has run close the session.
func (m *Messenger) fail(err error) {
	m.failOnce.Do(func() {
		m.err = err
		m.log.Warn("closing the session", "err", err)
		close(m.failed)
	})
}

// run owns the Messenger's timer; on the requestor it also opens and
// reads the control stream. It closes the session after a failure and
// cleans up once the session has ended.
func (m *Messenger) run() {
	defer m.d.wg.Done()
	defer close(m.done)
	var ctrlDone chan struct{}
	if m.role == session.RoleRequestor {
		ctrlDone = make(chan struct{})
		go func() {
			defer close(ctrlDone)
			m.openControl()
		}()
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	failed := m.failed
	for ended := false; !ended; {
		if t := m.nextWake(); t.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(t))
		}
		select {
		case <-m.c.Done():
			ended = true
		case <-failed:
			failed = nil
			m.c.Close() // returns once the session's handlers have
		case <-m.kick:
		case <-timer.C:
			m.onTimer()
		}
	}
	timer.Stop()
	if ctrlDone != nil {
		<-ctrlDone // its reads fail once the session has ended
	}
	m.end()
}

// end zeroes the session's secrets held here once nothing uses them: the
// session's handlers have returned, the control reader has, and Send and
// the rekey state machine are shut out.
func (m *Messenger) end() {
	m.sendMu.Lock()
	m.ctrlMu.Lock()
	m.ended = true
	clear(m.c2s)
	clear(m.s2c)
	clear(m.rekeySecret)
	out := m.out
	m.ctrlMu.Unlock()
	m.sendMu.Unlock()
	if out != nil {
		out.Close()
	}
	m.d.forget(m.c)
}
