package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionCandidates drives urfave/cli's --generate-bash-completion
// protocol in-process, as the scripts do.
func TestCompletionCandidates(t *testing.T) {
	for _, c := range []struct {
		line string // words typed; the scripts add the current word only if it starts with '-'
		want string
	}{
		{"", "init id listen dial peers directory bench completion help"},
		{"init", ""},
		{"init -", "--home --key --force --help -h"},
		{"dial --kex", "x25519 p256 x25519-mlkem768 rsa"},
		{"dial 127.0.0.1:7700", "msg room send read"},
		{"dial 127.0.0.1:7700 msg", ""},
		{"listen --log-level", "debug info warn error"},
		{"init --k", "--key"},
		{"init --force -", "--home --key --help -h"},
		{"init --home=/tmp -", "--key --force --help -h"},
		{"init --key", "rsa-3072 rsa-2048 rsa-4096 ed25519"},
		{"id --create --key", "rsa-3072 rsa-2048 rsa-4096 ed25519"},
		{"id --home", ""},
		{"id -", "--home --create --key --help -h"},
		{"completion", "bash fish zsh"},
		{"completion bash", ""},
		{"help", "init id listen dial peers directory bench completion help"},
		{"help init", ""},
		{"-", "--help -h"},
	} {
		args := append(strings.Fields(c.line), "--generate-bash-completion")
		r := lanpeer(t, args...)
		if got := strings.Join(strings.Fields(r.stdout), " "); r.code != exitOK || got != c.want || r.stderr != "" {
			t.Errorf("completing %q: exit %d, candidates %q, stderr %q; want %q", c.line, r.code, got, r.stderr, c.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, file := range map[string]string{"bash": "lanpeer.bash", "zsh": "lanpeer.zsh", "fish": "lanpeer.fish"} {
		r := lanpeer(t, "completion", shell)
		want := readFile(t, filepath.Join("completion", file))
		if r.code != exitOK || r.stdout != string(want) || r.stderr != "" {
			t.Errorf("completion %s: exit %d, stderr %q, script matches the file: %v", shell, r.code, r.stderr, r.stdout == string(want))
		}
		if !strings.Contains(r.stdout, "--generate-bash-completion") {
			t.Errorf("the %s script does not ask lanpeer", shell)
		}
	}
}

// shellComplete runs script in shell with the argument line and a `lanpeer`
// on PATH that is this test binary running main.
func shellComplete(t *testing.T, shell, script, line string) string {
	t.Helper()
	_, env := lanpeerBin(t)
	args := []string{"-c", script, shell, line} // $0, $1
	if shell == "fish" {
		args = []string{"-c", script, line} // $argv[1]
	}
	cmd := exec.Command(shell, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", shell, err, errb.String())
	}
	return string(out)
}

var shellCases = []struct{ line, want string }{
	{"lanpeer ", "bench completion dial directory help id init listen peers"},
	{"lanpeer i", "id init"},
	{"lanpeer init --", "--force --help --home --key"},
	{"lanpeer init --key ", "ed25519 rsa-2048 rsa-3072 rsa-4096"},
	{"lanpeer init --key ed", "ed25519"},
	{"lanpeer completion ", "bash fish zsh"},
	{"lanpeer completion f", "fish"},
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	for i := range f { // insertion sort: a handful of words
		for j := i; j > 0 && f[j] < f[j-1]; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
	return strings.Join(f, " ")
}

// TestBashCompletion loads the script in bash and completes real command
// lines with it.
func TestBashCompletion(t *testing.T) {
	const script = `source <(lanpeer completion bash) || exit 1
complete -p lanpeer | grep -q -- '-F _lanpeer' || { echo 'not registered' >&2; exit 1; }
read -ra COMP_WORDS <<< "$1"
[[ $1 == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_lanpeer
printf '%s\n' "${COMPREPLY[@]}"`
	for _, c := range shellCases {
		if got := sortedFields(shellComplete(t, "bash", script, c.line)); got != c.want {
			t.Errorf("bash completes %q to %q, want %q", c.line, got, c.want)
		}
	}
	// lanpeer is not asked once "--" is on the line: urfave/cli would run the
	// command line instead of completing it.
	const spy = `source <(lanpeer completion bash) || exit 1
lanpeer() { echo asked > asked; }
read -ra COMP_WORDS <<< "$1"
[[ $1 == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_lanpeer
cat asked 2>/dev/null
exit 0`
	for line, asked := range map[string]bool{
		"lanpeer init -":            true,
		"lanpeer init --":           true,
		"lanpeer init -- ":          false,
		"lanpeer init --force -- -": false,
	} {
		if got := shellComplete(t, "bash", spy, line) == "asked\n"; got != asked {
			t.Errorf("completing %q asked lanpeer: %v, want %v", line, got, asked)
		}
	}
}

// TestFishCompletion uses fish's `complete -C`, which completes a command
// line non-interactively. .ci/run installs fish.
func TestFishCompletion(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Skip("fish is not installed (apt-get install -y fish; .ci/run installs it)")
	}
	const script = `lanpeer completion fish | source; or exit 1
complete -C "$argv[1]"`
	for _, c := range shellCases {
		// fish prints "candidate<TAB>description"; lanpeer gives no descriptions.
		if got := sortedFields(shellComplete(t, "fish", script, c.line)); got != c.want {
			t.Errorf("fish completes %q to %q, want %q", c.line, got, c.want)
		}
	}
}

// TestZshCompletion calls the completion function with zsh's completion
// builtins stubbed, since zsh completes only in an interactive line editor.
// compadd's prefix filtering is zsh's own, so the cases complete whole words.
// .ci/run installs zsh.
func TestZshCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed (apt-get install -y zsh; .ci/run installs it)")
	}
	const script = `compdef() { registered=$* }
source <(lanpeer completion zsh) || exit 1
[[ $registered == '_lanpeer lanpeer' ]] || { print -u2 "registered: $registered"; exit 1 }
local -a got
compadd() { [[ $1 == -a ]] && got=("${(@P)2}") }
_files() { got=(FILES) }
words=("${(@z)1}")
[[ $1 == *' ' ]] && words+=('')
CURRENT=${#words}
_lanpeer
print -l -- $got`
	for _, c := range []struct{ line, want string }{
		{"lanpeer ", "bench completion dial directory help id init listen peers"},
		{"lanpeer init --", "--force --help --home --key -h"}, // zsh would drop -h
		{"lanpeer init --key ", "ed25519 rsa-2048 rsa-3072 rsa-4096"},
		{"lanpeer id --home ", "FILES"},
		{"lanpeer completion ", "bash fish zsh"},
	} {
		if got := sortedFields(shellComplete(t, "zsh", script, c.line)); got != c.want {
			t.Errorf("zsh completes %q to %q, want %q", c.line, got, c.want)
		}
	}
}
