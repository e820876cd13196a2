package docs

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// repo is what exists in the repository, for the docs to be checked
// against: files, Go declarations, tests, metrics, make targets, the CRDs'
// fields, the chart's values.
type repo struct {
	root   string
	module string // the main module's path, from go.mod

	files     map[string]bool // tracked or new (not ignored) files, slash-separated
	dirs      map[string]bool // directories that hold such files
	top       map[string]bool // their first path elements
	built     map[string]bool // top-level directories .gitignore names (/bin/): what make and gatehouse dev create
	basenames map[string]bool

	pkgDecls    map[string]map[string]bool // package name or import alias -> its top-level names
	aliases     [][2]string                // import alias, package name
	externals   map[string]bool            // names of packages imported from other modules (oidc: go-oidc's)
	typeMembers map[string]map[string]bool // type name -> its methods and fields
	names       map[string]bool            // every declared Go name, struct tag name, CRD field, chart value
	tests       map[string]bool            // Test*, Fuzz*, Benchmark*, Example* functions
	metrics     map[string][]string        // metric name -> label names (nil: not known)
	metricFiles map[string]string          // metric name (not a histogram's series) -> the file that registers it
	codeWords   map[string]bool            // gatehouse_* and GATEHOUSE_* words in the code and scripts
	terms       map[string]bool            // CamelCase words in Go string literals and YAML: reasons, kinds, enum values

	makeTargets map[string]bool
	crdRoots    []*apiextensionsv1.JSONSchemaProps // each kind's schema
	values      map[string]any                     // charts/gatehouse/values.yaml
}

func loadRepo(root string) (*repo, error) {
	r := &repo{root: root, files: map[string]bool{}, dirs: map[string]bool{}, top: map[string]bool{}, basenames: map[string]bool{},
		pkgDecls: map[string]map[string]bool{}, typeMembers: map[string]map[string]bool{}, names: map[string]bool{},
		tests: map[string]bool{}, externals: map[string]bool{}, terms: map[string]bool{}, metrics: map[string][]string{}, metricFiles: map[string]string{}, codeWords: map[string]bool{}, makeTargets: map[string]bool{}}
	steps := []func() error{r.listFiles, r.readGitignore, r.readModule, r.readGo, r.readWords, r.readMakefile, r.readCRDs, r.readValues}
	r.readKubernetesFields()
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// listFiles takes the files git tracks plus new ones it does not ignore,
// so a file written a minute ago counts and bin/ does not. Without git (a
// source tarball) it walks the tree, leaving out what make and the tests
// create.
func (r *repo) listFiles() error {
	out, err := exec.Command("git", "-C", r.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	var list []string
	if err == nil {
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				list = append(list, f)
			}
		}
	} else {
		err = filepath.WalkDir(r.root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(r.root, p)
			if e.IsDir() && (rel == "bin" || rel == ".git" || strings.HasPrefix(rel, ".gatehouse")) {
				return filepath.SkipDir
			}
			if !e.IsDir() {
				list = append(list, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, f := range list {
		if _, err := os.Lstat(filepath.Join(r.root, f)); err != nil {
			continue // deleted in the work tree, not yet in the index
		}
		r.files[f] = true
		r.basenames[path.Base(f)] = true
		first, _, _ := strings.Cut(f, "/")
		r.top[first] = true
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			r.dirs[d] = true
		}
	}
	return nil
}

func (r *repo) readGitignore() error {
	r.built = map[string]bool{}
	b, err := os.ReadFile(filepath.Join(r.root, ".gitignore"))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m := regexp.MustCompile(`^/([^/*]+)/$`).FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			r.built[m[1]] = true
		}
	}
	return nil
}

func (r *repo) readModule() error {
	b, err := os.ReadFile(filepath.Join(r.root, "go.mod"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		return fmt.Errorf("go.mod names no module")
	}
	r.module = string(m[1])
	return nil
}

// exists says whether p (slash-separated, relative to the root) is a file
// or directory of the repository. '*' and <placeholder> match any run of
// characters within one path element.
func (r *repo) exists(p string) bool {
	if !strings.ContainsAny(p, "*<") {
		return r.files[p] || r.dirs[p]
	}
	pattern := regexp.MustCompile(`<[^>/]*>`).ReplaceAllString(p, "*")
	for f := range r.files {
		if ok, _ := path.Match(pattern, f); ok {
			return true
		}
	}
	for d := range r.dirs {
		if ok, _ := path.Match(pattern, d); ok {
			return true
		}
	}
	return false
}

// basename says whether a file of that name, which may hold '*' or a
// <placeholder>, is anywhere in the repository.
func (r *repo) basename(name string) bool {
	if !strings.ContainsAny(name, "*<") {
		return r.basenames[name]
	}
	pattern := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(name, "*")
	for b := range r.basenames {
		if ok, _ := path.Match(pattern, b); ok {
			return true
		}
	}
	return false
}

// readGo parses every Go file for its declarations, tests and metrics.
func (r *repo) readGo() error {
	fset := token.NewFileSet()
	pkgOfDir := map[string]string{}
	var parsed []*ast.File
	var dirs []string
	for f := range r.files {
		if !strings.HasSuffix(f, ".go") || strings.Contains(f, "/testdata/") {
			continue
		}
		af, err := parser.ParseFile(fset, filepath.Join(r.root, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", f, err)
		}
		parsed = append(parsed, af)
		dirs = append(dirs, path.Dir(f))
		if !strings.HasSuffix(af.Name.Name, "_test") {
			pkgOfDir[path.Dir(f)] = af.Name.Name
		}
	}
	for i, af := range parsed {
		r.readDecls(af, af.Name.Name)
		r.readImports(af, pkgOfDir)
		if strings.HasSuffix(fset.File(af.Pos()).Name(), "_test.go") {
			r.readTests(af)
		} else {
			r.readMetrics(af, dirs[i])
			r.readStrings(af)
		}
	}
	for _, a := range r.aliases {
		for name := range r.pkgDecls[a[1]] {
			r.declare(a[0], name)
		}
	}
	return nil
}

func (r *repo) declare(pkg, name string) {
	if r.pkgDecls[pkg] == nil {
		r.pkgDecls[pkg] = map[string]bool{}
	}
	r.pkgDecls[pkg][name] = true
	r.names[name] = true
}

func (r *repo) member(typ, name string) {
	if r.typeMembers[typ] == nil {
		r.typeMembers[typ] = map[string]bool{}
	}
	r.typeMembers[typ][name] = true
	r.names[name] = true
}

func (r *repo) readDecls(af *ast.File, pkg string) {
	for _, decl := range af.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				r.declare(pkg, d.Name.Name)
				continue
			}
			r.member(receiverType(d.Recv.List[0].Type), d.Name.Name)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				r.readSpec(pkg, s)
			}
		}
	}
}

