// Package kubescheme builds the runtime.Scheme every Gatehouse process,
// harness and test talks to the API server with: Kubernetes' built-in
// kinds and Gatehouse's own.
package kubescheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// New returns a new scheme with the built-in kinds and Gatehouse's.
func New() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := oauthv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}
