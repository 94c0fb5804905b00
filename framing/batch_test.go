package framing_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/lanpeer/lanpeer/framing"
)

// batchWriter keeps what is written and counts the Write calls.
type batchWriter struct {
	bytes.Buffer
	writes int
}

func (c *batchWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// TestWriteFramesOneWrite: a batch goes out in one Write and reads back
// as the frames it holds, in order.
func TestWriteFramesOneWrite(t *testing.T) {
	var w batchWriter
	fw := framing.NewWriter(&w, 64)
	ps := [][]byte{[]byte("one"), bytes.Repeat([]byte{2}, 64), []byte("three")}
	if err := fw.WriteFrames(ps...); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Errorf("%d writes, want 1", w.writes)
	}
	r := framing.NewReader(&w, 64)
	for i, want := range ps {
		got, err := r.ReadFrame()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the batch: %v, want io.EOF", err)
	}
}

// TestWriteFramesRefusesWhole: one empty or oversized payload refuses the
// batch and nothing is written; the writer stays usable.
func TestWriteFramesRefusesWhole(t *testing.T) {
	var w batchWriter
	fw := framing.NewWriter(&w, 8)
	var tooLarge *framing.FrameTooLargeError
	if err := fw.WriteFrames([]byte("ok"), make([]byte, 9)); !errors.As(err, &tooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := fw.WriteFrames([]byte("ok"), nil); !errors.Is(err, framing.ErrEmptyFrame) {
		t.Fatalf("empty: %v", err)
	}
	if w.writes != 0 {
		t.Fatalf("%d writes after refusals", w.writes)
	}
	if err := fw.WriteFrames([]byte("ok")); err != nil || w.Len() != framing.HeaderSize+2 {
		t.Fatalf("after refusals: %v, %d bytes", err, w.Len())
	}
}

// TestWriteAllocs: writing frames, alone or in batches, allocates nothing
// per frame once the buffer has grown.
func TestWriteAllocs(t *testing.T) {
	fw := framing.NewWriter(io.Discard, framing.MaxControlFrame)
	p := make([]byte, 512)
	batch := [][]byte{p, p, p, p}
	_ = fw.WriteFrames(batch...)
	if a := testing.AllocsPerRun(200, func() { _ = fw.WriteFrame(p) }); a != 0 {
		t.Errorf("WriteFrame: %v allocations per frame, want 0", a)
	}
	if a := testing.AllocsPerRun(200, func() { _ = fw.WriteFrames(batch...) }); a != 0 {
		t.Errorf("WriteFrames: %v allocations per batch, want 0", a)
	}
}

// BenchmarkWriteFrames writes batches of 16 frames of 256 bytes to a sink.
func BenchmarkWriteFrames(b *testing.B) {
	w := framing.NewWriter(io.Discard, framing.MaxControlFrame)
	batch := make([][]byte, 16)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte{1}, 256)
	}
	b.SetBytes(16 * 256)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteFrames(batch...); err != nil {
			b.Fatal(err)
		}
	}
}
