package adversarial

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityDocNamesExist: every test and fuzz target docs/SECURITY.md
// names as evidence exists in the package it names (by its directory:
// `cmd/lanpeer.TestX`), and every adversarial case of this package is
// listed there.
func TestSecurityDocNamesExist(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("`([a-z]+(?:/[a-z]+)*)\\.((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 40 {
		t.Fatalf("docs/SECURITY.md names %d tests; the list looks broken", len(refs))
	}
	sources := map[string]string{}
	for _, r := range refs {
		pkg, name := r[1], r[2]
		src, ok := sources[pkg]
		if !ok {
			files, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
			if len(files) == 0 {
				t.Errorf("docs/SECURITY.md names package %q, which has no tests", pkg)
			}
			var b strings.Builder
			for _, f := range files {
				c, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				b.Write(c)
			}
			src = b.String()
			sources[pkg] = src
		}
		if !strings.Contains(src, "\nfunc "+name+"(") {
			t.Errorf("docs/SECURITY.md names %s.%s, which does not exist", pkg, name)
		}
	}
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		c, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\nfunc (TestAdversarial[A-Za-z0-9_]+)\(`).FindAllStringSubmatch(string(c), -1) {
			if !strings.Contains(string(doc), "`adversarial."+m[1]+"`") {
				t.Errorf("%s is not listed in docs/SECURITY.md", m[1])
			}
		}
	}
}
