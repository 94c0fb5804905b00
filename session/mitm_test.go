package session

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// The man in the middle of these tests sits between each side's connection
// and its frame codec: it reads whole frames and hands their payloads to a
// hook, which decides what goes on the wire instead. Flipping bytes there
// reaches the handshake itself; flipping them on a TLS connection would
// only test TLS (DESIGN.md §11, "Tests").

// direction of a frame through the relay.
type direction int

const (
	toResponder direction = iota // Hello, Finished
	toRequestor                  // HelloReply, Ready
)

func (d direction) String() string {
	if d == toResponder {
		return "to-responder"
	}
	return "to-requestor"
}

// hook sees the i-th frame payload (0-based) going in direction d and
// returns the bytes to write instead: a whole frame, header included (nil
// writes nothing). cut closes both connections after the write.
type hook func(d direction, i int, payload []byte) (out []byte, cut bool)

// framed returns p behind its 4-byte length header.
func framed(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

// flip returns a hook that XORs byte at of the i-th payload in direction d
// with mask and passes everything else unchanged.
func flip(d direction, i, at int, mask byte) hook {
	return func(fd direction, fi int, p []byte) ([]byte, bool) {
		if fd == d && fi == i {
			q := append([]byte(nil), p...)
			q[at] ^= mask
			return framed(q), false
		}
		return framed(p), false
	}
}

// outcome is what a relayed handshake gave each side, and the payloads the
// relay read (before its hook) in each direction.
type outcome struct {
	rq, rs result
	seen   [2][][]byte
}

// hangDeadline bounds every relayed handshake: far above the few
// milliseconds one takes, so only a hang reaches it.
const hangDeadline = 60 * time.Second

// runRelayed runs RunRequestor and RunResponder with the relay between
// them.
func runRelayed(t testing.TB, rq, rs *Config, rqp, rsp Params, h hook) outcome {
	t.Helper()
	return relay(t, h,
		func(c net.Conn) (*Keys, error) { return RunRequestor(c, rq, rqp) },
		func(c net.Conn) (*Keys, error) { return RunResponder(c, rs, rsp) })
}

// relay runs requestor and responder functions on two pipes joined by the
// relay, and waits for all four goroutines.
func relay(t testing.TB, h hook, requestor, responder func(net.Conn) (*Keys, error)) outcome {
	t.Helper()
	if h == nil {
		h = func(_ direction, _ int, p []byte) ([]byte, bool) { return framed(p), false }
	}
	rqConn, rqRelay := net.Pipe()
	rsRelay, rsConn := net.Pipe()
	deadline := time.Now().Add(hangDeadline)
	for _, c := range []net.Conn{rqConn, rqRelay, rsRelay, rsConn} {
		c.SetDeadline(deadline)
	}
	var o outcome
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		defer rqConn.Close()
		o.rq.keys, o.rq.err = requestor(rqConn)
	}()
	go func() {
		defer wg.Done()
		defer rsConn.Close()
		o.rs.keys, o.rs.err = responder(rsConn)
	}()
	forward := func(d direction, src, dst net.Conn) {
		defer wg.Done()
		defer src.Close()
		defer dst.Close()
		fr := framing.NewReader(src, framing.MaxFrameCeiling)
		for i := 0; ; i++ {
			p, err := fr.ReadFrame()
			if err != nil {
				return
			}
			o.seen[d] = append(o.seen[d], append([]byte(nil), p...))
			out, cut := h(d, i, p)
			if len(out) > 0 {
				if _, err := dst.Write(out); err != nil {
					return
				}
			}
			if cut {
				return
			}
		}
	}
	go forward(toResponder, rqRelay, rsRelay)
	go forward(toRequestor, rsRelay, rqRelay)
	wg.Wait()
	if time.Now().After(deadline) {
		t.Error("relayed handshake hung until its deadline") // not Fatal: may run off the test goroutine
	}
	return o
}

// gone reports an error that only says the other side went away.
func gone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe)
}

// detected reports whether err is this side's own, typed refusal: one that
// Code maps to a specific wire code, not the other side's Error and not a
// closed connection.
func detected(err error) bool {
	var pe *PeerError
	return err != nil && !errors.As(err, &pe) && !gone(err) && Code(err) != wire.CodeInternal
}

// peerCode returns the code of a *PeerError, or 0.
func peerCode(err error) wire.ErrorCode {
	var pe *PeerError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}
