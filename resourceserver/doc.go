// Package resourceserver lets a Go HTTP API accept Gatehouse access tokens.
//
// Make one Validator per issuer and audience when the program starts, and
// wrap each route in Validator.Require with the scopes it needs:
//
//	v, err := resourceserver.New(ctx, resourceserver.Config{
//		Issuer:   "https://auth.example.com", // status.issuer of the AuthorizationServer
//		Audience: "https://orders.example.com", // spec.audience of its Scopes
//	})
//	if err != nil {
//		log.Fatal(err) // wrong issuer, issuer unreachable, no usable key
//	}
//	mux.Handle("GET /orders", v.Require("orders:read")(http.HandlerFunc(listOrders)))
//
//	func listOrders(w http.ResponseWriter, r *http.Request) {
//		claims, _ := resourceserver.ClaimsFrom(r.Context())
//		...
//	}
//
// New fails rather than starting a server that would refuse every token:
// it checks the configuration, discovers the issuer's keys and fetches
// them once before it returns.
//
// # What a token must be
//
// Gatehouse issues JWT access tokens in the profile of RFC 9068. A
// Validator checks them as §4 of that RFC prescribes:
//
//   - the typ header is at+jwt, so an ID token or any other JWT from the
//     same issuer is not taken for an access token;
//   - the signature verifies with the key its kid names in the issuer's
//     JWKS, under the algorithm of that key, which must be on the
//     allow-list (Config.Algorithms; never none or HMAC);
//   - iss is exactly Config.Issuer and aud contains Config.Audience;
//   - exp, iat and nbf hold at the current time, give or take
//     Config.Leeway for clock skew;
//   - sub, client_id, jti, exp and iat are present.
//
// Require then checks that the token was granted every scope the route
// needs. Nothing from the payload is read before the signature verified.
//
// # Refusals
//
// Require answers a refused request itself, as RFC 6750 §3 prescribes,
// with a WWW-Authenticate challenge, Cache-Control: no-store and a small
// JSON body:
//
//   - 401 with a bare challenge: no bearer token was sent;
//   - 400 invalid_request: a malformed Authorization header, or a token
//     in the URI (refused, since URIs end up in logs);
//   - 401 invalid_token: the token failed validation;
//   - 403 insufficient_scope: a valid token without a needed scope;
//   - 503 with Retry-After: the issuer's keys could not be fetched, so
//     the token could not be checked at all.
//
// The error a refusal carries wraps one of the Err* values (ErrExpired,
// ErrAudience, ...), so Config.OnReject can log or count refusals by
// reason with errors.Is. To answer differently (optional authentication,
// another transport), use Validator.Validate or Validator.ValidateRequest
// and WriteError.
//
// # Users and clients
//
// A token is either a user's, issued through the authorization code flow
// (and refreshed) to a client acting for that user, or a client's own,
// issued through client_credentials with no user involved. Both carry sub
// and client_id, and the two kinds of subject never collide (RFC 9700
// §4.15):
//
//   - a client's own token has sub "client:" followed by its client_id,
//     e.g. sub "client:shop.storefront" with client_id "shop.storefront";
//   - a user's token has the user's subject as sub, and Gatehouse refuses
//     any user whose subject starts with "client:" (in any case), so a
//     user named "shop.storefront" is still not that client.
//
// Claims.IsClient and Claims.UserSubject tell them apart; key per-user
// data by UserSubject, never by Subject alone, and give a client's own
// token only what the client itself may do. Validate refuses a token
// whose sub starts with "client:" but names another client than its
// client_id. Tokens of a user also carry auth_time; a client's do not.
//
// # Keys
//
// Keys come from the jwks_uri in the issuer's RFC 8414 metadata (or from
// Config.JWKSURL). They are cached for as long as the JWKS response's
// Cache-Control allows, refreshed in the background after that, and
// fetched at once when a token names a kid the cache does not know — at
// most once per Config.MinRefreshInterval, with concurrent requests
// sharing one fetch, so tokens with made-up kids cannot make the
// Validator hammer the issuer. A failed fetch keeps the keys already
// known. Gatehouse publishes a new key well before it signs with it, so
// key rotation never makes a valid token fail.
//
// Inside the cluster, JWKSFile reads the AuthorizationServer's JWKS
// ConfigMap (<server name>-jwks, data key jwks.json) from a mounted
// volume instead, so validation needs no network at all. StaticJWKS pins
// a fixed set.
//
// # Protected Resource Metadata (RFC 9728)
//
// With Config.Metadata the Validator describes the API to clients that
// know nothing but its URL (MCP clients, agents): serve
// Validator.MetadataHandler at Validator.MetadataPath, and every refusal
// of Require carries resource_metadata, the document's URL, in its
// WWW-Authenticate challenge (§5.1). The document names the API
// (resource: Config.Audience, which must then be the API's https URL),
// the issuer, the scopes the routes need and that tokens go in the
// Authorization header. A client then asks the issuer for a token with
// resource set to that URL (RFC 8707) and gets one for this API alone.
//
//	v, err := resourceserver.New(ctx, resourceserver.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: "https://api.example.com/mcp",
//		Metadata: &resourceserver.ProtectedResourceMetadata{ResourceName: "Example MCP server"},
//	})
//	mux.Handle("GET "+v.MetadataPath(), v.MetadataHandler())
//	mux.Handle("POST /mcp", v.Require("tools:call")(mcp))
//
// # Testing handlers
//
// A handler behind Require reads the token's claims with ClaimsFrom. In
// tests, put claims in a request's context with NewContext and call the
// handler directly: no token, key or issuer is needed.
//
// # Module and Go version
//
// This package is a Go module of its own,
// github.com/gatehouse-dev/gatehouse/resourceserver. It needs Go 1.25 or
// later and depends only on the standard library and
// github.com/golang-jwt/jwt/v5: importing it brings none of the
// Kubernetes libraries the Gatehouse server is built on.
package resourceserver
