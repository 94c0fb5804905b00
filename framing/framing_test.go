package framing_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/lanpeer/lanpeer/framing"
)

// frame builds the wire bytes of one frame by hand, independently of Writer.
func frame(p []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
	return append(b, p...)
}

func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func payloads() [][]byte {
	big := bytes.Repeat([]byte{0xa5}, framing.MaxControlFrame)
	return [][]byte{
		{0x01},
		[]byte("hello, lanpeer"),
		bytes.Repeat([]byte{0x00}, 300),
		big,
		{0xff, 0x00},
	}
}

func encodeAll(t testing.TB, ps [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := framing.NewWriter(&buf, framing.MaxControlFrame)
	for _, p := range ps {
		if err := w.WriteFrame(p); err != nil {
			t.Fatalf("WriteFrame(%d bytes): %v", len(p), err)
		}
	}
	return buf.Bytes()
}

// readAll reads frames until an error and returns copies of the payloads.
func readAll(r *framing.Reader) ([][]byte, error) {
	var out [][]byte
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(p))
	}
}

func checkFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %d bytes %.16x…, want %d bytes %.16x…", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

func TestWriterLayout(t *testing.T) {
	ps := payloads()
	var want []byte
	for _, p := range ps {
		want = append(want, frame(p)...)
	}
	if got := encodeAll(t, ps); !bytes.Equal(got, want) {
		t.Fatal("Writer output differs from 4-byte big-endian length ‖ payload")
	}
}

func TestRoundTrip(t *testing.T) {
	ps := payloads()
	stream := encodeAll(t, ps)
	wrappers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"OneByteReader", iotest.OneByteReader},
		{"HalfReader", iotest.HalfReader},
		{"DataErrReader", iotest.DataErrReader},
	}
	for _, tc := range wrappers {
		t.Run(tc.name, func(t *testing.T) {
			r := framing.NewReader(tc.wrap(bytes.NewReader(stream)), framing.MaxControlFrame)
			got, err := readAll(r)
			if err != io.EOF {
				t.Fatalf("final error = %v, want exactly io.EOF", err)
			}
			checkFrames(t, got, ps)
		})
	}
}

// chunkReader hands out its input in the given chunks, one per Read call,
// never joining two chunks.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// TestFragmentsAtEveryOffset splits a stream of small frames in two, and in
// three, at every offset: frame boundaries must not depend on how the
// transport cuts the bytes.
func TestFragmentsAtEveryOffset(t *testing.T) {
	ps := [][]byte{{0x01}, []byte("abc"), bytes.Repeat([]byte{7}, 40), {0x00, 0x00}}
	stream := encodeAll(t, ps)
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j++ {
			cr := &chunkReader{chunks: [][]byte{
				bytes.Clone(stream[:i]), bytes.Clone(stream[i:j]), bytes.Clone(stream[j:]),
			}}
			got, err := readAll(framing.NewReader(cr, framing.MaxControlFrame))
			if err != io.EOF {
				t.Fatalf("split at %d,%d: final error = %v, want io.EOF", i, j, err)
			}
			checkFrames(t, got, ps)
		}
	}
}

