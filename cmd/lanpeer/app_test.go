package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHomePrecedence: --home, else LANPEER_HOME, else $XDG_CONFIG_HOME/lanpeer
// (absolute only), else ~/.config/lanpeer.
func TestHomePrecedence(t *testing.T) {
	for _, c := range []struct {
		name                    string
		flag, lanpeer, xdg, hom string
		want                    string // relative to the test's directory
	}{
		{"flag first", "flag", "env", "xdg", "home", "flag"},
		{"LANPEER_HOME next", "", "env", "xdg", "home", "env"},
		{"XDG_CONFIG_HOME next", "", "", "xdg", "home", "xdg/lanpeer"},
		{"HOME last", "", "", "", "home", "home/.config/lanpeer"},
		{"relative XDG_CONFIG_HOME ignored", "", "", "relative", "home", "home/.config/lanpeer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			abs := func(s string) string {
				if s == "" || s == "relative" {
					return s
				}
				return filepath.Join(dir, s)
			}
			t.Setenv("LANPEER_HOME", abs(c.lanpeer))
			t.Setenv("XDG_CONFIG_HOME", abs(c.xdg))
			t.Setenv("HOME", abs(c.hom))
			args := []string{"id", "--create", "--key", "ed25519"}
			if c.flag != "" {
				args = append(args, "--home", abs(c.flag))
			}
			id := checkPeerIDOutput(t, lanpeer(t, args...))
			want := filepath.Join(dir, c.want)
			checkIdentityFile(t, want, "ed25519", id)
			// Nothing was written anywhere else.
			var found []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Name() == identityFile {
					found = append(found, p)
				}
				return err
			})
			if len(found) != 1 {
				t.Errorf("identity files %q, want only %s", found, filepath.Join(want, identityFile))
			}
			// id without --home finds the same identity the same way.
			if c.flag == "" {
				if got := checkPeerIDOutput(t, lanpeer(t, "id")); got != id {
					t.Errorf("id printed %s, want %s", got, id)
				}
			}
		})
	}
}

func TestNoHome(t *testing.T) {
	t.Setenv("LANPEER_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	r := lanpeer(t, "id")
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "use --home DIR or set LANPEER_HOME") {
		t.Errorf("id without any home: %+v", r)
	}
}

func TestHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		say  []string
	}{
		{[]string{"--help"}, []string{"USAGE:", "lanpeer [global flags] COMMAND [flags] [ARGS]", "init", "id", "completion", "Exit status: 0 success, 1 failure, 2 usage error"}},
		{[]string{"-h"}, []string{"COMMANDS:"}},
		{[]string{"help"}, []string{"COMMANDS:"}},
		{[]string{"init", "--help"}, []string{"lanpeer init [--home DIR] [--key TYPE] [--force]", "--force", "rsa-3072, rsa-2048, rsa-4096, ed25519", "LANPEER_HOME"}},
		{[]string{"help", "init"}, []string{"lanpeer init [--home DIR] [--key TYPE] [--force]"}},
		{[]string{"id", "-h"}, []string{"lanpeer id [--home DIR] [--create [--key TYPE]]", "--create"}},
		{[]string{"help", "id"}, []string{"--create"}},
		{[]string{"completion", "--help"}, []string{"lanpeer completion SHELL", "source <(lanpeer completion bash)", "lanpeer completion fish | source"}},
		{[]string{"help", "help"}, []string{"lanpeer help [COMMAND]"}},
		{[]string{"help", "--help"}, []string{"COMMANDS:"}},
	} {
		r := lanpeer(t, c.args...)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("lanpeer %q: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
		for _, s := range c.say {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("lanpeer %q: help does not say %q:\n%s", c.args, s, r.stdout)
			}
		}
	}
}

// TestUsageErrors: every command-line mistake exits with status 2, writes
// nothing to stdout and one "lanpeer: " line that says what to do to stderr,
// and touches no file.
func TestUsageErrors(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	t.Setenv("LANPEER_HOME", home)
	for _, c := range []struct {
		args []string
		say  string
	}{
		{[]string{"bogus"}, `unknown command "bogus"; run 'lanpeer --help' for the list`},
		{[]string{"bogus", "--home", home}, `unknown command "bogus"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus; run 'lanpeer --help'"},
		{[]string{"init", "--bogus"}, "flag provided but not defined: -bogus; run 'lanpeer init --help'"},
		{[]string{"init", "extra"}, `lanpeer init takes no arguments, got "extra"`},
		{[]string{"init", "extra", "--force"}, `flag --force comes after the argument "extra": flags go before arguments, as in 'lanpeer init [flags]'`},
		{[]string{"init", "--key", "dsa"}, `unknown key type "dsa" (want rsa-3072, rsa-2048, rsa-4096 or ed25519)`},
		{[]string{"init", "--force=maybe"}, "invalid boolean value"},
		{[]string{"id", "--key", "ed25519"}, "--key chooses the type of a new identity: use it with --create"},
		{[]string{"id", "--create", "--key", "rsa-1024"}, `unknown key type "rsa-1024"`},
		{[]string{"id", "--home"}, "flag needs an argument: -home"},
		{[]string{"id", "--home", ""}, "--home needs a directory"},
		{[]string{"id", "me"}, `lanpeer id takes no arguments, got "me"`},
		{[]string{"completion"}, "missing SHELL: 'lanpeer completion [flags] SHELL'"},
		{[]string{"completion", "tcsh"}, `no completion for shell "tcsh": want bash, fish, zsh`},
		{[]string{"completion", "bash", "zsh"}, `too many arguments ("zsh")`},
		{[]string{"completion", "bash", "--help"}, "flag --help comes after the argument \"bash\": flags go before SHELL, as in 'lanpeer completion [flags] SHELL'"},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"help", "init", "id"}, "too many arguments"},
	} {
		r := lanpeer(t, c.args...)
		if r.code != exitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "lanpeer: ") ||
			strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.say) {
			t.Errorf("lanpeer %q: %+v; want exit 2 and one stderr line saying %q", c.args, r, c.say)
		}
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a usage error created the home: %v", err)
	}
}

func TestNoCommand(t *testing.T) {
	r := lanpeer(t)
	if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "COMMANDS:") ||
		!strings.HasSuffix(r.stderr, "\nlanpeer: no command given\n") {
		t.Errorf("lanpeer alone: %+v; want the help and an error on stderr, exit 2", r)
	}
}
