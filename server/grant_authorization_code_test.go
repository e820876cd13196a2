package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// redeemWatcher is the store between the token endpoint and memory: it
// records what RedeemCode stored and how often CreateRefreshToken ran, and
// can play a driver that never stores the first refresh token with the
// redemption (unfolded), with a revocation or a failure after it.
type redeemWatcher struct {
	storage.Store
	unfolded    bool
	afterRedeem func(storage.Issued)
	createErr   error

	stored  bool
	creates int
}

func (w *redeemWatcher) RedeemCode(ctx context.Context, hash string, is storage.Issued, first *storage.FirstRefresh, now time.Time) (storage.AuthCode, bool, error) {
	if w.unfolded {
		first = nil
	}
	c, stored, err := w.Store.RedeemCode(ctx, hash, is, first, now)
	w.stored = stored
	if err == nil && w.afterRedeem != nil {
		w.afterRedeem(is)
	}
	return c, stored, err
}

func (w *redeemWatcher) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	w.creates++
	if w.createErr != nil {
		return w.createErr
	}
	return w.Store.CreateRefreshToken(ctx, t)
}

// watchedServer is a test server whose store is a redeemWatcher.
func watchedServer(t *testing.T) (*testServer, *redeemWatcher) {
	w := &redeemWatcher{}
	ts := newTestServerWith(t, func(o *Options) { w.Store = o.Store; o.Store = w })
	return ts, w
}

// redeemStoredCode stores a code of client for redirect and scopes, as
// /authorize would, and exchanges it: the token response's refresh token
// (empty for none), or the error response.
func redeemStoredCode(t *testing.T, ts *testServer, client, secret, redirect string, scopes ...string) (string, *http.Response) {
	t.Helper()
	verifier, code, now := oauth2.GenerateVerifier(), randomToken(32), ts.clock.Now()
	err := ts.store.CreateCode(ctx(t), storage.AuthCode{
		Hash: storage.HashToken(code), ClientID: client, RedirectURI: redirect, Scopes: scopes, Subject: testSubject,
		AuthTime: now.Add(-time.Hour), CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), CodeChallengeMethod: "S256",
		ExpiresAt: now.Add(time.Minute), SessionID: "sid-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp := ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}, client, secret)
	if resp.StatusCode != http.StatusOK {
		return "", resp
	}
	defer resp.Body.Close()
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	return tok.RefreshToken, nil
}

// The code exchange stores the first refresh token with the redemption,
// and no other way: as the server would issue it (scopes the client may
// still use, expiry from the login, session id), and only when the server
// hands it out, which for an OpenID Connect request takes offline_access
// among the scopes the client may still use.
func TestCodeExchangeStoresRefreshTokenWithRedemption(t *testing.T) {
	ts, w := watchedServer(t)
	withOIDC(t, ts)
	rt, resp := redeemStoredCode(t, ts, webClientID, webSecret, webRedirect, "orders:read", "orders:write")
	if resp != nil || rt == "" || !w.stored || w.creates != 0 {
		t.Fatalf("plain OAuth exchange: refresh token %t, stored by the redemption %t, CreateRefreshToken %d times; want a token stored by the redemption alone",
			rt != "", w.stored, w.creates)
	}
	now := ts.clock.Now()
	got, err := ts.store.GetRefreshToken(ctx(t), storage.HashToken(rt), now)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.RefreshToken{ClientID: webClientID, Subject: testSubject, Scopes: []string{"orders:read", "orders:write"},
		AuthTime: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Hour).Add(ts.snap().RefreshTokenTTL), SessionID: "sid-1"}
	if got.ClientID != want.ClientID || got.Subject != want.Subject || !slices.Equal(got.Scopes, want.Scopes) ||
		!got.AuthTime.Equal(want.AuthTime) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(now) || got.SessionID != want.SessionID {
		t.Errorf("stored refresh token\n %+v\nwant\n %+v", got, want)
	}

	// A scope taken from the client since the login is not in the token.
	ts.update(func(s *config.Snapshot) {
		c := *s.Clients.Get(webClientID)
		c.AllowedScopes = []string{"orders:read", "basic"}
		s.Clients = s.Clients.With(&c)
	})
	rt, _ = redeemStoredCode(t, ts, webClientID, webSecret, webRedirect, "orders:read", "orders:write")
	if got, err := ts.store.GetRefreshToken(ctx(t), storage.HashToken(rt), now); err != nil || !slices.Equal(got.Scopes, []string{"orders:read"}) {
		t.Errorf("refresh token after orders:write was taken from the client: %v %v, want scopes [orders:read]", got.Scopes, err)
	}

	for _, c := range []struct {
		name        string
		scopes      []string
		allowed     []string
		wantRefresh bool
	}{
		{"openid with offline_access", []string{"openid", "offline_access", "orders:read"}, nil, true},
		{"openid without offline_access", []string{"openid", "orders:read"}, nil, false},
		{"offline_access taken from the client", []string{"openid", "offline_access", "orders:read"}, []string{"openid", "orders:read"}, false},
	} {
		if c.allowed != nil {
			ts.update(func(s *config.Snapshot) {
				cl := *s.Clients.Get(oidcClientID)
				cl.AllowedScopes = c.allowed
				s.Clients = s.Clients.With(&cl)
			})
		}
		rt, resp := redeemStoredCode(t, ts, oidcClientID, oidcSecret, oidcRedirect, c.scopes...)
		if resp != nil {
			t.Fatalf("%s: %+v", c.name, decodeError(t, resp))
		}
		if (rt != "") != c.wantRefresh || w.stored != c.wantRefresh || w.creates != 0 {
			t.Errorf("%s: refresh token %t, stored %t, CreateRefreshToken %d times; want %t, %t, 0",
				c.name, rt != "", w.stored, w.creates, c.wantRefresh, c.wantRefresh)
		}
	}
}

