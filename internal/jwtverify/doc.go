// Package jwtverify verifies JWTs that Gatehouse did not issue: client
// assertions a client signs itself (private_key_jwt, RFC 7523 §2.2),
// Kubernetes service-account tokens, and the tokens of issuers an
// AuthorizationServer trusts. The token endpoint's client authentication
// uses it, and token exchange's subject tokens can.
//
// The API is small:
//
//   - a KeySet gives keys by kid: Static (keys from configuration:
//     ParseJWKS, ParsePEM, NewKey) or Remote (a JWK Set fetched in the
//     background: NewRemote, NewKubernetes for the cluster's own
//     service-account issuer, a Registry to share them);
//   - Verify checks a token's signature with a KeySet and its claims
//     against a Policy (issuer, audience, subject, expiry, lifetime, jti)
//     and returns its Claims;
//   - every refusal is an *Error with a Reason, a fixed word for security
//     logs and metrics.
//
// Rules that hold whatever the Policy: the algorithm is one of Algorithms
// (ES256, RS256, EdDSA; never none or HMAC) and the key's own, never what
// the token's header would like; keys come only from the KeySet, never
// from the token (jwk, jku, x5u, x5c); exp is required; unknown crit
// extensions fail. Verification never waits on the network: a Remote
// answers from what it has and fetches in the background.
package jwtverify