func TestReadErrors(t *testing.T) {
	const limit = 1000
	body := bytes.Repeat([]byte{0x42}, 10)
	tests := []struct {
		name       string
		in         []byte
		frames     int // good frames before the error
		wantEOF    bool
		unexpected bool  // wraps io.ErrUnexpectedEOF
		empty      bool  // ErrEmptyFrame
		tooLarge   int64 // declared length of a FrameTooLargeError, or 0
	}{
		{name: "empty input", in: nil, wantEOF: true},
		{name: "3 of 4 header bytes", in: header(10)[:3], unexpected: true},
		{name: "1 header byte", in: header(10)[:1], unexpected: true},
		{name: "header only", in: header(10), unexpected: true},
		{name: "header and half the payload", in: append(header(10), body[:5]...), unexpected: true},
		{name: "header and all but one byte", in: append(header(10), body[:9]...), unexpected: true},
		{name: "frame then garbage", in: append(frame(body), 0x00, 0x01), frames: 1, unexpected: true},
		{name: "frame then clean end", in: frame(body), frames: 1, wantEOF: true},
		{name: "zero length", in: header(0), empty: true},
		{name: "zero length after a frame", in: append(frame(body), header(0)...), frames: 1, empty: true},
		{name: "max+1", in: append(header(limit+1), make([]byte, limit+1)...), tooLarge: limit + 1},
		{name: "1<<31", in: header(1 << 31), tooLarge: 1 << 31},
		{name: "0xFFFFFFFF", in: header(0xFFFFFFFF), tooLarge: 0xFFFFFFFF},
		{name: "max", in: append(header(limit), make([]byte, limit)...), frames: 1, wantEOF: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := framing.NewReader(bytes.NewReader(tc.in), limit)
			got, err := readAll(r)
			if len(got) != tc.frames {
				t.Fatalf("read %d frames before the error, want %d", len(got), tc.frames)
			}
			switch {
			case tc.wantEOF:
				if err != io.EOF {
					t.Fatalf("error = %v, want exactly io.EOF", err)
				}
			case tc.unexpected:
				if !errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
					t.Fatalf("error = %v, want one wrapping io.ErrUnexpectedEOF", err)
				}
			case tc.empty:
				if !errors.Is(err, framing.ErrEmptyFrame) {
					t.Fatalf("error = %v, want ErrEmptyFrame", err)
				}
			case tc.tooLarge != 0:
				var fe *framing.FrameTooLargeError
				if !errors.As(err, &fe) {
					t.Fatalf("error = %v (%T), want *FrameTooLargeError", err, err)
				}
				if fe.N != uint64(tc.tooLarge) || fe.Max != limit {
					t.Fatalf("FrameTooLargeError{N: %d, Max: %d}, want {%d, %d}", fe.N, fe.Max, tc.tooLarge, limit)
				}
			}
			// Sticky: the stream is out of step, so the error repeats.
			if _, err2 := r.ReadFrame(); err2 != err {
				t.Fatalf("second ReadFrame after error = %v, want the same %v", err2, err)
			}
		})
	}
}

