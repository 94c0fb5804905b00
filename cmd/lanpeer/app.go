package main

// Output rules, which every command follows:
//
//   - Standard output carries only what a command was asked for: a peer ID,
//     a completion script, help that was asked for. So `id=$(lanpeer id)`
//     works.
//   - Everything else (errors, notes, warnings) goes to standard error, one
//     line each, prefixed "lanpeer: ", lower case, no period at the end.
//   - The exit status is one of the exit* constants; every failure is
//     non-zero.
//
// Grammar (DESIGN.md §11): lanpeer [global flags] COMMAND [flags] [ARGS].
// Flags go before positional arguments at every level; a flag after a
// positional argument is a usage error that names the fix.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit statuses that scripts can trust (README.md lists them).
const (
	exitOK          = 0   // the command did what was asked
	exitFailure     = 1   // it failed; standard error says why
	exitUsage       = 2   // the command line is wrong: unknown command or flag, bad value, misplaced flag
	exitInterrupted = 130 // interrupted (SIGINT, SIGTERM) before it finished; nothing was written
)

// usageError marks an error in the command line (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// exitCode maps a command's error to the process exit status.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// metaArgs is the App.Metadata key under which run leaves the command line,
// for the completion functions (urfave/cli would read os.Args).
const metaArgs = "lanpeer.args"

// run runs the command line args (args[0] is the program) and returns the
// exit status. It is main without the process: tests call it with buffers.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	app.Metadata = map[string]any{metaArgs: args}
	err := app.RunContext(ctx, args)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "lanpeer: interrupted")
	default:
		fmt.Fprintf(stderr, "lanpeer: %v\n", err)
	}
	return exitCode(err)
}

// newApp builds the command-line app. It reads only stdin and writes only
// stdout and stderr; it never exits the process.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:     "lanpeer",
		HelpName: "lanpeer",
		Usage:    "a messaging peer for local networks",
		UsageText: "lanpeer [global flags] COMMAND [flags] [ARGS]\n" +
			"Flags go before arguments. 'lanpeer help COMMAND' or 'lanpeer COMMAND --help' explains a command.",
		Description: "Exit status: 0 success, 1 failure, 2 usage error (unknown command or flag, bad value,\n" +
			"flag after an argument), 130 interrupted. Only results go to standard output; errors and\n" +
			"notes go to standard error with a \"lanpeer:\" prefix.",
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true, // replaced by helpCommand, which fails with a usage error
		Flags:                []cli.Flag{cli.HelpFlag},
		ExitErrHandler:       func(*cli.Context, error) {}, // exit only in main
		OnUsageError:         onUsageError,
		BashComplete:         completer(noArgsYet(commandNames)),
		Action:               rootAction,
		Commands: []*cli.Command{
			initCommand(),
			idCommand(),
			listenCommand(),
			dialCommand(),
			peersCommand(),
			directoryCommand(),
			benchCommand(),
			completionCommand(),
			helpCommand(),
		},
	}
}

func rootAction(c *cli.Context) error {
	if c.NArg() == 0 {
		cli.HelpPrinter(c.App.ErrWriter, cli.AppHelpTemplate, c.App)
		return usagef("no command given")
	}
	return usagef("unknown command %q; run 'lanpeer --help' for the list", c.Args().First())
}

// onUsageError turns urfave/cli's flag parsing errors into usage errors.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usagef("%v; run '%s --help'", err, c.Command.HelpName)
}

// command fills in what every lanpeer command shares.
func command(c *cli.Command) *cli.Command {
	c.OnUsageError = onUsageError
	c.CustomHelpTemplate = cli.CommandHelpTemplate
	if c.BashComplete == nil {
		c.BashComplete = completer(nil)
	}
	return c
}

func helpCommand() *cli.Command {
	return command(&cli.Command{
		Name:         "help",
		Usage:        "show the commands, or one command's help",
		ArgsUsage:    "[COMMAND]",
		UsageText:    "lanpeer help [COMMAND]",
		BashComplete: completer(noArgsYet(commandNames)),
		Action: func(c *cli.Context) error {
			args, err := positionals(c, 0, "[COMMAND]")
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return cli.ShowAppHelp(c)
			}
			if c.App.Command(args[0]) == nil {
				return usagef("unknown command %q; run 'lanpeer --help' for the list", args[0])
			}
			return cli.ShowCommandHelp(c.Lineage()[1], args[0]) // the root context lists the commands
		},
	})
}

// positionals returns c's positional arguments after checking them against
// the command's grammar: names are the arguments in order (like "SHELL"), the
// first required of them. A flag after a positional argument is refused with the
// fix, as Go's flag parsing stops at the first positional argument and would
// otherwise take the flag for an argument.
func positionals(c *cli.Context, required int, names ...string) ([]string, error) {
	args := c.Args().Slice()
	synopsis := c.Command.HelpName + " [flags]"
	if len(names) > 0 {
		synopsis += " " + strings.Join(names, " ")
	}
	for _, a := range args[min(1, len(args)):] {
		if len(a) > 1 && a[0] == '-' { // a lone "-" is an argument (standard input)
			what := "arguments"
			if len(names) > 0 {
				what = strings.Trim(names[0], "[]")
			}
			return nil, usagef("flag %s comes after the argument %q: flags go before %s, as in '%s'", a, args[0], what, synopsis)
		}
	}
	switch {
	case len(names) == 0 && len(args) > 0:
		return nil, usagef("%s takes no arguments, got %q", c.Command.HelpName, args[0])
	case len(args) < required:
		return nil, usagef("missing %s: '%s'", names[len(args)], synopsis)
	case len(args) > len(names):
		return nil, usagef("too many arguments (%q): '%s'", args[len(names)], synopsis)
	}
	return args, nil
}

// homeFlag is --home, shared by every command that reads the lanpeer home.
func homeFlag() cli.Flag {
	return &cli.StringFlag{
		Name:      "home",
		Usage:     "lanpeer home `DIR` (default: $LANPEER_HOME, else $XDG_CONFIG_HOME/lanpeer, else ~/.config/lanpeer)",
		TakesFile: true,
	}
}

// homeDir resolves the lanpeer home: --home, else $LANPEER_HOME, else
// $XDG_CONFIG_HOME/lanpeer (an absolute path, as the XDG spec requires), else
// ~/.config/lanpeer.
func homeDir(c *cli.Context) (string, error) {
	if c.IsSet("home") {
		h := c.String("home")
		if h == "" {
			return "", usagef("--home needs a directory")
		}
		return h, nil
	}
	if h := os.Getenv("LANPEER_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "lanpeer"), nil
	}
	u, err := os.UserHomeDir()
	if err != nil || u == "" {
		return "", errors.New("cannot find a lanpeer home: $HOME is not set; use --home DIR or set LANPEER_HOME")
	}
	return filepath.Join(u, ".config", "lanpeer"), nil
}
