package controllers

import (
	"maps"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func TestClientIDIsSafeForHTTPBasic(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web.app"}}
	id := ClientID(oc)
	if id != "team-a.web.app" {
		t.Fatalf("ClientID = %q", id)
	}
	// The namespace, a DNS label, ends at the first '.'.
	ns, name, _ := strings.Cut(id, ".")
	if ns != "team-a" || name != "web.app" {
		t.Errorf("split %q into %q and %q", id, ns, name)
	}
}

func TestSecretNameProblem(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 241)}}
	if p := secretNameProblem(oc); p == nil || p.reason != oauthv1.ReasonInvalidSecretName || !strings.Contains(p.message, "spec.secretName") {
		t.Errorf("a 241-character client name: %+v, want InvalidSecretName", p)
	}
	oc.Name = strings.Repeat("a", 240)
	if p := secretNameProblem(oc); p != nil {
		t.Errorf("a 240-character client name: %+v", p)
	}
	oc.Spec.SecretName = "app-creds"
	oc.Name = strings.Repeat("a", 250)
	if p := secretNameProblem(oc); p != nil {
		t.Errorf("spec.secretName set: %+v", p)
	}
}

func TestIssuerKey(t *testing.T) {
	for _, same := range [][2]string{
		{"https://auth.example.com", "https://auth.example.com/"},
		{"https://Auth.Example.com/t/a", "https://auth.example.com/t/a/"},
	} {
		if issuerKey(same[0]) != issuerKey(same[1]) {
			t.Errorf("%q and %q are one issuer", same[0], same[1])
		}
	}
	if issuerKey("https://auth.example.com/t/A") == issuerKey("https://auth.example.com/t/a") {
		t.Error("paths are case-sensitive")
	}
}

func TestSecretRecheckBacksOff(t *testing.T) {
	oc := &oauthv1.OAuthClient{}
	waitingFor := func(d time.Duration) time.Duration {
		oc.Status.Conditions = []metav1.Condition{{Type: oauthv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: oauthv1.ReasonSecretNotAdoptable, LastTransitionTime: metav1.NewTime(time.Now().Add(-d))}}
		return secretRecheck(oc).RequeueAfter
	}
	if got := waitingFor(0); got != 10*time.Second {
		t.Errorf("just refused: recheck in %s, want 10s", got)
	}
	if got := waitingFor(2 * time.Minute); got < 29*time.Second || got > 31*time.Second {
		t.Errorf("waiting 2m: recheck in %s, want about 30s", got)
	}
	if got := waitingFor(48 * time.Hour); got != 5*time.Minute {
		t.Errorf("waiting 2 days: recheck in %s, want 5m", got)
	}
}

// connectionFor writes what the client may use, and nothing for what it
// may not.
func TestConnectionFor(t *testing.T) {
	te := &oauthv1.TokenExchange{
		SubjectTokens: []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken}, {Type: oauthv1.ExchangeAccessToken, Audiences: []oauthv1.Audience{"https://a"}}},
		ActorTokens:   []oauthv1.ExchangeableToken{{Type: oauthv1.ExchangeAccessToken}},
	}
	for _, tc := range []struct {
		spec      oauthv1.OAuthClientSpec
		resources []string
		want      map[string]string
	}{
		{oauthv1.OAuthClientSpec{}, nil, map[string]string{"grant_types": "authorization_code"}},
		{oauthv1.OAuthClientSpec{GrantTypes: []oauthv1.GrantType{"authorization_code", "refresh_token"}, Scopes: []oauthv1.ScopeName{"openid", "orders:read"}},
			[]string{"https://orders.example", "https://stock.example"},
			map[string]string{"grant_types": "authorization_code refresh_token", "scope": "openid orders:read",
				"resources": "https://orders.example https://stock.example"}},
		{oauthv1.OAuthClientSpec{GrantTypes: []oauthv1.GrantType{oauthv1.GrantTokenExchange}, TokenExchange: te}, nil,
			map[string]string{"grant_types": string(oauthv1.GrantTokenExchange),
				"subject_token_types": oauthv1.TokenTypeAccessToken, "actor_token_types": oauthv1.TokenTypeAccessToken}},
		// tokenExchange without the grant (CEL refuses it): nothing.
		{oauthv1.OAuthClientSpec{GrantTypes: []oauthv1.GrantType{"client_credentials"}, TokenExchange: te}, nil,
			map[string]string{"grant_types": "client_credentials"}},
	} {
		got := connectionFor(&oauthv1.OAuthClient{Spec: tc.spec}, tc.resources)
		if !maps.Equal(got, tc.want) {
			t.Errorf("connectionFor(%+v) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}
