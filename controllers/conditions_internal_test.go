package controllers

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/tools/events"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// A failing condition is counted every time it is set, and warns only
// when the failure is news: the condition was True, absent, or False for
// another reason.
func TestFailedWarnsOnlyWhenTheReasonChanges(t *testing.T) {
	ctx := context.Background()
	rec := events.NewFakeRecorder(10)
	srv := &oauthv1.AuthorizationServer{}
	srv.Generation = 3
	typ := oauthv1.ConditionIdentityProviderPrefix + "corp"
	counted := func(reason string) float64 {
		return testutil.ToFloat64(operatormetrics.ReconcileErrors.WithLabelValues(kindServer, reason))
	}
	warnings := func() []string {
		var got []string
		for {
			select {
			case e := <-rec.Events:
				got = append(got, e)
			default:
				return got
			}
		}
	}
	unreachable, rejected := counted(oauthv1.ReasonIdentityProviderUnreachable), counted(oauthv1.ReasonIdentityProviderCredentialsRejected)

	for _, step := range []struct {
		ok     bool
		reason string
		warns  bool
	}{
		{false, oauthv1.ReasonIdentityProviderUnreachable, true},         // new
		{false, oauthv1.ReasonIdentityProviderUnreachable, false},        // the same again
		{false, oauthv1.ReasonIdentityProviderCredentialsRejected, true}, // another reason
		{true, oauthv1.ReasonIdentityProviderReady, false},               // recovered
		{false, oauthv1.ReasonIdentityProviderCredentialsRejected, true}, // failing again
	} {
		if step.ok {
			setCondition(&srv.Status.Conditions, srv.Generation, typ, true, step.reason, "fine")
			continue
		}
		failedWarn(ctx, rec, srv, &srv.Status.Conditions, typ, step.reason, "it failed")
		got := warnings()
		if step.warns != (len(got) == 1) || len(got) > 1 {
			t.Fatalf("%s: Events %q, want a warning: %v", step.reason, got, step.warns)
		}
		if step.warns && (!strings.Contains(got[0], "Warning "+step.reason) || !strings.Contains(got[0], "identity provider corp: it failed")) {
			t.Errorf("Event %q, want a Warning %s naming the provider", got[0], step.reason)
		}
		c := srv.Status.Conditions[0]
		if c.Status != "False" || c.Reason != step.reason || c.Message != "it failed" || c.ObservedGeneration != 3 {
			t.Errorf("condition %+v", c)
		}
	}
	if d := counted(oauthv1.ReasonIdentityProviderUnreachable) - unreachable; d != 2 {
		t.Errorf("Unreachable counted %v times, want 2", d)
	}
	if d := counted(oauthv1.ReasonIdentityProviderCredentialsRejected) - rejected; d != 2 {
		t.Errorf("CredentialsRejected counted %v times, want 2", d)
	}
}
