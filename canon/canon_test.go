package canon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBuilderLayout(t *testing.T) {
	got := New(LabelSenderKey).Bytes([]byte{0xaa, 0xbb}).Uint64(1).Uint16(0x0102).Absent().
		Time(time.UnixMilli(0x0102030405)).String("hi").Out()
	want := "" +
		hex.EncodeToString([]byte("lanpeer/v1 sender key")) + "00" +
		"00000002" + "aabb" +
		"00000008" + "0000000000000001" +
		"00000002" + "0102" +
		"00000000" +
		"00000008" + "0000000102030405" +
		"00000002" + hex.EncodeToString([]byte("hi"))
	if hex.EncodeToString(got) != want {
		t.Fatalf("layout\n got %x\nwant %s", got, want)
	}
}

func TestList(t *testing.T) {
	got := New(LabelSenderKey).Uint16List(1, 3).Out()
	// one field of 12 bytes: two elements, each a 4-byte length and 2 bytes
	want := hex.EncodeToString([]byte("lanpeer/v1 sender key")) + "00" + "0000000c" + "000000020001" + "000000020003"
	if hex.EncodeToString(got) != want {
		t.Fatalf("list\n got %x\nwant %s", got, want)
	}
	r := NewReader(LabelSenderKey, got)
	elems := r.List(2)
	if err := r.Done(); err != nil || len(elems) != 2 || !bytes.Equal(elems[1], []byte{0, 3}) {
		t.Fatalf("read list: %v %x", err, elems)
	}
	r = NewReader(LabelSenderKey, got)
	if r.List(1); !errors.Is(r.Done(), ErrMalformed) {
		t.Fatalf("list over max: got %v, want ErrMalformed", r.Done())
	}
}

func TestSignatureInput(t *testing.T) {
	layout := New(LabelAnnounce).Bytes([]byte("x")).Out()
	in, err := SignatureInput(LabelAnnounce, layout)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(layout)
	want := append(bytes.Repeat([]byte{0x20}, 64), []byte(LabelAnnounce)...)
	want = append(append(want, 0), h[:]...)
	if !bytes.Equal(in, want) {
		t.Fatalf("signature input\n got %x\nwant %x", in, want)
	}
	// A layout made for one purpose cannot be signed under another label.
	if _, err := SignatureInput(LabelDirectoryRecord, layout); !errors.Is(err, ErrLabelMismatch) {
		t.Fatalf("cross-purpose signing: got %v, want ErrLabelMismatch", err)
	}
	// A label that is a prefix of the layout's label is still refused.
	long := New(LabelRoomMessageAAD).Out()
	if _, err := SignatureInput(LabelRoomMessage, long); !errors.Is(err, ErrLabelMismatch) {
		t.Fatalf("prefix label: got %v, want ErrLabelMismatch", err)
	}
	if _, err := SignatureInput("lanpeer/v1 nonsense", layout); err == nil {
		t.Fatal("unknown label accepted")
	}
}

func TestReaderRejects(t *testing.T) {
	good := New(LabelSenderKey).Bytes([]byte{1, 2, 3}).Uint64(7).Out()
	cases := map[string][]byte{
		"wrong label":     append([]byte("lanpeer/v1 room leave\x00"), good[len(LabelSenderKey)+1:]...),
		"no separator":    []byte(LabelSenderKey),
		"truncated len":   good[:len(LabelSenderKey)+3],
		"length too long": append(append([]byte(LabelSenderKey+"\x00"), 0xff, 0xff, 0xff, 0xff), 1),
		"short body":      good[:len(good)-1],
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewReader(LabelSenderKey, b)
			r.Bytes()
			r.Uint64()
			if err := r.Done(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	r := NewReader(LabelSenderKey, good)
	if f := r.Fixed(3); !bytes.Equal(f, []byte{1, 2, 3}) {
		t.Fatalf("fixed: %x", f)
	}
	if r.Uint64() != 7 || r.Done() != nil {
		t.Fatalf("read back: %v", r.Done())
	}
	trailing := append(bytes.Clone(good), 0, 0, 0, 0)
	r = NewReader(LabelSenderKey, trailing)
	r.Bytes()
	r.Uint64()
	if err := r.Done(); !errors.Is(err, ErrTrailing) {
		t.Fatalf("trailing: got %v, want ErrTrailing", err)
	}
	r = NewReader(LabelSenderKey, good)
	if r.Fixed(4); !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("wrong fixed size accepted")
	}
}

func TestLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range Labels() {
		if seen[l] {
			t.Fatalf("duplicate label %q", l)
		}
		seen[l] = true
		if !strings.HasPrefix(l, "lanpeer/v1 ") && l != LabelChannelBinding {
			t.Fatalf("label %q is not of the form 'lanpeer/v1 <purpose>'", l)
		}
		for _, c := range []byte(l) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("label %q is not printable ASCII", l)
			}
		}
	}
	if len(seen) != 23 {
		t.Fatalf("label table has %d labels; DESIGN.md §11 lists 23", len(seen))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a label outside the table")
		}
	}()
	New("lanpeer/v1 made up")
}

func FuzzReader(f *testing.F) {
	f.Add(New(LabelSenderKey).Bytes([]byte{1}).Uint64(2).Uint16List(1, 2).Out())
	f.Add([]byte(LabelSenderKey + "\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(LabelSenderKey, b)
		for i := 0; i < 64 && r.Err() == nil; i++ {
			switch i % 4 {
			case 0:
				r.Bytes()
			case 1:
				r.List(8)
			case 2:
				r.Uint64()
			case 3:
				r.Uint16()
			}
		}
	})
}
