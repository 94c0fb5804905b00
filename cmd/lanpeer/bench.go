package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lanpeer/lanpeer/bench"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/mongo"
)

// benchChild is the hidden subcommand a sessions benchmark runs its client
// processes with: `lanpeer bench child ARGS` (the binary re-executes
// itself).
const benchChild = "child"

func benchCommand() *cli.Command {
	subs := make([]*cli.Command, 0, len(bench.Scenarios)+1)
	for _, s := range bench.Scenarios {
		subs = append(subs, benchScenarioCommand(s.Name, s.Usage))
	}
	subs = append(subs, &cli.Command{
		Name:            benchChild,
		Hidden:          true,
		SkipFlagParsing: true,
		Usage:           "a client process of 'lanpeer bench sessions' (internal)",
		Action: func(c *cli.Context) error {
			return bench.RunChild(c.Context, c.Args().Slice(), c.App.Reader, c.App.Writer)
		},
	})
	return command(&cli.Command{
		Name:  "bench",
		Usage: "measure this machine: handshakes, relay, idle sessions, churn, HTTP requests, client cryptography",
		UsageText: "lanpeer bench SCENARIO [--duration D] [--json] [flags]\n" +
			"SCENARIO is one of: " + strings.Join(benchNames(), ", "),
		Description: "Each scenario starts its own host and clients on loopback (real TCP, TLS and yamux; the\n" +
			"memory store unless --store says otherwise), runs a bounded load, and measures beside it a\n" +
			"baseline of the same work without lanpeer in the same run: the ratios are what to compare\n" +
			"between machines. The figures go to standard output as a table, or with --json as one JSON\n" +
			"object {\"scenario\": ..., \"machine\": ..., \"results\": [...]}. docs/PERFORMANCE.md explains\n" +
			"each figure.",
		Subcommands: subs,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("bench needs a scenario: %s", strings.Join(benchNames(), ", "))
			}
			return usagef("unknown scenario %q: want one of %s", c.Args().First(), strings.Join(benchNames(), ", "))
		},
	})
}

func benchNames() []string {
	var out []string
	for _, s := range bench.Scenarios {
		out = append(out, s.Name)
	}
	return out
}

func benchScenarioCommand(name, usage string) *cli.Command {
	flags := []cli.Flag{
		&cli.DurationFlag{Name: "duration", Value: 0, Usage: "run each timed phase for `D` (default 2s)", DefaultText: "2s"},
		jsonFlag("print one JSON object instead of a table"),
		&cli.StringFlag{Name: "store", Value: "memory", Usage: "the host's store: `memory` or a MongoDB URI, mongodb://HOST[:PORT]/DB"},
		logLevelFlag(),
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the run to `FILE` (go tool pprof reads it)", TakesFile: true},
	}
	switch name {
	case "handshake":
		flags = append(flags, &cli.StringFlag{Name: "case", Usage: "only these `KEX/KEY` cases, comma-separated: " + strings.Join(bench.HandshakeCases(), ", ")})
	case "relay":
		flags = append(flags,
			&cli.StringFlag{Name: "members", Value: "1,10,100", Usage: "online members, comma-separated `N,...`"},
			&cli.StringFlag{Name: "sizes", Value: "256,4096", Usage: "message sizes in bytes of text, comma-separated `N,...`"})
	case "sessions":
		flags = append(flags, &cli.IntFlag{Name: "sessions", Value: bench.DefaultSessions, Usage: "hold `N` idle sessions"})
	case "churn":
		flags = append(flags, &cli.IntFlag{Name: "clients", Value: bench.DefaultChurnClients, Usage: "`N` clients connecting and dropping"})
	case "http":
		flags = append(flags, &cli.BoolFlag{Name: "verify-message-signatures", Value: true,
			Usage: "the host verifies each message's signature (as listen's flag; =false measures without)"})
	case "e2e":
		flags = append(flags,
			&cli.StringFlag{Name: "cipher", Usage: "only these AEAD `NAME`s, comma-separated (default all)"},
			&cli.IntFlag{Name: "size", Value: 256, Usage: "message text of `N` bytes"})
	}
	return command(&cli.Command{
		Name:      name,
		Usage:     usage,
		UsageText: "lanpeer bench " + name + " [--duration D] [--json] [flags]",
		Flags:     flags,
		Action:    func(c *cli.Context) error { return benchAction(c, name) },
	})
}

func benchAction(c *cli.Context, name string) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	level, ok := logLevels[c.String("log-level")]
	if !ok {
		return usagef("--log-level: unknown level %q (want debug, info, warn or error)", c.String("log-level"))
	}
	o := &bench.Options{Duration: c.Duration("duration"), Logger: newLogger(&lockedWriter{w: c.App.ErrWriter}, level)}
	if o.Duration < 0 {
		return usagef("--duration %v: must be positive", o.Duration)
	}
	var err error
	switch name {
	case "handshake":
		o.Cases = splitList(c.String("case"))
	case "relay":
		if o.Members, err = intList(c, "members"); err != nil {
			return err
		}
		if o.Sizes, err = intList(c, "sizes"); err != nil {
			return err
		}
	case "sessions":
		o.Sessions = c.Int("sessions")
		if o.Sessions < 1 || o.Sessions > bench.MaxSessions {
			return usagef("--sessions %d: want 1 to %d", o.Sessions, bench.MaxSessions)
		}
		o.Child = benchChildCommand(c)
	case "churn":
		o.Clients = c.Int("clients")
		if o.Clients < 1 || o.Clients > 1000 {
			return usagef("--clients %d: want 1 to 1000", o.Clients)
		}
	case "e2e":
		o.Ciphers = splitList(c.String("cipher"))
		if n := c.Int("size"); n < 1 || n > 16384 {
			return usagef("--size %d: want 1 to 16384", n)
		}
		o.Sizes = []int{c.Int("size")}
	case "http":
		o.SkipMessageSignatures = !c.Bool("verify-message-signatures")
	}
	switch where := c.String("store"); {
	case where == "memory":
	case strings.HasPrefix(where, "mongodb://") || strings.HasPrefix(where, "mongodb+srv://"):
		o.NewStore = func(ctx context.Context) (store.Store, error) {
			st, err := mongo.Open(ctx, where, mongo.Options{})
			if errors.Is(err, mongo.ErrBadOptions) {
				return nil, usagef("--store: %v", err)
			}
			return st, err
		}
	default:
		return usagef("--store %q: want memory or a MongoDB URI (mongodb://HOST[:PORT]/DB)", where)
	}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(c.Context, name, o)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return rep.WriteJSON(c.App.Writer)
	}
	return rep.WriteTable(c.App.Writer)
}

// benchChildCommand starts this program again as a client process of the
// sessions scenario.
func benchChildCommand(c *cli.Context) func(ctx context.Context, args []string) *exec.Cmd {
	return func(ctx context.Context, args []string) *exec.Cmd {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		cmd := exec.CommandContext(ctx, exe, append([]string{"bench", benchChild}, args...)...)
		cmd.Stderr = c.App.ErrWriter
		return cmd
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(c *cli.Context, flag string) ([]int, error) {
	var out []int
	for _, f := range splitList(c.String(flag)) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, usagef("--%s: %q is not a positive number", flag, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, usagef("--%s: give at least one number", flag)
	}
	return out, nil
}
