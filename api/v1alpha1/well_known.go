package v1alpha1

// Annotations users set on Gatehouse objects.
const (
	// AnnotationRotateSecret on an OAuthClient rotates its secret whenever
	// the value changes (e.g. set it to the current date).
	AnnotationRotateSecret = "oauth.gatehouse.dev/rotate-secret"
	// AnnotationRotateKeys on an AuthorizationServer starts a signing-key
	// rotation whenever the value changes. The new key is still published
	// for prepublishPeriod before it signs.
	AnnotationRotateKeys = "oauth.gatehouse.dev/rotate-keys"
	// AnnotationAdoptBy on a Secret that the operator did not create hands
	// it to the OAuthClient of that name (same namespace): the operator may
	// then write the client's credentials into it, client_secret included
	// when the Secret has none. It never takes ownership of such a Secret,
	// and when the client goes it removes only the keys it wrote. Without
	// the annotation an existing Secret is used only when it already holds
	// a client_secret to adopt.
	AnnotationAdoptBy = "oauth.gatehouse.dev/adopt-by"
	// AnnotationRestartOnSecretRotation on a Deployment, StatefulSet or
	// DaemonSet names OAuthClients of its namespace (comma-separated)
	// whose secret it reads from environment variables: whenever one of
	// their secrets changes (a rotation, an adopted secret replaced, a
	// deleted Secret regenerated) the operator rolls the workload, as
	// `kubectl rollout restart` does, so its pods start with the new
	// secret while the old one still works. Opting in rolls it once.
	AnnotationRestartOnSecretRotation = "oauth.gatehouse.dev/restart-on-secret-rotation"
)

// Annotations the operator writes on workloads that opted in with
// AnnotationRestartOnSecretRotation.
const (
	// AnnotationClientSecretRevision, on the workload and its pod
	// template, is a hash of the current secret hashes of the clients it
	// names (never a secret): changing it in the template is what rolls
	// the workload.
	AnnotationClientSecretRevision = "oauth.gatehouse.dev/client-secret-revision"
)

// Annotations the operator writes on the Secrets it uses.
const (
	// AnnotationWrittenKeys, on a Secret the operator does not own, lists
	// the data keys it wrote there: on release it removes those and only
	// those.
	AnnotationWrittenKeys = "oauth.gatehouse.dev/written-keys"
	// AnnotationAliasKeys, on a Secret the operator created, lists the
	// keys it wrote for spec.secretKeyAliases, so that an alias taken out
	// of the spec is taken out of the Secret too. (In a Secret it does
	// not own, AnnotationWrittenKeys records them with the rest.)
	AnnotationAliasKeys = "oauth.gatehouse.dev/alias-keys"
	// AnnotationRotateSecretHandled, on the app's Secret, records the value
	// of the OAuthClient's rotate-secret annotation last acted on, so that
	// a restart does not rotate again.
	AnnotationRotateSecretHandled = "oauth.gatehouse.dev/rotate-secret-handled"
)

// Labels the operator puts on what it creates.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelManagedByValue = "gatehouse"
	// LabelServer names the AuthorizationServer an object belongs to.
	LabelServer = "oauth.gatehouse.dev/server"
	// LabelClient names the OAuthClient a Secret or ConfigMap belongs to.
	LabelClient = "oauth.gatehouse.dev/client"
)

// Data keys of an OAuthClient's Secret: everything an app needs, under the
// names RFC 8414 metadata uses.
const (
	SecretKeyClientID              = "client_id"
	SecretKeyClientSecret          = "client_secret"
	SecretKeyIssuer                = "issuer"
	SecretKeyAuthorizationEndpoint = "authorization_endpoint"
	SecretKeyTokenEndpoint         = "token_endpoint"
	SecretKeyJWKSURI               = "jwks_uri"
	// SecretKeyOIDCDiscoveryURL is the issuer's OpenID Connect Discovery
	// 1.0 §4 document, from which OIDC libraries configure themselves.
	SecretKeyOIDCDiscoveryURL = "oidc_discovery_url"
)

// Further data keys of a ConfigMap the operator writes for a client with
// spec.authentication (no secret), besides client_id, issuer, the
// endpoints and jwks_uri above: RFC 8414 and RFC 7591 names where they
// exist.
const (
	ConnectionKeyIntrospectionEndpoint = "introspection_endpoint"
	ConnectionKeyRevocationEndpoint    = "revocation_endpoint"
	// ConnectionKeyDeviceAuthorizationEndpoint is there only for a client
	// that may use the device grant (RFC 8628 §4).
	ConnectionKeyDeviceAuthorizationEndpoint = "device_authorization_endpoint"
	ConnectionKeyTokenEndpointAuthMethod     = "token_endpoint_auth_method"
	// ConnectionKeyClientAssertionType is the client_assertion_type to
	// send (urn:ietf:params:oauth:client-assertion-type:jwt-bearer).
	ConnectionKeyClientAssertionType = "client_assertion_type"
	// ConnectionKeyServiceAccountTokenAudience is the audience a projected
	// service-account token needs to be accepted: the issuer.
	ConnectionKeyServiceAccountTokenAudience = "service_account_token_audience"
	// ConnectionKeyGrantTypes and ConnectionKeyScope list, space-separated,
	// the grants and scopes the client may use.
	ConnectionKeyGrantTypes = "grant_types"
	ConnectionKeyScope      = "scope"
	// ConnectionKeySubjectTokenTypes and ConnectionKeyActorTokenTypes
	// list, space-separated, the token types (RFC 8693 §3) a client with
	// spec.tokenExchange may send as subject_token_type and
	// actor_token_type; absent when it may send none.
	ConnectionKeySubjectTokenTypes = "subject_token_types"
	ConnectionKeyActorTokenTypes   = "actor_token_types"
	// ConnectionKeyResources lists, space-separated, the APIs the client
	// may get a token for: the values a resource indicator (RFC 8707 §2)
	// or a token exchange's audience or resource (RFC 8693 §2.1) may
	// take. Absent when the client has no API of its own (its tokens are
	// then for itself).
	ConnectionKeyResources = "resources"
)
