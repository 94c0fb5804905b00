package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header: the payload length as a 4-byte
// big-endian unsigned integer.
const HeaderSize = 4

// Frame size limits (payload bytes, header excluded).
const (
	// MaxControlFrame is the maximum payload of a frame on a control
	// stream: the handshake, requests, responses and notifications. The
	// largest handshake message is a few KiB; 64 KiB leaves room for a
	// pushed room message without inviting large allocations per frame.
	MaxControlFrame = 64 << 10

	// MaxFrameCeiling is the largest maximum any stream class may choose.
	// It keeps a misconfigured reader from accepting lengths that would
	// let a peer make it allocate gigabytes.
	MaxFrameCeiling = 16 << 20
)

// ErrEmptyFrame is returned for a frame whose length is zero: every frame
// holds one message, and no message encodes to zero bytes.
var ErrEmptyFrame = errors.New("framing: zero-length frame")

// FrameTooLargeError reports a frame longer than the stream's maximum: a
// length read from a peer's header (nothing was allocated for it), or a
// local payload the Writer refused.
type FrameTooLargeError struct {
	N   uint64 // the declared or attempted payload length
	Max uint64 // the maximum of the Reader or Writer
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("framing: frame of %d bytes exceeds maximum of %d", e.N, e.Max)
}

func checkMax(maxSize int) uint32 {
	if maxSize < 1 || maxSize > MaxFrameCeiling {
		panic(fmt.Sprintf("framing: maximum frame size %d out of range [1, %d]", maxSize, MaxFrameCeiling))
	}
	return uint32(maxSize)
}

// Reader reads frames from a stream. The zero value is not usable; create
// one with [NewReader]. A Reader is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max uint32
	hdr [HeaderSize]byte
	buf []byte
	err error // sticky: once set, every ReadFrame returns it
}

// NewReader returns a Reader that refuses frames longer than maxSize
// bytes, the maximum of the stream's class (e.g. [MaxControlFrame]).
// maxSize must be in [1, MaxFrameCeiling]; anything else is a programming
// error and panics.
func NewReader(r io.Reader, maxSize int) *Reader {
	return &Reader{r: r, max: checkMax(maxSize)}
}

// Max returns the reader's maximum payload length.
func (fr *Reader) Max() int { return int(fr.max) }

// ReadFrame reads the next frame and returns its payload. The returned
// slice aliases the Reader's buffer and is valid only until the next call;
// copy what must outlive it.
//
// It returns io.EOF if the stream ended cleanly before a header, an error
// wrapping io.ErrUnexpectedEOF if it ended inside a frame,
// [*FrameTooLargeError] or [ErrEmptyFrame] for a bad length (checked
// before any allocation), and the stream's own errors wrapped.
func (fr *Reader) ReadFrame() ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	p, err := fr.readFrame()
	if err != nil {
		fr.err = err
		return nil, err
	}
	return p, nil
}

func (fr *Reader) readFrame() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF // clean end at a frame boundary
		}
		return nil, fmt.Errorf("framing: reading header: %w", err)
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if n > fr.max {
		return nil, &FrameTooLargeError{N: uint64(n), Max: uint64(fr.max)}
	}
	if cap(fr.buf) < int(n) {
		// Bounded by fr.max. Grow geometrically so that a stream of
		// slowly growing frames does not reallocate every time.
		fr.buf = make([]byte, min(max(int(n), 2*cap(fr.buf)), int(fr.max)))
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the header promised a payload
		}
		return nil, fmt.Errorf("framing: reading %d-byte payload: %w", n, err)
	}
	return p, nil
}

// Writer writes frames to a stream. The zero value is not usable; create
// one with [NewWriter]. A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	max uint32
	buf []byte
	err error // sticky after a failed or short write
}

// NewWriter returns a Writer that refuses payloads longer than maxSize
// bytes, the maximum of the stream's class (e.g. [MaxControlFrame]).
// maxSize must be in [1, MaxFrameCeiling]; anything else is a programming
// error and panics.
func NewWriter(w io.Writer, maxSize int) *Writer {
	return &Writer{w: w, max: checkMax(maxSize)}
}

// Max returns the writer's maximum payload length.
func (fw *Writer) Max() int { return int(fw.max) }

// WriteFrame writes p as one frame, header and payload in a single Write
// call. An empty or oversized p is refused with [ErrEmptyFrame] or
// [*FrameTooLargeError] and nothing is written; the Writer stays usable.
// A failed write is returned wrapped and makes the Writer fail from then
// on, since the stream may hold part of a frame.
func (fw *Writer) WriteFrame(p []byte) error {
	if fw.err != nil {
		return fw.err
	}
	if len(p) == 0 {
		return ErrEmptyFrame
	}
	if uint64(len(p)) > uint64(fw.max) {
		return &FrameTooLargeError{N: uint64(len(p)), Max: uint64(fw.max)}
	}
	n := HeaderSize + len(p)
	if cap(fw.buf) < n {
		fw.buf = make([]byte, min(max(n, 2*cap(fw.buf)), HeaderSize+int(fw.max)))
	}
	b := fw.buf[:n]
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[HeaderSize:], p)
	w, err := fw.w.Write(b)
	if err == nil && w != n {
		err = io.ErrShortWrite
	}
	if err != nil {
		fw.err = fmt.Errorf("framing: writing %d-byte frame: %w", n, err)
		return fw.err
	}
	return nil
}

// WriteFrames writes each of ps as one frame, all of them in a single
// Write call: how a sender batches what is pending into one write of the
// stream below. Each payload is checked as WriteFrame checks it and, if
// one is refused, nothing is written. The caller bounds the total; the
// Writer keeps a buffer of the largest batch it wrote.
func (fw *Writer) WriteFrames(ps ...[]byte) error {
	if fw.err != nil {
		return fw.err
	}
	n := 0
	for _, p := range ps {
		if len(p) == 0 {
			return ErrEmptyFrame
		}
		if uint64(len(p)) > uint64(fw.max) {
			return &FrameTooLargeError{N: uint64(len(p)), Max: uint64(fw.max)}
		}
		n += HeaderSize + len(p)
	}
	if n == 0 {
		return nil
	}
	if cap(fw.buf) < n {
		fw.buf = make([]byte, max(n, 2*cap(fw.buf)))
	}
	b := fw.buf[:0]
	for _, p := range ps {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	w, err := fw.w.Write(b)
	if err == nil && w != n {
		err = io.ErrShortWrite
	}
	if err != nil {
		fw.err = fmt.Errorf("framing: writing %d bytes of %d frames: %w", n, len(ps), err)
		return fw.err
	}
	return nil
}
