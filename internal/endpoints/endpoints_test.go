package endpoints

import "testing"

func TestFor(t *testing.T) {
	for _, tc := range []struct{ issuer, token, metadata string }{
		{"https://auth.example.com", "https://auth.example.com/token", "https://auth.example.com/.well-known/oauth-authorization-server"},
		{"https://auth.example.com/", "https://auth.example.com/token", "https://auth.example.com/.well-known/oauth-authorization-server"},
		{"https://example.com/tenants/a", "https://example.com/tenants/a/token", "https://example.com/.well-known/oauth-authorization-server/tenants/a"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/token", "http://127.0.0.1:8080/.well-known/oauth-authorization-server"},
	} {
		e := For(tc.issuer)
		if e.Token != tc.token || e.Metadata != tc.metadata {
			t.Errorf("For(%q): token %q, metadata %q; want %q, %q", tc.issuer, e.Token, e.Metadata, tc.token, tc.metadata)
		}
	}
}
