package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

const validRevocation = `
apiVersion: oauth.gatehouse.dev/v1alpha1
kind: SessionRevocation
metadata: {name: alice-offboarding}
spec:
  serverRef: {name: auth}
  subject: alice
  reason: INC-1234 laptop stolen
`

// An OAuthClient's back-channel logout URI, a SessionRevocation and an
// identity provider's re-check timing are checked at apply time.
func TestSessionsAndLogoutValidation(t *testing.T) {
	cp := testenv.Get(t)
	ns := namespace(t, cp)
	ctx := context.Background()
	for i, tc := range []struct {
		name, base, patch, want string // want "" accepts
	}{
		{"back-channel https", validClient, `spec: {backchannelLogout: {uri: "https://app.example.com/bcl?tenant=a", sessionRequired: true}}`, ""},
		{"back-channel loopback http", validClient, `spec: {backchannelLogout: {uri: "http://127.0.0.1:9000/bcl"}}`, ""},
		{"back-channel http", validClient, `spec: {backchannelLogout: {uri: "http://app.example.com/bcl"}}`, "uri must use https"},
		{"back-channel fragment", validClient, `spec: {backchannelLogout: {uri: "https://app.example.com/bcl#x"}}`, "uri must not have a fragment"},
		{"back-channel relative", validClient, `spec: {backchannelLogout: {uri: "/bcl"}}`, "uri must be an absolute URL"},
		{"back-channel without uri", validClient, `spec: {backchannelLogout: {sessionRequired: true}}`, "uri: Required value"},

		{"revocation by subject", validRevocation, ``, ""},
		{"revocation by username", validRevocation, `spec: {subject: null, username: alice}`, ""},
		{"revocation by both", validRevocation, `spec: {username: alice}`, "name the person by exactly one of subject or username"},
		{"revocation by nobody", validRevocation, `spec: {subject: null}`, "name the person by exactly one of subject or username"},
		{"revocation without server", validRevocation, `spec: {serverRef: null}`, "serverRef: Required value"},

		{"recheck off", validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}, recheck: {interval: 0s}}]}`, ""},
		{"recheck 5m with a day's grace", validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}, recheck: {interval: 5m, gracePeriod: 24h}}]}`, ""},
		{"recheck too often", validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}, recheck: {interval: 10s}}]}`, "interval must be 0s (off) or between 1m and 24h"},
		{"recheck grace too long", validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}, recheck: {gracePeriod: 100h}}]}`, "gracePeriod must be at most 72h"},
		{"recheck not a duration", validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}, recheck: {interval: soon}}]}`, "interval must be a duration such as 10m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("sessions-%d", i))
			createAsValidated(ctx, t, cp, obj, tc.want)
		})
	}

	// A SessionRevocation is the record of one action: its spec cannot
	// change; its status can (the token server writes it).
	rev := object(t, validRevocation, "")
	rev.SetNamespace(ns)
	if err := cp.Client.Create(ctx, rev); err != nil {
		t.Fatal(err)
	}
	var typed oauthv1.SessionRevocation
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(rev), &typed); err != nil {
		t.Fatal(err)
	}
	changed := typed.DeepCopy()
	changed.Spec.Subject = "bob"
	if err := cp.Client.Update(ctx, changed); err == nil || !strings.Contains(err.Error(), "cannot be changed") {
		t.Fatalf("changing the subject: %v", err)
	}
	typed.Status.Subject, typed.Status.SessionsEnded = "alice", 2
	if err := cp.Client.Status().Update(ctx, &typed); err != nil {
		t.Fatalf("writing the status: %v", err)
	}

	// The defaults of an identity provider's re-check.
	srv := object(t, validServer, `spec: {identityProviders: [{name: corp, oidc: {issuer: "https://login.example.com", clientID: c, clientSecretRef: {name: s, key: k}}}]}`)
	srv.SetNamespace(ns)
	srv.SetName("recheck-defaults")
	if err := cp.Client.Create(ctx, srv); err != nil {
		t.Fatal(err)
	}
	var as oauthv1.AuthorizationServer
	if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(srv), &as); err != nil {
		t.Fatal(err)
	}
	interval, grace := as.Spec.IdentityProviders[0].RecheckTiming()
	if interval != 10*time.Minute || grace != time.Hour || as.Spec.IdentityProviders[0].Recheck.Interval == nil {
		t.Errorf("re-check defaults: interval %s, grace %s (stored %+v)", interval, grace, as.Spec.IdentityProviders[0].Recheck)
	}
}
