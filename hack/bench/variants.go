package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// variant is one configuration of the token server, measured against the
// others in the same run (-variants): a name for the report, extra
// command-line arguments and extra environment variables. The variants'
// servers share gatehouse dev's control plane and storage and are
// measured flow by flow in turn, so a difference between them is the
// configuration's, not the machine's mood.
type variant struct {
	name string
	args []string
	env  []string
	// binary is the gatehouse binary to run, -gatehouse's when empty.
	binary string
}

var envAssignment = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// parseVariants reads -variants: "name=words;name=words", where a word
// NAME=value (upper case) is an environment variable, @path the gatehouse
// binary (another build, to compare two commits) and any other word an
// argument; {dir} stands for the state directory (replaced as the server
// starts).
// E.g. "audit-off=--audit-log off;audit-on=--audit-log {dir}/audit.log".
func parseVariants(s string) ([]variant, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []variant
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		name, words, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t") || seen[name] {
			return nil, fmt.Errorf("-variants: %q is not name=arguments (names unique)", part)
		}
		seen[name] = true
		v := variant{name: name}
		for _, w := range strings.Fields(words) {
			switch {
			case envAssignment.MatchString(w):
				v.env = append(v.env, w)
			case strings.HasPrefix(w, "@") && len(w) > 1:
				v.binary = w[1:]
			default:
				v.args = append(v.args, w)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// startVariants starts a token server for each variant after the first
// (whose server startEnv started), sharing e's control plane and storage.
func (e *env) startVariants(ctx context.Context, variants []variant) ([]*env, error) {
	products := []*env{e}
	for _, v := range variants[1:] {
		s := &env{o: e.o, dir: e.dir, demo: e.demo, product: "gatehouse (" + v.name + ")"}
		if err := s.startServer(ctx, e.postgresURL, v); err != nil {
			for _, p := range products[1:] {
				p.stop()
			}
			return nil, fmt.Errorf("variant %s: %w", v.name, err)
		}
		products = append(products, s)
	}
	return products, nil
}
