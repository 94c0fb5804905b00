package wire

import (
	"errors"
	"io"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// fieldDecoder reads one message's map with the msgpack Decoder's
// primitives only (PeekCode, Decode*Len, ReadFull, integer decoders), so
// that no length read from the peer reaches an allocation before it is
// checked: v5.4.1 allocates []byte fields from the declared length and
// ignores its own limit for slices (DESIGN.md §11).
//
// It never calls Skip or decodes into interface{}: a value of an
// unexpected kind is an error, so nesting is bounded by the shape of the
// message itself (a map, and at most one array inside it).
//
// Errors are sticky: after the first failure every method returns a zero
// value and next reports false; err holds the failure.
type fieldDecoder struct {
	d       *msgpack.Decoder
	typ     Type
	keys    []string // the message's keys in table order; at most 32
	started bool
	n       int    // entries the map header declares
	i       int    // entries read so far
	seen    uint32 // bit k set once keys[k] has been read
	key     string // the current entry's key, one of keys
	err     error
	kbuf    [maxKeySize]byte
}

func newFieldDecoder(d *msgpack.Decoder, t Type, keys []string) *fieldDecoder {
	return &fieldDecoder{d: d, typ: t, keys: keys}
}

func (fd *fieldDecoder) fail(reason error, format string, args ...any) {
	if fd.err == nil {
		fd.err = fieldError(fd.typ, fd.key, reason, format, args...)
	}
}

// failRead records an error from the msgpack Decoder. Running out of
// input is ErrTruncated; anything else is ErrMalformed.
func (fd *fieldDecoder) failRead(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		fd.fail(ErrTruncated, "")
		return
	}
	fd.fail(ErrMalformed, "%v", err)
}

// remaining returns the bytes left in the payload, or -1 when the
// Decoder's reader cannot tell (then only the spec maximum bounds an
// allocation). Decode always gives the Decoder a *bytes.Reader.
func (fd *fieldDecoder) remaining() int {
	if l, ok := fd.d.Buffered().(interface{ Len() int }); ok {
		return l.Len()
	}
	return -1
}

// checkLen checks a declared length or count before anything is
// allocated for it: against the field's maximum, then against the bytes
// left, each element taking at least minElem bytes.
func (fd *fieldDecoder) checkLen(n, max, minElem int) bool {
	if n < 0 || n > max {
		fd.fail(ErrTooLong, "%d declared, max %d", n, max)
		return false
	}
	if r := fd.remaining(); r >= 0 && n*minElem > r {
		fd.fail(ErrTruncated, "%d declared, %d bytes left", n, r)
		return false
	}
	return true
}

// peek returns the next value's msgpack code without consuming it.
func (fd *fieldDecoder) peek() (byte, bool) {
	if fd.err != nil {
		return 0, false
	}
	c, err := fd.d.PeekCode()
	if err != nil {
		fd.failRead(err)
		return 0, false
	}
	return c, true
}

// next advances to the next map entry and reports whether there is one;
// fd.key names it. The caller reads the value with one of the typed
// methods. At the end of the map it checks that every key was present.
func (fd *fieldDecoder) next() bool {
	if !fd.started {
		fd.started = true
		if !fd.header() {
			return false
		}
	}
	if fd.err != nil {
		return false
	}
	if fd.i == fd.n {
		fd.key = ""
		for k, key := range fd.keys {
			if fd.seen&(1<<k) == 0 {
				fd.key = key
				fd.fail(ErrMissingField, "")
				return false
			}
		}
		return false
	}
	fd.i++
	return fd.readKey()
}

// header reads the map header. The count is not compared with the number
// of keys here: an unknown or repeated key fails as soon as it is read,
// and a short map fails at its end. That way a peer of another protocol
// version, whose first key is "v", gets ErrVersion rather than a field
// count error.
func (fd *fieldDecoder) header() bool {
	c, ok := fd.peek()
	if !ok {
		return false
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		fd.fail(ErrWrongType, "message is not a map")
		return false
	}
	n, err := fd.d.DecodeMapLen()
	if err != nil {
		fd.failRead(err)
		return false
	}
	// Each entry takes at least two bytes (a fixstr key and a fixint).
	if r := fd.remaining(); r >= 0 && n > r/2 {
		fd.fail(ErrTruncated, "map declares %d entries, %d bytes left", n, r)
		return false
	}
	fd.n = n
	return true
}

func (fd *fieldDecoder) readKey() bool {
	fd.key = ""
	c, ok := fd.peek()
	if !ok {
		return false
	}
	if !msgpcode.IsString(c) {
		fd.fail(ErrWrongType, "map key is not a string")
		return false
	}
	n, err := fd.d.DecodeBytesLen()
	if err != nil {
		fd.failRead(err)
		return false
	}
	if n <= 0 || n > maxKeySize {
		// Longer than any key of this protocol: refused unread.
		fd.fail(ErrUnknownField, "key of %d bytes", n)
		return false
	}
	k := fd.kbuf[:n]
	if err := fd.d.ReadFull(k); err != nil {
		fd.failRead(err)
		return false
	}
	for i, key := range fd.keys {
		if string(k) == key {
			if fd.seen&(1<<i) != 0 {
				fd.key = key
				fd.fail(ErrDuplicateField, "")
				return false
			}
			fd.seen |= 1 << i
			fd.key = key
			return true
		}
	}
	fd.fail(ErrUnknownField, "key %q", k)
	return false
}

