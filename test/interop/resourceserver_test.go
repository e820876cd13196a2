package interop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/resourceserver"
	"github.com/gatehouse-dev/gatehouse/server"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

const ordersAudience = "https://orders.example.test"

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The prefix that keeps a client's own subject apart from users' (RFC 9700
// §4.15) is written on both sides: the token server's and the one
// resource servers check.
func TestClientSubjectPrefixMatchesServer(t *testing.T) {
	if resourceserver.ClientSubjectPrefix != users.ClientSubjectPrefix || users.ClientSubject("a.b") != resourceserver.ClientSubjectPrefix+"a.b" {
		t.Fatalf("resourceserver prefix %q, token server prefix %q", resourceserver.ClientSubjectPrefix, users.ClientSubjectPrefix)
	}
}

func signingKey(t *testing.T, activates time.Time) keyset.Key {
	t.Helper()
	k, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	k.State, k.Created, k.ActivatesAt = keyset.StateActive, activates.Add(-time.Hour), activates
	return k
}

// The real Gatehouse token server issues a token to a real OAuth client
// (x/oauth2, client_credentials); the middleware accepts it, checks its
// scopes, and keeps accepting tokens while the server's signing key rotates
// as the operator rotates it: the new key prepublished, then signing, the
// old one retired.
func TestTokensFromTheGatehouseServer(t *testing.T) {
	clk := &testClock{t: time.Now()}
	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	defer ts.Close()
	issuer := ts.URL

	secret, err := clientsecret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	oldKey := signingKey(t, clk.Now().Add(-time.Hour))
	snap := &config.Snapshot{
		Issuer: issuer, Endpoints: endpoints.For(issuer),
		AccessTokenTTL: config.DefaultAccessTokenTTL, RefreshTokenTTL: config.DefaultRefreshTokenTTL, CodeTTL: config.DefaultCodeTTL,
		PrepublishPeriod: 2 * time.Minute,
		Clients: config.NewClientMap(&config.Client{
			ID: "apps.worker", AuthMethod: oauthv1.AuthClientSecretBasic,
			GrantTypes:    map[oauthv1.GrantType]bool{oauthv1.GrantClientCredentials: true},
			AllowedScopes: []string{"orders:read", "orders:write"}, RequirePKCE: true,
			SecretHashes: []config.SecretHash{{Hash: clientsecret.Hash(secret)}},
		}),
		Scopes: map[string]*config.Scope{
			"orders:read":  {Name: "orders:read", Audience: ordersAudience},
			"orders:write": {Name: "orders:write", Audience: ordersAudience},
		},
		ScopeNames: []string{"orders:read", "orders:write"},
		Keys:       &keyset.Set{Keys: []keyset.Key{oldKey}},
	}
	src := config.NewStatic(snap)
	srv, err := server.New(server.Options{Source: src, Store: memory.New(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv

	ctx := context.Background()
	v, err := resourceserver.New(ctx, resourceserver.Config{Issuer: issuer, Audience: ordersAudience, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resourceserver.ClaimsFrom(r.Context())
		if _, isUser := c.UserSubject(); c.ClientID != "apps.worker" || c.Subject != "client:apps.worker" || !c.IsClient() || isUser {
			t.Errorf("claims = %+v: want a client's own token, sub client:apps.worker", c)
		}
	})
	api.Handle("GET /orders", v.Require("orders:read")(ok))
	api.Handle("POST /orders", v.Require("orders:write")(ok))

	kids := map[string]int{}
	call := func(method, scope string) *httptest.ResponseRecorder {
		t.Helper()
		cc := clientcredentials.Config{ClientID: "apps.worker", ClientSecret: secret, TokenURL: issuer + endpoints.TokenPath, Scopes: []string{scope}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		header, _, _ := strings.Cut(tok.AccessToken, ".")
		var h struct{ Kid, Typ string }
		if raw, err := base64.RawURLEncoding.DecodeString(header); err != nil || json.Unmarshal(raw, &h) != nil || h.Typ != "at+jwt" {
			t.Fatalf("token header %q", header)
		}
		kids[h.Kid]++
		req := httptest.NewRequest(method, "/orders", nil)
		tok.SetAuthHeader(req)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	if rec := call(http.MethodGet, "orders:read"); rec.Code != http.StatusOK {
		t.Fatalf("GET with orders:read: %d %s %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	if rec := call(http.MethodPost, "orders:read"); rec.Code != http.StatusForbidden {
		t.Fatalf("POST with orders:read: %d", rec.Code)
	}

	// Rotation: the new key is published PrepublishPeriod before it signs.
	newKey := signingKey(t, clk.Now().Add(snap.PrepublishPeriod))
	newKey.State = keyset.StateNext
	retiredAt := newKey.ActivatesAt
	removeAfter := retiredAt.Add(snap.AccessTokenTTL)
	rotated := *snap
	rotated.Keys = &keyset.Set{Keys: []keyset.Key{oldKey, newKey}}
	src.Set(&rotated)

	var sawNew bool
	for step := 0; step < 40; step++ {
		clk.Advance(15 * time.Second)
		now := clk.Now()
		if !now.Before(removeAfter) {
			// The operator removes the retired key once its tokens expired.
			after := rotated
			nk := newKey
			nk.State = keyset.StateActive
			after.Keys = &keyset.Set{Keys: []keyset.Key{nk}}
			src.Set(&after)
		} else if !now.Before(retiredAt) {
			after := rotated
			old, nk := oldKey, newKey
			old.State, old.RetiredAt, old.RemoveAfter = keyset.StateRetired, &retiredAt, &removeAfter
			nk.State = keyset.StateActive
			after.Keys = &keyset.Set{Keys: []keyset.Key{old, nk}}
			src.Set(&after)
			sawNew = true
		}
		if rec := call(http.MethodGet, "orders:read"); rec.Code != http.StatusOK {
			t.Fatalf("step %d (%s after rotation started): %d %s", step, time.Duration(step+1)*15*time.Second, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	if !sawNew || kids[oldKey.ID] == 0 || kids[newKey.ID] == 0 {
		t.Fatalf("the rotation did not exercise both keys: %v", kids)
	}
}
