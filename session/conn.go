package session

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// PeerError is an Error message the other side sent. Its code is a hint:
// error messages are not authenticated.
type PeerError struct {
	Code wire.ErrorCode
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("session: peer refused the handshake: %s (%v)", e.Code.Text(), e.Code)
}

// Code maps a handshake, direct-message or rekey error to the code sent to
// the peer. The text that goes with it is the code's fixed text, never
// detail from the peer's input.
func Code(err error) wire.ErrorCode {
	var tooLarge *framing.FrameTooLargeError
	switch {
	case errors.Is(err, ErrVersion), errors.Is(err, wire.ErrVersion):
		return wire.CodeVersion
	case errors.As(err, &tooLarge), errors.Is(err, wire.ErrTooLong):
		return wire.CodeTooLarge
	case errors.Is(err, ErrStaleTimestamp):
		return wire.CodeStaleTimestamp
	case errors.Is(err, ErrReplay):
		return wire.CodeReplay
	case errors.Is(err, ErrKEXRefused):
		return wire.CodeKEXRefused
	case errors.Is(err, ErrNoCommonSuite):
		return wire.CodeNoCommonSuite
	case errors.Is(err, ErrPolicy), errors.Is(err, ErrWrongPeer), errors.Is(err, ErrReflection):
		return wire.CodePolicy
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrBadFinished), errors.Is(err, ErrBadAuthKey),
		errors.Is(err, ErrBadKeyShare), errors.Is(err, ErrBadIdentityKey):
		return wire.CodeBadSignature
	case errors.Is(err, ErrBusy):
		return wire.CodeBusy
	case errors.Is(err, os.ErrDeadlineExceeded):
		return wire.CodeTimeout
	case errors.Is(err, ErrUnexpectedMessage), errors.Is(err, framing.ErrEmptyFrame):
		return wire.CodeProtocol
	case errors.Is(err, ErrDirectOpen), errors.Is(err, ErrRekeyBadShare), errors.Is(err, ErrRekeyBadConfirm):
		return wire.CodeBadSignature
	case errors.Is(err, ErrDirectEpoch), errors.Is(err, ErrRekeyEpoch):
		return wire.CodeConflict
	case errors.Is(err, ErrDirectSeq), errors.Is(err, ErrDirectText), errors.Is(err, ErrRekeyRequired),
		errors.Is(err, ErrRekeyUnexpected):
		return wire.CodeProtocol
	}
	var de *wire.DecodeError
	if errors.As(err, &de) {
		return wire.CodeProtocol
	}
	return wire.CodeInternal
}

// codec moves handshake messages as frames directly on the connection.
type codec struct {
	r *framing.Reader
	w *framing.Writer
}

func newCodec(rw io.ReadWriter) *codec {
	return &codec{r: framing.NewReader(rw, framing.MaxControlFrame), w: framing.NewWriter(rw, framing.MaxControlFrame)}
}

func (c *codec) send(m wire.Message) error {
	b, err := wire.Encode(m)
	if err != nil {
		return err
	}
	return c.w.WriteFrame(b)
}

// recv reads one message; an Error message from the peer becomes a
// *PeerError.
func (c *codec) recv() (wire.Message, error) {
	b, err := c.r.ReadFrame()
	if err != nil {
		return nil, err
	}
	m, err := wire.Decode(b)
	if err != nil {
		return nil, err
	}
	if e, ok := m.(*wire.Error); ok {
		return nil, &PeerError{Code: e.Code}
	}
	return m, nil
}

// refuse tells the peer why, with a fixed text, and returns err. A peer
// that already went away does not change the error.
func (c *codec) refuse(err error) error {
	var pe *PeerError
	if errors.As(err, &pe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	code := Code(err)
	_ = c.send(&wire.Error{Code: code, Message: code.Text()})
	return err
}

// RunRequestor runs the requestor's handshake on rw (a TLS connection, or a
// plain one for TransportNoTLS) and returns the keys once the responder has
// accepted the key confirmation. The caller sets deadlines on the
// connection.
func RunRequestor(rw io.ReadWriter, cfg *Config, p Params) (*Keys, error) {
	h, err := NewRequestor(cfg, p)
	if err != nil {
		return nil, err
	}
	defer h.Abort() // zeroes what a failure leaves pending; nothing once done
	c := newCodec(rw)
	hello, err := h.CreateHello()
	if err != nil {
		return nil, err
	}
	if err := c.send(hello); err != nil {
		return nil, err
	}
	m, err := c.recv()
	if err != nil {
		return nil, c.refuse(err)
	}
	reply, ok := m.(*wire.HelloReply)
	if !ok {
		return nil, c.refuse(ErrUnexpectedMessage)
	}
	if err := h.ConsumeReply(reply); err != nil {
		return nil, c.refuse(err)
	}
	fin, keys, err := h.CreateFinished()
	if err != nil {
		return nil, err
	}
	if err := c.send(fin); err != nil {
		keys.Wipe()
		return nil, err
	}
	m, err = c.recv()
	if err != nil {
		keys.Wipe()
		return nil, err
	}
	ready, ok := m.(*wire.Ready)
	if !ok {
		keys.Wipe()
		return nil, c.refuse(ErrUnexpectedMessage)
	}
	keys.PeerMaxStreams, keys.PeerMaxFrameKiB = ready.MaxStreams, ready.MaxFrameKiB
	return keys, nil
}

// RunResponder runs the responder's handshake on rw. It answers every
// refusal with an Error message and a valid key confirmation with Ready,
// after which the connection belongs to the multiplexer.
func RunResponder(rw io.ReadWriter, cfg *Config, p Params) (*Keys, error) {
	h, err := NewResponder(cfg, p)
	if err != nil {
		return nil, err
	}
	defer h.Abort() // a Finished that never comes leaves no keys behind
	c := newCodec(rw)
	m, err := c.recv()
	if err != nil {
		return nil, c.refuse(err)
	}
	hello, ok := m.(*wire.Hello)
	if !ok {
		return nil, c.refuse(ErrUnexpectedMessage)
	}
	if err := h.ConsumeHello(hello); err != nil {
		return nil, c.refuse(err)
	}
	reply, err := h.CreateReply()
	if err != nil {
		return nil, c.refuse(err)
	}
	if err := c.send(reply); err != nil {
		return nil, err
	}
	m, err = c.recv()
	if err != nil {
		return nil, c.refuse(err)
	}
	fin, ok := m.(*wire.Finished)
	if !ok {
		return nil, c.refuse(ErrUnexpectedMessage)
	}
	keys, err := h.ConsumeFinished(fin)
	if err != nil {
		return nil, c.refuse(err)
	}
	ready := cfg.ready()
	keys.PeerMaxStreams, keys.PeerMaxFrameKiB = ready.MaxStreams, ready.MaxFrameKiB
	if err := c.send(ready); err != nil {
		keys.Wipe()
		return nil, err
	}
	return keys, nil
}
