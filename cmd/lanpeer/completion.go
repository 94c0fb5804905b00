package main

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// The completion scripts. Each runs the command line typed so far, plus the
// word being completed if it starts with '-', with urfave/cli's
// --generate-bash-completion flag, and offers what lanpeer prints.
var (
	//go:embed completion/lanpeer.bash
	bashCompletion string
	//go:embed completion/lanpeer.zsh
	zshCompletion string
	//go:embed completion/lanpeer.fish
	fishCompletion string
)

func completionScripts() map[string]string {
	return map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
}

func shellNames(*cli.Context) []string {
	var names []string
	for name := range completionScripts() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func completionCommand() *cli.Command {
	return command(&cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "SHELL",
		UsageText: "lanpeer completion SHELL",
		Description: "bash:  source <(lanpeer completion bash)\n" +
			"zsh:   source <(lanpeer completion zsh)   (after compinit)\n" +
			"fish:  lanpeer completion fish | source\n" +
			"To load it in every shell, put one of these lines in the shell's startup file.",
		BashComplete: completer(noArgsYet(shellNames)),
		Action: func(c *cli.Context) error {
			args, err := positionals(c, 1, "SHELL")
			if err != nil {
				return err
			}
			script, ok := completionScripts()[args[0]]
			if !ok {
				return usagef("no completion for shell %q: want %s", args[0], strings.Join(shellNames(c), ", "))
			}
			_, err = io.WriteString(c.App.Writer, script)
			return err
		},
	})
}

// flagValues lists the values of flags that take one of a fixed set.
func flagValues(name string) []string {
	switch name {
	case "key":
		return keyTypeNames()
	case "kex":
		return kexNames()
	case "log-level":
		return []string{"debug", "info", "warn", "error"}
	}
	return nil
}

func commandNames(c *cli.Context) []string {
	var names []string
	for _, cmd := range c.App.Commands {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	return names
}

// noArgsYet offers values only for the first positional argument.
func noArgsYet(values func(*cli.Context) []string) func(*cli.Context) []string {
	return func(c *cli.Context) []string {
		if c.NArg() > 0 {
			return nil
		}
		return values(c)
	}
}

// completer returns a command's BashComplete function. It prints one
// candidate a line: the command's flags when the word being completed starts
// with '-', the values of a flag whose value comes next, and otherwise what
// values returns (nil: nothing, so the shell offers file names).
func completer(values func(*cli.Context) []string) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		words := completionWords(c)
		last := ""
		if len(words) > 1 {
			last = words[len(words)-1]
		}
		var out []string
		switch {
		case strings.HasPrefix(last, "-"):
			name := strings.TrimLeft(last, "-")
			if f := lookupFlag(c.Command.Flags, name); f != nil && takesValue(f) {
				out = flagValues(name) // nil for --home: the shell offers file names
			} else {
				out = flagCandidates(c.Command.Flags, last, words)
			}
		case values != nil:
			out = values(c)
		}
		for _, s := range out {
			fmt.Fprintln(c.App.Writer, s)
		}
	}
}

// completionWords returns the command line being completed, without the
// trailing --generate-bash-completion.
func completionWords(c *cli.Context) []string {
	words, ok := c.App.Metadata[metaArgs].([]string)
	if !ok {
		words = os.Args
	}
	if n := len(words); n > 0 && words[n-1] == "--generate-bash-completion" {
		words = words[:n-1]
	}
	return words
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	v, ok := f.(cli.DocGenerationFlag)
	return ok && v.TakesValue()
}

// flagCandidates returns the spellings of flags that start with prefix and
// do not appear earlier on the command line.
func flagCandidates(flags []cli.Flag, prefix string, words []string) []string {
	var out []string
	for _, f := range flags {
		for _, n := range f.Names() {
			cand := "--" + n
			if len(n) == 1 {
				cand = "-" + n
			}
			if strings.HasPrefix(cand, prefix) && !flagUsed(f, words[:len(words)-1]) {
				out = append(out, cand)
			}
		}
	}
	return out
}

func flagUsed(f cli.Flag, words []string) bool {
	for _, w := range words {
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if strings.HasPrefix(w, "-") && lookupFlag([]cli.Flag{f}, name) != nil {
			return true
		}
	}
	return false
}