// TestHugeHeaderAllocatesNothing is crypto/tls's TestEarlyLargeCertMsg for
// frames: a header claiming 2 GiB gets the exact error, and reading it
// allocates no more than reading a header just over the limit does (only
// the error value).
func TestHugeHeaderAllocatesNothing(t *testing.T) {
	r := framing.NewReader(bytes.NewReader(header(1<<31)), framing.MaxControlFrame)
	_, err := r.ReadFrame()
	const want = "framing: frame of 2147483648 bytes exceeds maximum of 65536"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}

	allocs := func(n uint32) float64 {
		hdr := header(n)
		br := bytes.NewReader(hdr)
		r := framing.NewReader(br, framing.MaxControlFrame)
		return testing.AllocsPerRun(100, func() {
			br.Reset(hdr)
			*r = *framing.NewReader(br, framing.MaxControlFrame) // reset the sticky error
			if _, err := r.ReadFrame(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	small, huge, most := allocs(framing.MaxControlFrame+1), allocs(1<<31), allocs(0xFFFFFFFF)
	if huge != small || most != small || small > 2 {
		t.Fatalf("allocs per read: header max+1 %v, 1<<31 %v, 0xFFFFFFFF %v; want equal and ≤ 2", small, huge, most)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		r := framing.NewReader(bytes.NewReader(header(0xFFFFFFFF)), framing.MaxControlFrame)
		if _, err := r.ReadFrame(); err == nil {
			t.Fatal("no error")
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Fatalf("100 huge headers allocated %d bytes in total, want < 64 KiB", d)
	}
}

// loopReader serves the same bytes forever without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestReaderReusesBuffer(t *testing.T) {
	stream := encodeAll(t, [][]byte{bytes.Repeat([]byte{1}, 5000), {2}, bytes.Repeat([]byte{3}, 100)})
	r := framing.NewReader(&loopReader{data: stream}, framing.MaxControlFrame)
	for i := 0; i < 3; i++ { // warm up: the buffer reaches its working size
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(300, func() {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReadFrame allocates %v times per frame after warm-up, want 0", allocs)
	}
}

func TestReturnedSliceValidUntilNextCall(t *testing.T) {
	stream := encodeAll(t, [][]byte{[]byte("first"), []byte("secnd")})
	r := framing.NewReader(bytes.NewReader(stream), framing.MaxControlFrame)
	p1, _ := r.ReadFrame()
	if string(p1) != "first" {
		t.Fatalf("got %q", p1)
	}
	p2, _ := r.ReadFrame()
	if string(p2) != "secnd" {
		t.Fatalf("got %q", p2)
	}
	// Documented aliasing: the first slice now shows the second payload.
	if string(p1) != "secnd" {
		t.Fatalf("first slice = %q after the second read; the buffer is not reused", p1)
	}
}

func TestReaderWrapsStreamErrors(t *testing.T) {
	stream := frame([]byte("0123456789"))
	r := framing.NewReader(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(stream))), framing.MaxControlFrame)
	_, err := r.ReadFrame()
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("error = %v, want one wrapping iotest.ErrTimeout", err)
	}
	boom := errors.New("boom")
	r = framing.NewReader(io.MultiReader(bytes.NewReader(stream[:6]), iotest.ErrReader(boom)), framing.MaxControlFrame)
	if _, err := r.ReadFrame(); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want one wrapping boom", err)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	calls [][]byte
	short bool // write one byte less than asked
	err   error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls = append(c.calls, bytes.Clone(p))
	if c.err != nil {
		return 0, c.err
	}
	if c.short {
		return len(p) - 1, nil
	}
	return len(p), nil
}

func TestWriterOneWritePerFrame(t *testing.T) {
	cw := &countingWriter{}
	w := framing.NewWriter(cw, framing.MaxControlFrame)
	p := bytes.Repeat([]byte{9}, 1234)
	if err := w.WriteFrame(p); err != nil {
		t.Fatal(err)
	}
	if len(cw.calls) != 1 || !bytes.Equal(cw.calls[0], frame(p)) {
		t.Fatalf("%d Write calls, want 1 holding header and payload", len(cw.calls))
	}
}

func TestWriterRefusesBadPayloads(t *testing.T) {
	cw := &countingWriter{}
	w := framing.NewWriter(cw, 100)
	err := w.WriteFrame(make([]byte, 101))
	var fe *framing.FrameTooLargeError
	if !errors.As(err, &fe) || fe.N != 101 || fe.Max != 100 {
		t.Fatalf("error = %v, want *FrameTooLargeError{101, 100}", err)
	}
	if err := w.WriteFrame(nil); !errors.Is(err, framing.ErrEmptyFrame) {
		t.Fatalf("empty payload: error = %v, want ErrEmptyFrame", err)
	}
	if len(cw.calls) != 0 {
		t.Fatalf("refused payloads reached the stream (%d writes)", len(cw.calls))
	}
	// A refusal is local and leaves the stream intact: the Writer goes on.
	if err := w.WriteFrame(make([]byte, 100)); err != nil {
		t.Fatalf("a max-size payload after a refusal: %v", err)
	}
}

func TestWriterErrorsAreSticky(t *testing.T) {
	cw := &countingWriter{short: true}
	w := framing.NewWriter(cw, 100)
	if err := w.WriteFrame([]byte("abc")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: error = %v, want io.ErrShortWrite", err)
	}
	cw.short = false
	if err := w.WriteFrame([]byte("abc")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("after a short write: error = %v, want the same error again", err)
	}
	if len(cw.calls) != 1 {
		t.Fatalf("%d writes, want 1: a broken stream gets no more frames", len(cw.calls))
	}

	boom := errors.New("boom")
	w = framing.NewWriter(&countingWriter{err: boom}, 100)
	if err := w.WriteFrame([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want one wrapping boom", err)
	}
}

func TestWriterAllocatesOnlyToGrow(t *testing.T) {
	w := framing.NewWriter(io.Discard, framing.MaxControlFrame)
	p := bytes.Repeat([]byte{1}, 4000)
	if err := w.WriteFrame(p); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := w.WriteFrame(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("WriteFrame allocates %v times per frame after warm-up, want 0", allocs)
	}
}

func TestMaxOutOfRangePanics(t *testing.T) {
	for _, n := range []int{0, -1, framing.MaxFrameCeiling + 1} {
		for name, f := range map[string]func(){
			"NewReader": func() { framing.NewReader(bytes.NewReader(nil), n) },
			"NewWriter": func() { framing.NewWriter(io.Discard, n) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(max %d) did not panic", name, n)
					}
				}()
				f()
			}()
		}
	}
	if r := framing.NewReader(nil, framing.MaxFrameCeiling); r.Max() != framing.MaxFrameCeiling {
		t.Fatalf("Max() = %d", r.Max())
	}
	if w := framing.NewWriter(nil, 1); w.Max() != 1 {
		t.Fatalf("Max() = %d", w.Max())
	}
}

func BenchmarkReadFrame(b *testing.B) {
	stream := encodeAll(b, [][]byte{bytes.Repeat([]byte{1}, 1024)})
	r := framing.NewReader(&loopReader{data: stream}, framing.MaxControlFrame)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	w := framing.NewWriter(io.Discard, framing.MaxControlFrame)
	p := bytes.Repeat([]byte{1}, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteFrame(p); err != nil {
			b.Fatal(err)
		}
	}
}
