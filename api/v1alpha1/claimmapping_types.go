package v1alpha1

// ClaimMapping changes what tokens say about a person, with CEL
// expressions (https://cel.dev) over `user`: user.subject, user.username,
// user.name, user.email, user.emailVerified and user.groups, as the
// person's identity source gave them, and `client`: client.id and
// client.namespace. The operator compiles and cost-checks the expressions
// when the object is applied and reports an error in the object's status
// (condition ClaimMappingValid); the token server evaluates them when it
// issues tokens and answers userinfo, each within a fixed cost budget. A
// mapping that fails at that point refuses the token (server_error)
// rather than issue unmapped claims. Its login rules decide who may sign
// in at all.
//
// On an OAuthClient it applies after the AuthorizationServer's: its
// `user.groups` are the groups the server's mapping gave, and its claims
// are added to (and replace same-named ones of) the server's, and its
// login rules are checked after the server's.
type ClaimMapping struct {
	// Groups is an expression giving the person's groups (a list of
	// strings) in place of those the identity source gave, in the
	// `groups` claim of ID tokens, access tokens and userinfo, e.g.
	// `user.groups.filter(g, g.startsWith("eng-")).map(g, "oidc:" + g)`.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Groups string `json:"groups,omitempty"`

	// Claims are further claims of ID tokens and userinfo, each an
	// expression giving a string, bool, int or list of strings; one that
	// gives an empty string or list, or null, is left out. Names of
	// claims the server sets itself (iss, sub, aud, groups, email, ...)
	// are refused.
	//
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Claims []ClaimExpression `json:"claims,omitempty"`

	// LoginRules decide whether a person may sign in (to any client, on
	// an AuthorizationServer; to this client, on an OAuthClient): each
	// is a bool expression over the same variables, and every one must
	// give true. They are checked when a login completes, when a signed-in
	// person starts another client's flow (single sign-on), before the
	// consent page and the code, and again on every refresh, with the
	// person as known then. A person a rule refuses, or for whom a rule
	// fails (a missing key, a wrong type), gets no code and no tokens: the
	// client receives access_denied and the person the rule's message.
	//
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	LoginRules []LoginRule `json:"loginRules,omitempty"`
}

// LoginRule is one condition a person must meet to sign in.
type LoginRule struct {
	// Expression gives true to let the person sign in, e.g.
	// `"platform" in user.groups || user.email.endsWith("@example.com")`.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`

	// Message is shown to a person the rule refuses, and sent to the
	// client as access_denied's error_description, e.g. "Only the
	// platform team may sign in to Argo CD." Default: a generic refusal.
	//
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\x00-\x1f\x7f]*$`
	// +optional
	Message string `json:"message,omitempty"`
}

// ClaimExpression is one added claim.
type ClaimExpression struct {
	// Name is the claim's name.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_.:/-]*$`
	// +kubebuilder:validation:XValidation:rule="!(self in ['iss','sub','aud','exp','nbf','iat','jti','auth_time','nonce','acr','amr','azp','at_hash','c_hash','sid','scope','client_id','cnf','act','may_act','grant_id','typ','events','userinfo_claims','groups','preferred_username','name','email','email_verified'])",message="the server sets this claim itself; choose another name"
	Name string `json:"name"`

	// Expression gives the claim's value, e.g.
	// `user.email.endsWith("@example.com") ? "staff" : "guest"`.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`
}

// ConditionClaimMappingValid is False, with the CEL error in its message,
// while spec.claimMapping does not compile or may cost more than the
// budget; True when it compiles (or there is none).
const ConditionClaimMappingValid = "ClaimMappingValid"
