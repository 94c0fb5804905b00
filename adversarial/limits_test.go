package adversarial

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/wire"
)

// dialSession is an attacker that completes the handshake as a legitimate
// peer (its own identity) and then speaks raw yamux on the connection.
func dialSession(t testing.TB, p *peer, id *cryptosuite.Identity) *rawConn {
	t.Helper()
	c := dialRaw(t, p, id, "")
	if _, err := session.RunRequestor(c.Conn, &session.Config{Identity: id}, c.params(p)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

// yamux frame types and flags (hashicorp/yamux spec.md).
const (
	yamuxData         = 0
	yamuxWindowUpdate = 1
	yamuxSYN          = 1
	yamuxRST          = 8
)

func yamuxFrame(typ uint8, flags uint16, stream uint32, body []byte) []byte {
	h := make([]byte, 12, 12+len(body))
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], stream)
	binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
	return append(h, body...)
}

// framed is p behind its 4-byte length header.
func framed(p []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...) }

func encode(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closedByPeer reads c until the peer closes it (or resets it), and fails
// if the hang deadline comes first.
func closedByPeer(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hang))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the peer never closed the connection")
	}
}

// TestAdversarialSlowloris (THREATS.md F4): a client past TLS that sends
// its hello one byte a second is cut off at the handshake deadline, long
// before the hello is complete, while honest clients are served. (A
// client silent before TLS: node's TestHandshakeDeadline.)
func TestAdversarialSlowloris(t *testing.T) {
	p := startPeer(t, func(c *node.Config) { c.HandshakeTimeout = 2 * time.Second })
	eve := newID(t)
	whileServing(t, p, "", func() {
		c := dialRaw(t, p, eve, "")
		h, err := session.NewRequestor(&session.Config{Identity: eve}, c.params(p))
		if err != nil {
			t.Fatal(err)
		}
		hello, err := h.CreateHello()
		if err != nil {
			t.Fatal(err)
		}
		frame := framed(encode(t, hello))
		sent := make(chan int, 1)
		go func() {
			n := 0
			for ; n < len(frame); n++ {
				if _, err := c.Write(frame[n : n+1]); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			sent <- n
		}()
		closedByPeer(t, c)
		c.Close()
		if n := <-sent; n >= len(frame) {
			t.Fatalf("the whole %d-byte hello went through one byte a second", len(frame))
		}
	})
	waitFor(t, "the timeout to be counted", func() bool { return p.srv.Stats().HandshakeTimeouts == 1 })
}

// TestAdversarialHandshakeFlood (THREATS.md F5): connections from one
// address beyond its token bucket are reset at accept, before TLS or any
// signature work, while clients from other addresses are served.
func TestAdversarialHandshakeFlood(t *testing.T) {
	p := startPeer(t, func(c *node.Config) {
		c.HandshakeRate, c.HandshakeBurst = 2, 3
		c.HandshakeTimeout = 2 * time.Second
	})
	const flood = 200
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	whileServing(t, p, spreadIPs, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: hang}
		for range flood {
			c, err := d.Dial("tcp", p.srv.Addr().String())
			if errors.Is(err, syscall.ECONNRESET) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	})
	allowed := p.cfg.HandshakeBurst + int(math.Ceil(time.Since(start).Seconds()*p.cfg.HandshakeRate))
	waitFor(t, "the flood to be counted", func() bool { return p.srv.Stats().RateLimited >= uint64(flood-allowed) })
	if st := p.srv.Stats(); st.HandshakesStarted > st.SessionsEstablished+uint64(allowed) {
		t.Fatalf("flood of %d: %d handshakes started, %d sessions (at most %d from the flood)",
			flood, st.HandshakesStarted, st.SessionsEstablished, allowed)
	}
}

