package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/gatehouse-dev/gatehouse/server/internal/pages"
)

// pageMessageCalls are the functions whose arguments are page messages
// (titles and texts a person reads): errorPage and the handlers' local
// helpers that end in a page. An argument that starts with a capital
// letter is a message; lower-case ones are outcomes and log reasons.
var pageMessageCalls = map[string]bool{
	"errorPage": true, "errorPageIn": true, "badPage": true, "again": true, "done": true, "rejected": true, "page": true, "bad": true,
}

// Every text the server puts on a page is a message of the English
// catalogue, written whole (a format with arguments, never glued together
// from pieces a translator cannot reorder), so that every language can
// translate it. The pages package checks that every language has every
// English message (TestEveryCatalogueHasEveryMessage).
func TestPageTextsAreCatalogueMessages(t *testing.T) {
	langs, err := pages.LoadLanguages()
	if err != nil {
		t.Fatal(err)
	}
	english := langs.Get(pages.SourceLanguage)
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range pageMessages(t, fset, file) {
			found++
			if !slices.Contains(english.Keys(), m) {
				t.Errorf("%s: %q is not in locales/%s.json", f, m, pages.SourceLanguage)
			}
		}
	}
	if found < 40 {
		t.Fatalf("found only %d page messages: the search no longer sees the call sites", found)
	}
}

// pageMessages are the messages file puts on pages: arguments of the
// pageMessageCalls, Title and Error of pages.Data literals, and what is
// assigned to a Data's Error.
func pageMessages(t *testing.T, fset *token.FileSet, file *ast.File) []string {
	var out []string
	add := func(e ast.Expr) {
		if s, ok := messageText(e); ok {
			out = append(out, s)
		}
		if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD {
			t.Errorf("%s: a page message glued together with +: write it whole with %%s arguments", fset.Position(b.Pos()))
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if pageMessageCalls[callName(n.Fun)] {
				for _, a := range n.Args {
					add(a)
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "Title" || k.Name == "Error") {
				add(n.Value)
			}
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Error" && i < len(n.Rhs) {
					add(n.Rhs[i])
				}
			}
		}
		return true
	})
	return out
}

func callName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// messageText is e's text when e is a string constant (a literal or a
// named constant) that starts with a capital letter or an argument.
func messageText(e ast.Expr) (string, bool) {
	if id, ok := e.(*ast.Ident); ok && id.Obj != nil && id.Obj.Kind == ast.Con {
		if vs, ok := id.Obj.Decl.(*ast.ValueSpec); ok && len(vs.Values) == 1 {
			e = vs.Values[0]
		}
	}
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil || s == "" || !(unicode.IsUpper([]rune(s)[0]) || s[0] == '%') {
		return "", false
	}
	return s, true
}
