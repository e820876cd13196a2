package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	setupOnce sync.Once
	setupErr  error
	theRepo   *repo
	theCLI    *cli
	binDir    string
)

// setup reads the repository and builds the gatehouse binary, once for
// all tests of the package.
func setup(t *testing.T) (*repo, *cli) {
	t.Helper()
	setupOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			setupErr = err
			return
		}
		if theRepo, setupErr = loadRepo(root); setupErr != nil {
			return
		}
		if binDir, setupErr = os.MkdirTemp("", "gatehouse-docs-test"); setupErr != nil {
			return
		}
		theCLI, setupErr = loadCLI(root, binDir)
	})
	if setupErr != nil {
		t.Fatalf("reading the repository: %v", setupErr)
	}
	return theRepo, theCLI
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// docFiles are the documents the test holds to the code: README.md,
// CONTRIBUTING.md and everything under docs/.
func docFiles(r *repo) []string {
	var out []string
	for f := range r.files {
		if f == "README.md" || f == "CONTRIBUTING.md" || (strings.HasPrefix(f, "docs/") && strings.HasSuffix(f, ".md")) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// TestDocsNameOnlyWhatExists fails, naming file and line, for every path,
// Go identifier, test, make target, gatehouse flag, metric, environment
// variable, API field, chart value, link or anchor in the docs that does
// not exist.
func TestDocsNameOnlyWhatExists(t *testing.T) {
	r, cl := setup(t)
	c := &checker{repo: r, cli: cl, docs: map[string]*document{}}
	files := docFiles(r)
	if len(files) < 5 {
		t.Fatalf("found only %d documents (%v): is this the repository root?", len(files), files)
	}
	for _, f := range files {
		c.check(c.document(f))
	}
	for _, p := range c.problems {
		t.Error(p)
	}
	var kinds []string
	for k, n := range c.counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	t.Logf("checked in %d documents: %s", len(files), strings.Join(kinds, ", "))
	if len(c.problems) > 0 {
		t.Logf("%d problems in %d documents. Name only what exists (CONTRIBUTING.md, \"Docs\").", len(c.problems), len(files))
	}
}

// TestCLIReferenceMatchesHelp holds docs/reference/cli.md to the binary:
// the same commands, and for each the same flags with the same defaults
// as `gatehouse <command> -h` prints.
func TestCLIReferenceMatchesHelp(t *testing.T) {
	r, cl := setup(t)
	for _, p := range compareCLIReference(r, cl, "docs/reference/cli.md") {
		t.Error(p)
	}
}

// TestMetricsReferenceIsComplete: every gatehouse_* metric the code
// registers is in docs/reference/metrics.md.
func TestMetricsReferenceIsComplete(t *testing.T) {
	r, _ := setup(t)
	const file = "docs/reference/metrics.md"
	c := &checker{repo: r, docs: map[string]*document{}}
	d := c.document(file)
	if d == nil {
		t.Fatalf("%s cannot be read", file)
	}
	listed := map[string]bool{}
	for _, s := range d.spans {
		for _, m := range metricRef.FindAllStringSubmatch(s.text, -1) {
			listed[strings.TrimSuffix(m[0], m[1])] = true
		}
	}
	var missing []string
	for name, dir := range r.metricFiles {
		if strings.HasPrefix(name, "gatehouse_") && !listed[name] {
			missing = append(missing, fmt.Sprintf("%s (registered in %s/)", name, dir))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s: metric %s is not listed", file, m)
	}
}

var (
	cliSection  = regexp.MustCompile(`^## gatehouse ([a-z-]+)\s*$`)
	cliCommand  = regexp.MustCompile("^\\|\\s*`gatehouse ([a-z-]+)`\\s*\\|")
	cliFlagRow  = regexp.MustCompile("^\\|\\s*`--?([A-Za-z0-9][\\w.-]*)`\\s*\\|([^|]*)\\|")
	defaultCell = regexp.MustCompile("^`(.*)`$")
)

type documentedFlag struct {
	line int
	def  string
}

func compareCLIReference(r *repo, cl *cli, file string) []problem {
	b, err := os.ReadFile(filepath.Join(r.root, file))
	if err != nil {
		return []problem{{file: file, line: 1, msg: err.Error()}}
	}
	var probs []problem
	report := func(line int, format string, args ...any) {
		probs = append(probs, newProblem(file, line, format, args...))
	}
	listed := map[string]int{}                      // command -> line in the commands table
	sections := map[string]int{}                    // command -> line of its heading
	flags := map[string]map[string]documentedFlag{} // command -> flag -> row
	current := ""
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		if m := cliSection.FindStringSubmatch(line); m != nil {
			current = m[1]
			sections[current] = n
			flags[current] = map[string]documentedFlag{}
			continue
		}
		if m := cliCommand.FindStringSubmatch(line); m != nil && current == "" {
			listed[m[1]] = n
			continue
		}
		if m := cliFlagRow.FindStringSubmatch(line); m != nil && current != "" {
			def := strings.TrimSpace(m[2])
			if dm := defaultCell.FindStringSubmatch(def); dm != nil {
				def = dm[1]
			}
			flags[current][m[1]] = documentedFlag{line: n, def: def}
		}
	}
	for _, name := range cl.commands {
		if _, ok := listed[name]; !ok {
			report(1, "gatehouse help lists command %s; the commands table does not", name)
		}
		if _, ok := sections[name]; !ok {
			report(1, "gatehouse help lists command %s; there is no \"## gatehouse %s\" section", name, name)
			continue
		}
		probs = append(probs, compareFlags(file, name, sections[name], flags[name], cl.flags[name])...)
	}
	for name, line := range listed {
		if !cl.isCommand(name) {
			report(line, "gatehouse has no command %s (gatehouse help)", name)
		}
	}
	for name, line := range sections {
		if !cl.isCommand(name) {
			report(line, "gatehouse has no command %s (gatehouse help)", name)
		}
	}
	return probs
}

func compareFlags(file, command string, heading int, documented map[string]documentedFlag, actual map[string]flagInfo) []problem {
	var probs []problem
	var names []string
	for name := range actual {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := actual[name]
		doc, ok := documented[name]
		switch {
		case !ok:
			probs = append(probs, newProblem(file, heading, "gatehouse %s -h has --%s; its table does not", command, name))
		case doc.def != f.def:
			probs = append(probs, newProblem(file, doc.line, "gatehouse %s --%s: the table says default %q, -h says %q", command, name, doc.def, f.def))
		}
	}
	for name, doc := range documented {
		if _, ok := actual[name]; !ok {
			probs = append(probs, newProblem(file, doc.line, "gatehouse %s has no flag --%s (gatehouse %s -h)", command, name, command))
		}
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].line < probs[j].line })
	return probs
}

func newProblem(file string, line int, format string, args ...any) problem {
	return problem{file: file, line: line, msg: fmt.Sprintf(format, args...)}
}
