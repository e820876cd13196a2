package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func aliases(pairs ...string) []oauthv1.SecretKeyAlias {
	var out []oauthv1.SecretKeyAlias
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, oauthv1.SecretKeyAlias{Name: pairs[i], From: oauthv1.SecretKeySource(pairs[i+1])})
	}
	return out
}

// updateClient changes a client's spec, retrying on conflicts with the
// operator's status writes.
func updateClient(t *testing.T, oc *oauthv1.OAuthClient, change func(*oauthv1.OAuthClient)) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		change(oc)
		return testenv.Get(t).Client.Update(context.Background(), oc)
	})
}

// spec.secretKeyAliases puts the values under the names apps read
// (oauth2-proxy's and Grafana's environment variables); an alias of
// client_secret follows a rotation, and an alias taken out of the spec
// leaves the Secret, while keys the operator never wrote stay.
func TestOAuthClientSecretKeyAliases(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "proxy", "", "auth")
	oc.Spec.SecretKeyAliases = aliases(
		"OAUTH2_PROXY_CLIENT_ID", "client_id", "OAUTH2_PROXY_CLIENT_SECRET", "client_secret",
		"OAUTH2_PROXY_OIDC_ISSUER_URL", "issuer", "GF_AUTH_GENERIC_OAUTH_API_URL", "userinfo_endpoint",
		"LOGOUT_URL", "end_session_endpoint")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	sec := appSecret(t, ns, "proxy-oauth-client")
	secret := string(sec.Data["client_secret"])
	ep := endpoints.For(testIssuer)
	want := map[string]string{
		"OAUTH2_PROXY_CLIENT_ID": ns + ".proxy", "OAUTH2_PROXY_CLIENT_SECRET": secret,
		"OAUTH2_PROXY_OIDC_ISSUER_URL": testIssuer, "GF_AUTH_GENERIC_OAUTH_API_URL": ep.Userinfo, "LOGOUT_URL": ep.EndSession,
	}
	for k, v := range want {
		if got := string(sec.Data[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := sec.Data["userinfo_endpoint"]; ok {
		t.Error("userinfo_endpoint is written only under its alias")
	}

	// A rotation reaches the alias.
	setAnnotation(t, oc, oauthv1.AnnotationRotateSecret, "now")
	rotated := waitSecretChange(t, ns, "proxy-oauth-client", secret)
	if got := string(appSecret(t, ns, "proxy-oauth-client").Data["OAUTH2_PROXY_CLIENT_SECRET"]); got != rotated {
		t.Error("the client_secret alias did not follow the rotation")
	}

	// Someone adds a key of their own; an alias leaves the spec.
	patchSecretData(t, ns, "proxy-oauth-client", map[string]string{"cookie-secret": "theirs"})
	updateClient(t, oc, func(oc *oauthv1.OAuthClient) {
		oc.Spec.SecretKeyAliases = aliases("OAUTH2_PROXY_CLIENT_ID", "client_id")
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		sec := appSecret(t, ns, "proxy-oauth-client")
		if _, ok := sec.Data["OAUTH2_PROXY_CLIENT_SECRET"]; ok {
			return fmt.Errorf("removed alias still there: %v", keysOf(sec))
		}
		if string(sec.Data["OAUTH2_PROXY_CLIENT_ID"]) != ns+".proxy" || string(sec.Data["cookie-secret"]) != "theirs" ||
			string(sec.Data["client_secret"]) != rotated {
			return fmt.Errorf("Secret holds %v", keysOf(sec))
		}
		return nil
	})
	assertNoPlaintext(t, op, ns, rotated)
}

func patchSecretData(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		sec := appSecret(t, ns, name)
		for k, v := range data {
			sec.Data[k] = []byte(v)
		}
		return testenv.Get(t).Client.Update(context.Background(), sec)
	})
}

// In a Secret the operator did not create, aliases follow the rules of
// its other keys: a key of that name holding another value is refused
// (SecretConflict), the aliases it wrote are recorded, and on release
// only they go.
func TestOAuthClientAliasesInAnAdoptedSecret(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))
	external := "an-externally-managed-secret-of-enough-entropy-0123456789abcdef"
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "grafana-oauth"},
		Data: map[string][]byte{"client_secret": []byte(external), "GF_AUTH_GENERIC_OAUTH_CLIENT_ID": []byte("someone-else"),
			"GF_SERVER_ROOT_URL": []byte("https://grafana.example")},
	})
	oc := oauthClient(ns, "grafana", "", "auth")
	oc.Spec.SecretName = "grafana-oauth"
	oc.Spec.SecretKeyAliases = aliases("GF_AUTH_GENERIC_OAUTH_CLIENT_ID", "client_id", "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET", "client_secret")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "SecretConflict")
	if got := string(appSecret(t, ns, "grafana-oauth").Data["GF_AUTH_GENERIC_OAUTH_CLIENT_ID"]); got != "someone-else" {
		t.Fatalf("the owner's key was overwritten: %q", got)
	}

	// The owner takes their key out: the operator writes the aliases.
	sec := appSecret(t, ns, "grafana-oauth")
	delete(sec.Data, "GF_AUTH_GENERIC_OAUTH_CLIENT_ID")
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	poke(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	sec = appSecret(t, ns, "grafana-oauth")
	if string(sec.Data["GF_AUTH_GENERIC_OAUTH_CLIENT_ID"]) != ns+".grafana" || string(sec.Data["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]) != external ||
		string(sec.Data["client_secret"]) != external {
		t.Errorf("adopted Secret holds %v", keysOf(sec))
	}

	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, oc)
	sec = appSecret(t, ns, "grafana-oauth")
	if got, want := keysOf(sec), []string{"GF_SERVER_ROOT_URL", "client_secret"}; !slices.Equal(got, want) {
		t.Errorf("after deletion the adopted Secret holds %v, want %v", got, want)
	}
	if len(sec.Annotations) != 0 || len(sec.Labels) != 0 {
		t.Errorf("after deletion: annotations %v, labels %v", sec.Annotations, sec.Labels)
	}
}
