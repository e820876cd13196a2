package controllers_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// A claim mapping is compiled when applied: a CEL mistake is the
// ClaimMappingValid=False condition with CEL's message (the client stays
// Ready: only its tokens about people are refused), a claim name the
// server sets itself is refused by the API, and a fixed mapping is valid
// again.
func TestClaimMappingCompiledOnApply(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	srv := server(ns, "auth")
	srv.Spec.ClaimMapping = &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "gatehouse:" + g)`}
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionClaimMappingValid, metav1.ConditionTrue, "ClaimMappingValid")

	oc := oauthClient(ns, "argocd", "", "auth")
	oc.Spec.ClaimMapping = &oauthv1.ClaimMapping{Groups: `user.username`}
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionClaimMappingValid, metav1.ConditionFalse, "InvalidClaimMapping")
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	got := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionClaimMappingValid)
	if !strings.Contains(got.Message, "spec.claimMapping.groups: gives string, not list(string)") {
		t.Errorf("message %q", got.Message)
	}
	if !eventSeen(t, ns, "argocd", "InvalidClaimMapping") {
		t.Error("no Warning Event")
	}

	bad := oc.DeepCopy()
	bad.Spec.ClaimMapping = &oauthv1.ClaimMapping{Claims: []oauthv1.ClaimExpression{{Name: "sub", Expression: `"x"`}}}
	if err := c.Update(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "the server sets this claim itself") {
		t.Errorf("a reserved claim name: %v", err)
	}

	get(t, oc)
	oc.Spec.ClaimMapping = &oauthv1.ClaimMapping{Groups: `user.groups.map(g, "argocd:" + g)`}
	if err := c.Update(context.Background(), oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionClaimMappingValid, metav1.ConditionTrue, "ClaimMappingValid")
}

// Login rules are compiled when applied like the rest of the mapping: a
// rule that does not give a bool is ClaimMappingValid=False naming the
// rule, a message with a line break is refused by the API, and a fixed
// rule is valid again.
func TestLoginRulesCompiledOnApply(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	srv := server(ns, "auth")
	srv.Spec.ClaimMapping = &oauthv1.ClaimMapping{LoginRules: []oauthv1.LoginRule{
		{Expression: `"platform" in user.groups`}, {Expression: `user.email`, Message: "Staff only."}}}
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionClaimMappingValid, metav1.ConditionFalse, "InvalidClaimMapping")
	got := meta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionClaimMappingValid)
	if !strings.Contains(got.Message, "spec.claimMapping.loginRules[1]: gives string, not bool") {
		t.Errorf("message %q", got.Message)
	}

	bad := srv.DeepCopy()
	bad.Spec.ClaimMapping.LoginRules[1] = oauthv1.LoginRule{Expression: `true`, Message: "Staff\nonly."}
	if err := c.Update(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "spec.claimMapping.loginRules[1].message") {
		t.Errorf("a message with a line break: %v", err)
	}

	get(t, srv)
	srv.Spec.ClaimMapping.LoginRules[1] = oauthv1.LoginRule{Expression: `user.email.endsWith("@example.com")`, Message: "Staff only."}
	if err := c.Update(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionClaimMappingValid, metav1.ConditionTrue, "ClaimMappingValid")
}
