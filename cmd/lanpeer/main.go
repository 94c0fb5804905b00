// Command lanpeer is a messaging peer for local networks. Run
// `lanpeer --help` for its commands; README.md describes them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code) // the only os.Exit in the module
}
