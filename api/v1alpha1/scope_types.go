package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScopeSpec defines one scope string of an AuthorizationServer. Scopes live
// next to their server and belong to the platform team; apps request them
// through their OAuthClient's scopes.
type ScopeSpec struct {
	// ServerRef is the AuthorizationServer, in this namespace, that offers
	// this scope. Immutable.
	//
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serverRef is immutable: create a new Scope for another server"
	ServerRef LocalObjectReference `json:"serverRef"`

	// Name is the scope string clients request, e.g. "orders:read". It may
	// contain ':' and '.', but no space. Within one server, one Scope owns a
	// name; a second Scope claiming it is marked as a conflict.
	Name ScopeName `json:"name"`

	// Description tells people on the consent page what they grant, e.g.
	// "Read your orders".
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=300
	Description string `json:"description"`

	// Audience is the resource server that tokens carrying this scope are
	// for; it is added to the token's `aud`.
	//
	// +optional
	Audience Audience `json:"audience,omitempty"`

	// RequiresConsent makes the consent page ask for this scope. Default
	// true. Set false for scopes that reveal nothing about the person.
	//
	// +kubebuilder:default=true
	// +optional
	RequiresConsent *bool `json:"requiresConsent,omitempty"`

	// AllowedClients decides which namespaces' OAuthClients may request
	// this scope: Same (default: the Scope's own namespace, which is its
	// server's), All, or Selector. A server admitting clients from many
	// namespaces does not thereby let every team mint tokens for every
	// API: each Scope opens itself to the teams that should call it. A
	// client requesting a scope that does not admit it is Ready=False with
	// reason ScopeNotAllowed.
	//
	// +kubebuilder:default={}
	// +optional
	AllowedClients AllowedClients `json:"allowedClients,omitempty"`
}

// ScopeStatus is what the operator observed.
type ScopeStatus struct {
	// ObservedGeneration is the generation this status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is True when the server exists and no other Scope
	// of that server claims the same name (otherwise reason Conflict).
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Scope is a scope an AuthorizationServer offers, with the description
// people see on the consent page.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oscope,categories=gatehouse
// +kubebuilder:printcolumn:name="Scope",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.spec.serverRef.name`
// +kubebuilder:printcolumn:name="Consent",type=boolean,JSONPath=`.spec.requiresConsent`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=`.spec.description`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Scope struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ScopeSpec   `json:"spec"`
	Status ScopeStatus `json:"status,omitempty"`
}

// ScopeList is a list of Scopes.
//
// +kubebuilder:object:root=true
type ScopeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Scope `json:"items"`
}
