package docs

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// document is a Markdown file as the docs test reads it: the code spans,
// links and fenced code blocks, each with its line, and the anchors its
// headings make. Prose is never read.
type document struct {
	path    string // slash-separated, relative to the repository root
	spans   []snippet
	links   []snippet
	blocks  []block
	anchors map[string]bool
}

// snippet is a code span or a link target and the line it starts on.
type snippet struct {
	line int
	text string
}

// block is a fenced code block: its info string's first word and its lines.
type block struct {
	line  int // line of the first content line
	lang  string
	lines []string
}

var (
	fenceOpen = regexp.MustCompile("^\\s*(`{3,}|~{3,})\\s*([^\\s`]*)")
	heading   = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	// linkTarget finds [text](target) and ![alt](target), the target in
	// group 1; code spans are blanked out before it runs.
	linkTarget = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
)

// parseMarkdown splits src into paragraphs and fenced blocks, as
// CommonMark does for what the docs use: a code span may run over a line
// break within a paragraph, a fence closes with the same character at
// least as many times.
func parseMarkdown(path, src string) *document {
	d := &document{path: path, anchors: map[string]bool{}}
	slugs := map[string]int{}
	lines := strings.Split(src, "\n")
	var para []string
	paraStart := 0
	flush := func() {
		if len(para) > 0 {
			d.readParagraph(paraStart, para)
		}
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := fenceOpen.FindStringSubmatch(line); m != nil {
			flush()
			b := block{line: i + 2, lang: strings.ToLower(m[2])}
			closer := regexp.MustCompile("^\\s*" + regexp.QuoteMeta(m[1][:1]) + "{" + strconv.Itoa(len(m[1])) + ",}\\s*$")
			for i++; i < len(lines) && !closer.MatchString(lines[i]); i++ {
				b.lines = append(b.lines, lines[i])
			}
			d.blocks = append(d.blocks, b)
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			flush()
			d.addAnchor(slugs, m[2])
			d.readParagraph(i, []string{m[2]})
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if len(para) == 0 {
			paraStart = i
		}
		para = append(para, line)
	}
	flush()
	return d
}

// readParagraph collects the code spans and links of consecutive lines
// starting at index first (0-based).
func (d *document) readParagraph(first int, lines []string) {
	text := strings.Join(lines, "\n")
	lineAt := func(off int) int { return first + 1 + strings.Count(text[:off], "\n") }
	masked := []byte(text)
	for _, s := range codeSpans(text) {
		d.spans = append(d.spans, snippet{line: lineAt(s.start), text: s.content})
		for j := s.start; j < s.end; j++ {
			if masked[j] != '\n' {
				masked[j] = ' '
			}
		}
	}
	for _, m := range linkTarget.FindAllSubmatchIndex(masked, -1) {
		d.links = append(d.links, snippet{line: lineAt(m[2]), text: text[m[2]:m[3]]})
	}
}

type span struct {
	start, end int // of the whole span, backticks included
	content    string
}

// codeSpans finds CommonMark code spans: a run of n backticks up to the
// next run of exactly n; line breaks become spaces, and one space is
// stripped from each end when both ends have one.
func codeSpans(text string) []span {
	var out []span
	for i := 0; i < len(text); {
		if text[i] != '`' {
			i++
			continue
		}
		n := runLen(text, i)
		end := -1
		for j := i + n; j < len(text); {
			if text[j] != '`' {
				j++
				continue
			}
			m := runLen(text, j)
			if m == n {
				end = j
				break
			}
			j += m
		}
		if end < 0 {
			i += n
			continue
		}
		c := strings.ReplaceAll(text[i+n:end], "\n", " ")
		if len(c) >= 2 && c[0] == ' ' && c[len(c)-1] == ' ' && strings.TrimSpace(c) != "" {
			c = c[1 : len(c)-1]
		}
		out = append(out, span{start: i, end: end + n, content: c})
		i = end + n
	}
	return out
}

func runLen(s string, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	return n
}

func (d *document) addAnchor(seen map[string]int, title string) {
	s := slug(title)
	if n := seen[s]; n > 0 {
		d.anchors[s+"-"+strconv.Itoa(n)] = true
	} else {
		d.anchors[s] = true
	}
	seen[s]++
}

// slug is GitHub's anchor for a heading: lower case, punctuation other
// than '-' and '_' dropped, spaces made '-'. Links keep their text only.
func slug(title string) string {
	title = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(title, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(title)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
