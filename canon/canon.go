// Package canon builds the one canonical byte layout that lanpeer signs or
// MACs, and holds the table of purpose labels (DESIGN.md §11).
//
// # Layout
//
// A canonical layout is the purpose label, one 0x00 byte, then each field as
// a 4-byte big-endian length followed by its bytes, in a fixed order per
// purpose. Integers are 8-byte big-endian, times are Unix milliseconds, a
// peer ID is its 32 raw bytes, a room id 16 bytes, suite and mode ids 2-byte
// big-endian, a list is one field holding its elements (each encoded as a
// field) back to back, and an absent value is a zero-length field.
//
// A signature never covers the layout itself but [SignatureInput]: 64 bytes
// of 0x20, the label, 0x00 and the SHA-256 of the layout, as TLS 1.3 does for
// CertificateVerify, so a signature made for one purpose is never valid for
// another.
//
// canon imports nothing of lanpeer; everything else that signs or MACs goes
// through it.
package canon

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// MaxField is the largest field a Builder accepts or a Reader returns. The
// 4-byte length prefix could say more; nothing lanpeer signs is that big.
const MaxField = 16 << 20

// Builder appends the fields of one canonical layout. The zero value is not
// usable; start with [New]. A Builder is not safe for concurrent use.
type Builder struct {
	b []byte
}

// New starts a layout for label. It panics if label is not in the label table:
// an unknown label is a programming error, never peer input.
func New(label string) *Builder {
	if !IsLabel(label) {
		panic("canon: unknown label " + label)
	}
	b := make([]byte, 0, len(label)+1+128)
	b = append(b, label...)
	b = append(b, 0)
	return &Builder{b: b}
}

// Bytes appends p as one field. It panics if p exceeds MaxField (a local bug).
func (c *Builder) Bytes(p []byte) *Builder {
	if len(p) > MaxField {
		panic(fmt.Sprintf("canon: field of %d bytes exceeds %d", len(p), MaxField))
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(p)))
	c.b = append(c.b, p...)
	return c
}

// String appends s as one field of its bytes.
func (c *Builder) String(s string) *Builder { return c.Bytes([]byte(s)) }

// Uint64 appends v as an 8-byte big-endian field.
func (c *Builder) Uint64(v uint64) *Builder {
	var f [8]byte
	binary.BigEndian.PutUint64(f[:], v)
	return c.Bytes(f[:])
}

// Uint16 appends v as a 2-byte big-endian field (suite and mode ids).
func (c *Builder) Uint16(v uint16) *Builder {
	var f [2]byte
	binary.BigEndian.PutUint16(f[:], v)
	return c.Bytes(f[:])
}

// Time appends t as Unix milliseconds in an 8-byte field. Times before 1970
// are a local bug (lanpeer never signs them) and panic.
func (c *Builder) Time(t time.Time) *Builder {
	ms := t.UnixMilli()
	if ms < 0 {
		panic("canon: time before 1970")
	}
	return c.Uint64(uint64(ms))
}

// Absent appends a zero-length field.
func (c *Builder) Absent() *Builder { return c.Bytes(nil) }

// List appends one field holding each element encoded as a field, back to
// back.
func (c *Builder) List(elems ...[]byte) *Builder {
	n := 0
	for _, e := range elems {
		n += 4 + len(e)
	}
	l := make([]byte, 0, n)
	for _, e := range elems {
		if len(e) > MaxField {
			panic("canon: list element too large")
		}
		l = binary.BigEndian.AppendUint32(l, uint32(len(e)))
		l = append(l, e...)
	}
	return c.Bytes(l)
}

// Uint16List appends a list of 2-byte ids.
func (c *Builder) Uint16List(ids ...uint16) *Builder {
	elems := make([][]byte, len(ids))
	for i, id := range ids {
		elems[i] = binary.BigEndian.AppendUint16(nil, id)
	}
	return c.List(elems...)
}

// Out returns the layout built so far. The Builder must not be used after.
func (c *Builder) Out() []byte { return c.b }

// Hash returns SHA-256 of the layout built so far.
func (c *Builder) Hash() [32]byte { return sha256.Sum256(c.b) }

// signaturePad is the TLS 1.3 style prefix of every signature input.
var signaturePad = [64]byte{
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
	0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
}

// ErrLabelMismatch is returned by SignatureInput when the layout does not
// start with the label it is to be signed under.
var ErrLabelMismatch = errors.New("canon: layout does not start with the signing label")

