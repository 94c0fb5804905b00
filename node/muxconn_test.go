package node

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// recordConn records each Write as it came.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 7)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestMuxConnJoinsHeaderAndBody: a data frame's header and body, written
// by yamux as two Writes, reach the connection as one; a frame without a
// body (a window update, a ping) goes through at once; the bytes and
// their order are unchanged.
func TestMuxConnJoinsHeaderAndBody(t *testing.T) {
	rec := &recordConn{}
	c := &muxConn{Conn: rec}
	body := []byte("a push frame")
	dataHdr := yamuxHeader(yamuxTypeData, uint32(len(body)))
	update := yamuxHeader(1, 4096)
	for _, w := range [][]byte{dataHdr, body, update, dataHdr, body} {
		if n, err := c.Write(w); err != nil || n != len(w) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
		}
	}
	want := [][]byte{append(bytes.Clone(dataHdr), body...), update, append(bytes.Clone(dataHdr), body...)}
	if len(rec.writes) != len(want) {
		t.Fatalf("%d writes reached the connection, want %d", len(rec.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rec.writes[i], want[i]) {
			t.Errorf("write %d = %x, want %x", i, rec.writes[i], want[i])
		}
	}
}
