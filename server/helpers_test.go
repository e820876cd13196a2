package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

// Fixed test identities.
const (
	ccClientID     = "apps.billing-worker"
	webClientID    = "apps.web"
	spaClientID    = "apps.spa"
	noPKCEClientID = "apps.legacy"
	postClientID   = "apps.poster"
	webRedirect    = "http://127.0.0.1:9999/callback"
	spaRedirect    = "http://localhost:3000/cb"
	testUser       = "alice"
	testPassword   = "correct horse battery staple"
	testSubject    = "2f0c8b7e-alice"
)

var (
	ccSecret     = mustSecret()
	webSecret    = mustSecret()
	legacySecret = mustSecret()
	postSecret   = mustSecret()
	// A secret with characters that RFC 6749 §2.3.1 makes clients escape
	// in Basic credentials.
	oddSecret = "s3cr:t+with/odd%chars=and spaces!" + mustSecret()
)

func mustSecret() string {
	s, err := clientsecret.Generate()
	if err != nil {
		panic(err)
	}
	return s
}

var usersYAML = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), users.MinBcryptCost)
	if err != nil {
		panic(err)
	}
	return []byte("users:\n- username: " + testUser + "\n  passwordHash: " + string(h) + "\n  subject: " + testSubject + "\n")
})

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// activeKey makes a key that signs from long ago.
func activeKey(t testing.TB, alg string, activates time.Time) keyset.Key {
	t.Helper()
	k, err := keyset.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	k.State = keyset.StateActive
	k.Created = activates.Add(-time.Hour)
	k.ActivatesAt = activates
	return k
}

func secretHash(s string) []config.SecretHash {
	return []config.SecretHash{{Hash: clientsecret.Hash(s)}}
}

// testSnapshot is a server configuration with one client of each kind.
func testSnapshot(t testing.TB, issuer string, now time.Time) *config.Snapshot {
	t.Helper()
	dir, err := users.Parse(usersYAML())
	if err != nil {
		t.Fatal(err)
	}
	set := &keyset.Set{Keys: []keyset.Key{activeKey(t, keyset.ES256, now.Add(-time.Hour))}}
	g := func(gs ...oauthv1.GrantType) map[oauthv1.GrantType]bool {
		m := map[oauthv1.GrantType]bool{}
		for _, x := range gs {
			m[x] = true
		}
		return m
	}
	ac, rt, cc := oauthv1.GrantAuthorizationCode, oauthv1.GrantRefreshToken, oauthv1.GrantClientCredentials
	clients := []*config.Client{
		{ID: ccClientID, DisplayName: "Billing worker", AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: g(cc),
			AllowedScopes: []string{"orders:read", "orders:write"}, Audience: []string{"https://billing.internal"}, RequirePKCE: true,
			SecretHashes: append(secretHash(ccSecret), config.SecretHash{Hash: clientsecret.Hash(oddSecret)})},
		{ID: webClientID, DisplayName: "Orders Web", AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: g(ac, rt),
			RedirectURIs: []string{webRedirect}, AllowedScopes: []string{"orders:read", "orders:write", "basic"}, RequirePKCE: true,
			SecretHashes: secretHash(webSecret)},
		{ID: spaClientID, DisplayName: "Orders SPA", Public: true, AuthMethod: oauthv1.AuthNone, GrantTypes: g(ac, rt),
			RedirectURIs: []string{spaRedirect}, AllowedScopes: []string{"orders:read"}, RequirePKCE: true},
		{ID: noPKCEClientID, DisplayName: "Legacy", AuthMethod: oauthv1.AuthClientSecretBasic, GrantTypes: g(ac),
			RedirectURIs: []string{webRedirect}, AllowedScopes: []string{"orders:read"}, RequirePKCE: false, SkipConsent: true,
			SecretHashes: secretHash(legacySecret)},
		{ID: postClientID, DisplayName: "Poster", AuthMethod: oauthv1.AuthClientSecretPost, GrantTypes: g(cc),
			AllowedScopes: []string{"orders:read"}, RequirePKCE: true, SecretHashes: secretHash(postSecret)},
	}
	snap := &config.Snapshot{
		Issuer: issuer, Endpoints: endpoints.For(issuer),
		AccessTokenTTL: config.DefaultAccessTokenTTL, RefreshTokenTTL: config.DefaultRefreshTokenTTL, CodeTTL: config.DefaultCodeTTL,
		PrepublishPeriod: config.DefaultPrepublishPeriod,
		Clients:          config.NewClientMap(clients...),
		Scopes: map[string]*config.Scope{
			"orders:read":  {Name: "orders:read", Description: "Read your orders", Audience: "https://orders.example.test", RequiresConsent: true},
			"orders:write": {Name: "orders:write", Description: "Change your orders", Audience: "https://orders.example.test", RequiresConsent: true},
			"basic":        {Name: "basic", Description: "See your name", RequiresConsent: false},
		},
		ScopeNames: []string{"basic", "orders:read", "orders:write"},
		Keys:       set,
		Users:      dir,
	}
	for _, sc := range config.BuiltinScopes() {
		snap.Scopes[sc.Name] = sc
		snap.ScopeNames = append(snap.ScopeNames, sc.Name)
	}
	slices.Sort(snap.ScopeNames)
	return snap
}

// testServer is a running token server over httptest.
type testServer struct {
	*httptest.Server
	srv   *Server
	src   *config.Static
	store *memory.Store
	clock *clock
}

func newTestServer(t testing.TB) *testServer { return newTestServerWith(t, nil) }

