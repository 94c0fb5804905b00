package directory

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, id := range []*cryptosuite.Identity{ed25519Identity(t), rsaIdentity(t)} {
		t.Run(string(id.KeyType()), func(t *testing.T) {
			rec := build(t, id, testAddrs, time.Hour, t0.Add(123*time.Microsecond))
			got, err := VerifyRecord(rec.Blob(), t0.Add(30*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if got.Peer != id.PeerID() || !got.Key.Equal(id.Public()) {
				t.Errorf("peer %s, want %s", got.Peer, id.PeerID())
			}
			if !slices.Equal(got.Addrs.TCP, testAddrs.TCP) || !slices.Equal(got.Addrs.HTTP, testAddrs.HTTP) {
				t.Errorf("addrs %v, want %v", got.Addrs, testAddrs)
			}
			if !got.Issued.Equal(t0) || !got.Expires.Equal(t0.Add(time.Hour)) {
				t.Errorf("issued %v expires %v, want %v and an hour later", got.Issued, got.Expires, t0)
			}
			if !bytes.Equal(got.Blob(), rec.Blob()) {
				t.Error("blob changed")
			}
			sr := got.StoreRecord()
			if sr.Peer != got.Peer || !sr.Issued.Equal(got.Issued) || !sr.Expires.Equal(got.Expires) || !bytes.Equal(sr.Blob, rec.Blob()) {
				t.Errorf("store record %+v does not match", sr)
			}
		})
	}
}

func TestRecordTimes(t *testing.T) {
	id := ed25519Identity(t)
	blob := build(t, id, testAddrs, time.Hour, t0).Blob()
	cases := []struct {
		now  time.Time
		want error
	}{
		{t0.Add(time.Hour - time.Millisecond), nil},
		{t0.Add(time.Hour), ErrExpired},
		{t0.Add(48 * time.Hour), ErrExpired},
		{t0.Add(-MaxClockSkew), nil},
		{t0.Add(-MaxClockSkew - time.Millisecond), ErrNotYetValid},
	}
	for _, c := range cases {
		_, err := VerifyRecord(blob, c.now)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("at %v: got %v, want %v", c.now.Sub(t0), err, c.want)
		}
	}
}

func TestBuildRecordRefuses(t *testing.T) {
	id := ed25519Identity(t)
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = fmt.Sprintf("192.0.2.%d:1", i+1)
	}
	cases := map[string]struct {
		addrs Addrs
		ttl   time.Duration
	}{
		"zero ttl":       {testAddrs, 0},
		"ttl over max":   {testAddrs, MaxTTL + time.Millisecond},
		"no address":     {Addrs{}, time.Hour},
		"unspecified":    {Addrs{TCP: []string{"0.0.0.0:7450"}}, time.Hour},
		"no port":        {Addrs{TCP: []string{"192.0.2.1"}}, time.Hour},
		"port zero":      {Addrs{TCP: []string{"192.0.2.1:0"}}, time.Hour},
		"port too big":   {Addrs{TCP: []string{"192.0.2.1:65536"}}, time.Hour},
		"port leading 0": {Addrs{TCP: []string{"192.0.2.1:080"}}, time.Hour},
		"empty host":     {Addrs{HTTP: []string{"http://:80"}}, time.Hour},
		"bad host":       {Addrs{HTTP: []string{"http://a_b.example:80"}}, time.Hour},
		"space":          {Addrs{HTTP: []string{"http://a b:80"}}, time.Hour},
		// An HTTP address is a URL with its scheme, http or https, and
		// nothing after host:port.
		"HTTP without scheme":  {Addrs{HTTP: []string{"192.0.2.7:8080"}}, time.Hour},
		"HTTP scheme ftp":      {Addrs{HTTP: []string{"ftp://192.0.2.7:8080"}}, time.Hour},
		"HTTP scheme HTTPS":    {Addrs{HTTP: []string{"HTTPS://192.0.2.7:8080"}}, time.Hour},
		"HTTP scheme only":     {Addrs{HTTP: []string{"https://"}}, time.Hour},
		"HTTP no port":         {Addrs{HTTP: []string{"https://192.0.2.7"}}, time.Hour},
		"HTTP path":            {Addrs{HTTP: []string{"https://192.0.2.7:8080/"}}, time.Hour},
		"HTTP query":           {Addrs{HTTP: []string{"https://192.0.2.7:8080?a=b"}}, time.Hour},
		"HTTP fragment":        {Addrs{HTTP: []string{"https://192.0.2.7:8080#x"}}, time.Hour},
		"HTTP user info":       {Addrs{HTTP: []string{"https://u:p@192.0.2.7:8080"}}, time.Hour},
		"HTTP unspecified":     {Addrs{HTTP: []string{"http://0.0.0.0:8080"}}, time.Hour},
		"HTTP too long":        {Addrs{HTTP: []string{"https://" + strings.Repeat("a", MaxAddrLen-11) + ":80"}}, time.Hour},
		"TCP address with URL": {Addrs{TCP: []string{"http://192.0.2.7:7450"}}, time.Hour},
		"too long":             {Addrs{TCP: []string{strings.Repeat("a", MaxAddrLen-2) + ":80"}}, time.Hour},
		"too many":             {Addrs{TCP: many}, time.Hour},
	}
	for name, c := range cases {
		if _, err := BuildRecord(id, c.addrs, c.ttl, t0); err == nil {
			t.Errorf("%s: built a record", name)
		}
	}
	// The largest record the bounds allow fits MaxRecordSize, with an
	// RSA key (the largest signature there is in the fixtures).
	host := strings.Repeat("abcdefghi.", 24) + "abcdefghi" // 249 bytes, labels of 9
	long := host + ":65535"
	if len(long) != MaxAddrLen {
		t.Fatalf("address of %d bytes", len(long))
	}
	full := make([]string, MaxAddrs)
	for i := range full {
		full[i] = long
	}
	longURL := "https://" + host[len("https://"):] + ":65535"
	if len(longURL) != MaxAddrLen {
		t.Fatalf("URL of %d bytes", len(longURL))
	}
	fullURL := make([]string, MaxAddrs)
	for i := range fullURL {
		fullURL[i] = longURL
	}
	rec := build(t, rsaIdentity(t), Addrs{TCP: full, HTTP: fullURL}, MaxTTL, t0)
	if n := len(rec.Blob()); n > MaxRecordSize {
		t.Errorf("largest record %d bytes > MaxRecordSize %d", n, MaxRecordSize)
	}
}

