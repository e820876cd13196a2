package docs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// problem is one name a document uses that does not exist.
type problem struct {
	file string
	line int
	msg  string
}

func (p problem) String() string { return fmt.Sprintf("%s:%d: %s", p.file, p.line, p.msg) }

// checker checks documents against the repository and the CLI.
type checker struct {
	repo     *repo
	cli      *cli
	docs     map[string]*document // parsed on demand, for link anchors
	problems []problem
	counts   map[string]int // references checked, by kind
}

func (c *checker) count(kind string) {
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[kind]++
}

func (c *checker) report(d *document, line int, format string, args ...any) {
	c.problems = append(c.problems, newProblem(d.path, line, format, args...))
}

// document returns the parsed Markdown file p, or nil if it cannot be read.
func (c *checker) document(p string) *document {
	if d, ok := c.docs[p]; ok {
		return d
	}
	b, err := os.ReadFile(filepath.Join(c.repo.root, filepath.FromSlash(p)))
	var d *document
	if err == nil {
		d = parseMarkdown(p, string(b))
	}
	c.docs[p] = d
	return d
}

func (c *checker) check(d *document) {
	for _, l := range d.links {
		c.checkLink(d, l)
	}
	for _, s := range d.spans {
		c.checkSpan(d, s.line, strings.TrimSpace(s.text))
	}
	for _, b := range d.blocks {
		c.checkBlock(d, b)
	}
}

var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// checkLink: a relative link's file or directory exists, and its #anchor
// is made by a heading of the target (or of this page).
func (c *checker) checkLink(d *document, l snippet) {
	if scheme.MatchString(l.text) {
		return
	}
	c.count("links")
	target, anchor, _ := strings.Cut(l.text, "#")
	p := d.path
	if target != "" {
		p = path.Join(path.Dir(d.path), target)
		if strings.HasPrefix(p, "../") || !c.repo.exists(p) {
			c.report(d, l.line, "link target %s does not exist (%s from %s)", l.text, p, path.Dir(d.path))
			return
		}
	}
	if anchor == "" || !strings.HasSuffix(p, ".md") {
		return
	}
	if t := c.document(p); t != nil && !t.anchors[anchor] {
		c.report(d, l.line, "link %s: no heading of %s makes the anchor #%s", l.text, p, anchor)
	}
}

var (
	metricRef     = regexp.MustCompile(`\bgatehouse_[a-z0-9_]+(\{[^}]*\})?`)
	envRef        = regexp.MustCompile(`\bGATEHOUSE_[A-Z0-9_]+\b`)
	testName      = regexp.MustCompile(`^(Test|Fuzz|Benchmark|Example)[A-Z0-9_]\w*$`)
	apiField      = regexp.MustCompile(`^(spec|status)(\.[A-Za-z]\w*)+$`)
	standaloneFlg = regexp.MustCompile(`^--?([A-Za-z][\w-]*)(=\S*)?(\s+\S+)?$`)
	qualified     = regexp.MustCompile(`^([A-Za-z_]\w*)\.([A-Za-z_]\w*)(\(\))?$`)
	dotted        = regexp.MustCompile(`^[a-z]\w*(\.[A-Za-z]\w*)+$`)
	camelCase     = regexp.MustCompile(`^[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*$`)
	pascalCase    = regexp.MustCompile(`^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+$`)
	pathLike      = regexp.MustCompile(`^(\./)?[\w.<>*-]+(/[\w.<>*-]*)*(/\.\.\.)?$`)
	commandStart  = regexp.MustCompile(`^(sudo\s+)?(make|gatehouse|bin/gatehouse|\./bin/gatehouse|go)\s|^DEV_FLAGS=`)
)

// fileExt are the extensions that make a.b a file name, not a Go selector.
var fileExt = map[string]bool{"go": true, "md": true, "yaml": true, "yml": true, "json": true, "sh": true, "sql": true,
	"txt": true, "crt": true, "key": true, "pem": true, "env": true, "tpl": true, "mod": true, "sum": true, "html": true, "css": true}

