// Command ferretdb runs FerretDB (github.com/FerretDB/FerretDB, the version
// pinned in this module's go.mod) with its SQLite backend, for lanpeer's
// tests: a MongoDB-wire server on a loopback address, keeping its data in
// a directory (ENVIRONMENT.md, "A MongoDB-wire server for tests").
//
//	ferretdb [-listen 127.0.0.1:0] [-log-level warn] DIR
//
// It lives in its own module so that FerretDB's dependencies never enter
// lanpeer's go.mod. It embeds the package github.com/FerretDB/FerretDB/ferretdb
// rather than building FerretDB's own command, which panics at start when
// built from the module download (its generated version file is missing).
//
// When the server accepts connections, it prints its MongoDB URI
// (mongodb://127.0.0.1:PORT/) alone on a line on standard output; a caller
// waits for that line. It stops on SIGTERM or SIGINT, closing its
// connections and the SQLite files, and exits 0. Errors go to standard
// error with a "ferretdb: " prefix, and the exit status is 1 (2 for a usage
// error).
//
// The SQLite files run in WAL mode with synchronous=FULL: a write FerretDB
// has acknowledged is on disk, and survives the process being killed.
// FerretDB has no authentication here, so the listen address must be a
// loopback address.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` to listen on (port 0: any free port)")
	logLevel := fs.String("log-level", "warn", "FerretDB's log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ferretdb [-listen ADDR] [-log-level LEVEL] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "ferretdb: want one argument, the data directory")
		fs.Usage()
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "ferretdb: bad -log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	if err := checkLoopback(*listen); err != nil {
		fmt.Fprintf(stderr, "ferretdb: %v\n", err)
		return 2
	}

	dir, err := filepath.Abs(fs.Arg(0))
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferretdb: data directory: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, *listen, dir, level, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "ferretdb: %v\n", err)
		return 1
	}
	return 0
}

// checkLoopback refuses a listen address that is not on a loopback
// interface: the server has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -listen address %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen address %q is not a loopback IP address (127.0.0.0/8 or ::1)", addr)
	}
	return nil
}

// serve runs FerretDB until ctx is done, printing its URI once it listens.
func serve(ctx context.Context, listen, dir string, level slog.Level, stdout, stderr io.Writer) error {
	// A file: URI names the directory; FerretDB keeps one SQLite file per
	// database in it. synchronous(full) makes each commit wait for the WAL
	// to reach the disk (FerretDB sets WAL mode and a busy timeout itself).
	sqliteURL := (&url.URL{
		Scheme:   "file",
		Opaque:   filepath.ToSlash(dir) + "/",
		RawQuery: url.Values{"_pragma": {"synchronous(full)"}}.Encode(),
	}).String()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	// New has bound the listener: the URI is known, and connections
	// wait in the backlog until Run accepts them.
	uri := f.MongoDBURI()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if _, err := fmt.Fprintln(stdout, uri); err != nil {
		return fmt.Errorf("printing the URI: %w", err)
	}
	return <-done
}
