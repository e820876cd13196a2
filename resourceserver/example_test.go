package resourceserver_test

import (
	"context"
	"encoding/json"
	"log"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/resourceserver"
)

// Protect routes with scopes. The Validator discovers the issuer's JWKS
// and keeps its keys fresh by itself.
func ExampleValidator_Require() {
	ctx := context.Background()
	v, err := resourceserver.New(ctx, resourceserver.Config{
		Issuer:   "https://auth.example.com",
		Audience: "https://orders.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	listOrders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resourceserver.ClaimsFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"owner": claims.Subject})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", v.Require("orders:read")(listOrders))
	mux.Handle("POST /orders", v.Require("orders:write")(http.NotFoundHandler()))
	log.Fatal(http.ListenAndServe("127.0.0.1:8090", mux))
}

// Inside the cluster, read the keys from the AuthorizationServer's JWKS
// ConfigMap mounted as a volume: no network call to the token server.
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
