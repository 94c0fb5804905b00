package httpshim

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanpeer/lanpeer/canon"
)

// TestMACExampleIsARequest: the HTTP request MAC example of
// canon/testdata/examples.txt (which docs/HTTP.md and docs/CURL.md point
// to) holds header values the shim accepts, a route it serves, and the
// hash of the body it names: sent with a MAC, it passes every check but
// the session's, which no listener has.
func TestMACExampleIsARequest(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "canon", "testdata", "examples.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var layout []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	found := false
	for sc.Scan() {
		switch l := sc.Text(); {
		case l == "purpose=HTTP request MAC input":
			found = true
		case found && strings.HasPrefix(l, "layout="):
			if layout, err = hex.DecodeString(l[len("layout="):]); err != nil {
				t.Fatal(err)
			}
		}
		if layout != nil {
			break
		}
	}
	if layout == nil {
		t.Fatal("examples.txt has no HTTP request MAC input")
	}
	r := canon.NewReader(canon.LabelHTTPRequest, layout)
	var v [6]string
	for i := range v {
		v[i] = string(r.Bytes())
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	sid, method, target, bodyHash, ts, nonce := v[0], v[1], v[2], v[3], v[4], v[5]
	body := []byte(`{"epoch":3}`)
	if bodyHash != BodyHash(body) {
		t.Fatalf("the example's body hash %s is not that of %s", bodyHash, body)
	}
	mac := RequestMAC(make([]byte, 32), sid, method, target, bodyHash, ts, nonce)
	hdr := http.Header{}
	hdr.Set(HeaderSession, sid)
	hdr.Set(HeaderTimestamp, ts)
	hdr.Set(HeaderNonce, nonce)
	hdr.Set(HeaderMAC, hex.EncodeToString(mac[:]))
	if _, err := ParseAuthHeaders(hdr); err != nil {
		t.Fatalf("the example's header values: %v", err)
	}

	h := startHost(t, hostOpts{})
	req, err := http.NewRequestWithContext(tctx(t), method, h.url+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	if req.URL.RequestURI() != target {
		t.Fatalf("the target %q is sent as %q", target, req.URL.RequestURI())
	}
	if st, e, _ := rawDo(t, req); st != http.StatusUnauthorized || e.Code != CodeUnknownSession {
		t.Fatalf("the example request: %d %+v, want 401 %s", st, e, CodeUnknownSession)
	}
}
