package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

// Kube is a Source fed by informers: the AuthorizationServer (by name), its
// Scopes (its namespace), OAuthClients (all namespaces, filtered by
// serverRef) and two Secrets, each watched by name with a field selector
// because the server's RBAC grants Secrets by resourceNames only. An
// OAuthClient event updates that one client in the snapshot at once, at a
// cost independent of the number of clients; any other change rebuilds the
// server-wide part (and the clients a Scope change affects). Nothing on a
// request path talks to the API server.
type Kube struct {
	namespace, name string
	log             *slog.Logger

	cache     cache.Cache
	clientset kubernetes.Interface
	// metadata reads objects' metadata for the freshness check
	// (freshness.go).
	metadata metadata.Interface

	keys *namedWatch

	mu      sync.Mutex // guards users, builder, built and started
	users   *namedWatch
	idp     map[string]*namedWatch // identity providers' Secrets (identity.go)
	cas     map[string]*namedWatch // trusted issuers' CA ConfigMaps (workload.go)
	builder Builder
	// built are the resourceVersions of the AuthorizationServer and the
	// keys Secret the served snapshot was built from (freshness.go).
	built [2]string
	// started: the first snapshot is built; client events before it are
	// in the cache that build lists.
	started bool

	notify  chan struct{}
	current atomic.Pointer[Snapshot]
	synced  atomic.Bool

	verifyInterval time.Duration
	// verifiedAt is VerifiedAt in Unix nanoseconds, 0 before the first.
	verifiedAt atomic.Int64
	// OnKeyFetch, when set before Start, is told of every fetch of a JWK
	// Set that a client's jwksURI or a trusted issuer names.
	OnKeyFetch func(name string, err error)
}

// NewKube prepares a Source for the AuthorizationServer namespace/name.
// Start runs it.
func NewKube(cfg *rest.Config, scheme *runtime.Scheme, namespace, name string, log *slog.Logger) (*Kube, error) {
	server := fields.OneTermEqualSelector("metadata.name", name)
	c, err := cache.New(cfg, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&oauthv1.AuthorizationServer{}: {Namespaces: map[string]cache.Config{namespace: {FieldSelector: server}}},
			&oauthv1.Scope{}:               {Namespaces: map[string]cache.Config{namespace: {}}},
			&oauthv1.OAuthClient{}: {Namespaces: map[string]cache.Config{cache.AllNamespaces: {}},
				Transform: leanClient},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating cache: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating clientset: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating metadata client: %w", err)
	}
	return &Kube{
		namespace: namespace, name: name, log: log,
		cache: c, clientset: cs, metadata: md,
		notify:         make(chan struct{}, 1),
		verifyInterval: DefaultVerifyInterval,
	}, nil
}

// Current implements Source.
func (k *Kube) Current() *Snapshot { return k.current.Load() }

// Ready implements Source: the caches have synced and a key signs.
func (k *Kube) Ready() error {
	if !k.synced.Load() {
		return errors.New("informer caches have not synced yet")
	}
	return CheckServable(k.current.Load(), time.Now())
}

