package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// spec.tls mounts the named Secret whole (so that renewals reach the pod)
// and passes its files to the server; without it the pod has neither.
// The API refuses spec.tls with an http issuer.
func TestServingCertReachesTheServer(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()

	srv := server(ns, "secure")
	srv.Spec.Issuer = "https://auth.example.com"
	srv.Spec.TLS = &oauthv1.TLSSpec{SecretRef: oauthv1.LocalObjectReference{Name: "auth-tls"}}
	create(t, srv)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	check := func(want bool) error {
		if err := c.Get(ctx, objKey(ns, dep.Name), dep); err != nil {
			return err
		}
		pod := dep.Spec.Template.Spec
		args := strings.Join(pod.Containers[0].Args, " ")
		hasArgs := strings.Contains(args, "--tls-cert-file /etc/gatehouse/tls/tls.crt --tls-key-file /etc/gatehouse/tls/tls.key")
		hasVolume := false
		for _, v := range pod.Volumes {
			if v.Name == "tls" && v.Secret != nil && v.Secret.SecretName == "auth-tls" && len(v.Secret.Items) == 0 {
				hasVolume = true
			}
		}
		hasMount := false
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.Name == "tls" && m.MountPath == "/etc/gatehouse/tls" && m.ReadOnly && m.SubPath == "" {
				hasMount = true
			}
		}
		if hasArgs != want || hasVolume != want || hasMount != want {
			return fmt.Errorf("want TLS %v: args %q, volume %v, mount %v", want, args, hasVolume, hasMount)
		}
		return nil
	}
	testenv.Eventually(t, 20*time.Second, func() error { return check(true) })

	if err := c.Patch(ctx, srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"tls":null}}`))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error { return check(false) })

	bad := server(ns, "plain")
	bad.Spec.Issuer = "http://127.0.0.1:8080"
	bad.Spec.TLS = &oauthv1.TLSSpec{SecretRef: oauthv1.LocalObjectReference{Name: "auth-tls"}}
	if err := c.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "the issuer must be an https URL") {
		t.Errorf("spec.tls with an http issuer: %v, want the API to refuse it", err)
	}
}