// TestAdversarialMsgpackBombs (THREATS.md F2, DESIGN.md §11): messages
// that declare 2^32-1 entries in five bytes, or nest 60,000 arrays deep,
// are refused with code protocol, in the handshake and on a request
// stream, without allocating what they declare or overflowing a stack;
// the bomber's session survives a refused stream.
func TestAdversarialMsgpackBombs(t *testing.T) {
	p := startPeer(t, nil)
	eve := newID(t)
	listType := encode(t, &wire.ListRooms{Limit: 1})[0]
	nested := func(typ byte, key string) []byte {
		b := append([]byte{typ, 0x81, 0xa0 | byte(len(key))}, key...)
		return append(append(b, bytes.Repeat([]byte{0x91}, 60000)...), 0xc0)
	}
	// In the hello, a declared length above the field's bound is
	// too-large; a map of 2^32-1 entries, a type where a field's belongs,
	// and nesting are protocol errors.
	bombs := map[string]struct {
		b    func(typ byte) []byte
		code wire.ErrorCode
	}{
		"map32":   {func(typ byte) []byte { return []byte{typ, 0xdf, 0xff, 0xff, 0xff, 0xff} }, wire.CodeProtocol},
		"array32": {func(typ byte) []byte { return []byte{typ, 0x81, 0xa2, 'a', 'e', 0xdd, 0xff, 0xff, 0xff, 0xff} }, wire.CodeTooLarge},
		"bin32":   {func(typ byte) []byte { return []byte{typ, 0x81, 0xa2, 'i', 'k', 0xc6, 0xff, 0xff, 0xff, 0xff} }, wire.CodeTooLarge},
		"str32":   {func(typ byte) []byte { return []byte{typ, 0x81, 0xa1, 'r', 0xdb, 0xff, 0xff, 0xff, 0xff} }, wire.CodeProtocol},
		"nested":  {func(typ byte) []byte { return nested(typ, "ae")[:framing.MaxControlFrame-1] }, wire.CodeProtocol},
	}
	whileServing(t, p, "", func() {
		for name, bomb := range bombs {
			t.Run("handshake/"+name, func(t *testing.T) {
				c := dialRaw(t, p, eve, "")
				if err := c.w.WriteFrame(bomb.b(byte(wire.TypeHello))); err != nil {
					t.Fatal(err)
				}
				c.refusedWith(t, bomb.code)
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		conn, err := node.Dial(ctx, p.target(), &node.Config{Identity: eve})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for name, bomb := range bombs {
			t.Run("request/"+name, func(t *testing.T) {
				s, err := conn.OpenStream(ctx, node.KindRequest)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				b := bomb.b(listType)
				if name == "nested" {
					b = nested(listType, "a")
				}
				if err := s.WriteFrame(b); err != nil {
					t.Fatal(err)
				}
				s.SetReadDeadline(time.Now().Add(hang))
				_, err = s.ReadFrame()
				var se *node.StreamError
				if !errors.As(err, &se) || se.Code != wire.CodeProtocol {
					t.Fatalf("bomb on a request stream: %v, want a protocol Error", err)
				}
			})
		}
		if _, err := node.NewRoomClient(conn).ListRooms(ctx, [16]byte{}, 1); err != nil {
			t.Fatalf("the session did not survive its refused streams: %v", err)
		}
	})
}

// TestAdversarialStreamExhaustion (THREATS.md F3): a peer that opens 300
// streams at once, ignoring the limit of 4 stated in Ready, is served on
// at most 4: every other stream is reset (yamux's accept backlog) or
// refused with busy, or the whole session is closed as a flood; honest
// clients are served all the while. (Refused streams held open one by one
// until the session is closed: node's TestStreamFlood.)
func TestAdversarialStreamExhaustion(t *testing.T) {
	const streams, max = 300, 4
	p := startPeer(t, func(c *node.Config) { c.MaxStreams = max })
	whileServing(t, p, "", func() {
		c := dialSession(t, p, newID(t))
		open := framed(encode(t, &wire.StreamOpen{Kind: wire.StreamRequest}))
		var out []byte
		for i := range streams {
			id := uint32(2*i + 1)
			out = append(out, yamuxFrame(yamuxWindowUpdate, yamuxSYN, id, nil)...)
			out = append(out, yamuxFrame(yamuxData, 0, id, open)...)
		}
		go c.Write(out) // the peer may stop reading once it has had enough
		refused := map[uint32]bool{}
		data := map[uint32][]byte{}
		c.SetReadDeadline(time.Now().Add(hang))
		var hdr [12]byte
		for len(refused) < streams-max {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				if p.srv.Stats().StreamFloods == 1 {
					return // closed as a flood
				}
				t.Fatalf("after %d refusals: %v", len(refused), err)
			}
			typ, flags := hdr[1], binary.BigEndian.Uint16(hdr[2:])
			id, n := binary.BigEndian.Uint32(hdr[4:]), binary.BigEndian.Uint32(hdr[8:])
			if flags&yamuxRST != 0 {
				refused[id] = true
			}
			if typ != yamuxData {
				continue
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(c, body); err != nil {
				t.Fatal(err)
			}
			data[id] = append(data[id], body...)
			if b := data[id]; len(b) >= 4 && len(b) >= 4+int(binary.BigEndian.Uint32(b)) {
				m, err := wire.Decode(b[4 : 4+binary.BigEndian.Uint32(b)])
				if e, ok := m.(*wire.Error); err != nil || !ok || e.Code != wire.CodeBusy {
					t.Fatalf("stream %d: the peer wrote %#v, %v; want a busy Error", id, m, err)
				}
				refused[id] = true
			}
		}
		c.Close()
	})
}

// TestAdversarialWindowExhaustion (THREATS.md F3): a peer that sends more
// on a stream than the receive window it was granted (256 KiB) loses its
// session at once, before the peer buffers it; honest clients are served.
func TestAdversarialWindowExhaustion(t *testing.T) {
	p := startPeer(t, nil)
	whileServing(t, p, "", func() {
		c := dialSession(t, p, newID(t))
		body := append(framed(encode(t, &wire.StreamOpen{Kind: wire.StreamRequest})), make([]byte, 300<<10)...)
		go c.Write(append(yamuxFrame(yamuxWindowUpdate, yamuxSYN, 1, nil), yamuxFrame(yamuxData, 0, 1, body)...))
		closedByPeer(t, c)
	})
	waitFor(t, "the session to end", func() bool { return p.srv.Stats().Sessions == 0 })
}

// TestAdversarialOversized (THREATS.md F1): a handshake frame declaring
// 4 GiB, and a request frame above the peer's maximum, are refused with
// too-large before anything is allocated for them; a stream refused so
// leaves the session working.
func TestAdversarialOversized(t *testing.T) {
	p := startPeer(t, func(c *node.Config) { c.MaxRequestFrame = 128 << 10 })
	eve := newID(t)
	whileServing(t, p, "", func() {
		c := dialRaw(t, p, eve, "")
		if _, err := c.Write([]byte{0xff, 0xff, 0xff, 0xf0}); err != nil {
			t.Fatal(err)
		}
		c.refusedWith(t, wire.CodeTooLarge)

		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		conn, err := node.Dial(ctx, p.target(), &node.Config{Identity: eve})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		s, err := conn.OpenStream(ctx, node.KindRequest)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.WriteFrame(make([]byte, 128<<10+1)); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(hang))
		_, err = s.ReadFrame()
		var se *node.StreamError
		if !errors.As(err, &se) || se.Code != wire.CodeTooLarge {
			t.Fatalf("oversized request frame: %v, want too-large", err)
		}
		if _, err := node.NewRoomClient(conn).ListRooms(ctx, [16]byte{}, 1); err != nil {
			t.Fatalf("the session did not survive: %v", err)
		}
	})
	if st := p.srv.Stats(); st.OversizedFrames != 1 || st.OversizedStreams != 1 {
		t.Fatalf("stats %+v", st)
	}
}
