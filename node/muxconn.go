package node

import (
	"encoding/binary"
	"net"
	"sync"
)

// yamux v0.1.2's frame header: version, type, flags, stream id, length.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// muxConn is the connection yamux runs on. yamux's send loop writes each
// frame as two Writes, its 12-byte header and then its body, which over
// TLS makes two records and two system calls per frame. muxConn holds a
// data frame's header back and writes it with the body that follows, in
// one Write: the bytes and their order are unchanged.
type muxConn struct {
	net.Conn
	mu   sync.Mutex
	hdr  [yamuxHeaderSize]byte
	held bool
}

// maxJoined bounds the buffers joinBufs keeps; a larger body is joined
// in a buffer of its own.
const maxJoined = 64 << 10

// joinBufs are the buffers of joined writes, shared by every session so
// that an idle one holds none.
var joinBufs = sync.Pool{New: func() any { return new([]byte) }}

func (c *muxConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
			c.hdr, c.held = [yamuxHeaderSize]byte(p), true
			return len(p), nil
		}
		return c.Conn.Write(p)
	}
	c.held = false
	bp := joinBufs.Get().(*[]byte)
	b := (*bp)[:0]
	if need := yamuxHeaderSize + len(p); cap(b) < need {
		b = make([]byte, 0, need)
	}
	b = append(append(b, c.hdr[:]...), p...)
	n, err := c.Conn.Write(b)
	if cap(b) <= maxJoined {
		*bp = b[:0]
		joinBufs.Put(bp)
	}
	return max(n-yamuxHeaderSize, 0), err
}