// Start runs the informers and updates the snapshot on every change until
// ctx ends.
func (k *Kube) Start(ctx context.Context) error {
	handlers := []struct {
		obj client.Object
		h   toolscache.ResourceEventHandler
	}{
		{&oauthv1.AuthorizationServer{}, k.handler()},
		{&oauthv1.Scope{}, k.handler()},
		{&oauthv1.OAuthClient{}, k.clientHandler()},
	}
	for _, h := range handlers {
		inf, err := k.cache.GetInformer(ctx, h.obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", h.obj, err)
		}
		if _, err := inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("event handler for %T: %w", h.obj, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- k.cache.Start(ctx) }()

	k.mu.Lock()
	k.builder.KeySets = jwtverify.NewRegistry(ctx, jwtverify.RemoteOptions{Log: k.log, OnFetch: k.OnKeyFetch})
	k.mu.Unlock()
	k.keys = k.watchSecret(ctx, keyset.SecretName(k.name))
	defer k.keys.stop()
	defer func() {
		k.mu.Lock()
		if k.users != nil {
			k.users.stop()
		}
		k.mu.Unlock()
	}()

	if !k.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("cache: %w", err)
		default:
			return ctx.Err()
		}
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), k.keys.informer.HasSynced) {
		return ctx.Err()
	}
	// Start the users watch and let it list before the first build, so the
	// first snapshot already has the users (and reports no false problem).
	var users *namedWatch
	if in, err := k.inputs(ctx); err == nil && in.Server != nil {
		k.mu.Lock()
		k.ensureUsersWatch(ctx, in.Server)
		users = k.users
		k.mu.Unlock()
	}
	if users != nil && !toolscache.WaitForCacheSync(ctx.Done(), users.informer.HasSynced) {
		return ctx.Err()
	}
	if err := k.firstBuild(ctx); err != nil {
		return err
	}
	k.synced.Store(true)
	go k.verifyLoop(ctx)

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("cache: %w", err)
			}
			return nil
		case <-k.notify:
			k.rebuild(ctx)
		}
	}
}

func (k *Kube) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.trigger() },
		UpdateFunc: func(any, any) { k.trigger() },
		DeleteFunc: func(any) { k.trigger() },
	}
}

// trigger asks for a rebuild of the server-wide part; bursts of events
// coalesce into one.
func (k *Kube) trigger() {
	select {
	case k.notify <- struct{}{}:
	default:
	}
}

// clientHandler applies OAuthClient events one client at a time. Events
// before the first build are skipped: that build lists the cache, which
// already holds them. Later ones wait for it on k.mu.
func (k *Kube) clientHandler() toolscache.ResourceEventHandler {
	apply := func(obj any, deleted bool) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj, deleted = d.Obj, true
		}
		oc, ok := obj.(*oauthv1.OAuthClient)
		if !ok {
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if !k.started {
			return
		}
		if deleted {
			k.publish(k.builder.DeleteClient(oc.Namespace, oc.Name))
		} else {
			k.publish(k.builder.SetClient(oc))
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { apply(obj, false) },
		UpdateFunc: func(_, obj any) { apply(obj, false) },
		DeleteFunc: func(obj any) { apply(obj, true) },
	}
}

// firstBuild builds the first snapshot from the server-wide inputs and
// every OAuthClient in the cache.
func (k *Kube) firstBuild(ctx context.Context) error {
	var clients oauthv1.OAuthClientList
	// The cached objects themselves: the builder keeps them, unmodified,
	// as the informer's event handlers pass them.
	if err := k.cache.List(ctx, &clients, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing OAuthClients from the cache: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.started = true
	for i := range clients.Items {
		k.builder.SetClient(&clients.Items[i])
	}
	k.rebuildLocked(ctx)
	return nil
}

func (k *Kube) rebuild(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rebuildLocked(ctx)
}

// rebuildLocked rebuilds the server-wide part. Callers hold k.mu.
func (k *Kube) rebuildLocked(ctx context.Context) {
	in, err := k.inputs(ctx)
	if err != nil {
		k.log.Error("reading configuration from cache", "error", err)
		return
	}
	if in.Server != nil {
		k.ensureUsersWatch(ctx, in.Server)
		if k.users != nil {
			if !k.users.informer.HasSynced() {
				// spec.users named another Secret: keep serving the
				// current snapshot until the new watch has listed, rather
				// than logging everybody out for a Secret not loaded yet.
				// The watch triggers a rebuild once it has synced.
				return
			}
			in.UsersSecret = k.users.get(k.namespace)
		}
		in.IdentitySecrets = k.identitySecrets(ctx, in.Server)
		in.ConfigMaps = k.trustedIssuerConfigMaps(ctx, in.Server)
	}
	snap, err := k.builder.SetServer(in)
	if err != nil {
		k.log.Error("building configuration", "error", err)
		k.current.Store(nil)
		k.built = [2]string{}
		return
	}
	k.publish(snap)
	k.built = builtFrom(in)
	k.log.Debug("configuration updated", "clients", snap.Clients.Len(), "scopes", len(snap.Scopes))
}

// publish makes snap current, logging its problems when they changed.
// Callers hold k.mu.
func (k *Kube) publish(snap *Snapshot) {
	prev := k.current.Swap(snap)
	if snap != nil && (prev == nil || !slices.Equal(prev.Problems, snap.Problems)) {
		for _, p := range snap.Problems {
			k.log.Warn("configuration problem", "problem", p)
		}
	}
}

func (k *Kube) inputs(ctx context.Context) (Inputs, error) {
	var in Inputs
	as := &oauthv1.AuthorizationServer{}
	switch err := k.cache.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: k.name}, as); {
	case apierrors.IsNotFound(err):
		return in, nil
	case err != nil:
		return in, err
	}
	in.Server = as
	var scopes oauthv1.ScopeList
	if err := k.cache.List(ctx, &scopes, client.InNamespace(k.namespace)); err != nil {
		return in, err
	}
	in.Scopes = scopes.Items
	in.KeysSecret = k.keys.get(k.namespace)
	return in, nil
}