// integer reads any msgpack integer encoding as a sign and magnitude.
// nil, booleans, floats and everything else are ErrWrongType.
func (fd *fieldDecoder) integer() (v int64, u uint64, neg, ok bool) {
	c, ok := fd.peek()
	if !ok {
		return 0, 0, false, false
	}
	switch {
	case c <= msgpcode.PosFixedNumHigh || (c >= msgpcode.Uint8 && c <= msgpcode.Uint64):
		u, err := fd.d.DecodeUint64()
		if err != nil {
			fd.failRead(err)
			return 0, 0, false, false
		}
		return 0, u, false, true
	case c >= msgpcode.NegFixedNumLow || (c >= msgpcode.Int8 && c <= msgpcode.Int64):
		v, err := fd.d.DecodeInt64()
		if err != nil {
			fd.failRead(err)
			return 0, 0, false, false
		}
		if v < 0 {
			return v, 0, true, true
		}
		return 0, uint64(v), false, true
	}
	fd.fail(ErrWrongType, "want an integer")
	return 0, 0, false, false
}

// uint reads an unsigned integer no larger than max.
func (fd *fieldDecoder) uint(max uint64) uint64 {
	_, u, neg, ok := fd.integer()
	if !ok {
		return 0
	}
	if neg || u > max {
		fd.fail(ErrOutOfRange, "max %d", max)
		return 0
	}
	return u
}

func (fd *fieldDecoder) uint16() uint16 { return uint16(fd.uint(math.MaxUint16)) }

func (fd *fieldDecoder) uint32() uint32 { return uint32(fd.uint(math.MaxUint32)) }

// version reads a protocol version and stops at once if it is not ours,
// so that ErrVersion wins over whatever else differs in another version's
// message.
func (fd *fieldDecoder) version() uint16 {
	v := fd.uint16()
	if fd.err == nil && v != Version {
		fd.fail(ErrVersion, "version %d, want %d", v, Version)
	}
	return v
}

func (fd *fieldDecoder) int64() int64 {
	v, u, neg, ok := fd.integer()
	if !ok {
		return 0
	}
	if neg {
		return v
	}
	if u > math.MaxInt64 {
		fd.fail(ErrOutOfRange, "exceeds int64")
		return 0
	}
	return int64(u)
}

// raw reads a bin (wantStr false) or str (wantStr true) value of at most
// max bytes. nil reads as empty. Empty reads as nil.
func (fd *fieldDecoder) raw(max int, wantStr bool) []byte {
	c, ok := fd.peek()
	if !ok {
		return nil
	}
	if c == msgpcode.Nil {
		if err := fd.d.DecodeNil(); err != nil {
			fd.failRead(err)
		}
		return nil
	}
	if wantStr && !msgpcode.IsString(c) {
		fd.fail(ErrWrongType, "want str")
		return nil
	}
	if !wantStr && !msgpcode.IsBin(c) {
		fd.fail(ErrWrongType, "want bin")
		return nil
	}
	n, err := fd.d.DecodeBytesLen()
	if err != nil {
		fd.failRead(err)
		return nil
	}
	if !fd.checkLen(n, max, 1) || n == 0 {
		return nil
	}
	b := make([]byte, n)
	if err := fd.d.ReadFull(b); err != nil {
		fd.failRead(err)
		return nil
	}
	return b
}

// bytes reads a bin value of at most max bytes.
func (fd *fieldDecoder) bytes(max int) []byte { return fd.raw(max, false) }

// text reads a str value of at most max bytes that passes checkText.
func (fd *fieldDecoder) text(max int) string {
	b := fd.raw(max, true)
	if fd.err != nil {
		return ""
	}
	if err := checkText(b); err != nil {
		fd.fail(err, "")
		return ""
	}
	return string(b)
}

// uint16s reads an array of at most max unsigned 16-bit integers. The
// count is checked before the slice is allocated. nil and the empty array
// read as nil.
func (fd *fieldDecoder) uint16s(max int) []uint16 {
	c, ok := fd.peek()
	if !ok {
		return nil
	}
	if c == msgpcode.Nil {
		if err := fd.d.DecodeNil(); err != nil {
			fd.failRead(err)
		}
		return nil
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		fd.fail(ErrWrongType, "want array")
		return nil
	}
	n, err := fd.d.DecodeArrayLen()
	if err != nil {
		fd.failRead(err)
		return nil
	}
	if !fd.checkLen(n, max, 1) || n == 0 {
		return nil
	}
	s := make([]uint16, n)
	for i := range s {
		s[i] = fd.uint16()
		if fd.err != nil {
			return nil
		}
	}
	return s
}

// checkText accepts valid UTF-8 whose every character is printable as Go's
// unicode.IsPrint defines it: letters, marks, numbers, punctuation,
// symbols (categories L, M, N, P, S) and the ASCII space. Control and
// format characters (line breaks, escapes, bidirectional overrides) could
// forge log lines or terminal output.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return ErrBadText
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if !unicode.IsPrint(r) {
			return ErrBadText
		}
		b = b[size:]
	}
	return nil
}
