package scripts

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate curl-walkthrough.sh from docs/CURL.md")

// generatedMarker ends the script's hand-written header; the rest is
// docs/CURL.md's bash blocks.
const generatedMarker = "# ---- generated from docs/CURL.md ----\n"

// CURL.md's fences: definitions ("bash functions", only function
// definitions; a sourced script stops after them) and steps ("bash").
const (
	fenceFunctions = "```bash functions"
	fenceSteps     = "```bash"
)

// sourcedGuard ends the functions: sourced, the script returns there;
// run, it goes on in strict mode.
const sourcedGuard = `# Sourced: stop here, with the functions defined. Run: the walkthrough,
# stopping at the first failure.
return 0 2>/dev/null || true
set -euo pipefail
shopt -s inherit_errexit`

// curlBlocks returns the bash blocks of CURL.md: the function definitions
// and the steps, each in order.
func curlBlocks(t *testing.T, doc []byte) (helpers, steps []string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(doc))
	var block *strings.Builder
	defs := false
	for sc.Scan() {
		l := sc.Text()
		switch {
		case block != nil && l == "```":
			if defs {
				helpers = append(helpers, block.String())
			} else {
				steps = append(steps, block.String())
			}
			block = nil
		case block != nil:
			block.WriteString(l + "\n")
		case l == fenceFunctions || l == fenceSteps:
			block, defs = &strings.Builder{}, l == fenceFunctions
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if block != nil {
		t.Fatalf("docs/CURL.md: a bash block is not closed")
	}
	if len(helpers) == 0 || len(steps) == 0 {
		t.Fatalf("docs/CURL.md: %d %q blocks and %d %q blocks", len(helpers), fenceFunctions, len(steps), fenceSteps)
	}
	return helpers, steps
}

// TestWalkthroughIsCURLmd: the script is its header and exactly CURL.md's
// bash blocks, the function definitions first, each kind in CURL.md's
// order, so what the tests run is what a reader types (who defines each
// function before the step that uses it). -update regenerates it.
func TestWalkthroughIsCURLmd(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "CURL.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(walkthrough)
	if err != nil {
		t.Fatal(err)
	}
	header, _, ok := strings.Cut(string(script), generatedMarker)
	if !ok {
		t.Fatalf("%s lacks the line %q", walkthrough, generatedMarker)
	}
	helpers, steps := curlBlocks(t, doc)
	want := header + generatedMarker + "\n" + strings.Join(helpers, "\n") + "\n" + sourcedGuard + "\n\n" +
		strings.Join(steps, "\n")
	if *update {
		if err := os.WriteFile(walkthrough, []byte(want), 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(script) != want {
		t.Fatalf("%s is not docs/CURL.md's bash blocks: run go test ./scripts -run TestWalkthroughIsCURLmd -update", walkthrough)
	}
}
