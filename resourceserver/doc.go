// Package resourceserver lets a Go API accept Gatehouse access tokens.
//
// Gatehouse issues JWT access tokens in the profile of RFC 9068. A
// Validator checks them the way §4 of that RFC prescribes: the typ header
// is at+jwt, the signature verifies with a key from the issuer's JWKS
// under an allow-listed algorithm that is the key's own, the issuer is
// exactly the configured one, the audience contains this API, and the
// token is within its lifetime (with a small leeway for clock skew). The
// middleware from Require then checks scopes and answers refusals as
// RFC 6750 §3 prescribes.
//
//	v, err := resourceserver.New(ctx, resourceserver.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: "orders-api",
//	})
//	if err != nil { ... }
//	mux.Handle("GET /orders", v.Require("orders:read")(listOrders))
//
//	func listOrders(w http.ResponseWriter, r *http.Request) {
//		claims, _ := resourceserver.ClaimsFrom(r.Context())
//		...
//	}
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
// Keys come from the jwks_uri in the issuer's RFC 8414 metadata. They are
// cached for as long as the JWKS response's Cache-Control allows, refreshed
// in the background after that, and fetched at once when a token names a
// kid the cache does not know — at most once per MinRefreshInterval, with
// concurrent requests sharing one fetch. A failed fetch keeps the keys
// already known. Inside the cluster, JWKSFile reads the
// AuthorizationServer's JWKS ConfigMap from a mounted volume instead, so
// validation needs no network at all.
//
// The package imports only the standard library and golang-jwt/jwt/v5.
package resourceserver
