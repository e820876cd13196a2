package resourceserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/resourceserver"
)

// A resource server protecting its routes with scopes. New discovers the
// issuer's JWKS from its metadata and keeps the keys fresh by itself;
// OnReject logs every refusal with its reason.
func Example() {
	ctx := context.Background()
	v, err := resourceserver.New(ctx, resourceserver.Config{
		Issuer:   "https://auth.example.com",
		Audience: "https://orders.example.com",
		OnReject: func(r *http.Request, e *resourceserver.Error) {
			slog.Info("request refused", "path", r.URL.Path, "status", e.Status, "reason", e.Error())
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	listOrders := func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resourceserver.ClaimsFrom(r.Context())
		owner, isUser := claims.UserSubject()
		if !isUser {
			// A client's own token (client_credentials): no user is involved.
			owner = "client " + claims.ClientID
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"owner": owner})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Require("orders:read")(http.HandlerFunc(listOrders)))
	mux.Handle("POST /orders", v.Require("orders:write")(http.NotFoundHandler()))
	log.Fatal(http.ListenAndServe("127.0.0.1:8090", mux))
}

// Inside the cluster, read the keys from the AuthorizationServer's JWKS
// ConfigMap (named after the server with the suffix -jwks) mounted as a
// volume, for example at /etc/gatehouse/jwks: validating a token then
// needs no network call to the token server. The file is re-read every
// 30 seconds and whenever a token names a key it does not hold.
func ExampleJWKSFile() {
	v, err := resourceserver.New(context.Background(), resourceserver.Config{
		Issuer:   "https://auth.example.com",
		Audience: "https://orders.example.com",
		Keys:     resourceserver.JWKSFile("/etc/gatehouse/jwks/jwks.json"),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = v
}

// Test a handler that sits behind Require without tokens or keys: put
// the claims it should see into the request's context.
func ExampleNewContext() {
	whoami := func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resourceserver.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "%s via %s, may write: %v", claims.Subject, claims.ClientID, claims.HasScope("orders:write"))
	}

	req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
	req = req.WithContext(resourceserver.NewContext(req.Context(), &resourceserver.Claims{
		Subject:  "alice",
		ClientID: "shop.storefront",
		Scopes:   []string{"orders:read"},
	}))
	rec := httptest.NewRecorder()
	whoami(rec, req)
	fmt.Println(rec.Body)
	// Output: alice via shop.storefront, may write: false
}

// A token is a user's (authorization code flow) or a client's own
// (client_credentials). Key per-user data by UserSubject, never by
// Subject alone.
func ExampleClaims_UserSubject() {
	for _, c := range []*resourceserver.Claims{
		{Subject: "alice", ClientID: "shop.storefront"},
		{Subject: "client:shop.worker", ClientID: "shop.worker"},
	} {
		if user, ok := c.UserSubject(); ok {
			fmt.Printf("user %s, through client %s\n", user, c.ClientID)
		} else {
			fmt.Printf("client %s acting for itself (IsClient: %v)\n", c.ClientID, c.IsClient())
		}
	}
	// Output:
	// user alice, through client shop.storefront
	// client shop.worker acting for itself (IsClient: true)
}

// Middleware of your own: here, a route that serves anonymous callers
// too, but refuses a request that carries a bad token rather than
// silently treating it as anonymous. The keys are pinned with StaticJWKS.
func ExampleValidator_ValidateRequest() {
	v, err := resourceserver.New(context.Background(), resourceserver.Config{
		Issuer:   "https://auth.example.com",
		Audience: "https://catalog.example.com",
		Keys: resourceserver.StaticJWKS([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"example-key","use":"sig","alg":"ES256",` +
			`"x":"bpzNeE8vih_pZFD0m_u3JyWEMTEtux1EFmdn6eT7-qI","y":"3dPPbu2rHwR0G_zU7hrC9cul69CQlzbopuCEcsiiryg"}]}`)),
	})
	if err != nil {
		log.Fatal(err)
	}
	catalog := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			claims, err := v.ValidateRequest(r)
			var refusal *resourceserver.Error
			if errors.As(err, &refusal) {
				resourceserver.WriteError(w, "catalog", refusal)
				return
			}
			fmt.Fprintf(w, "catalog with prices for %s\n", claims.Subject)
			return
		}
		fmt.Fprintln(w, "public catalog")
	})

	for _, auth := range []string{"", "Bearer not-a-jwt"} {
		req := httptest.NewRequest(http.MethodGet, "/catalog", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		catalog.ServeHTTP(rec, req)
		fmt.Printf("%q: %d %s\n", auth, rec.Code, strings.TrimSpace(rec.Body.String()))
		if challenge := rec.Header().Get("WWW-Authenticate"); challenge != "" {
			fmt.Println("  WWW-Authenticate:", challenge)
		}
	}
	// Output:
	// "": 200 public catalog
	// "Bearer not-a-jwt": 401 {"error":"invalid_token","error_description":"malformed access token: the token is not a signed JWT (header.payload.signature)"}
	//   WWW-Authenticate: Bearer realm="catalog", error="invalid_token", error_description="malformed access token: the token is not a signed JWT (header.payload.signature)"
}

// Validate a token that did not come in an Authorization header (a
// WebSocket subprotocol, a message queue), and tell the reasons for a
// refusal apart with errors.Is.
func ExampleValidator_Validate() {
	v, err := resourceserver.New(context.Background(), resourceserver.Config{
		Issuer:   "https://auth.example.com",
		Audience: "https://orders.example.com",
		Keys: resourceserver.StaticJWKS([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"example-key","use":"sig","alg":"ES256",` +
			`"x":"bpzNeE8vih_pZFD0m_u3JyWEMTEtux1EFmdn6eT7-qI","y":"3dPPbu2rHwR0G_zU7hrC9cul69CQlzbopuCEcsiiryg"}]}`)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// The header of an ID token: typ JWT, not at+jwt.
	idToken := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImV4YW1wbGUta2V5IiwidHlwIjoiSldUIn0.e30.c2ln"
	_, err = v.Validate(ctx, idToken)
	switch {
	case errors.Is(err, resourceserver.ErrExpired):
		fmt.Println("expired: ask for a new token")
	case errors.Is(err, resourceserver.ErrTokenType):
		fmt.Println("refused:", err)
	case err != nil:
		fmt.Println("invalid:", err)
	}
	// Output: refused: not an access token: typ is not at+jwt
}