// newTestServerWith lets a test set Options beyond the source, store and
// clock.
func newTestServerWith(t testing.TB, opts func(*Options)) *testServer {
	t.Helper()
	ts := &testServer{clock: &clock{t: time.Now()}, store: memory.New()}
	// The server is built after the listener exists (the issuer is its
	// URL), so the handler is set through late rather than by writing
	// Config.Handler while connections may already be served.
	late := &lateHandler{}
	ts.Server = httptest.NewUnstartedServer(late)
	ts.Start()
	t.Cleanup(ts.Close)
	ts.src = config.NewStatic(testSnapshot(t, ts.URL, ts.clock.Now()))
	o := Options{Source: ts.src, Store: ts.store, Now: ts.clock.Now}
	if opts != nil {
		opts(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	late.srv.Store(srv)
	return ts
}

// lateHandler serves with a Server set once it exists; until then it
// answers 503.
type lateHandler struct{ srv atomic.Pointer[Server] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := l.srv.Load(); s != nil {
		s.ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

func (ts *testServer) snap() *config.Snapshot { return ts.src.Current() }

// update changes a copy of the snapshot.
func (ts *testServer) update(f func(s *config.Snapshot)) {
	cp := *ts.src.Current()
	f(&cp)
	ts.src.Set(&cp)
}

// oauthError is a decoded §5.2 error response.
type oauthError struct {
	Status      int
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Header      http.Header
	Body        string
}

// postForm sends a form to a path, with optional Basic credentials.
func (ts *testServer) postForm(t testing.TB, path string, form url.Values, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func decodeError(t testing.TB, resp *http.Response) oauthError {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	e := oauthError{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e
}

// assertOAuthError checks an RFC 6749 §5.2 error response exactly.
func assertOAuthError(t testing.TB, resp *http.Response, status int, code string) oauthError {
	t.Helper()
	e := decodeError(t, resp)
	if e.Status != status || e.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", e.Status, e.Error, e.Description, status, code)
	}
	if e.Description == "" {
		t.Errorf("error %q has no error_description", code)
	}
	if got := e.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := e.Header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
	if (status == http.StatusUnauthorized) != (e.Header.Get("WWW-Authenticate") != "") {
		t.Errorf("status %d with WWW-Authenticate %q: RFC 7235 pairs 401 with a challenge", status, e.Header.Get("WWW-Authenticate"))
	}
	if ct := e.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(e.Body), &raw)
	for k := range raw {
		if k != "error" && k != "error_description" {
			t.Errorf("unexpected member %q in error response", k)
		}
	}
	return e
}

// parseAccessToken verifies a token against the server's published JWKS,
// as a resource server would.
func (ts *testServer) parseAccessToken(t testing.TB, token string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	resp, err := http.Get(ts.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks keyset.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(token, claims, func(tk *jwt.Token) (any, error) {
		for _, k := range jwks.Keys {
			if k.KeyID == tk.Header["kid"] {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				y, _ := base64.RawURLEncoding.DecodeString(k.Y)
				return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(ts.URL), jwt.WithTimeFunc(ts.clock.Now))
	if err != nil {
		t.Fatalf("access token does not verify against the JWKS: %v", err)
	}
	return claims, tok.Header
}

// browser is a cookie-keeping client that stops at redirects leaving the
// server, as a browser would hand them to the app.
type browser struct {
	t      testing.TB
	ts     *testServer
	client *http.Client
	// acceptLanguage is sent as Accept-Language when set.
	acceptLanguage string
}

func newBrowser(t testing.TB, ts *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, ts: ts, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	if b.acceptLanguage != "" {
		req.Header.Set("Accept-Language", b.acceptLanguage)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hiddenFields returns a page's hidden form fields.
func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], m[2])
	}
	return v
}

// location returns a redirect's target, failing if there is none.
func location(t testing.TB, resp *http.Response) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !u.IsAbs() {
		u = resp.Request.URL.ResolveReference(u)
	}
	return u
}

// login follows an authorization URL through login and (if asked)
// consent with the given decision, and returns the final redirect to the
// app.
func (b *browser) authorize(authURL, decision string, remember bool) *url.URL {
	b.t.Helper()
	resp, page := b.get(authURL)
	u := location(b.t, resp)
	for range 4 {
		if !strings.HasPrefix(u.String(), b.ts.URL) {
			return u
		}
		switch u.Path {
		case endpoints.LoginPath:
			resp, page = b.get(u.String())
			if resp.StatusCode != http.StatusOK {
				b.t.Fatalf("login page: %d %s", resp.StatusCode, page)
			}
			f := hiddenFields(page)
			f.Set("username", testUser)
			f.Set("password", testPassword)
			resp, page = b.post(b.ts.URL+endpoints.LoginPath, f)
		case endpoints.ConsentPath:
			resp, page = b.get(u.String())
			if resp.StatusCode != http.StatusOK {
				b.t.Fatalf("consent page: %d %s", resp.StatusCode, page)
			}
			f := hiddenFields(page)
			f.Set("decision", decision)
			if remember {
				f.Set("remember", "yes")
			}
			resp, page = b.post(b.ts.URL+endpoints.ConsentPath, f)
		default:
			b.t.Fatalf("unexpected redirect to %s", u)
		}
		_ = page
		u = location(b.t, resp)
	}
	b.t.Fatalf("too many redirects, last %s", u)
	return nil
}

func ctx(t testing.TB) context.Context { return t.Context() }
