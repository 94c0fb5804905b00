package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// streamWindow is yamux's per-stream receive window: its minimum, and
// four maximum control frames. A sender that exceeds it breaks the yamux
// protocol and loses the whole session.
const streamWindow = 256 << 10

// yamuxConfig is the multiplexer's configuration, every field chosen
// (docs/PROTOCOL.md, "17.5 Multiplexing").
func yamuxConfig(l *limits, log *slog.Logger) *yamux.Config {
	return &yamux.Config{
		// Streams wait here only between yamux's reader and the accept
		// loop, which takes each at once; it also bounds this side's
		// unacknowledged stream opens.
		AcceptBacklog:          l.maxStreams,
		EnableKeepAlive:        true,
		KeepAliveInterval:      l.keepAlive,
		ConnectionWriteTimeout: l.writeTimeout,
		MaxStreamWindowSize:    streamWindow,
		StreamOpenTimeout:      l.streamOpenAckTimeout,
		StreamCloseTimeout:     l.streamCloseTimeout,
		Logger:                 yamuxLogger{log},
	}
}

// yamuxLogger sends yamux's log lines to slog at debug level: they report
// what the other side did (a reset stream, a protocol error), which a
// peer can cause at will, and the end of a session, which node logs
// itself.
type yamuxLogger struct{ log *slog.Logger }

func (y yamuxLogger) Print(v ...any) { y.log.Debug(fmt.Sprint(v...), "component", "yamux") }
func (y yamuxLogger) Printf(format string, v ...any) {
	y.log.Debug(fmt.Sprintf(format, v...), "component", "yamux")
}
func (y yamuxLogger) Println(v ...any) { y.log.Debug(fmt.Sprint(v...), "component", "yamux") }

// Conn is one authenticated session, on either side: the handshake is
// done and yamux runs on the connection. Streams the other side opens are
// served by Config.Handlers; OpenStream opens streams to it. A Conn is safe
// for concurrent use.
type Conn struct {
	cfg   *Config
	lim   *limits
	log   *slog.Logger
	stats *counters

	keys     *session.Keys
	keysMu   sync.Mutex // orders the wipe at the session's end after liveKeys' copies
	wiped    bool       // keys are wiped; guarded by keysMu
	raw      net.Conn   // the TLS connection, or TCP with Config.Insecure
	mux      *yamux.Session
	insecure bool
	outCap   int // streams this side may have open towards the other
	frameIn  int // largest frame this side accepts
	frameOut int // largest frame the other side accepts

	ctx    context.Context // handlers' context; cancelled when the session ends or drains
	cancel context.CancelFunc

	mu       sync.Mutex
	incoming int // streams the other side opened, being served
	outgoing int // streams this side opened and has not closed
	streams  map[*Stream]struct{}
	handlers int // handler goroutines running
	idle     chan struct{}
	draining bool
	opened   map[StreamKind]bool // once-per-session kinds this side opened
	accepted map[StreamKind]bool // once-per-session kinds the other side opened

	handlerWG sync.WaitGroup
	done      chan struct{}
	err       error // why the session ended; set before done is closed
	onEnd     func(*Conn)
}