// SignatureInput returns the bytes a signature covers: 64 bytes of 0x20, the
// label, 0x00 and SHA-256(layout). The layout must begin with label and 0x00,
// so a signer cannot sign one purpose's layout under another's label.
func SignatureInput(label string, layout []byte) ([]byte, error) {
	if !IsLabel(label) {
		return nil, fmt.Errorf("canon: unknown label %q", label)
	}
	if len(layout) < len(label)+1 || string(layout[:len(label)]) != label || layout[len(label)] != 0 {
		return nil, ErrLabelMismatch
	}
	h := sha256.Sum256(layout)
	out := make([]byte, 0, 64+len(label)+1+32)
	out = append(out, signaturePad[:]...)
	out = append(out, label...)
	out = append(out, 0)
	out = append(out, h[:]...)
	return out, nil
}

// Errors of Reader.
var (
	// ErrMalformed means the bytes are not a well-formed layout: a length
	// that runs past the end, a field over MaxField, or the wrong label.
	ErrMalformed = errors.New("canon: malformed layout")
	// ErrTrailing means fields remain after the last one a purpose defines.
	ErrTrailing = errors.New("canon: trailing bytes after the last field")
)

// Reader reads the fields of a layout that was built by a Builder and has
// already been verified (a signed blob is checked first and parsed after).
// Every method is bounded by the bytes it holds; none allocates.
type Reader struct {
	b   []byte
	err error
}

// NewReader checks that b starts with label and 0x00 and returns a Reader
// over the fields that follow.
func NewReader(label string, b []byte) *Reader {
	if len(b) < len(label)+1 || string(b[:len(label)]) != label || b[len(label)] != 0 {
		return &Reader{err: ErrMalformed}
	}
	return &Reader{b: b[len(label)+1:]}
}

// Bytes returns the next field, aliasing the input. After the first error
// every call returns nil and Err reports it.
func (r *Reader) Bytes() []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < 4 {
		r.err = ErrMalformed
		return nil
	}
	n := binary.BigEndian.Uint32(r.b)
	if n > MaxField || uint64(n) > uint64(len(r.b)-4) {
		r.err = ErrMalformed
		return nil
	}
	f := r.b[4 : 4+n : 4+n]
	r.b = r.b[4+n:]
	return f
}

// Fixed returns the next field and requires it to be exactly n bytes.
func (r *Reader) Fixed(n int) []byte {
	f := r.Bytes()
	if r.err == nil && len(f) != n {
		r.err = ErrMalformed
		return nil
	}
	return f
}

// Uint64 reads an 8-byte big-endian field.
func (r *Reader) Uint64() uint64 {
	f := r.Fixed(8)
	if f == nil {
		return 0
	}
	return binary.BigEndian.Uint64(f)
}

// Uint16 reads a 2-byte big-endian field.
func (r *Reader) Uint16() uint16 {
	f := r.Fixed(2)
	if f == nil {
		return 0
	}
	return binary.BigEndian.Uint16(f)
}

// Time reads a Unix-millisecond field; values past int64 are malformed.
func (r *Reader) Time() time.Time {
	v := r.Uint64()
	if v > math.MaxInt64 {
		r.err = ErrMalformed
		return time.Time{}
	}
	return time.UnixMilli(int64(v))
}

// List reads a list field and returns its elements, at most max of them
// (more is malformed). The elements alias the input.
func (r *Reader) List(max int) [][]byte {
	f := r.Bytes()
	if r.err != nil {
		return nil
	}
	// Count first, so the slice is sized by what is present, never by a
	// claimed length.
	n, rest := 0, f
	for len(rest) > 0 {
		if len(rest) < 4 {
			r.err = ErrMalformed
			return nil
		}
		l := binary.BigEndian.Uint32(rest)
		if uint64(l) > uint64(len(rest)-4) {
			r.err = ErrMalformed
			return nil
		}
		rest = rest[4+l:]
		n++
		if n > max {
			r.err = ErrMalformed
			return nil
		}
	}
	out := make([][]byte, 0, n)
	for len(f) > 0 {
		l := binary.BigEndian.Uint32(f)
		out = append(out, f[4:4+l:4+l])
		f = f[4+l:]
	}
	return out
}

// Done reports the first error, or ErrTrailing if fields remain.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return ErrTrailing
	}
	return nil
}

// Err reports the first error so far.
func (r *Reader) Err() error { return r.err }

// IsLabel reports whether s is in the label table.
func IsLabel(s string) bool {
	_, ok := labelSet[s]
	return ok
}

// Labels returns the label table in a fixed order.
func Labels() []string { return append([]string(nil), labels...) }

var labelSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(labels))
	for _, l := range labels {
		if !strings.HasPrefix(l, "lanpeer/v1 ") && !strings.HasPrefix(l, "EXPORTER-lanpeer/v1 ") {
			panic("canon: label out of form: " + l)
		}
		if _, dup := m[l]; dup {
			panic("canon: duplicate label: " + l)
		}
		m[l] = struct{}{}
	}
	return m
}()
