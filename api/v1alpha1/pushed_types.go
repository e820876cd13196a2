package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PushedAuthorizationRequests configures RFC 9126 for a server.
type PushedAuthorizationRequests struct {
	// Required makes every client push its authorization requests
	// (require_pushed_authorization_requests in the server's metadata):
	// /authorize accepts only a pushed request's request_uri. Default
	// false: only clients with spec.requirePushedAuthorizationRequests
	// must.
	//
	// +optional
	Required bool `json:"required,omitempty"`

	// RequestURILifetime is how long the request_uri a push returns may be
	// used (once), between 10s and 10m. Default 60s: the client sends the
	// browser to /authorize right after pushing.
	//
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="requestURILifetime must be a duration such as 60s"
	// +kubebuilder:validation:XValidation:rule="!self.matches(r'^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('10s') && duration(self) <= duration('10m'))",message="requestURILifetime must be between 10s and 10m"
	// +optional
	RequestURILifetime *metav1.Duration `json:"requestURILifetime,omitempty"`
}
