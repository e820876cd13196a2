package v1alpha1

// Condition types. Every kind reports Ready, so that `kubectl wait
// --for=condition=Ready` works the same for all of them; an
// AuthorizationServer also reports the parts Ready summarizes, and one
// condition per identity provider.
const (
	ConditionReady = "Ready"
	// ConditionAccepted is False when the server cannot be run at all,
	// e.g. another server already has its issuer.
	ConditionAccepted = "Accepted"
	// ConditionKeysReady is True when the server has an active signing key
	// and the JWKS publishes it.
	ConditionKeysReady = "KeysReady"
	// ConditionAvailable is True when the token server answers: its
	// Deployment is available, or the server outside the cluster is ready.
	ConditionAvailable = "Available"
	// ConditionPolicies is True when the PodDisruptionBudget and
	// NetworkPolicy the spec calls for are written (or none is called
	// for), and False when an object of the same name that the operator
	// did not create stands in the way: the operator leaves it alone. It
	// is not part of Ready: the token server serves either way.
	ConditionPolicies = "Policies"
	// ConditionIdentityProviderPrefix begins each identity provider's
	// condition (IdentityProvider-<name>): its Secrets are there and
	// usable, an OpenID Provider's discovery answers and it accepts the
	// client credentials, an LDAP directory accepts the connection (TLS
	// verified) and the bind. The operator checks, not the token server:
	// the server calls upstreams only while someone logs in.
	ConditionIdentityProviderPrefix = "IdentityProvider-"
)

// Condition reasons. Each names what a user can look at or fix.
const (
	ReasonReady = "Ready"
	// ReasonReconciling: a part has not been decided yet.
	ReasonReconciling = "Reconciling"

	// OAuthClient
	ReasonServerNotFound      = "ServerNotFound"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonUnknownScope        = "UnknownScope"
	ReasonScopeNotAllowed     = "ScopeNotAllowed"
	ReasonAudienceNotAllowed  = "AudienceNotAllowed"
	ReasonWeakSecret          = "WeakSecret"
	ReasonSecretConflict      = "SecretConflict"
	ReasonSecretNotAdoptable  = "SecretNotAdoptable"
	ReasonInvalidSecretName   = "InvalidSecretName"
	// An OAuthClient without a secret (spec.authentication).
	ReasonServiceAccountNotFound  = "ServiceAccountNotFound"
	ReasonInvalidClientKeys       = "InvalidClientKeys"
	ReasonClientKeysNotFound      = "ClientKeysNotFound"
	ReasonUnknownTrustedIssuer    = "UnknownTrustedIssuer"
	ReasonTrustedIssuerNotAllowed = "TrustedIssuerNotAllowed"
	ReasonConfigMapConflict       = "ConfigMapConflict"

	// Scope
	ReasonConflict     = "Conflict"
	ReasonBuiltinScope = "BuiltinScope"

	// AuthorizationServer
	ReasonAccepted               = "Accepted"
	ReasonIssuerConflict         = "IssuerConflict"
	ReasonKeysReady              = "KeysReady"
	ReasonInvalidKeys            = "InvalidKeys"
	ReasonUnsupportedReplicas    = "UnsupportedReplicas"
	ReasonAvailable              = "Available"
	ReasonProgressing            = "Progressing"
	ReasonScaledToZero           = "ScaledToZero"
	ReasonDeploymentFailed       = "DeploymentFailed"
	ReasonExternalServerReady    = "ExternalServerReady"
	ReasonExternalServerNotReady = "ExternalServerNotReady"
	ReasonPoliciesWritten        = "PoliciesWritten"
	ReasonPolicyNameTaken        = "PolicyNameTaken"

	// IdentityProvider-<name>
	ReasonIdentityProviderReady               = "IdentityProviderReady"
	ReasonIdentityProviderSecretInvalid       = "IdentityProviderSecretInvalid"
	ReasonIdentityProviderUnreachable         = "IdentityProviderUnreachable"
	ReasonIdentityProviderCredentialsRejected = "IdentityProviderCredentialsRejected"
)
