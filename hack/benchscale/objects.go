package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

const (
	benchNamespace = "gatehouse-bench"
	benchServer    = "bench"
	benchScope     = "orders:read"
	benchAudience  = "https://orders.bench.invalid"
)

func teamNamespace(i, namespaces int) string { return fmt.Sprintf("team-%03d", i%namespaces) }

// applyServer creates the namespaces' first one, the AuthorizationServer
// and the Scope every client uses.
func applyServer(ctx context.Context, c client.Client, issuer string) error {
	if err := createNamespace(ctx, c, benchNamespace); err != nil {
		return err
	}
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: benchServer}}
	as.Spec.Issuer = issuer
	as.Spec.Storage.Type = oauthv1.StorageMemory
	as.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	sc := &oauthv1.Scope{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "orders-read"},
		Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: benchServer}, Name: benchScope,
			Description: "Read orders", Audience: benchAudience,
			AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: oauthv1.NamespacesFromAll}}}}
	for _, obj := range []client.Object{as, sc} {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// createNamespace retries briefly: a new API server creates its defaults a
// moment after it is healthy.
func createNamespace(ctx context.Context, c client.Client, name string) error {
	var err error
	for range 50 {
		err = c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("creating namespace %s: %w", name, err)
}

// newClient is the OAuthClient the harness applies: a confidential
// client-credentials client using the bench Scope, as a back-end service
// of some team would be.
func newClient(namespace, name string) *oauthv1.OAuthClient {
	return &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: oauthv1.OAuthClientSpec{
			ServerRef:  oauthv1.ServerReference{Name: benchServer, Namespace: benchNamespace},
			ClientType: oauthv1.ClientConfidential,
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
			Scopes:     []oauthv1.ScopeName{benchScope},
			Audience:   []oauthv1.Audience{benchAudience},
			SecretName: name + "-credentials",
		},
	}
}

// forEach runs f for 0..n-1 on workers goroutines and returns the first
// error.
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// tracker follows every OAuthClient through a watch, so that waiting for
// thousands to be Ready costs no polling of the API server.
type tracker struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	ready  map[string]bool // namespace/name -> Ready for its generation
	nReady int
}

func startTracker(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (*tracker, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme,
		DefaultTransform: func(o any) (any, error) {
			if m, ok := o.(metav1.Object); ok {
				m.SetManagedFields(nil)
				m.SetAnnotations(nil)
			}
			return o, nil
		}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &oauthv1.OAuthClient{})
	if err != nil {
		return nil, err
	}
	t := &tracker{ready: map[string]bool{}}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.set(o, false) },
		UpdateFunc: func(_, o any) { t.set(o, false) },
		DeleteFunc: func(o any) { t.set(o, true) },
	})
	if err != nil {
		return nil, err
	}
	ctx, t.cancel = context.WithCancel(ctx)
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the harness's OAuthClient watch did not sync")
	}
	return t, nil
}

func (t *tracker) stop() { t.cancel() }

func (t *tracker) set(o any, deleted bool) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	oc, ok := o.(*oauthv1.OAuthClient)
	if !ok {
		return
	}
	key := oc.Namespace + "/" + oc.Name
	c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady)
	ready := !deleted && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == oc.Generation
	t.mu.Lock()
	defer t.mu.Unlock()
	if was, known := t.ready[key]; known && was {
		t.nReady--
	}
	if deleted {
		delete(t.ready, key)
		return
	}
	t.ready[key] = ready
	if ready {
		t.nReady++
	}
}

func (t *tracker) isReady(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready[key]
}

func (t *tracker) readyCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nReady
}

// waitFor polls cond (memory only) every 20 ms until it holds, reporting
// progress every 5 s.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool, status func() string) error {
	began := time.Now()
	last := began
	for !cond() {
		if time.Since(began) > timeout {
			return fmt.Errorf("%s: %w after %s", what, errTimeout, timeout)
		}
		if status != nil && time.Since(last) >= 5*time.Second {
			progress("%s: %s (%s)", what, status(), since(began))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
