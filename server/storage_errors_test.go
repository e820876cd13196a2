package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// driverFault is what a driver might say: it names a host and a user, which
// must reach the log and never a client.
const driverFault = "dial tcp 10.9.8.7:5432: password authentication failed for user \"gatehouse_prod\""

// faultyStore fails the one operation named in fail and passes the rest to
// a memory store.
type faultyStore struct {
	storage.Store
	fail string
	// unreachable makes the failure storage.ErrUnavailable, as a driver
	// reports a database it cannot reach.
	unreachable bool
}

func (f *faultyStore) err(op string) error {
	switch {
	case f.fail != op:
		return nil
	case f.unreachable:
		return fmt.Errorf("%w: %s", storage.ErrUnavailable, driverFault)
	}
	return errors.New(driverFault)
}

func (f *faultyStore) RedeemCode(ctx context.Context, hash string, is storage.Issued, first *storage.FirstRefresh, now time.Time) (storage.AuthCode, bool, error) {
	if err := f.err("RedeemCode"); err != nil {
		return storage.AuthCode{}, false, err
	}
	return f.Store.RedeemCode(ctx, hash, is, first, now)
}

func (f *faultyStore) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if err := f.err("CreateRefreshToken"); err != nil {
		return err
	}
	return f.Store.CreateRefreshToken(ctx, t)
}

func (f *faultyStore) GetRefreshToken(ctx context.Context, hash string, now time.Time) (storage.RefreshToken, error) {
	if err := f.err("GetRefreshToken"); err != nil {
		return storage.RefreshToken{}, err
	}
	return f.Store.GetRefreshToken(ctx, hash, now)
}

func (f *faultyStore) RotateRefreshToken(ctx context.Context, old string, next storage.RefreshToken, now time.Time) (storage.RefreshToken, error) {
	if err := f.err("RotateRefreshToken"); err != nil {
		return storage.RefreshToken{}, err
	}
	return f.Store.RotateRefreshToken(ctx, old, next, now)
}

func (f *faultyStore) RevokeFamily(ctx context.Context, id string, now time.Time) error {
	if err := f.err("RevokeFamily"); err != nil {
		return err
	}
	return f.Store.RevokeFamily(ctx, id, now)
}

func (f *faultyStore) RevokeAccessToken(ctx context.Context, jti string, exp time.Time) error {
	if err := f.err("RevokeAccessToken"); err != nil {
		return err
	}
	return f.Store.RevokeAccessToken(ctx, jti, exp)
}

func (f *faultyStore) IsAccessTokenRevoked(ctx context.Context, jti, family string, now time.Time) (bool, error) {
	if err := f.err("IsAccessTokenRevoked"); err != nil {
		return false, err
	}
	return f.Store.IsAccessTokenRevoked(ctx, jti, family, now)
}

