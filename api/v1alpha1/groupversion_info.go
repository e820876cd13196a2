// Package v1alpha1 holds the Gatehouse API: AuthorizationServer, OAuthClient
// and Scope in the oauth.gatehouse.dev group.
//
// +kubebuilder:object:generate=true
// +groupName=oauth.gatehouse.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Gatehouse kind.
	GroupVersion = schema.GroupVersion{Group: "oauth.gatehouse.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Gatehouse kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Gatehouse kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