// Were a store not to store the first refresh token with the redemption,
// the server stores it itself (one more round trip), and still refuses a
// code whose family a replay revoked in between, and reports a storage
// failure as such.
func TestCodeExchangeStoresRefreshTokenTheStoreDidNot(t *testing.T) {
	t.Run("stored by the server", func(t *testing.T) {
		ts, w := watchedServer(t)
		w.unfolded = true
		rt, resp := redeemStoredCode(t, ts, webClientID, webSecret, webRedirect, "orders:read")
		if resp != nil || rt == "" || w.stored || w.creates != 1 {
			t.Fatalf("refresh token %t, stored by the redemption %t, CreateRefreshToken %d times; want a token stored by CreateRefreshToken",
				rt != "", w.stored, w.creates)
		}
		resp = ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, webClientID, webSecret)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refreshing with it: %+v", decodeError(t, resp))
		}
		resp.Body.Close()
	})
	t.Run("family revoked in between", func(t *testing.T) {
		ts, w := watchedServer(t)
		w.unfolded = true
		w.afterRedeem = func(is storage.Issued) {
			if err := ts.store.RevokeFamily(ctx(t), is.RefreshFamilyID, ts.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		_, resp := redeemStoredCode(t, ts, webClientID, webSecret, webRedirect, "orders:read")
		if resp == nil {
			t.Fatal("the exchange succeeded although a replay revoked its family")
		}
		assertOAuthError(t, resp, http.StatusBadRequest, ErrInvalidGrant)
	})
	t.Run("storing fails", func(t *testing.T) {
		ts, w := watchedServer(t)
		w.unfolded, w.createErr = true, errors.New("connection reset")
		_, resp := redeemStoredCode(t, ts, webClientID, webSecret, webRedirect, "orders:read")
		if resp == nil {
			t.Fatal("the exchange succeeded although its refresh token was not stored")
		}
		assertOAuthError(t, resp, http.StatusInternalServerError, ErrServerError)
	})
}
