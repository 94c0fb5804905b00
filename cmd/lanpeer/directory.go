package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/lanpeer/lanpeer/directory"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/urfave/cli/v2"
)

// defaultDirectoryAddr is where `lanpeer directory` listens by default:
// loopback, so a directory reaches the network only when asked to.
const defaultDirectoryAddr = "127.0.0.1:8470"

func directoryCommand() *cli.Command {
	return command(&cli.Command{
		Name:  "directory",
		Usage: "serve a lookup server where peers register their addresses (beyond the LAN)",
		UsageText: "lanpeer directory [--http ADDR] [--store URI] [--rate N] [--register-rate N] " +
			"[--max-clients N]",
		Description: "Serves the directory API of docs/HTTP.md over HTTP until interrupted (SIGINT, SIGTERM).\n" +
			"Peers register records signed by their identity keys; a lookup returns the signed\n" +
			"record and the client verifies it, so the directory is not trusted. Records expire\n" +
			"(at most 24 h after they were issued) and are swept every minute. The directory keeps\n" +
			"no state outside its store. Only the memory store exists for now: a MongoDB store\n" +
			"(--store mongodb://...) comes with store/mongo. There is no --https yet: put the\n" +
			"directory behind a TLS-terminating proxy, or rely on the records' signatures.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http", Value: defaultDirectoryAddr, Usage: "listen on `ADDR` (host:port; port 0 picks one)"},
			&cli.StringFlag{Name: "store", Value: "memory", Usage: "store `URI`: memory"},
			&cli.Float64Flag{Name: "rate", Value: directory.DefaultLookupRate, Usage: "lookups a second per client address (`N`; bursts of twice that)"},
			&cli.Float64Flag{Name: "register-rate", Value: directory.DefaultRegisterRate, Usage: "registrations a second per client address (`N`; bursts of 5)"},
			&cli.IntFlag{Name: "max-clients", Value: directory.DefaultMaxClients, Usage: "client addresses the rate limiters remember (`N`)"},
		},
		Action: directoryAction,
	})
}

func directoryAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	rate, regRate, maxClients := c.Float64("rate"), c.Float64("register-rate"), c.Int("max-clients")
	if !(rate > 0) || !(regRate > 0) || maxClients < 1 {
		return usagef("--rate and --register-rate must be above 0, --max-clients at least 1")
	}
	uri := c.String("store")
	if uri != "memory" {
		if strings.HasPrefix(uri, "mongodb://") || strings.HasPrefix(uri, "mongodb+srv://") {
			return usagef("--store: the MongoDB store is not available in this build yet; use --store memory")
		}
		return usagef("--store %q: the only store is \"memory\"", uri)
	}
	st, err := memory.New(memory.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := directory.NewHandler(st, directory.Config{
		LookupRate:   rate,
		LookupBurst:  max(1, int(2*rate)),
		RegisterRate: regRate,
		MaxClients:   maxClients,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("http"))
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "lanpeer: directory serving on http://%s (store %s)\n", ln.Addr(), uri)
	if err := h.Serve(c.Context, ln); err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	fmt.Fprintln(c.App.ErrWriter, "lanpeer: directory stopped")
	return nil
}
