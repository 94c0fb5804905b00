package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// StreamKind says what a stream carries; the opener names it in the
// stream's first frame, a StreamOpen (docs/PROTOCOL.md, "13. Streams").
type StreamKind = wire.StreamKind

// Stream kinds (docs/PROTOCOL.md, "13.1 Stream kinds").
const (
	// KindDirect carries the opener's direct messages, one way; each side
	// opens at most one per session.
	KindDirect = wire.StreamDirect
	// KindControl carries the session's rekey exchanges in both
	// directions; the requestor opens it, once per session.
	KindControl = wire.StreamControl
	// KindNotify carries the responder's pushes to the requestor; only
	// the responder opens it.
	KindNotify = wire.StreamNotify
	// KindRequest carries one request and its response; only the
	// requestor opens it.
	KindRequest = wire.StreamRequest
)

// mayOpen reports whether the side of role may open a stream of kind,
// and whether it may open only one per session.
func mayOpen(role session.Role, kind StreamKind) (ok, once bool) {
	switch kind {
	case KindDirect:
		return true, true
	case KindControl:
		return role == session.RoleRequestor, true
	case KindNotify:
		return role == session.RoleResponder, false
	case KindRequest:
		return role == session.RoleRequestor, false
	}
	return false, false
}

// errBadStreamOpen: a stream's first frame is not a StreamOpen.
var errBadStreamOpen = errors.New("node: stream does not start with StreamOpen")

// writeStreamOpen and readStreamOpen are a stream's first frame.
func writeStreamOpen(w *framing.Writer, kind StreamKind) error {
	b, err := wire.Encode(&wire.StreamOpen{Kind: kind})
	if err != nil {
		return err
	}
	return w.WriteFrame(b)
}

func readStreamOpen(r *framing.Reader) (StreamKind, error) {
	p, err := r.ReadFrame()
	if err != nil {
		return 0, err
	}
	m, err := wire.Decode(p)
	if err != nil {
		return 0, err
	}
	o, ok := m.(*wire.StreamOpen)
	if !ok {
		return 0, errBadStreamOpen
	}
	return o.Kind, nil
}

// refusalWriteTimeout bounds the write of an Error frame to a stream being
// refused, so a peer that does not read cannot hold the refusal up.
const refusalWriteTimeout = time.Second

// Stream is one multiplexed stream of a session, carrying frames of at
// most the stream class's maximum. ReadFrame may be called from one
// goroutine and WriteFrame from another at the same time; each of them is
// not safe for concurrent use with itself.
type Stream struct {
	conn     *Conn
	ys       *yamux.Stream
	kind     StreamKind
	incoming bool
	r        *framing.Reader
	w        *framing.Writer

	closeOnce sync.Once
	closed    atomic.Bool
}

// Kind returns the stream's kind.
func (s *Stream) Kind() StreamKind { return s.kind }

// Conn returns the session the stream belongs to.
func (s *Stream) Conn() *Conn { return s.conn }

// ReadFrame reads the next frame and returns its payload, valid until the
// next call. It returns io.EOF when the other side closed the stream at a
// frame boundary, and a *StreamError when the other side sent an Error
// message. A frame above the class's maximum is refused: the stream gets
// an Error too-large and is closed, and the *framing.FrameTooLargeError
// is returned.
func (s *Stream) ReadFrame() ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	p, err := s.r.ReadFrame()
	if err != nil {
		var tooLarge *framing.FrameTooLargeError
		switch {
		case errors.As(err, &tooLarge):
			s.conn.stats.oversizedStreams.Add(1)
			s.conn.log.Debug("stream frame too large", "kind", s.kind, "len", tooLarge.N, "max", tooLarge.Max)
			s.refuse(wire.CodeTooLarge)
		case errors.Is(err, framing.ErrEmptyFrame):
			s.refuse(wire.CodeProtocol)
		case isTimeout(err) && s.conn.isDraining():
			return nil, fmt.Errorf("%w (draining)", ErrClosed)
		}
		return nil, err
	}
	if wire.Type(p[0]) == wire.TypeError {
		m, err := wire.Decode(p)
		if err != nil {
			s.refuse(wire.CodeProtocol)
			return nil, err
		}
		return nil, &StreamError{Code: m.(*wire.Error).Code}
	}
	return p, nil
}

// WriteFrame writes p as one frame. A p longer than the maximum the other
// side accepts is refused with a *framing.FrameTooLargeError and nothing
// is written.
func (s *Stream) WriteFrame(p []byte) error { return s.w.WriteFrame(p) }

// WriteFrames writes each of ps as one frame, all in one write of the
// stream (one yamux frame, one TLS record when they fit): how pending
// pushes go out together. A payload longer than the maximum the other
// side accepts is refused with a *framing.FrameTooLargeError and nothing
// is written; the caller bounds the total.
func (s *Stream) WriteFrames(ps ...[]byte) error { return s.w.WriteFrames(ps...) }

// Fail sends the other side an Error with code's fixed text and closes
// the stream: how a handler refuses a request. The other side's
// ReadFrame returns a *StreamError with the code.
func (s *Stream) Fail(code wire.ErrorCode) { s.refuse(code) }

// refuse writes an Error frame, bounded in time, and closes the stream.
func (s *Stream) refuse(code wire.ErrorCode) {
	refuseStream(s.ys, s.w, code)
	s.Close()
}

func refuseStream(ys *yamux.Stream, w *framing.Writer, code wire.ErrorCode) {
	b, err := wire.Encode(wire.NewError(code))
	if err != nil {
		return
	}
	_ = ys.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_ = w.WriteFrame(b)
}

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.ys.SetDeadline(t) }

// SetReadDeadline sets the deadline of ReadFrame.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.ys.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of WriteFrame.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.ys.SetWriteDeadline(t) }

// CloseWrite tells the other side that this side sends nothing more
// (yamux FIN); frames can still be read until the other side closes too.
func (s *Stream) CloseWrite() error { return s.ys.Close() }

// Close ends the stream on this side: it closes this side's writing and
// gives back the stream's slot in the session's limit. Reading after
// Close is not allowed. yamux frees the stream once the other side has
// closed too, or resets it after a timeout. Close is idempotent.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		_ = s.ys.Close()
		s.conn.streamClosed(s)
	})
	return nil
}
