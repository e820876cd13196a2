// Command funclen fails when a function in the product code is longer than a
// limit. A long function is where one decision hides beside another; the
// limit keeps each function one readable step (see CONTRIBUTING.md,
// Conventions). Test files and generated files are not product code.
//
// Usage: go run ./hack/funclen [-max 80] [file.go ...]
// Without files it reads the Go files git tracks (and untracked ones it does
// not ignore) below the working directory.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"sort"
	"strings"
)

type finding struct {
	pos   token.Position
	name  string
	lines int
}

func main() {
	maxLines := flag.Int("max", 80, "the longest a function may be, in lines from func to its closing brace")
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 {
		var err error
		if files, err = trackedGoFiles(); err != nil {
			fmt.Fprintln(os.Stderr, "funclen:", err)
			os.Exit(2)
		}
	}
	found, err := longFunctions(files, *maxLines)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	for _, f := range found {
		fmt.Printf("%s:%d: %s is %d lines (at most %d): split it into named steps\n", f.pos.Filename, f.pos.Line, f.name, f.lines, *maxLines)
	}
	if len(found) > 0 {
		os.Exit(1)
	}
}

func trackedGoFiles() ([]string, error) {
	out, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "*.go").Output()
	if err != nil {
		return nil, fmt.Errorf("list files with git: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// productCode leaves out tests, generated code and the packages that exist
// only for tests (internal/test*, storagetest), whose conformance cases read
// best whole.
func productCode(path string) bool {
	base := path[strings.LastIndex(path, "/")+1:]
	switch {
	case strings.HasSuffix(path, "_test.go"), strings.HasPrefix(base, "zz_generated"):
		return false
	case strings.HasPrefix(path, "internal/test"), strings.Contains(path, "/storagetest/"):
		return false
	}
	return true
}

func longFunctions(files []string, maxLines int) ([]finding, error) {
	fset := token.NewFileSet()
	var found []finding
	for _, path := range files {
		if !productCode(path) {
			continue
		}
		if _, err := os.Stat(path); os.IsNotExist(err) {
			continue // deleted in the working tree but still in the index
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > maxLines {
				found = append(found, finding{pos: start, name: funcName(fn), lines: n})
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].lines > found[j].lines })
	return found, nil
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv := fn.Recv.List[0].Type
	if star, ok := recv.(*ast.StarExpr); ok {
		recv = star.X
	}
	if ident, ok := recv.(*ast.Ident); ok {
		return "(" + ident.Name + ")." + fn.Name.Name
	}
	return fn.Name.Name
}
