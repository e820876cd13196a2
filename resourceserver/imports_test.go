package resourceserver

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lightDependencies are the only modules outside the standard library the
// package may use. Resource servers import it: it must never bring them
// Kubernetes, controller-runtime or the Gatehouse server's own modules.
var lightDependencies = map[string]bool{"github.com/golang-jwt/jwt/v5": true}

// The package's own imports stay light.
func TestImportsStayLight(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !lightDependencies[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}

// The module requires nothing else either, tests included: go.mod lists
// every module that provides a package to the module's build or tests
// (module graph pruning, Go 1.17), so what an importer downloads is what
// go.mod says.
func TestModuleRequiresStayLight(t *testing.T) {
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	inBlock := false
	for text := range strings.Lines(string(gomod)) {
		line, _, _ := strings.Cut(text, "//")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case fields[0] == "require" && len(fields) > 1 && fields[1] == "(":
			inBlock = true
		case inBlock && fields[0] == ")":
			inBlock = false
		case fields[0] == "require" && len(fields) == 3:
			checkRequire(t, fields[1])
		case inBlock:
			checkRequire(t, fields[0])
		case fields[0] == "replace":
			t.Errorf("go.mod has %q: a replace directive is ignored by importers, so the module would build differently for them", strings.TrimSpace(text))
		}
	}
}

func checkRequire(t *testing.T, module string) {
	t.Helper()
	if !lightDependencies[module] {
		t.Errorf("go.mod requires %s", module)
	}
}