func TestVerifyRecordRefuses(t *testing.T) {
	id, other := ed25519Identity(t), ed25519Identity(t)
	good := build(t, id, testAddrs, time.Hour, t0).Blob()
	now := t0.Add(time.Minute)

	// Every single flipped byte is refused.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if _, err := VerifyRecord(b, now); err == nil {
			t.Fatalf("flipping byte %d: accepted", i)
		}
	}

	long := func(f func(*canon.DirectoryRecordFields)) []byte {
		fs := fieldsFor(id, t0, time.Hour)
		f(fs)
		return signRaw(t, id, fs)
	}
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = "192.0.2.1:1"
	}
	otherLabel := canon.New(canon.LabelAnnounce).Bytes([]byte("x")).Out()
	otherSig, _ := id.Sign(canon.LabelAnnounce, otherLabel)
	cases := map[string]struct {
		blob []byte
		want error
	}{
		"empty":             {nil, ErrMalformed},
		"truncated":         {good[:len(good)-1], ErrMalformed},
		"trailing byte":     {append(bytes.Clone(good), 0), ErrMalformed},
		"over max size":     {make([]byte, MaxRecordSize+1), ErrMalformed},
		"length past end":   {[]byte{0xff, 0xff, 0xff, 0xff, 0}, ErrMalformed},
		"another purpose":   {frame(otherLabel, otherSig), ErrBadSignature},
		"signed by another": {signRaw(t, other, fieldsFor(id, t0, time.Hour)), ErrBadSignature},
		"peer is not the key's hash": {long(func(f *canon.DirectoryRecordFields) {
			f.Peer = other.PeerID()
		}), ErrBadSignature},
		"ttl over max": {long(func(f *canon.DirectoryRecordFields) {
			f.ExpiresMillis = f.IssuedMillis + uint64(MaxTTL/time.Millisecond) + 1
		}), ErrMalformed},
		"expires before issued": {long(func(f *canon.DirectoryRecordFields) {
			f.ExpiresMillis = f.IssuedMillis
		}), ErrMalformed},
		"too many addresses": {long(func(f *canon.DirectoryRecordFields) { f.TCPAddrs = many }), ErrMalformed},
		"bad address":        {long(func(f *canon.DirectoryRecordFields) { f.HTTPAddrs = []string{"x"} }), ErrMalformed},
		"signed HTTP address without scheme": {long(func(f *canon.DirectoryRecordFields) {
			f.HTTPAddrs = []string{"192.0.2.7:8080"}
		}), ErrMalformed},
		"signed HTTP address of scheme ftp": {long(func(f *canon.DirectoryRecordFields) {
			f.HTTPAddrs = []string{"ftp://192.0.2.7:8080"}
		}), ErrMalformed},
		"signed HTTP URL with a path": {long(func(f *canon.DirectoryRecordFields) {
			f.HTTPAddrs = []string{"https://192.0.2.7:8080/x"}
		}), ErrMalformed},
		"no address": {long(func(f *canon.DirectoryRecordFields) {
			f.TCPAddrs, f.HTTPAddrs = nil, nil
		}), ErrMalformed},
		"not a key": {long(func(f *canon.DirectoryRecordFields) {
			f.IdentityKey = []byte("not a key")
			f.Peer = cryptosuite.PeerIDFromSPKI(f.IdentityKey)
		}), ErrMalformed},
	}
	for name, c := range cases {
		if _, err := VerifyRecord(c.blob, now); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

func FuzzVerifyRecord(f *testing.F) {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		f.Fatal(err)
	}
	rec, err := BuildRecord(id, testAddrs, time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec.Blob())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyRecord(b, t0)
		if err != nil {
			if r != nil {
				t.Fatal("a record with an error")
			}
			return
		}
		if !bytes.Equal(r.Blob(), b) || len(b) > MaxRecordSize {
			t.Fatal("accepted record does not hold its blob")
		}
	})
}
