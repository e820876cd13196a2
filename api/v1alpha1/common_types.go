package v1alpha1

// ScopeName is one OAuth scope string (RFC 6749 §3.3 scope-token): printable
// ASCII without space, '"' or '\'. It may contain ':' and '.', as in
// "orders:read" or "api.example.com/read".
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="a scope must not contain spaces: OAuth separates scopes with a space (RFC 6749 §3.3)"
// +kubebuilder:validation:XValidation:rule="self.contains(' ') || self.matches(r'^[!#-\\[\\]-~]+$')",message="a scope may contain only printable ASCII characters other than '\"' and '\\' (RFC 6749 §3.3)"
type ScopeName string

// Audience identifies a resource server that accepts the access token, and
// becomes the token's `aud` claim (RFC 9068 §3). It is usually the API's
// base URL.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="!self.matches(r'\\s')",message="an audience must not contain white space"
type Audience string

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference selects one key of a Secret in the same namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key within the Secret's data.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}
