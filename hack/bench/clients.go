package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
)

// addClients applies n more client_credentials OAuthClients to the demo
// server (-clients: the advertised sizing, docs/operations.md "Sizing"),
// 16 writers at once, and waits until the operator has made every one
// Ready, so that the server under test, started next, holds them all.
func (e *env) addClients(ctx context.Context, c client.Client, n int) error {
	progress("applying %d OAuthClients", n)
	began := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				name := fmt.Sprintf("sizing-%05d", i)
				oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: name},
					Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: devenv.Server, Namespace: devenv.Namespace},
						ClientType: oauthv1.ClientConfidential, GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
						Scopes: []oauthv1.ScopeName{"orders:read"}, Audience: []oauthv1.Audience{devenv.Audience}, SecretName: name}}
				if err := c.Create(ctx, oc); err != nil {
					errs <- fmt.Errorf("creating OAuthClient %s: %w", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	progress("applied %d OAuthClients in %s; waiting until they are Ready", n, time.Since(began).Round(time.Second))
	for ; ctx.Err() == nil; time.Sleep(5 * time.Second) {
		list := &oauthv1.OAuthClientList{}
		if err := c.List(ctx, list, client.InNamespace(devenv.Namespace)); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, oauthv1.ConditionReady) {
				ready++
			}
		}
		progress("%d of %d OAuthClients Ready after %s", ready, len(list.Items), time.Since(began).Round(time.Second))
		if ready >= n {
			return nil
		}
	}
	return ctx.Err()
}
