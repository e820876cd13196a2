// Package kubeactions is what the token server writes to the Kubernetes
// API, apart from the request paths: it carries out the
// SessionRevocations of its AuthorizationServer and records what it did
// in their status, and it reports back-channel logout failures as Events
// on OAuthClients. Its RBAC allows exactly that (the operator writes it:
// controllers/authorizationserver_runtime.go).
package kubeactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// Revoker ends a person's sessions and grants (server.Server).
type Revoker interface {
	RevokePerson(ctx context.Context, subject, reason string) (storage.Ended, error)
	SubjectForUsername(username string) (string, bool)
}

// claimTTL is how long one replica has a SessionRevocation to itself; a
// replica that dies meanwhile leaves it to another after that.
const claimTTL = time.Minute

// SessionRevocations carries out the SessionRevocations of one
// AuthorizationServer: each once, on one replica, recording the outcome in
// its status. A SessionRevocation whose status has a Complete condition is
// done and never looked at again.
type SessionRevocations struct {
	namespace, server string
	cache             cache.Cache
	client            client.Client
	revoker           Revoker
	claims            storage.AssertionStore
	now               func() time.Time
	log               *slog.Logger
	queue             workqueue.TypedRateLimitingInterface[types.NamespacedName]

	// done holds the outcomes not yet recorded in a status, by UID: a
	// status write that fails is retried with the same outcome rather
	// than by acting again.
	mu   sync.Mutex
	done map[types.UID]oauthv1.SessionRevocationStatus
}

// NewSessionRevocations watches the SessionRevocations of namespace for
// the AuthorizationServer server.
func NewSessionRevocations(cfg *rest.Config, scheme *runtime.Scheme, namespace, server string, revoker Revoker, claims storage.AssertionStore, log *slog.Logger) (*SessionRevocations, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject:          map[client.Object]cache.ByObject{&oauthv1.SessionRevocation{}: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the SessionRevocation cache: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &SessionRevocations{
		namespace: namespace, server: server, cache: c, client: cl, revoker: revoker, claims: claims, now: time.Now, log: log,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]()),
		done:  map[types.UID]oauthv1.SessionRevocationStatus{},
	}, nil
}

// Run watches and acts until ctx ends.
func (r *SessionRevocations) Run(ctx context.Context) error {
	inf, err := r.cache.GetInformer(ctx, &oauthv1.SessionRevocation{})
	if err != nil {
		return err
	}
	enqueue := func(obj any) {
		if sr, ok := obj.(*oauthv1.SessionRevocation); ok {
			r.queue.Add(types.NamespacedName{Namespace: sr.Namespace, Name: sr.Name})
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- r.cache.Start(ctx) }()
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	if !r.cache.WaitForCacheSync(ctx) {
		return errors.Join(ctx.Err(), <-errc)
	}
	for {
		key, shutdown := r.queue.Get()
		if shutdown {
			return nil
		}
		after, err := r.process(ctx, key)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("carrying out a SessionRevocation", "sessionRevocation", key.String(), "error", err)
			r.queue.AddRateLimited(key)
		case after > 0:
			r.queue.Forget(key)
			r.queue.AddAfter(key, after)
		default:
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// process carries out one SessionRevocation, or says when to look again.
func (r *SessionRevocations) process(ctx context.Context, key types.NamespacedName) (time.Duration, error) {
	var sr oauthv1.SessionRevocation
	if err := r.cache.Get(ctx, key, &sr); err != nil {
		return 0, client.IgnoreNotFound(err)
	}
	if sr.Spec.ServerRef.Name != r.server || meta.FindStatusCondition(sr.Status.Conditions, oauthv1.ConditionComplete) != nil {
		return 0, nil
	}
	r.mu.Lock()
	status, acted := r.done[sr.UID]
	r.mu.Unlock()
	if !acted {
		now := r.now()
		// One replica acts; the others look again when its claim has
		// lapsed, by when it has recorded the outcome (or died).
		err := r.claims.UseAssertion(ctx, storage.AssertionID("SessionRevocation", string(sr.UID)), now.Add(claimTTL), now)
		if errors.Is(err, storage.ErrAssertionReplayed) {
			return claimTTL + time.Second, nil
		}
		if err != nil {
			return 0, err
		}
		if status, err = r.act(ctx, &sr); err != nil {
			// The claim stands until it lapses: look again then.
			r.log.Warn("carrying out a SessionRevocation", "sessionRevocation", key.String(), "error", err)
			return claimTTL + time.Second, nil
		}
		r.mu.Lock()
		r.done[sr.UID] = status
		r.mu.Unlock()
	}
	patched := sr.DeepCopy()
	patched.Status = status
	if err := r.client.Status().Patch(ctx, patched, client.MergeFrom(&sr)); err != nil {
		return 0, fmt.Errorf("recording the outcome: %w", err)
	}
	r.mu.Lock()
	delete(r.done, sr.UID)
	r.mu.Unlock()
	return 0, nil
}

// act ends the person's sessions and grants and says so in a status.
func (r *SessionRevocations) act(ctx context.Context, sr *oauthv1.SessionRevocation) (oauthv1.SessionRevocationStatus, error) {
	now := metav1.NewTime(r.now())
	st := oauthv1.SessionRevocationStatus{Subject: sr.Spec.Subject}
	cond := metav1.Condition{Type: oauthv1.ConditionComplete, ObservedGeneration: sr.Generation, LastTransitionTime: now}
	if sr.Spec.Username != "" {
		sub, ok := r.revoker.SubjectForUsername(sr.Spec.Username)
		if !ok {
			cond.Status, cond.Reason = metav1.ConditionFalse, oauthv1.ReasonUnknownUsername
			cond.Message = fmt.Sprintf("the users Secret has no user %q; name a person from an identity provider by spec.subject", sr.Spec.Username)
			meta.SetStatusCondition(&st.Conditions, cond)
			return st, nil
		}
		st.Subject = sub
	}
	ended, err := r.revoker.RevokePerson(ctx, st.Subject, fmt.Sprintf("SessionRevocation %s/%s: %s", sr.Namespace, sr.Name, sr.Spec.Reason))
	if err != nil {
		return st, err
	}
	st.SessionsEnded, st.GrantsRevoked = int32(len(ended.Sessions)), int32(ended.FamiliesRevoked)
	st.ConsentsDeleted, st.LogoutTokensQueued = int32(ended.ConsentsDeleted), int32(len(ended.Deliveries))
	st.CompletionTime = &now
	cond.Status, cond.Reason = metav1.ConditionTrue, oauthv1.ReasonCompleted
	cond.Message = fmt.Sprintf("ended %d sessions, revoked %d grants and %d consents; %d logout tokens queued",
		st.SessionsEnded, st.GrantsRevoked, st.ConsentsDeleted, st.LogoutTokensQueued)
	meta.SetStatusCondition(&st.Conditions, cond)
	return st, nil
}
