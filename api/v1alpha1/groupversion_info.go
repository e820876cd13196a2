// Package v1alpha1 holds the Gatehouse API: AuthorizationServer, OAuthClient,
// Scope and SessionRevocation in the oauth.gatehouse.dev group.
//
// +kubebuilder:object:generate=true
// +groupName=oauth.gatehouse.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every Gatehouse kind.
	GroupVersion = schema.GroupVersion{Group: "oauth.gatehouse.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Gatehouse kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the Gatehouse kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&AuthorizationServer{}, &AuthorizationServerList{},
		&OAuthClient{}, &OAuthClientList{},
		&Scope{}, &ScopeList{},
		&SessionRevocation{}, &SessionRevocationList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