// newConn starts yamux on raw after a successful handshake; start then
// serves the streams the other side opens. onEnd, if set, runs once the
// session has ended and every handler has returned.
func newConn(raw net.Conn, keys *session.Keys, cfg *Config, lim *limits, stats *counters, log *slog.Logger, onEnd func(*Conn)) (*Conn, error) {
	c := &Conn{
		cfg: cfg, lim: lim, stats: stats, keys: keys, raw: raw, insecure: cfg.Insecure,
		outCap: lim.maxStreams, frameIn: lim.maxControlFrame, frameOut: min(lim.maxControlFrame, framing.MaxControlFrame),
		streams: map[*Stream]struct{}{}, done: make(chan struct{}), onEnd: onEnd,
		opened: map[StreamKind]bool{}, accepted: map[StreamKind]bool{},
	}
	c.log = log.With("peer", keys.Peer.PeerID().Short(), "remote", raw.RemoteAddr().String())
	var err error
	if keys.Role == session.RoleResponder {
		c.mux, err = yamux.Server(&muxConn{Conn: raw}, yamuxConfig(lim, c.log))
	} else {
		// The responder stated its limits in Ready; stay within them.
		c.outCap = min(c.outCap, int(keys.PeerMaxStreams))
		c.frameOut = min(lim.maxControlFrame, int(keys.PeerMaxFrameKiB)*1024)
		// The responder sends control frames of up to the protocol's
		// maximum, whatever this side would state.
		c.frameIn = max(c.frameIn, framing.MaxControlFrame)
		c.mux, err = yamux.Client(&muxConn{Conn: raw}, yamuxConfig(lim, c.log))
	}
	if err != nil {
		return nil, fmt.Errorf("node: starting yamux: %w", err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// start serves the streams the other side opens.
func (c *Conn) start() { go c.run() }

// Keys returns the session's keys: the peer's identity, the suites, the
// direct-message keys. The caller must not modify them; they are wiped
// once the session has ended.
func (c *Conn) Keys() *session.Keys { return c.keys }

// Peer returns the other side's peer ID, proven by TLS and the handshake.
func (c *Conn) Peer() cryptosuite.PeerID { return c.keys.Peer.PeerID() }

// PeerKey returns the other side's identity key.
func (c *Conn) PeerKey() *cryptosuite.PublicKey { return c.keys.Peer }

// Role tells which side of the handshake this peer was.
func (c *Conn) Role() session.Role { return c.keys.Role }

// Insecure reports whether the session runs without TLS.
func (c *Conn) Insecure() bool { return c.insecure }

// RemoteAddr returns the other side's TCP address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// LocalAddr returns this side's TCP address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// Done is closed once the session has ended and its handlers have
// returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the session ended (nil while it runs, ErrClosed after a
// local Close).
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// OpenStream opens a stream of kind to the other side and sends its
// StreamOpen. Without opening anything, it returns
// ErrStreamKindNotAllowed for a kind this side may not open (or a second
// direct or control stream), and ErrTooManyStreams when this side already
// has as many streams open as the other side accepts. The caller must
// Close the stream.
func (c *Conn) OpenStream(ctx context.Context, kind StreamKind) (*Stream, error) {
	ok, once := mayOpen(c.keys.Role, kind)
	c.mu.Lock()
	switch {
	case !ok || once && c.opened[kind]:
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %v from the %s", ErrStreamKindNotAllowed, kind, roleName(c.keys.Role))
	case c.draining || c.mux.IsClosed():
		c.mu.Unlock()
		return nil, ErrClosed
	case c.outgoing >= c.outCap:
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %d open, the peer accepts %d", ErrTooManyStreams, c.outgoing, c.outCap)
	}
	if once {
		c.opened[kind] = true
	}
	c.outgoing++
	c.mu.Unlock()

	ys, err := c.mux.OpenStream()
	if err != nil {
		c.mu.Lock()
		c.outgoing--
		c.mu.Unlock()
		return nil, fmt.Errorf("node: opening a stream: %w", err)
	}
	in, _ := c.frameLimits(kind, false)
	s := c.newStream(ys, kind, false, framing.NewReader(ys, in))
	if dl, ok := ctx.Deadline(); ok {
		_ = ys.SetWriteDeadline(dl)
	}
	err = writeStreamOpen(s.w, kind)
	_ = ys.SetWriteDeadline(time.Time{})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("node: opening a stream: %w", err)
	}
	return s, nil
}

// frameLimits returns the largest frame this side reads and writes on a
// stream of kind: request streams are of the request class (frames of up
// to wire.MaxRequestFrame, of which the acceptor reads at most its
// Config.MaxRequestFrame), every other stream of the control class.
func (c *Conn) frameLimits(kind StreamKind, incoming bool) (in, out int) {
	switch {
	case kind != KindRequest:
		return c.frameIn, c.frameOut
	case incoming:
		return c.lim.maxRequestFrame, wire.MaxRequestFrame
	}
	return wire.MaxRequestFrame, wire.MaxRequestFrame
}

func (c *Conn) newStream(ys *yamux.Stream, kind StreamKind, incoming bool, r *framing.Reader) *Stream {
	_, out := c.frameLimits(kind, incoming)
	s := &Stream{conn: c, ys: ys, kind: kind, incoming: incoming, r: r, w: framing.NewWriter(ys, out)}
	c.mu.Lock()
	c.streams[s] = struct{}{}
	draining := c.draining
	c.mu.Unlock()
	if draining {
		_ = ys.SetReadDeadline(time.Now())
	}
	return s
}

// streamClosed gives back a closed stream's slot.
func (c *Conn) streamClosed(s *Stream) {
	c.mu.Lock()
	delete(c.streams, s)
	if s.incoming {
		c.incoming--
	} else {
		c.outgoing--
	}
	c.mu.Unlock()
}

func (c *Conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// run serves the session until yamux stops, then ends it.
func (c *Conn) run() {
	err := c.acceptLoop()
	c.cancel()
	_ = c.mux.Close()
	c.handlerWG.Wait()
	c.keysMu.Lock()
	c.keys.Wipe()
	c.wiped = true
	c.keysMu.Unlock()
	c.err = err
	if c.onEnd != nil {
		c.onEnd(c)
	}
	c.log.Info("session ended", "reason", err)
	close(c.done)
}

// floodFactor: yamux may hold this many times MaxStreams streams from the
// other side (served, refused or finished and waiting for the other
// side's close) before the session is closed with ErrStreamFlood. Each
// can hold a receive window of buffered data.
const floodFactor = 3

// acceptLoop takes each stream the other side opens and hands it to a
// handler goroutine, or refuses it. It returns when the session ends.
func (c *Conn) acceptLoop() error {
	for {
		ys, err := c.mux.AcceptStream()
		if err != nil {
			if c.ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("node: session ended: %w", err)
		}
		if c.mux.NumStreams() > c.outCap+floodFactor*c.lim.maxStreams {
			c.stats.streamFloods.Add(1)
			c.log.Debug("closing session", "reason", ErrStreamFlood)
			return ErrStreamFlood
		}
		c.mu.Lock()
		switch {
		case c.draining:
			c.mu.Unlock()
			_ = ys.Close()
			continue
		case c.incoming >= c.lim.maxStreams:
			c.mu.Unlock()
			c.stats.streamsRefused.Add(1)
			c.log.Debug("stream refused", "reason", ErrTooManyStreams, "max", c.lim.maxStreams)
			refuseStream(ys, framing.NewWriter(ys, c.frameOut), wire.CodeBusy)
			_ = ys.Close()
			continue
		}
		c.incoming++
		c.handlers++
		c.handlerWG.Add(1)
		c.mu.Unlock()
		c.stats.streamsAccepted.Add(1)
		go c.serveStream(ys)
	}
}

// serveStream reads the stream header within the handshake timeout and
// runs the kind's handler.
func (c *Conn) serveStream(ys *yamux.Stream) {
	defer c.handlerDone()
	r := framing.NewReader(ys, c.frameIn)
	_ = ys.SetReadDeadline(time.Now().Add(c.lim.handshakeTimeout))
	kind, err := readStreamOpen(r)
	h := c.cfg.Handlers[kind]
	var code wire.ErrorCode
	var tooLarge *framing.FrameTooLargeError
	switch {
	case isTimeout(err):
		c.stats.streamTimeouts.Add(1)
		err, code = ErrStreamHeaderTimeout, wire.CodeTimeout
	case errors.As(err, &tooLarge):
		c.stats.oversizedStreams.Add(1)
		code = wire.CodeTooLarge
	case err != nil:
		c.stats.badStreamOpens.Add(1)
		code = wire.CodeProtocol
	case !c.acceptKind(kind):
		c.stats.badStreamOpens.Add(1)
		err, code = fmt.Errorf("%w: %v from the %s", ErrStreamKindNotAllowed, kind, roleName(peerRole(c.keys.Role))), wire.CodeProtocol
	case h == nil:
		c.stats.unknownKinds.Add(1)
		err, code = fmt.Errorf("%w: %v", ErrUnknownKind, kind), wire.CodeProtocol
	}
	if err == nil && kind == KindRequest {
		// The StreamOpen was the control class's; the rest is the request
		// class's. framing.Reader reads no further than a frame.
		in, _ := c.frameLimits(kind, true)
		r = framing.NewReader(ys, in)
	}
	s := c.newStream(ys, kind, true, r)
	defer s.Close()
	if err != nil {
		c.log.Debug("stream refused", "reason", err)
		s.refuse(code)
		return
	}
	_ = ys.SetReadDeadline(time.Time{})
	if c.isDraining() {
		_ = ys.SetReadDeadline(time.Now())
	}
	h.ServeStream(c.ctx, s)
}

// acceptKind applies §13.1's rules to a stream the other side opened:
// the kinds that side may open, and the kinds it may open once.
func (c *Conn) acceptKind(kind StreamKind) bool {
	ok, once := mayOpen(peerRole(c.keys.Role), kind)
	if !ok {
		return false
	}
	if !once {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accepted[kind] {
		return false
	}
	c.accepted[kind] = true
	return true
}

func peerRole(r session.Role) session.Role {
	if r == session.RoleRequestor {
		return session.RoleResponder
	}
	return session.RoleRequestor
}

func roleName(r session.Role) string {
	if r == session.RoleRequestor {
		return "requestor"
	}
	return "responder"
}

func (c *Conn) handlerDone() {
	c.mu.Lock()
	c.handlers--
	if c.handlers == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
	c.handlerWG.Done()
}

// Close ends the session at once: yamux stops, every stream fails, and
// Close waits until every handler has returned. It is idempotent and
// returns nil.
func (c *Conn) Close() error {
	c.cancel()
	_ = c.mux.Close()
	<-c.done
	return nil
}

// Shutdown ends the session gracefully: no new streams (yamux GoAway:
// the other side's opens fail, and streams it opens anyway are reset),
// handlers' contexts are cancelled and their pending reads fail, and it
// waits for the handlers to return until ctx is done; then it closes the
// session as Close does.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.draining = true
	for s := range c.streams {
		_ = s.ys.SetReadDeadline(time.Now())
	}
	var idle chan struct{}
	if c.handlers > 0 {
		if c.idle == nil {
			c.idle = make(chan struct{})
		}
		idle = c.idle
	}
	c.mu.Unlock()
	_ = c.mux.GoAway()
	c.cancel()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
		case <-c.done:
		}
	}
	return c.Close()
}
