package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
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

// A status patch that meets a concurrent change to the object's metadata
// still lands, as long as the status is the one the reconcile started
// from; a status that moved meanwhile is never overwritten.
func TestPatchStatusAfterAConflict(t *testing.T) {
	cp := testenv.Get(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gh-"}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	s := &oauthv1.Scope{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "orders"},
		Spec:       oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "auth"}, Name: "orders:read", Description: "Read orders"},
	}
	if err := cp.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The retry is for an object with a status to test against.
	setCondition(&s.Status.Conditions, s.Generation, oauthv1.ConditionReady, false, oauthv1.ReasonReconciling, "created")
	if err := cp.Client.Status().Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	reconcileWith := func(message string, meanwhile func()) error {
		t.Helper()
		obj := &oauthv1.Scope{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(s), obj); err != nil {
			t.Fatal(err)
		}
		orig := obj.DeepCopy()
		meanwhile()
		setCondition(&obj.Status.Conditions, obj.Generation, oauthv1.ConditionReady, false, oauthv1.ReasonServerNotFound, message)
		_, err := patchStatus(ctx, cp.Client, obj, orig, orig.Status, obj.Status)
		return err
	}
	annotate := func() {
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test.gatehouse.dev/at":"%d"}}}`, time.Now().UnixNano()))
		if err := cp.Client.Patch(ctx, s.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatal(err)
		}
	}
	readyMessage := func() string {
		got := &oauthv1.Scope{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(s), got); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, oauthv1.ConditionReady); c != nil {
			return c.Message
		}
		return ""
	}

	if err := reconcileWith("first", annotate); err != nil {
		t.Fatalf("a status patch after an annotation changed: %v", err)
	}
	if got := readyMessage(); got != "first" {
		t.Fatalf("status message %q after the patch, want first", got)
	}

	// Someone else's status write in between: the reconcile's view is
	// stale, and its status must not replace the newer one.
	err := reconcileWith("stale", func() {
		other := &oauthv1.Scope{}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(s), other); err != nil {
			t.Fatal(err)
		}
		setCondition(&other.Status.Conditions, other.Generation, oauthv1.ConditionReady, true, oauthv1.ReasonReady, "newer")
		if err := cp.Client.Status().Update(ctx, other); err != nil {
			t.Fatal(err)
		}
	})
	if err == nil || readyMessage() != "newer" {
		t.Fatalf("a status patch from a stale copy: error %v, status message %q; want a refusal and newer kept", err, readyMessage())
	}
}
