package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// spec.network.trustedProxies is checked at apply time: CIDR prefixes
// only, without host bits, never the whole Internet.
func TestTrustedProxiesValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf(`"10.%d.0.0/16"`, i)
	}
	for i, tc := range []struct {
		name, patch, want string // want "" accepts
	}{
		{"IPv4 and IPv6 prefixes", `spec: {network: {trustedProxies: ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]}}`, ""},
		{"Forwarded", `spec: {network: {trustedProxies: ["10.0.0.0/8"], forwardedHeader: Forwarded}}`, ""},
		{"empty", `spec: {network: {}}`, ""},
		{"a host name", `spec: {network: {trustedProxies: ["proxy.example.com"]}}`, "must be a CIDR prefix such as 10.0.0.0/8"},
		{"an address without a prefix length", `spec: {network: {trustedProxies: ["10.1.2.3"]}}`, "must be a CIDR prefix"},
		{"host bits", `spec: {network: {trustedProxies: ["10.1.2.3/8"]}}`, "must not have host bits set"},
		{"IPv4 everything", `spec: {network: {trustedProxies: ["0.0.0.0/0"]}}`, "must not trust every address (/0)"},
		{"IPv6 everything", `spec: {network: {trustedProxies: ["::/0"]}}`, "must not trust every address (/0)"},
		{"duplicates", `spec: {network: {trustedProxies: ["10.0.0.0/8", "10.0.0.0/8"]}}`, "Duplicate value"},
		{"too many", `spec: {network: {trustedProxies: [` + strings.Join(many, ",") + `]}}`, "must have at most 64 items"},
		{"unknown header", `spec: {network: {trustedProxies: ["10.0.0.0/8"], forwardedHeader: X-Real-IP}}`, `Unsupported value: "X-Real-IP"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, validServer, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("net-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
		})
	}
}

// spec.network.policy is checked at apply time, and `policy: {}` gets the
// documented defaults: PostgreSQL on 5432 and upstreams on 443.
func TestNetworkPolicyValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	for i, tc := range []struct {
		name, patch, want string // want "" accepts
	}{
		{"defaults", `spec: {network: {policy: {}}}`, ""},
		{"everything", `spec: {network: {policy: {metricsNamespaces: [monitoring, obs-2], postgres: {ports: [5432], to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: db}}}]}, upstreams: {ports: [443, 636], to: [{ipBlock: {cidr: 10.0.0.0/8}}]}}}}`, ""},
		{"a namespace that cannot be one", `spec: {network: {policy: {metricsNamespaces: [Monitoring]}}}`, "must be a namespace name"},
		{"port 0", `spec: {network: {policy: {upstreams: {ports: [0]}}}}`, "should be greater than or equal to 1"},
		{"port 65536", `spec: {network: {policy: {postgres: {ports: [65536]}}}}`, "should be less than or equal to 65535"},
		{"no ports", `spec: {network: {policy: {upstreams: {ports: []}}}}`, "should have at least 1 items"},
		{"duplicate namespaces", `spec: {network: {policy: {metricsNamespaces: [a, a]}}}`, "Duplicate value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, validServer, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("policy-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
			if tc.name != "defaults" {
				return
			}
			policy, _, _ := unstructured.NestedMap(obj.Object, "spec", "network", "policy")
			if got := fmt.Sprint(policy); got != "map[postgres:map[ports:[5432]] upstreams:map[ports:[443]]]" {
				t.Errorf("policy: {} defaulted to %s", got)
			}
		})
	}
}