func (r *repo) readSpec(pkg string, s ast.Spec) {
	switch s := s.(type) {
	case *ast.ValueSpec:
		for _, n := range s.Names {
			r.declare(pkg, n.Name)
		}
	case *ast.TypeSpec:
		r.declare(pkg, s.Name.Name)
		if r.typeMembers[s.Name.Name] == nil {
			r.typeMembers[s.Name.Name] = map[string]bool{}
		}
		switch t := s.Type.(type) {
		case *ast.StructType:
			for _, f := range t.Fields.List {
				r.readField(s.Name.Name, f)
			}
		case *ast.InterfaceType:
			for _, m := range t.Methods.List {
				for _, n := range m.Names {
					r.member(s.Name.Name, n.Name)
				}
			}
		}
	}
}

// readField records a struct field by its Go name (embedded: its type's
// name) and by the names in its json and yaml tags.
func (r *repo) readField(typ string, f *ast.Field) {
	for _, n := range f.Names {
		r.member(typ, n.Name)
	}
	if len(f.Names) == 0 {
		r.member(typ, receiverType(f.Type))
	}
	if f.Tag == nil {
		return
	}
	tag, err := strconv.Unquote(f.Tag.Value)
	if err != nil {
		return
	}
	for _, m := range regexp.MustCompile(`(?:json|yaml):"([^",]+)`).FindAllStringSubmatch(tag, -1) {
		r.names[m[1]] = true
	}
}

