package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
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

// ackLostStore commits a rotation and then reports the database
// unreachable, once: a failover between the commit and its
// acknowledgement.
type ackLostStore struct {
	storage.Store
	lose atomic.Bool
}

func (s *ackLostStore) RotateRefreshToken(ctx context.Context, old string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	rt, err := s.Store.RotateRefreshToken(ctx, old, next, now)
	if err == nil && s.lose.CompareAndSwap(true, false) {
		return storage.RefreshToken{}, fmt.Errorf("%w: connection reset after commit", storage.ErrUnavailable)
	}
	return rt, err
}

// A refresh answered 503 although its rotation committed loses the client
// nothing where spec.refreshTokenRetry covers it: the retry with the same
// refresh token gets the successor the rotation stored
// (storage.RotationRetryWindow), the family lives on, and once that
// successor is used the old token is reuse again. Where it does not (a
// public client by default, any client when Disabled), the retry is reuse.
func TestRefreshRetryAfterLostAnswer(t *testing.T) {
	for _, c := range []struct {
		mode          oauthv1.RefreshTokenRetry
		public, retry bool
	}{
		{mode: "", public: false, retry: true},
		{mode: "", public: true, retry: false},
		{mode: oauthv1.RefreshTokenRetryAllClients, public: true, retry: true},
		{mode: oauthv1.RefreshTokenRetryDisabled, public: false, retry: false},
	} {
		t.Run(fmt.Sprintf("%s public=%v", cmp.Or(c.mode, "default"), c.public), func(t *testing.T) {
			lossy := &ackLostStore{}
			ts := newTestServerWith(t, func(o *Options) { lossy.Store = o.Store; o.Store = lossy })
			ts.update(func(s *config.Snapshot) { s.RefreshTokenRetry = c.mode })
			refresh := lostAnswerRefresher(t, ts, c.public)
			lossy.lose.Store(true)
			resp, body := refresh("")
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("refresh whose answer was lost: %d %v, want 503 with Retry-After", resp.StatusCode, body)
			}
			resp, body = refresh("")
			if !c.retry {
				if resp.StatusCode != http.StatusBadRequest || body["error"] != ErrInvalidGrant {
					t.Fatalf("the retry: %d %v, want invalid_grant (reuse)", resp.StatusCode, body)
				}
				return
			}
			next, _ := body["refresh_token"].(string)
			if resp.StatusCode != http.StatusOK || next == "" {
				t.Fatalf("the client's retry with its refresh token: %d %v, want 200 with the successor", resp.StatusCode, body)
			}
			if resp, body = refresh(next); resp.StatusCode != http.StatusOK {
				t.Fatalf("the successor the retry returned: %d %v, want it usable", resp.StatusCode, body)
			}
			resp, body = refresh("")
			if resp.StatusCode != http.StatusBadRequest || body["error"] != ErrInvalidGrant {
				t.Fatalf("the old token after its successor was used: %d %v, want invalid_grant (reuse)", resp.StatusCode, body)
			}
		})
	}
}

// lostAnswerRefresher signs in with the web (confidential) or SPA (public)
// client and returns a refresh function: "" refreshes with the first
// refresh token, anything else with that token.
func lostAnswerRefresher(t *testing.T, ts *testServer, public bool) func(rt string) (*http.Response, map[string]any) {
	t.Helper()
	cfg, id, secret := ts.webConfig("orders:read"), webClientID, webSecret
	if public {
		cfg, id, secret = ts.spaConfig("orders:read"), spaClientID, ""
	}
	verifier := oauth2.GenerateVerifier()
	back := newBrowser(t, ts).authorize(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "approve", true)
	tok, err := cfg.Exchange(ctx(t), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return func(rt string) (*http.Response, map[string]any) {
		t.Helper()
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cmp.Or(rt, tok.RefreshToken)}}
		user := id
		if public {
			f.Set("client_id", id) // a public client sends no Authorization header
			user = ""
		}
		resp := ts.postForm(t, endpoints.TokenPath, f, user, secret)
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
}