// checkSpan decides what a code span names, most specific first, and
// checks that. A span that looks like none of these is not checked.
func (c *checker) checkSpan(d *document, line int, s string) {
	c.checkWords(d, line, s)
	switch {
	case commandStart.MatchString(s):
		c.checkShell(d, line, s)
	case standaloneFlg.MatchString(s):
		c.checkStandaloneFlag(d, line, s)
	case testName.MatchString(s):
		c.count("tests")
		if !c.repo.tests[s] {
			c.report(d, line, "test %s is not declared in any _test.go file", s)
		}
	case apiField.MatchString(s):
		c.count("API fields")
		if !c.repo.field(s) {
			c.report(d, line, "API field %s is in none of the CRDs in config/crd/bases", s)
		}
	case pathLike.MatchString(s) && (strings.Contains(s, "/") || fileExt[strings.TrimPrefix(path.Ext(s), ".")]):
		c.checkPath(d, line, s)
	case dotted.MatchString(s) && c.repo.values[firstSegment(s)] != nil:
		c.count("chart values")
		if !c.repo.value(s) {
			c.report(d, line, "chart value %s is not in charts/gatehouse/values.yaml", s)
		}
	case qualified.MatchString(s):
		c.checkQualified(d, line, s)
	case pascalCase.MatchString(s):
		c.count("reasons, kinds and types")
		if !c.repo.names[s] && !c.repo.terms[s] && externalNames[s] == "" {
			c.report(d, line, "%s is neither a Go name nor a word of the code's strings or YAML (a condition reason, kind or enum value) "+
				"(if it is another project's, add it to externalNames in test/docs)", s)
		}
	case camelCase.MatchString(s):
		c.count("Go and field names")
		if !c.repo.names[s] && externalNames[s] == "" {
			c.report(d, line, "%s is declared nowhere: not a Go name, struct tag, CRD or Kubernetes API field, or chart value "+
				"(if it is another project's, add it to externalNames in test/docs)", s)
		}
	}
}

// checkWords checks the metrics and environment variables anywhere in s.
func (c *checker) checkWords(d *document, line int, s string) {
	for _, m := range metricRef.FindAllStringSubmatch(s, -1) {
		c.checkMetric(d, line, strings.TrimSuffix(m[0], m[1]), m[1])
	}
	for _, v := range envRef.FindAllString(s, -1) {
		c.count("environment variables")
		if !c.repo.codeWords[v] {
			c.report(d, line, "environment variable %s is read nowhere in the code or scripts", v)
		}
	}
}

var metricSuffix = regexp.MustCompile(`_(total|seconds|bucket|sum|count|bytes|info|ratio)$`)

// checkMetric: a gatehouse_ name is a registered metric (and any label
// it is shown with is one of the metric's), or, if it does not look like
// a metric, a name the code uses (a table, a channel).
func (c *checker) checkMetric(d *document, line int, name, selector string) {
	c.count("metrics")
	labels, ok := c.repo.metrics[name]
	if !ok {
		if metricSuffix.MatchString(name) || !c.repo.codeWords[name] {
			c.report(d, line, "metric %s is not registered by any prometheus.*Opts in the code", name)
		}
		return
	}
	if selector == "" || labels == nil {
		return
	}
	for _, l := range labelNames(selector) {
		if !contains(labels, l) {
			c.report(d, line, "metric %s has no label %q (its labels: %s)", name, l, strings.Join(labels, ", "))
		}
	}
}