func receiverType(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return receiverType(t.X)
	case *ast.IndexExpr:
		return receiverType(t.X)
	case *ast.IndexListExpr:
		return receiverType(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// readImports makes an import alias of a package of this repository
// (oauthv1 for api/v1alpha1) name that package's declarations too.
func (r *repo) readImports(af *ast.File, pkgOfDir map[string]string) {
	for _, imp := range af.Imports {
		if imp.Name != nil && (imp.Name.Name == "_" || imp.Name.Name == ".") {
			continue
		}
		if p, _ := strconv.Unquote(imp.Path.Value); !strings.HasPrefix(p, r.module+"/") && strings.Contains(p, ".") {
			r.externals[importName(imp, p)] = true
		}
		p, _ := strconv.Unquote(imp.Path.Value)
		dir, ok := strings.CutPrefix(p, r.module+"/")
		if !ok {
			continue
		}
		if imp.Name == nil {
			continue
		}
		if pkg, ok := pkgOfDir[dir]; ok && imp.Name.Name != pkg {
			r.aliases = append(r.aliases, [2]string{imp.Name.Name, pkg})
		}
	}
}

// importName is the name an import is used by: its alias, or the last
// element of its path that is not a major version.
func importName(imp *ast.ImportSpec, p string) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	parts := strings.Split(p, "/")
	last := parts[len(parts)-1]
	if regexp.MustCompile(`^v[0-9]+$`).MatchString(last) && len(parts) > 1 {
		last = parts[len(parts)-2]
	}
	return last
}

func (r *repo) readTests(af *ast.File) {
	for _, decl := range af.Decls {
		if d, ok := decl.(*ast.FuncDecl); ok && d.Recv == nil {
			for _, prefix := range []string{"Test", "Fuzz", "Benchmark", "Example"} {
				if strings.HasPrefix(d.Name.Name, prefix) {
					r.tests[d.Name.Name] = true
				}
			}
		}
	}
}

// readMetrics finds the Prometheus metrics a file defines: each
// prometheus.*Opts literal, its Namespace, Subsystem and Name joined as
// prometheus.BuildFQName does, and the label names of the *Vec it is
// passed to. A histogram also answers to its _bucket, _sum and _count
// series, a summary to _sum and _count.
func (r *repo) readMetrics(af *ast.File, dir string) {
	consts := r.stringConsts(af)
	ast.Inspect(af, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		if name, labels, ok := descMetric(call); ok {
			r.metrics[name] = labels
			return true
		}
		lit, kind := optsLiteral(call.Args[0])
		if lit == nil {
			return true
		}
		var labels []string
		if len(call.Args) > 1 {
			labels = stringList(call.Args[1])
		}
		name := metricName(lit, consts)
		if name == "" {
			return true
		}
		r.metrics[name] = labels
		r.metricFiles[name] = dir
		switch kind {
		case "HistogramOpts":
			r.metrics[name+"_bucket"] = append(append([]string(nil), labels...), "le")
			r.metrics[name+"_sum"], r.metrics[name+"_count"] = labels, labels
		case "SummaryOpts":
			r.metrics[name+"_sum"], r.metrics[name+"_count"] = labels, labels
		}
		return true
	})
}

// descMetric reads prometheus.NewDesc("name", "help", []string{labels}, ...),
// the metrics a custom collector exports.
func descMetric(call *ast.CallExpr) (name string, labels []string, ok bool) {
	sel, isSel := call.Fun.(*ast.SelectorExpr)
	if !isSel || sel.Sel.Name != "NewDesc" || len(call.Args) < 3 {
		return "", nil, false
	}
	lit, isLit := call.Args[0].(*ast.BasicLit)
	if !isLit || lit.Kind != token.STRING {
		return "", nil, false
	}
	name, _ = strconv.Unquote(lit.Value)
	return name, stringList(call.Args[2]), name != ""
}

func optsLiteral(e ast.Expr) (*ast.CompositeLit, string) {
	if u, ok := e.(*ast.UnaryExpr); ok {
		e = u.X
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, ""
	}
	kind := receiverType(lit.Type)
	if !strings.HasSuffix(kind, "Opts") {
		return nil, ""
	}
	return lit, kind
}

func metricName(lit *ast.CompositeLit, consts map[string]string) string {
	parts := map[string]string{}
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		switch v := kv.Value.(type) {
		case *ast.BasicLit:
			parts[key.Name], _ = strconv.Unquote(v.Value)
		case *ast.Ident:
			parts[key.Name] = consts[v.Name]
		}
	}
	var name []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			name = append(name, parts[k])
		}
	}
	if parts["Name"] == "" {
		return ""
	}
	return strings.Join(name, "_")
}

func stringList(e ast.Expr) []string {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		b, ok := el.(*ast.BasicLit)
		if !ok {
			return nil
		}
		s, _ := strconv.Unquote(b.Value)
		out = append(out, s)
	}
	return out
}

func (r *repo) stringConsts(af *ast.File) map[string]string {
	out := map[string]string{}
	for _, decl := range af.Decls {
		d, ok := decl.(*ast.GenDecl)
		if !ok || d.Tok != token.CONST {
			continue
		}
		for _, s := range d.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if b, ok := vs.Values[i].(*ast.BasicLit); ok && b.Kind == token.STRING {
						out[n.Name], _ = strconv.Unquote(b.Value)
					}
				}
			}
		}
	}
	return out
}

var term = regexp.MustCompile(`\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b`)

