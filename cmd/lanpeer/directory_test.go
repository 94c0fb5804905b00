package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/directory"
)

var servingLine = regexp.MustCompile(`lanpeer: directory serving on (http://127\.0\.0\.1:[0-9]+) `)

func TestDirectoryCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"lanpeer", "directory", "--http", "127.0.0.1:0", "--rate", "100"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := servingLine.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the directory never said where it serves: %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	c := &directory.Client{BaseURL: base, HTTPClient: hc}
	rec, err := directory.BuildRecord(id, directory.Addrs{TCP: []string{"127.0.0.1:7450"}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, id.PeerID()); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("lookup before registering: %v", err)
	}
	if err := c.Register(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := c.Lookup(ctx, id.PeerID())
	if err != nil || !bytes.Equal(got.Blob(), rec.Blob()) {
		t.Fatalf("lookup: %v", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit status %d after interrupt: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the directory did not stop on interrupt")
	}
	if stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

func TestDirectoryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"directory", "--store", "mongodb://localhost"},
		{"directory", "--store", "sqlite"},
		{"directory", "--rate", "0"},
		{"directory", "extra"},
	} {
		r := lanpeer(t, args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "lanpeer: ") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	r := lanpeer(t, "directory", "--http", "256.0.0.1:1")
	if r.code != exitFailure {
		t.Errorf("bad listen address: exit %d, stderr %q", r.code, r.stderr)
	}
}
