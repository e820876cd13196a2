package jwtverify

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"
)

// Paths of the service-account issuer discovery the kube-apiserver serves
// (KEP-1393), which the built-in ClusterRole
// system:service-account-issuer-discovery grants.
const (
	KubernetesDiscoveryPath = "/.well-known/openid-configuration"
	KubernetesJWKSPath      = "/openid/v1/jwks"
)

// NewKubernetes is the cluster's service-account issuer as a Remote: its
// discovery document and JWK Set, read from the API server cfg reaches
// with cfg's own credentials and CA (the token server's in-cluster
// ServiceAccount). The issuer is whatever the API server's discovery
// document says; the keys come from the API server itself, not from the
// document's jwks_uri, which is an address for the world outside.
func NewKubernetes(ctx context.Context, cfg *rest.Config, o RemoteOptions) (*Remote, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server transport: %w", err)
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	o.DiscoveryURL = host + KubernetesDiscoveryPath
	o.JWKSURI = host + KubernetesJWKSPath
	o.Issuer = ""
	o.Client = &http.Client{Transport: rt, Timeout: DefaultFetchTimeout}
	if o.Name == "" {
		o.Name = "kubernetes"
	}
	return NewRemote(ctx, o)
}