// readStrings collects the CamelCase words of a file's string literals:
// condition and Event reasons, kinds, enum values.
func (r *repo) readStrings(af *ast.File) {
	ast.Inspect(af, func(n ast.Node) bool {
		if b, ok := n.(*ast.BasicLit); ok && b.Kind == token.STRING {
			for _, w := range term.FindAllString(b.Value, -1) {
				r.terms[w] = true
			}
		}
		return true
	})
}

var codeWord = regexp.MustCompile(`\b(gatehouse_[a-z0-9_]+|GATEHOUSE_[A-Z0-9_]+)\b`)

// readWords collects the gatehouse_* and GATEHOUSE_* words of every file
// that is not Markdown: table names, environment variables.
func (r *repo) readWords() error {
	for f := range r.files {
		if strings.HasSuffix(f, ".md") || strings.HasSuffix(f, ".sum") || strings.HasPrefix(f, "test/docs/") {
			continue // this test names missing things on purpose
		}
		b, err := os.ReadFile(filepath.Join(r.root, f))
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // binary
		}
		for _, w := range codeWord.FindAll(b, -1) {
			r.codeWords[string(w)] = true
		}
		if strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml") {
			for _, w := range term.FindAll(b, -1) {
				r.terms[string(w)] = true
			}
		}
	}
	return nil
}

var makeRule = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*(?:\s+[A-Za-z0-9][A-Za-z0-9_.-]*)*)\s*:(?:[^=]|$)`)

func (r *repo) readMakefile() error {
	makefile, err := os.ReadFile(filepath.Join(r.root, "Makefile"))
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(makefile)) {
		if m := makeRule.FindStringSubmatch(strings.TrimSuffix(line, "\n")); m != nil {
			for _, t := range strings.Fields(m[1]) {
				r.makeTargets[t] = true
			}
		}
	}
	return nil
}

func (r *repo) readCRDs() error {
	matches, err := filepath.Glob(filepath.Join(r.root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(matches) == 0 {
		return fmt.Errorf("no CRDs in config/crd/bases: %v", err)
	}
	sort.Strings(matches)
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &crd); err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
				r.crdRoots = append(r.crdRoots, v.Schema.OpenAPIV3Schema)
				r.schemaNames(v.Schema.OpenAPIV3Schema)
			}
		}
	}
	return nil
}

func (r *repo) schemaNames(s *apiextensionsv1.JSONSchemaProps) {
	for name, p := range s.Properties {
		r.names[name] = true
		r.schemaNames(&p)
	}
	if s.Items != nil && s.Items.Schema != nil {
		r.schemaNames(s.Items.Schema)
	}
}

// field says whether a dotted path such as spec.signing.algorithm is a
// field of one of the CRDs; list items are looked into.
func (r *repo) field(p string) bool {
	for _, root := range r.crdRoots {
		s := root
		for _, seg := range strings.Split(p, ".") {
			for s.Items != nil && s.Items.Schema != nil {
				s = s.Items.Schema
			}
			next, ok := s.Properties[seg]
			if !ok {
				s = nil
				break
			}
			s = &next
		}
		if s != nil {
			return true
		}
	}
	return false
}

func (r *repo) readValues() error {
	b, err := os.ReadFile(filepath.Join(r.root, "charts", "gatehouse", "values.yaml"))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, &r.values); err != nil {
		return fmt.Errorf("charts/gatehouse/values.yaml: %w", err)
	}
	var walk func(any)
	walk = func(v any) {
		if m, ok := v.(map[string]any); ok {
			for k, c := range m {
				r.names[k] = true
				walk(c)
			}
		}
	}
	walk(r.values)
	return nil
}

// value says whether a dotted path such as operator.resources is a key of
// the chart's values.
func (r *repo) value(p string) bool {
	var v any = r.values
	for _, seg := range strings.Split(p, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[seg]; !ok {
			return false
		}
	}
	return true
}

// readKubernetesFields adds the JSON field names of the Kubernetes objects
// Gatehouse creates or the docs show (metadata, Pods, Deployments,
// Services, PodDisruptionBudgets, RBAC), so that managedFields or
// maxUnavailable in the docs are known names.
func (r *repo) readKubernetesFields() {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		r.terms[t.Name()] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				r.names[name] = true
			}
			walk(f.Type)
		}
	}
	for _, obj := range []any{corev1.Pod{}, corev1.Secret{}, corev1.ConfigMap{}, corev1.Service{}, appsv1.Deployment{},
		policyv1.PodDisruptionBudget{}, rbacv1.ClusterRole{}, rbacv1.RoleBinding{}, metav1.Condition{}} {
		walk(reflect.TypeOf(obj))
	}
}
