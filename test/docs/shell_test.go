package docs

import (
	"regexp"
	"strings"
)

// shellWords splits a command line as a shell would for what the docs
// need: quotes removed, operators (&&, ||, ;, |, &, parentheses) their own
// words, a comment ending the line.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(line[i+1:], ch)
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '#' && !inWord:
			flush()
			return words
		case strings.IndexByte(";|&()", ch) >= 0:
			flush()
			op := string(ch)
			if i+1 < len(line) && (line[i:i+2] == "&&" || line[i:i+2] == "||") {
				op = line[i : i+2]
				i++
			}
			words = append(words, op)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words
}

func isOperator(w string) bool {
	switch w {
	case "&&", "||", ";", "|", "&", "(", ")":
		return true
	}
	return false
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// checkShell checks each command of a line: make's targets and DEV_FLAGS,
// gatehouse's subcommand and flags, go test's -run pattern, and every
// word that is a path into the repository.
func (c *checker) checkShell(d *document, line int, text string) {
	words := shellWords(text)
	for _, w := range words {
		if pathLike.MatchString(w) && strings.Contains(w, "/") {
			c.checkPath(d, line, w)
		}
	}
	for len(words) > 0 {
		end := 0
		for end < len(words) && !isOperator(words[end]) {
			end++
		}
		c.checkCommand(d, line, words[:end])
		if end == len(words) {
			break
		}
		words = words[end+1:]
	}
}

func (c *checker) checkCommand(d *document, line int, words []string) {
	for len(words) > 0 {
		w := words[0]
		if v, ok := strings.CutPrefix(w, "DEV_FLAGS="); ok {
			c.checkFlags(d, line, "dev", shellWords(v))
		} else if !assignment.MatchString(w) && w != "sudo" && w != "time" && w != "env" && w != "exec" {
			break
		}
		words = words[1:]
	}
	if len(words) == 0 {
		return
	}
	switch cmd, args := words[0], words[1:]; {
	case cmd == "make":
		c.checkMake(d, line, args)
	case cmd == "gatehouse" || strings.HasSuffix(cmd, "/gatehouse"):
		if len(args) == 0 || !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(args[0]) {
			return // output such as "gatehouse dev: ready", not a command
		}
		c.count("commands")
		if !c.cli.isCommand(args[0]) {
			c.report(d, line, "gatehouse has no command %q (gatehouse help)", args[0])
			return
		}
		c.checkFlags(d, line, args[0], args[1:])
	case cmd == "go" && len(args) > 0 && args[0] == "test":
		c.checkRunPattern(d, line, args)
	}
}

func (c *checker) checkMake(d *document, line int, args []string) {
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "DEV_FLAGS="):
			c.checkFlags(d, line, "dev", shellWords(strings.TrimPrefix(a, "DEV_FLAGS=")))
		case strings.HasPrefix(a, "-") || assignment.MatchString(a):
		default:
			c.count("make targets")
			if !c.repo.makeTargets[a] {
				c.report(d, line, "make target %s is not in the Makefile", a)
			}
		}
	}
}

// checkFlags checks the flags among args ([--flag value] in a synopsis
// counts too) against `gatehouse <command> -h`.
func (c *checker) checkFlags(d *document, line int, command string, args []string) {
	for _, a := range args {
		a = strings.Trim(a, "[]")
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		c.count("flags")
		if name != "" && !c.cli.has(command, name) {
			c.report(d, line, "gatehouse %s has no flag --%s (gatehouse %s -h)", command, name, command)
		}
	}
}

// checkRunPattern: go test's -run must match at least one test, unless
// it is meant to match none (-run '^$', to run only benchmarks).
func (c *checker) checkRunPattern(d *document, line int, args []string) {
	for i, a := range args {
		pattern, ok := strings.CutPrefix(a, "-run=")
		if !ok && a == "-run" && i+1 < len(args) {
			pattern, ok = args[i+1], true
		}
		if !ok || pattern == "" {
			continue
		}
		top, _, _ := strings.Cut(pattern, "/")
		re, err := regexp.Compile(top)
		if err != nil {
			c.report(d, line, "go test -run %s is not a valid pattern: %v", pattern, err)
			continue
		}
		found := re.MatchString("") && strings.Contains(top, "$") // -run '^$': run none, on purpose
		for t := range c.repo.tests {
			if re.MatchString(t) {
				found = true
				break
			}
		}
		if !found {
			c.report(d, line, "go test -run %s matches no test", pattern)
		}
	}
}

var treeEntry = regexp.MustCompile(`^( {0,8})([\w.-][\w./-]*(?:, [\w.-][\w./-]*)*)(?:\s{2,}\S.*)?$`)

// checkTree checks a layout block, a tree of paths indented under their
// directories with a description beside each:
//
//	server/          the token server
//	  config/        its configuration
//
// It says whether b was such a block.
func (c *checker) checkTree(d *document, b block) bool {
	type entry struct {
		line, indent int
		names        []string
	}
	var entries []entry
	for i, l := range b.lines {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, strings.Repeat(" ", 9)) {
			continue // blank, or a description running on
		}
		m := treeEntry.FindStringSubmatch(l)
		if m == nil {
			return false
		}
		entries = append(entries, entry{line: b.line + i, indent: len(m[1]), names: strings.Split(m[2], ", ")})
	}
	if len(entries) < 3 || entries[0].indent != 0 || !strings.Contains(entries[0].names[0], "/") {
		return false
	}
	type dir struct {
		indent int
		path   string
	}
	var stack []dir
	for _, e := range entries {
		for len(stack) > 0 && stack[len(stack)-1].indent >= e.indent {
			stack = stack[:len(stack)-1]
		}
		parent := ""
		if len(stack) > 0 {
			parent = stack[len(stack)-1].path
		}
		for _, n := range e.names {
			p := strings.TrimSuffix(parent+n, "/")
			c.count("paths")
			if !c.repo.exists(p) {
				c.report(d, e.line, "layout: %s does not exist", p)
			}
		}
		if strings.HasSuffix(e.names[0], "/") {
			stack = append(stack, dir{indent: e.indent, path: parent + e.names[0]})
		}
	}
	return true
}
