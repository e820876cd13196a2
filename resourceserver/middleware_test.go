package resourceserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// serve runs one request through Require(scopes...) around a handler that
// echoes the claims it was given.
func serve(t *testing.T, v *Validator, req *http.Request, scopes ...string) *httptest.ResponseRecorder {
	t.Helper()
	h := v.Require(scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			t.Error("handler called without claims")
			return
		}
		_, _ = w.Write([]byte("hello " + c.Subject))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func withAuth(values ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	for _, v := range values {
		r.Header.Add("Authorization", v)
	}
	return r
}

func TestRequireAnswersPerRFC6750(t *testing.T) {
	f := newIssuer(t)
	var rejected []*Error
	v := f.validator(func(c *Config) { c.OnReject = func(_ *http.Request, e *Error) { rejected = append(rejected, e) } })
	now := f.clock.Now()
	good := f.token(nil)
	expired := f.token(func(h map[string]any, c jwt.MapClaims) {
		c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Minute).Unix()
	})
	wrongAud := f.token(func(h map[string]any, c jwt.MapClaims) { c["aud"] = "billing-api" })
	queryReq := httptest.NewRequest(http.MethodGet, "/orders?access_token="+good, nil)
	bothReq := httptest.NewRequest(http.MethodGet, "/orders?access_token="+good, nil)
	bothReq.Header.Set("Authorization", "Bearer "+good)

	cases := []struct {
		name      string
		req       *http.Request
		scopes    []string
		status    int
		challenge string
		code      string
	}{
		{"no token", withAuth(), nil, 401, `Bearer realm="orders-api"`, "unauthorized"},
		{"another scheme", withAuth("Basic d2ViOnNlY3JldA=="), nil, 401, `Bearer realm="orders-api"`, "unauthorized"},
		{"Bearer without a token", withAuth("Bearer"), nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="the Authorization header has no bearer token"`, CodeInvalidRequest},
		{"Bearer and spaces", withAuth("Bearer   "), nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="the Authorization header has no bearer token"`, CodeInvalidRequest},
		{"characters outside b64token", withAuth(`Bearer abc"def`), nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="the bearer token has characters RFC 6750 section 2.1 does not allow"`, CodeInvalidRequest},
		{"two Authorization headers", withAuth("Bearer "+good, "Bearer "+good), nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="the request has more than one Authorization header"`, CodeInvalidRequest},
		{"header and query", bothReq, nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="the request carries an access token in more than one place"`, CodeInvalidRequest},
		{"query only", queryReq, nil, 400,
			`Bearer realm="orders-api", error="invalid_request", error_description="access tokens in the URI are not accepted; send an Authorization: Bearer header"`, CodeInvalidRequest},
		{"garbage token", withAuth("Bearer abc"), nil, 401,
			`Bearer realm="orders-api", error="invalid_token", error_description="malformed access token: the token is not a signed JWT (header.payload.signature)"`, CodeInvalidToken},
		{"expired token", withAuth("Bearer " + expired), nil, 401,
			`Bearer realm="orders-api", error="invalid_token", error_description="the access token expired"`, CodeInvalidToken},
		{"wrong audience", withAuth("Bearer " + wrongAud), nil, 401,
			`Bearer realm="orders-api", error="invalid_token", error_description="wrong audience: the token is not meant for orders-api"`, CodeInvalidToken},
		{"missing scope", withAuth("Bearer " + good), []string{"orders:read", "orders:write"}, 403,
			`Bearer realm="orders-api", error="insufficient_scope", error_description="the access token lacks scope orders:write", scope="orders:read orders:write"`, CodeInsufficientScope},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rejected = nil
			rec := serve(t, v, tc.req, tc.scopes...)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate =\n  %s\nwant\n  %s", got, tc.challenge)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			var body struct{ Error, ErrorDescription string }
			if err := json.Unmarshal(rec.Body.Bytes(), &struct {
				Error            *string `json:"error"`
				ErrorDescription *string `json:"error_description"`
			}{&body.Error, &body.ErrorDescription}); err != nil || body.Error != tc.code {
				t.Errorf("body = %s (%v), want error %q", rec.Body, err, tc.code)
			}
			if len(rejected) != 1 || rejected[0].Status != tc.status {
				t.Errorf("OnReject calls = %v", rejected)
			}
		})
	}
}

func TestRequireLetsValidTokensThrough(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	for _, header := range []string{"Bearer " + f.token(nil), "bearer " + f.token(nil), "BEARER  " + f.token(nil)} {
		rec := serve(t, v, withAuth(header), "orders:read")
		if rec.Code != http.StatusOK || rec.Body.String() != "hello alice" {
			t.Fatalf("%q: %d %s", header[:8], rec.Code, rec.Body)
		}
		if rec.Header().Get("WWW-Authenticate") != "" {
			t.Error("challenge sent on success")
		}
	}
	// Require() with no scopes only authenticates.
	if rec := serve(t, v, withAuth("Bearer "+f.token(func(h map[string]any, c jwt.MapClaims) { delete(c, "scope") }))); rec.Code != http.StatusOK {
		t.Fatalf("no scopes required: %d %s", rec.Code, rec.Body)
	}
}

func TestRequireAnswers503WhenKeysAreUnavailable(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	f.set(func(f *fakeIssuer) { f.status = http.StatusBadGateway })
	f.clock.Advance(DefaultMinRefreshInterval)
	rec := serve(t, v, withAuth("Bearer "+f.tokenWith(f.addKey(es256), nil)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("WWW-Authenticate") != "" || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", rec.Header())
	}
	if !strings.Contains(rec.Body.String(), `"temporarily_unavailable"`) {
		t.Errorf("body = %s", rec.Body)
	}
}

func TestRealmAndQuoting(t *testing.T) {
	e := &Error{Status: 401, Code: CodeInvalidToken, Description: "bad \"quote\" and \\ and \nnewline é"}
	want := `Bearer realm="my realm", error="invalid_token", error_description="bad quote and  and newline "`
	if got := e.challenge(`my "realm"`); got != want {
		t.Errorf("challenge = %s\nwant        %s", got, want)
	}
	f := newIssuer(t)
	v := f.validator(func(c *Config) { c.Realm = "orders" })
	if got := serve(t, v, withAuth()).Header().Get("WWW-Authenticate"); got != `Bearer realm="orders"` {
		t.Errorf("custom realm: %s", got)
	}
}

func TestRequirePanicsOnInvalidScope(t *testing.T) {
	f := newIssuer(t)
	v := f.validator(nil)
	for _, s := range []string{"", "orders read", `orders"`, "é"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Require(%q) did not panic", s)
				}
			}()
			v.Require(s)
		}()
	}
}

func TestClaimsFromContext(t *testing.T) {
	if _, ok := ClaimsFrom(context.Background()); ok {
		t.Fatal("claims in an empty context")
	}
	c := &Claims{Subject: "bob"}
	if got, ok := ClaimsFrom(NewContext(context.Background(), c)); !ok || got != c {
		t.Fatal("NewContext/ClaimsFrom round trip failed")
	}
}

func TestBearerTokenSyntax(t *testing.T) {
	for token, ok := range map[string]bool{
		"abc":           true,
		"a-b.c_d~e+f/g": true,
		"abc==":         true,
		"==":            false,
		"a=b":           false,
		"a b":           false,
		"a,b":           false,
		"é":             false,
	} {
		if got := validB64Token(token); got != ok {
			t.Errorf("validB64Token(%q) = %v", token, got)
		}
	}
}