// labelNames reads {a,b} or {a="x",b=~"y"}.
func labelNames(sel string) []string {
	var out []string
	for _, part := range strings.Split(strings.Trim(sel, "{}"), ",") {
		name := strings.TrimSpace(regexp.MustCompile(`[=!~].*$`).ReplaceAllString(part, ""))
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstSegment(s string) string {
	first, _, _ := strings.Cut(s, ".")
	return first
}

// externalNames are other projects' camelCase names the docs compare
// Gatehouse with.
var externalNames = map[string]string{
	"allowedRoutes":    "Gateway API",
	"ImagePullBackOff": "kubelet", "CreateContainerConfigError": "kubelet",
	"enablePKCEAuthentication": "Argo CD's oidc.config",
	"AlwaysAllow":              "Kubernetes PodDisruptionBudget unhealthyPodEvictionPolicy",
	"DoNotSchedule":            "Kubernetes topology spread whenUnsatisfiable",
	"minReplicas":              "Kubernetes HorizontalPodAutoscaler", "maxReplicas": "Kubernetes HorizontalPodAutoscaler",
	"toFQDNs": "Cilium network policy",
}

// externalFlags are flags of other programs that the docs name on their
// own, in a span without the command: they are not gatehouse's.
var externalFlags = map[string]string{
	"authentication-config": "kube-apiserver", "v": "kube-apiserver",
	"run":              "go test",
	"whitelist-domain": "oauth2-proxy", "provider-ca-file": "oauth2-proxy",
	"code-challenge-method": "oauth2-proxy", "backend-logout-url": "oauth2-proxy", "cookie-refresh": "oauth2-proxy",
	"set": "helm", "trimpath": "go build",
	"token-url": "examples/workload",
}

func (c *checker) checkStandaloneFlag(d *document, line int, s string) {
	name := standaloneFlg.FindStringSubmatch(s)[1]
	c.count("flags")
	if c.cli.anyHas(name) || externalFlags[name] != "" {
		return
	}
	c.report(d, line, "flag --%s is a flag of no gatehouse command (if it is another program's, add it to externalFlags in test/docs)", name)
}

// checkPath: a path whose first element is in the repository, or that
// starts with ./, must exist;
// a bare file name (es256.go) must exist somewhere. Go package patterns
// (./..., server/...) name their directory.
func (c *checker) checkPath(d *document, line int, s string) {
	p := strings.TrimPrefix(s, "./")
	p = strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
	if p == "" || p == "." {
		return
	}
	if !strings.Contains(s, "/") {
		switch path.Ext(p) {
		case ".go", ".sh", ".sql", ".tpl", ".md":
			if !c.repo.basename(p) && !c.repo.exists(p) {
				c.report(d, line, "file %s exists nowhere in the repository", p)
			}
		}
		return
	}
	first, _, _ := strings.Cut(p, "/")
	c.count("paths")
	if c.repo.built[first] {
		return // made by make or gatehouse dev, ignored by git
	}
	if (c.repo.top[first] || strings.HasPrefix(s, "./")) && !c.repo.exists(p) {
		c.report(d, line, "path %s does not exist", s)
	}
}

// checkQualified: pkg.Name must be declared in a package of that name
// (or import alias); Type.Member must be a method or field of a type of
// that exported name. Anything else (a local variable, a file name, a
// YAML path such as issuer.url, an unexported name after a package, which
// is more often a host name) is not checked.
func (c *checker) checkQualified(d *document, line int, s string) {
	m := qualified.FindStringSubmatch(s)
	left, right := m[1], m[2]
	if fileExt[right] {
		return
	}
	c.count("Go identifiers")
	if decls, ok := c.repo.pkgDecls[left]; ok && !isType(c.repo, left) {
		// A name another module's package also has (oidc) may mean that one.
		if right[:1] == strings.ToUpper(right[:1]) && !decls[right] && !c.repo.externals[left] {
			c.report(d, line, "%s: package %s declares no %s", s, left, right)
		}
		return
	}
	if members, ok := c.repo.typeMembers[left]; ok && isType(c.repo, left) && !members[right] {
		c.report(d, line, "%s: type %s has no method or field %s", s, left, right)
	}
}

func isType(r *repo, name string) bool {
	_, ok := r.typeMembers[name]
	return ok && strings.ToUpper(name[:1]) == name[:1]
}

func (c *checker) checkBlock(d *document, b block) {
	switch b.lang {
	case "sh", "bash", "shell", "console", "":
		if b.lang == "" && c.checkTree(d, b) {
			return
		}
		for _, l := range shellLines(b) {
			c.checkWords(d, l.line, l.text)
			c.checkShell(d, l.line, l.text)
		}
	case "go":
		for i, line := range b.lines {
			c.checkWords(d, b.line+i, line)
			for _, m := range goSelector.FindAllStringSubmatch(line, -1) {
				if _, ok := c.repo.pkgDecls[m[1]]; ok {
					c.checkQualified(d, b.line+i, m[1]+"."+m[2])
				}
			}
		}
	default:
		for i, line := range b.lines {
			c.checkWords(d, b.line+i, line)
		}
	}
}

var goSelector = regexp.MustCompile(`\b([a-z]\w*)\.([A-Z]\w*)\b`)

// shellLines joins continued lines and drops prompts.
func shellLines(b block) []snippet {
	var out []snippet
	var cur strings.Builder
	start := 0
	for i, line := range b.lines {
		if cur.Len() == 0 {
			start = b.line + i
		}
		t := strings.TrimPrefix(strings.TrimSpace(line), "$ ")
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`) + " ")
			continue
		}
		cur.WriteString(t)
		out = append(out, snippet{line: start, text: cur.String()})
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, snippet{line: start, text: cur.String()})
	}
	return out
}
