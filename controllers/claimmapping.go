package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
)

// ReasonInvalidClaimMapping: spec.claimMapping does not compile or may cost
// more than the budget; the message is CEL's.
const (
	ReasonInvalidClaimMapping = "InvalidClaimMapping"
	ReasonClaimMappingValid   = "ClaimMappingValid"
)

// checkClaimMapping compiles obj's spec.claimMapping as the token server
// will, and reports the outcome in its ClaimMappingValid condition (with a
// Warning Event when it newly fails), as kube-apiserver reports its own
// CEL errors. While it fails the token server refuses the tokens about
// people that it would apply to; nothing else about the object changes.
func checkClaimMapping(ctx context.Context, rec events.EventRecorder, obj client.Object, conds *[]metav1.Condition, m *oauthv1.ClaimMapping) {
	if _, err := claimmap.Compile(m); err != nil {
		failedWarn(ctx, rec, obj, conds, oauthv1.ConditionClaimMappingValid, ReasonInvalidClaimMapping, "spec."+err.Error())
		return
	}
	msg := "no claim mapping"
	if m != nil {
		msg = "spec.claimMapping compiles within the cost budget"
	}
	setCondition(conds, obj.GetGeneration(), oauthv1.ConditionClaimMappingValid, true, ReasonClaimMappingValid, msg)
}
