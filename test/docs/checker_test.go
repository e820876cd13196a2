package docs

import (
	"reflect"
	"strings"
	"testing"
)

// TestCheckerFindsWhatIsMissing runs the checker on small documents, each
// naming one thing that does not exist, and expects exactly one problem
// on the right line; the same documents naming things that exist get none.
func TestCheckerFindsWhatIsMissing(t *testing.T) {
	r, cl := setup(t)
	cases := []struct {
		name, bad, good, want string
		line                  int // of the problem; the document's line 5 is the first of bad
	}{
		{"path", "see `server/nosuch.go`", "see `server/token.go`", "path server/nosuch.go does not exist", 5},
		{"path with a placeholder", "`controllers/<kind>_widget.go`", "`controllers/<kind>_controller.go`", "does not exist", 5},
		{"package pattern", "`go test ./nosuchdir/...`", "`go test ./server/...`", "path ./nosuchdir/... does not exist", 5},
		{"bare file name", "in `nosuch_file.go`", "in `token.go`", "file nosuch_file.go exists nowhere", 5},
		{"package identifier", "`keyset.NoSuchFunc`", "`keyset.Advance`", "package keyset declares no NoSuchFunc", 5},
		{"method", "`Snapshot.NoSuchMethod`", "`Snapshot.SameServer`", "type Snapshot has no method or field NoSuchMethod", 5},
		{"unexported Go name", "`noSuchHelper`", "`summarizeServerReady`", "noSuchHelper is declared nowhere", 5},
		{"condition reason", "`IssuerConflicted`", "`IssuerConflict`", "IssuerConflicted is neither a Go name", 5},
		{"test", "`TestNoSuchThing`", "`TestInvariantCodeExpires`", "test TestNoSuchThing is not declared", 5},
		{"go test -run", "```sh\ngo test ./server/ -run TestNoSuchThing\n```", "```sh\ngo test ./server/ -run TestInvariant\n```", "matches no test", 6},
		{"go test -run for no test", "```sh\ngo test -run TestNoSuch$ -bench . ./server/\n```", "```sh\ngo test -run '^$' -bench . ./server/\n```", "matches no test", 6},
		{"make target", "run `make no-such-target`", "run `make test-api`", "make target no-such-target is not in the Makefile", 5},
		{"make in a block", "```sh\nsudo make cluster && make no-such-target\n```", "```sh\nsudo make cluster && make test-cluster\n```", "make target no-such-target", 6},
		{"command", "`gatehouse nosuch`", "`gatehouse login`", `gatehouse has no command "nosuch"`, 5},
		{"command flag", "`gatehouse server --no-such-flag`", "`gatehouse server --gc-interval 5m`", "gatehouse server has no flag --no-such-flag", 5},
		{"flag in a synopsis", "```sh\ngatehouse dev [--state-dir D] [--no-such-flag]\n```", "```sh\ngatehouse dev [--state-dir D] [--reset]\n```", "gatehouse dev has no flag --no-such-flag", 6},
		{"DEV_FLAGS", "`make dev DEV_FLAGS='--port 5557 --nope'`", "`make dev DEV_FLAGS='--port 5557 --reset'`", "gatehouse dev has no flag --nope", 5},
		{"flag alone", "`--no-such-flag`", "`--trusted-proxies`", "flag --no-such-flag is a flag of no gatehouse command", 5},
		{"metric", "`gatehouse_no_such_total`", "`gatehouse_server_requests_total`", "metric gatehouse_no_such_total is not registered", 5},
		{"metric label", "`gatehouse_client_secrets_total{color}`", "`gatehouse_client_secrets_total{event}`", `has no label "color"`, 5},
		{"metric in PromQL", "```yaml\nexpr: rate(gatehouse_server_nope_seconds_bucket[5m])\n```", "```yaml\nexpr: rate(gatehouse_server_request_duration_seconds_bucket{le=\"1\"}[5m])\n```", "metric gatehouse_server_nope_seconds_bucket", 6},
		{"environment variable", "`GATEHOUSE_NO_SUCH`", "`GATEHOUSE_REQUIRE_ALL=1`", "environment variable GATEHOUSE_NO_SUCH", 5},
		{"API field", "`spec.signing.noSuchField`", "`spec.signing.prepublishPeriod`", "API field spec.signing.noSuchField", 5},
		{"chart value", "`operator.noSuchValue`", "`operator.resources`", "chart value operator.noSuchValue", 5},
		{"link", "[x](nosuch.md)", "[x](concepts.md)", "link target nosuch.md does not exist", 5},
		{"anchor", "[x](concepts.md#no-such-heading)", "[x](concepts.md#the-resources)", "no heading of docs/concepts.md makes the anchor #no-such-heading", 5},
		{"anchor on this page", "# Here\n\n[x](#there)", "# Here\n\n[x](#here)", "makes the anchor #there", 7},
		{"layout", "```\napi/v1alpha1/    types\nserver/          server\n  nosuch/        nothing\n```", "```\napi/v1alpha1/    types\nserver/          server\n  config/        snapshot\n```", "layout: server/nosuch does not exist", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "# Title\n\nSome prose.\n\n" + tc.bad + "\n"
			probs := checkSource(r, cl, src)
			if len(probs) != 1 || !strings.Contains(probs[0].msg, tc.want) {
				t.Fatalf("naming something missing: got %v, want one problem saying %q", probs, tc.want)
			}
			if probs[0].line != tc.line {
				t.Errorf("problem on line %d, want %d: %v", probs[0].line, tc.line, probs[0])
			}
			if got := checkSource(r, cl, "# Title\n\nSome prose.\n\n"+tc.good+"\n"); len(got) != 0 {
				t.Errorf("naming something that exists: got %v, want none", got)
			}
		})
	}
}

