package store

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports holds the import rule (DESIGN.md §1): the store packages
// import nothing of lanpeer but cryptosuite and each other; no wire,
// session, room, node or front end.
func TestImports(t *testing.T) {
	const module = "github.com/lanpeer/lanpeer/"
	allowed := map[string]bool{
		module + "cryptosuite":     true,
		module + "store":           true,
		module + "store/memory":    true,
		module + "store/storetest": true,
	}
	for _, dir := range []string{".", "memory", "storetest", "mongo"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(path, module) && !allowed[path] {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
