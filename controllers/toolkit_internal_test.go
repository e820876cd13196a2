package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// A status recomputed with sub-second times is the status the API holds,
// which stores seconds: writing it would be a patch of nothing but the
// resourceVersion, once per reconcile (an operator restart sent one).
func TestSameJSONIgnoresWhatTheWireDropsOnly(t *testing.T) {
	stored := time.Date(2026, 12, 30, 10, 35, 36, 0, time.UTC)
	withNanos := stored.Add(123456789 * time.Nanosecond)
	status := func(rotation time.Time, key string) oauthv1.AuthorizationServerStatus {
		return oauthv1.AuthorizationServerStatus{ActiveKeyID: key, NextRotationTime: &metav1.Time{Time: rotation}}
	}
	if !sameJSON(status(stored, "k1"), status(withNanos, "k1")) {
		t.Error("a time differing below a second counted as a change")
	}
	if sameJSON(status(stored, "k1"), status(stored.Add(time.Second), "k1")) {
		t.Error("a time a second later counted as unchanged")
	}
	if sameJSON(status(stored, "k1"), status(stored, "k2")) {
		t.Error("another active key counted as unchanged")
	}
}
