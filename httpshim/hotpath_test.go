package httpshim

import (
	"bytes"
	"encoding/json"
	"testing"
)

// decodeOneBytes may only take bodies that decodeStrict decodes to the
// same value: checked on a body json.Marshal writes (which it must take)
// and on near misses (which it must leave to decodeStrict).
func TestDecodeOneBytesAgreesWithDecodeStrict(t *testing.T) {
	blob := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 100)
	canonical, err := json.Marshal(map[string][]byte{"message": blob})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := decodeOneBytes(canonical, "message")
	if !ok || !bytes.Equal(got, blob) {
		t.Fatalf("the canonical body was not taken (ok %v)", ok)
	}
	if got, ok := decodeOneBytes([]byte(`{"message":""}`), "message"); !ok || got == nil || len(got) != 0 {
		t.Fatalf("an empty value: %v %v", got, ok)
	}
	for _, body := range []string{
		`{"message": "AAAA"}`,         // whitespace
		`{"message":"AA\nAA"}`,        // a raw LF, which base64 would skip
		`{"message":"AA\rAA"}`,        // a raw CR
		`{"message":"AA\\nAA"}`,       // an escape
		`{"message":"AAAA","x":"AA"}`, // a second field
		`{"x":"AAAA","message":"AA"}`, // another field first
		`{"Message":"AAAA"}`,          // json's case-insensitive match
		`{"message":"AAA"}`,           // bad padding
		`{"message":"AAAA"} `,         // trailing data
		`{"message":null}`,
		`{"message":"AA"AA"}`,
		`{"message":"`,
		`{"message"}`,
		``,
	} {
		if _, ok := decodeOneBytes([]byte(body), "message"); ok {
			t.Errorf("%q was taken by the fast path", body)
		}
	}
}

// FuzzDecodeOneBytes: whatever the fast path takes, decodeStrict takes
// with the same value.
func FuzzDecodeOneBytes(f *testing.F) {
	for _, s := range []string{`{"message":"AAAA"}`, `{"message":"AA\nAA"}`, `{"message":""}`, `{"message":"QUJD"}`, `{"message":"QUI="}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := decodeOneBytes(body, "message")
		if !ok {
			return
		}
		var v struct {
			Message []byte `json:"message"`
		}
		if err := decodeStrict(body, &v, []string{"message"}, nil); err != nil {
			t.Fatalf("fast path took %q, decodeStrict refused it: %v", body, err)
		}
		if !bytes.Equal(got, v.Message) {
			t.Fatalf("%q: fast path %x, decodeStrict %x", body, got, v.Message)
		}
	})
}
