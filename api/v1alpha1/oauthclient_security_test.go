package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Security rules of OAuthClient enforced at apply time (issue 14): no
// skipConsent on a public client, and no redirect URI that exact matching
// could never honour, a wildcard or userinfo.
func TestOAuthClientSecurityRules(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()

	const (
		noSkip     = "skipConsent is not allowed for a public client: anyone can use its client_id, so the person must approve each request on the consent page"
		noWildcard = "a redirect URI must not contain a wildcard '*': redirect URIs are matched exactly"
		noUserinfo = "a redirect URI must not contain userinfo (user@ before the host)"
	)
	rejected := []struct{ name, base, patch, want string }{
		{"public client skipping consent", validPublicClient, `spec: {skipConsent: true}`, noSkip},
		{"wildcard host", validClient, `spec: {redirectURIs: ["https://*.example.com/cb"]}`, noWildcard},
		{"wildcard path", validClient, `spec: {redirectURIs: ["https://app.example.com/*"]}`, noWildcard},
		{"wildcard port", validClient, `spec: {redirectURIs: ["http://127.0.0.1:*/cb"]}`, noWildcard},
		{"wildcard among good URIs", validClient, `spec: {redirectURIs: ["https://app.example.com/cb", "https://app.example.com/cb*"]}`, noWildcard},
		{"userinfo", validClient, `spec: {redirectURIs: ["https://user@app.example.com/cb"]}`, noUserinfo},
		{"userinfo with password", validClient, `spec: {redirectURIs: ["https://user:pw@app.example.com/cb"]}`, noUserinfo},
		{"userinfo disguising the host", validClient, `spec: {redirectURIs: ["https://app.example.com@evil.example.net/cb"]}`, noUserinfo},
		{"userinfo on loopback", validPublicClient, `spec: {redirectURIs: ["http://me@127.0.0.1/cb"]}`, noUserinfo},
		{"post-logout redirect URI with a wildcard", validClient, `spec: {postLogoutRedirectURIs: ["https://app.example.com/*"]}`, noWildcard},
		{"an ID-token algorithm the server has no key for", validClient, `spec: {idTokenSignedResponseAlg: HS256}`, `Unsupported value: "HS256"`},
	}
	for _, tc := range rejected {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			err := cp.Client.Create(ctx, obj)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an Invalid error saying %q", err, tc.want)
			}
		})
	}

	accepted := []struct{ name, base, patch string }{
		{"confidential client skipping consent", validClient, `spec: {skipConsent: true}`},
		{"public client with skipConsent false", validPublicClient, `spec: {skipConsent: false}`},
		{"@ in the path", validClient, `spec: {redirectURIs: ["https://app.example.com/users/@me/cb"]}`},
		{"@ in the query", validClient, `spec: {redirectURIs: ["https://app.example.com/cb?hint=a@example.com"]}`},
		{"loopback without a port", validPublicClient, `spec: {redirectURIs: ["http://127.0.0.1/callback", "http://[::1]/callback"]}`},
		{"ES256 ID tokens", validClient, `spec: {idTokenSignedResponseAlg: ES256}`},
		{"post-logout redirect URIs", validClient, `spec: {postLogoutRedirectURIs: ["https://app.example.com/logged-out", "http://127.0.0.1/bye"]}`},
	}
	for i, tc := range accepted {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(obj.GetName() + "-ok-" + string(rune('a'+i)))
			if err := cp.Client.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Turning skipConsent on for an existing public client is refused too,
	// and leaves the object as it was.
	obj := object(t, validPublicClient, "")
	obj.SetNamespace(ns)
	if err := cp.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	err := cp.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"skipConsent":true}}`)))
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), noSkip) {
		t.Fatalf("patching skipConsent on: %v; want %q", err, noSkip)
	}
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	if skip, found, _ := unstructured.NestedBool(obj.Object, "spec", "skipConsent"); found && skip {
		t.Error("the refused patch changed the object")
	}
}