// A storage failure on the token, introspection or revocation endpoint is
// a generic error to the client, and its cause is in the log with what was
// being done: 500 server_error, or 503 temporarily_unavailable with
// Retry-After while the store is unreachable (restarting, failing over,
// stalled), which clients retry.
func TestStorageErrorsAreLoggedNotSent(t *testing.T) {
	cases := []struct {
		fail, op string
		// request sends the request under test, with whatever it needs
		// stored first.
		request func(t *testing.T, ts *testServer) *http.Response
	}{
		// The first refresh token is stored by the redemption (see
		// TestCodeExchangeStoresRefreshTokenTheStoreDidNot for the rest).
		{"RedeemCode", "redeeming an authorization code", exchangeCode},
		{"GetRefreshToken", "reading a refresh token", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {storedRefreshToken(t, ts)}}, webClientID, webSecret)
		}},
		{"RotateRefreshToken", "rotating a refresh token", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {storedRefreshToken(t, ts)}}, webClientID, webSecret)
		}},
		{"IsAccessTokenRevoked", "checking an access token's revocation", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {clientToken(t, ts)}}, webClientID, webSecret)
		}},
		{"GetRefreshToken", "reading a refresh token", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.IntrospectPath, url.Values{"token": {storedRefreshToken(t, ts)}}, webClientID, webSecret)
		}},
		{"RevokeAccessToken", "revoking an access token", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.RevokePath, url.Values{"token": {clientToken(t, ts)}}, ccClientID, ccSecret)
		}},
		{"GetRefreshToken", "reading a refresh token", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.RevokePath, url.Values{"token": {storedRefreshToken(t, ts)}}, webClientID, webSecret)
		}},
		{"RevokeFamily", "revoking a refresh-token family", func(t *testing.T, ts *testServer) *http.Response {
			return ts.postForm(t, endpoints.RevokePath, url.Values{"token": {storedRefreshToken(t, ts)}}, webClientID, webSecret)
		}},
	}
	for _, c := range cases {
		for _, unreachable := range []bool{false, true} {
			name, status, code := "fault", http.StatusInternalServerError, ErrServerError
			if unreachable {
				name, status, code = "unreachable", http.StatusServiceUnavailable, ErrTemporarilyUnavailable
			}
			t.Run(c.fail+"/"+c.op+"/"+name, func(t *testing.T) {
				checkStorageError(t, c.fail, c.op, unreachable, c.request, status, code)
			})
		}
	}
}

func checkStorageError(t *testing.T, fail, op string, unreachable bool, request func(t *testing.T, ts *testServer) *http.Response, status int, code string) {
	logs := &testenv.LogBuffer{}
	fs := &faultyStore{unreachable: unreachable}
	ts := newTestServerWith(t, func(o *Options) {
		fs.Store = o.Store
		o.Store = fs
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	fs.fail = fail
	resp := request(t, ts)
	if got := resp.Header.Get("Retry-After"); (got != "") != unreachable {
		t.Errorf("Retry-After %q on a %d", got, status)
	}
	e := assertOAuthError(t, resp, status, code)
	if e.Description != storageUnavailable {
		t.Errorf("description %q, want the generic %q", e.Description, storageUnavailable)
	}
	if strings.Contains(e.Body, "10.9.8.7") || strings.Contains(e.Body, "gatehouse_prod") {
		t.Errorf("the driver's message reached the client: %s", e.Body)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"storage failed"`) {
			line = l
		}
	}
	if !strings.Contains(line, `"op":"`+op+`"`) || !strings.Contains(line, "10.9.8.7") {
		t.Errorf("no log line with the cause and op %q; logs:\n%s", op, logs.String())
	}
	if n := strings.Count(logs.String(), "10.9.8.7"); n != 1 {
		t.Errorf("the cause is logged %d times, want once", n)
	}
}

// exchangeCode stores a code for the web client and redeems it.
func exchangeCode(t *testing.T, ts *testServer) *http.Response {
	verifier := oauth2.GenerateVerifier()
	code := randomToken(32)
	now := ts.clock.Now()
	err := ts.store.CreateCode(ctx(t), storage.AuthCode{
		Hash: storage.HashToken(code), ClientID: webClientID, RedirectURI: webRedirect, Scopes: []string{"orders:read"},
		Subject: testSubject, AuthTime: now, CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), CodeChallengeMethod: "S256",
		ExpiresAt: now.Add(time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts.postForm(t, endpoints.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {webRedirect}, "code_verifier": {verifier}}, webClientID, webSecret)
}

// storedRefreshToken stores a refresh token of the web client.
func storedRefreshToken(t *testing.T, ts *testServer) string {
	rt := randomToken(32)
	now := ts.clock.Now()
	err := ts.store.CreateRefreshToken(ctx(t), storage.RefreshToken{
		Hash: storage.HashToken(rt), FamilyID: newID(), ClientID: webClientID, Subject: testSubject,
		Scopes: []string{"orders:read"}, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// clientToken is an access token of the client_credentials client.
func clientToken(t *testing.T, ts *testServer) string {
	tok, err := ts.ccConfig(ccClientID, ccSecret, "orders:read").Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}
