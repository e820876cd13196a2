// Package docs holds the docs test: it reads README.md, CONTRIBUTING.md and
// every Markdown file under docs/, and fails when one of them names
// something that does not exist in the repository (a path, a Go identifier,
// a test, a make target, a flag of a gatehouse command, a metric, an API
// field, a link or its anchor), or when docs/reference/cli.md and the
// commands' --help disagree. It runs in `make test`; CONTRIBUTING.md,
// "Docs", says what it checks and how to write docs it can check.
//
// It reads only code spans, fenced code blocks and links, never prose:
// what a writer puts in backticks is a name, and a name must exist.
package docs
