package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// A person removed from the users Secret gets no more tokens from the
// refresh tokens they hold; while the Secret cannot be read, nobody is
// treated as removed; and putting the person back restores the grant,
// since a refusal changes nothing stored.
func TestRefreshRefusedForRemovedUser(t *testing.T) {
	ts := newTestServer(t)
	cfg := ts.webConfig("orders:read")
	code, verifier := ts.codeFor(t, newBrowser(t, ts), "orders:read")
	tok, err := cfg.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func() error {
		_, err := cfg.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		return err
	}
	introspectRefresh := func() map[string]any {
		t.Helper()
		resp := ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {tok.RefreshToken}}, webClientID, webSecret)
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	everyone := ts.snap().Users

	empty, err := users.Parse([]byte("users: []"))
	if err != nil {
		t.Fatal(err)
	}
	ts.update(func(s *config.Snapshot) { s.Users = empty })
	re := retrieveError(t, refresh())
	if re.ErrorCode != ErrInvalidGrant || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("refresh for a removed user: %d %s, want 400 invalid_grant", re.Response.StatusCode, re.ErrorCode)
	}
	if got := introspectRefresh(); got["active"] != false {
		t.Errorf("a removed user's refresh token introspects as %v", got)
	}
	if got := ts.introspect(t, tok.AccessToken); got["active"] != false {
		t.Errorf("a removed user's access token introspects as %v", got)
	}
	cc, err := ts.ccConfig(ccClientID, ccSecret).Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.introspect(t, cc.AccessToken); got["active"] != true {
		t.Errorf("a client's own token, which names no person, introspects as %v", got)
	}

	ts.update(func(s *config.Snapshot) { s.Users, s.UsersUnavailable = nil, true })
	re = retrieveError(t, refresh())
	if re.ErrorCode != ErrTemporarilyUnavailable || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refresh while the users Secret is unreadable: %d %s, want 503 temporarily_unavailable", re.Response.StatusCode, re.ErrorCode)
	}

	ts.update(func(s *config.Snapshot) { s.Users, s.UsersUnavailable = nil, false })
	if re = retrieveError(t, refresh()); re.ErrorCode != ErrInvalidGrant {
		t.Fatalf("refresh with no users source configured: %s, want invalid_grant", re.ErrorCode)
	}

	ts.update(func(s *config.Snapshot) { s.Users = everyone })
	if got := ts.introspect(t, tok.AccessToken); got["active"] != true {
		t.Errorf("the restored user's access token introspects as %v", got)
	}
	if err := refresh(); err != nil {
		t.Fatalf("refresh after the user was restored: %v", err)
	}
}
