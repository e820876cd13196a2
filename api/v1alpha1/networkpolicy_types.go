package v1alpha1

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// NetworkPolicySpec is the NetworkPolicy the operator writes for a
// server's token-server pods. It lets in: anyone on the token port (the
// server is what clients and browsers reach), and the metrics port (metrics,
// health and readiness) only from the pods of the server's own namespace
// and of metricsNamespaces. It lets out: DNS, the Kubernetes API server (its
// addresses as the cluster's `kubernetes` Service publishes them),
// PostgreSQL, and upstreams, nothing else.
//
// A NetworkPolicy selects destinations by address or by pod and namespace
// labels, never by host name, so PostgreSQL and upstreams (identity
// providers, trusted issuers' and clients' key sets, back-channel logout
// URIs, an OpenTelemetry collector) are allowed by port, to any address,
// unless `to` narrows them to peers you name.
type NetworkPolicySpec struct {
	// MetricsNamespaces names the namespaces, besides the server's own,
	// whose pods may reach the metrics port, e.g. the namespace Prometheus
	// runs in. The kubelet's probes come from the node, which CNIs let
	// through regardless of NetworkPolicy.
	//
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	MetricsNamespaces []NamespaceName `json:"metricsNamespaces,omitempty"`

	// Postgres is where the server may connect to PostgreSQL (only used
	// with storage type Postgres). Default: TCP 5432 at any address.
	//
	// +kubebuilder:default={ports:{5432}}
	// +optional
	Postgres EgressTarget `json:"postgres,omitempty"`

	// Upstreams is where the server may connect to everything else it
	// calls: upstream identity providers (OpenID discovery, token and
	// JWKS endpoints; LDAP), trusted issuers' JWKS, clients' jwks_uri,
	// back-channel logout URIs, the OpenTelemetry collector. Default: TCP
	// 443 at any address. Add the ports of upstreams that listen
	// elsewhere (LDAPS 636, OTLP 4318, an in-cluster relying party's 8080).
	//
	// +kubebuilder:default={ports:{443}}
	// +optional
	Upstreams EgressTarget `json:"upstreams,omitempty"`
}

// NamespaceName is the name of a namespace (an RFC 1123 label).
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit"
type NamespaceName string

// EgressTarget is a set of TCP ports at some peers (any address when no
// peer is named).
type EgressTarget struct {
	// Ports are the TCP ports the server may connect to.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +listType=set
	// +optional
	Ports []int32 `json:"ports,omitempty"`

	// To narrows the destinations to these peers (pods by namespace and
	// pod labels, or address blocks), as in a NetworkPolicy egress rule.
	// Empty: any address.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	To []networkingv1.NetworkPolicyPeer `json:"to,omitempty"`
}
