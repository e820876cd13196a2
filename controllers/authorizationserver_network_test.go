package controllers_test

import (
	"context"
	"fmt"
	"slices"
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

// spec.network reaches the token server as flags in the Deployment the
// operator writes, follows changes, and adds nothing when it is unset.
func TestTrustedProxiesReachTheServer(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()

	srv := server(ns, "edge")
	srv.Spec.Network = oauthv1.NetworkSpec{TrustedProxies: []oauthv1.CIDR{"10.0.0.0/8", "fd00::/8"}}
	create(t, srv)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	args := func() []string {
		if err := c.Get(ctx, objKey(ns, dep.Name), dep); err != nil {
			return nil
		}
		return dep.Spec.Template.Spec.Containers[0].Args
	}
	waitArgs := func(want string, present bool) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			got := strings.Join(args(), " ")
			if strings.Contains(got, want) != present || got == "" {
				return fmt.Errorf("server arguments %q, want %q present=%v", got, want, present)
			}
			return nil
		})
	}
	waitArgs("--trusted-proxies 10.0.0.0/8,fd00::/8 --forwarded-header X-Forwarded-For", true)

	patch := func(network string) {
		t.Helper()
		if err := c.Patch(ctx, srv, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"network":`+network+`}}`))); err != nil {
			t.Fatal(err)
		}
	}
	patch(`{"forwardedHeader":"Forwarded"}`)
	waitArgs("--forwarded-header Forwarded", true)

	patch(`null`)
	waitArgs("--trusted-proxies", false)
	if slices.Contains(args(), "--forwarded-header") {
		t.Errorf("without trusted proxies the server gets no --forwarded-header: %q", args())
	}
}