// ensureUsersWatch watches the Secret spec.users names, switching when it
// changes. Callers hold k.mu.
func (k *Kube) ensureUsersWatch(ctx context.Context, as *oauthv1.AuthorizationServer) {
	want := ""
	if as.Spec.Users != nil {
		want = as.Spec.Users.SecretRef.Name
	}
	if k.users != nil && k.users.name == want {
		return
	}
	if k.users != nil {
		k.users.stop()
		k.users = nil
	}
	if want != "" {
		k.users = k.watchSecret(ctx, want)
	}
}

// namedWatch is an informer on one object (a Secret, a ConfigMap),
// selected by name: the server's Role grants them by resourceNames only.
type namedWatch struct {
	name     string
	informer toolscache.SharedIndexInformer
	stop     context.CancelFunc
}

func (k *Kube) watchSecret(ctx context.Context, name string) *namedWatch {
	return k.watchNamed(ctx, "secrets", &corev1.Secret{}, name)
}

func (k *Kube) watchConfigMap(ctx context.Context, name string) *namedWatch {
	return k.watchNamed(ctx, "configmaps", &corev1.ConfigMap{}, name)
}

func (k *Kube) watchNamed(ctx context.Context, resource string, example runtime.Object, name string) *namedWatch {
	ctx, cancel := context.WithCancel(ctx)
	lw := toolscache.NewFilteredListWatchFromClient(k.clientset.CoreV1().RESTClient(), resource, k.namespace,
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	inf := toolscache.NewSharedIndexInformer(lw, example, 0, toolscache.Indexers{})
	_, _ = inf.AddEventHandler(k.handler())
	go inf.RunWithContext(ctx)
	go func() {
		if toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			k.trigger()
		}
	}()
	return &namedWatch{name: name, informer: inf, stop: cancel}
}

func (w *namedWatch) object(namespace string) any {
	obj, ok, err := w.informer.GetStore().GetByKey(namespace + "/" + w.name)
	if err != nil || !ok {
		return nil
	}
	return obj
}

// get returns the watched Secret, nil while there is none.
func (w *namedWatch) get(namespace string) *corev1.Secret {
	s, _ := w.object(namespace).(*corev1.Secret)
	return s
}

// getConfigMap returns the watched ConfigMap, nil while there is none.
func (w *namedWatch) getConfigMap(namespace string) *corev1.ConfigMap {
	c, _ := w.object(namespace).(*corev1.ConfigMap)
	return c
}