func checkSource(r *repo, cl *cli, src string) []problem {
	c := &checker{repo: r, cli: cl, docs: map[string]*document{}}
	d := parseMarkdown("docs/example.md", src)
	c.docs[d.path] = d
	c.check(d)
	return c.problems
}

// TestProseIsNotRead: names outside code spans, code blocks and links are
// prose, which the test does not guess at.
func TestProseIsNotRead(t *testing.T) {
	r, cl := setup(t)
	src := "The server/nosuch.go file and make no-such-target and gatehouse_nope_total are only words.\n"
	if got := checkSource(r, cl, src); len(got) != 0 {
		t.Errorf("got %v, want no problems", got)
	}
}

func TestCodeSpans(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"a `b` c", []string{"b"}},
		{"``a ` b`` c", []string{"a ` b"}},
		{"over `two\nlines` here", []string{"two lines"}},
		{"` padded `", []string{"padded"}},
		{"an `unclosed span", nil},
		{"`a` and ``b``", []string{"a", "b"}},
	} {
		var got []string
		for _, s := range codeSpans(tc.text) {
			got = append(got, s.content)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("codeSpans(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestParseMarkdown(t *testing.T) {
	src := "# Getting `make dev` started\n" +
		"\n" +
		"Run `make dev`, then see\n" +
		"[the concepts](concepts.md#the-parts).\n" +
		"\n" +
		"```sh\n" +
		"make test   # `not a span`\n" +
		"```\n" +
		"\n" +
		"## Getting `make dev` started\n"
	d := parseMarkdown("docs/x.md", src)
	wantSpans := []snippet{{1, "make dev"}, {3, "make dev"}, {10, "make dev"}}
	if !reflect.DeepEqual(d.spans, wantSpans) {
		t.Errorf("spans = %v, want %v", d.spans, wantSpans)
	}
	if want := []snippet{{4, "concepts.md#the-parts"}}; !reflect.DeepEqual(d.links, want) {
		t.Errorf("links = %v, want %v", d.links, want)
	}
	if len(d.blocks) != 1 || d.blocks[0].lang != "sh" || d.blocks[0].line != 7 || len(d.blocks[0].lines) != 1 {
		t.Errorf("blocks = %+v, want one sh block of one line at line 7", d.blocks)
	}
	for _, a := range []string{"getting-make-dev-started", "getting-make-dev-started-1"} {
		if !d.anchors[a] {
			t.Errorf("no anchor %q in %v", a, d.anchors)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Behind a proxy: trusted proxies and the login throttle": "behind-a-proxy-trusted-proxies-and-the-login-throttle",
		"The token server (`server/`, `gatehouse server`)":       "the-token-server-server-gatehouse-server",
		"Everything on your machine: `make dev`":                 "everything-on-your-machine-make-dev",
		"`IssuerConflict` (Accepted, False)":                     "issuerconflict-accepted-false",
		"Sessions and logout — back-channel":                     "sessions-and-logout--back-channel",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFlagHelp(t *testing.T) {
	out := "Usage of server:\n" +
		"  -listen string\n" +
		"    \taddress of the public OAuth endpoints (default \":8080\")\n" +
		"  -leader-elect\n" +
		"    \telect a leader (default true)\n" +
		"  -postgres-url string\n" +
		"    \tPostgreSQL URL (default $GATEHOUSE_POSTGRES_URL)\n" +
		"  -reset\n" +
		"    \tstart afresh\n"
	want := map[string]flagInfo{
		"listen":       {def: ":8080", hasDef: true},
		"leader-elect": {def: "true", hasDef: true},
		"postgres-url": {def: "$GATEHOUSE_POSTGRES_URL", hasDef: true},
		"reset":        {},
	}
	if got := parseFlagHelp(out); !reflect.DeepEqual(got, want) {
		t.Errorf("parseFlagHelp = %+v, want %+v", got, want)
	}
}
