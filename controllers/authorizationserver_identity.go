package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// identityRecheck is how often a provider is checked again while nothing
// about it changes, identityRecheckFailing while its last check failed
// (the token server sends nobody to an unreachable provider, so its
// recovery must show soon); identityCheckTimeout bounds one check.
const (
	identityRecheck        = 5 * time.Minute
	identityRecheckFailing = 30 * time.Second
	identityCheckTimeout   = 10 * time.Second
)

// recheckAfter is when a provider last checked at c is checked again.
func (c identityCheck) recheckAfter() time.Time {
	if c.ok {
		return c.at.Add(identityRecheck)
	}
	return c.at.Add(identityRecheckFailing)
}

// checker is what a provider's Source offers for the status.
type checker interface {
	Check(ctx context.Context) error
}

// identityChecks remembers each provider's last check, so that a reconcile
// for another reason does not call the upstream again.
type identityChecks struct {
	mu   sync.Mutex
	last map[string]identityCheck // by namespace/server/provider
}

type identityCheck struct {
	fingerprint string
	at          time.Time
	ok          bool
	reason, msg string
}

var providerChecks = &identityChecks{last: map[string]identityCheck{}}

// reconcileIdentity sets the providers' conditions, checking those that
// changed or were last checked identityRecheck ago, and returns when to
// check again (zero without providers).
func (r *AuthorizationServerReconciler) reconcileIdentity(ctx context.Context, srv *oauthv1.AuthorizationServer, now time.Time) time.Time {
	want := map[string]bool{}
	for _, c := range srv.Status.Conditions {
		if strings.HasPrefix(c.Type, oauthv1.ConditionIdentityProviderPrefix) {
			want[c.Type] = false
		}
	}
	results := make([]identityCheck, len(srv.Spec.IdentityProviders))
	var wg sync.WaitGroup
	for i := range srv.Spec.IdentityProviders {
		p := &srv.Spec.IdentityProviders[i]
		want[oauthv1.ConditionIdentityProviderPrefix+p.Name] = true
		wg.Go(func() { results[i] = r.checkProvider(ctx, srv, p, now) })
	}
	wg.Wait()
	for typ, keep := range want {
		if !keep {
			meta.RemoveStatusCondition(&srv.Status.Conditions, typ)
		}
	}
	next := time.Time{}
	for i, res := range results {
		p := &srv.Spec.IdentityProviders[i]
		typ := oauthv1.ConditionIdentityProviderPrefix + p.Name
		if res.ok {
			setCondition(&srv.Status.Conditions, srv.Generation, typ, true, res.reason, res.msg)
		} else {
			failedWarn(ctx, r.Recorder, srv, &srv.Status.Conditions, typ, res.reason, res.msg)
		}
		if at := res.recheckAfter(); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// checkProvider returns the provider's last check while it is fresh and
// about the same configuration, or checks it now.
func (r *AuthorizationServerReconciler) checkProvider(ctx context.Context, srv *oauthv1.AuthorizationServer, p *oauthv1.IdentityProvider, now time.Time) identityCheck {
	key := srv.Namespace + "/" + srv.Name + "/" + p.Name
	secrets, missing := r.providerSecrets(ctx, srv.Namespace, p)
	fp := providerFingerprint(p, secrets)
	providerChecks.mu.Lock()
	last, ok := providerChecks.last[key]
	providerChecks.mu.Unlock()
	if ok && last.fingerprint == fp && now.Before(last.recheckAfter()) {
		return last
	}
	res := identityCheck{fingerprint: fp, at: now}
	src, err := config.NewIdentitySource(p, secrets)
	switch {
	case err != nil:
		res.reason, res.msg = oauthv1.ReasonIdentityProviderSecretInvalid, err.Error()+missing
	default:
		res.ok, res.reason, res.msg = classifyCheck(ctx, src)
	}
	providerChecks.mu.Lock()
	providerChecks.last[key] = res
	providerChecks.mu.Unlock()
	return res
}

func classifyCheck(ctx context.Context, src identity.Source) (bool, string, string) {
	c, ok := src.(checker)
	if !ok {
		return true, oauthv1.ReasonIdentityProviderReady, "configured"
	}
	ctx, cancel := context.WithTimeout(ctx, identityCheckTimeout)
	defer cancel()
	switch err := c.Check(ctx); {
	case err == nil:
		return true, oauthv1.ReasonIdentityProviderReady, "reachable, and it accepts this server's credentials"
	case errors.Is(err, identity.ErrCredentialsRejected):
		return false, oauthv1.ReasonIdentityProviderCredentialsRejected, err.Error() + ": check the client secret or bind password in the provider's Secret"
	default:
		return false, oauthv1.ReasonIdentityProviderUnreachable, err.Error()
	}
}

// providerSecrets reads the provider's Secrets uncached (the operator
// caches only the Secrets it owns). A Secret that cannot be read is left
// out; the returned note says why, for a condition message.
func (r *AuthorizationServerReconciler) providerSecrets(ctx context.Context, namespace string, p *oauthv1.IdentityProvider) (map[string]*corev1.Secret, string) {
	out := map[string]*corev1.Secret{}
	var note string
	for _, name := range p.SecretNames() {
		if _, done := out[name]; done {
			continue
		}
		sec := &corev1.Secret{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec)
		switch {
		case err == nil:
			out[name] = sec
		case !apierrors.IsNotFound(err):
			note = fmt.Sprintf(" (reading Secret %s: %v)", name, err)
		}
	}
	return out, note
}

// providerFingerprint changes when the provider's spec or one of its
// Secrets does.
func providerFingerprint(p *oauthv1.IdentityProvider, secrets map[string]*corev1.Secret) string {
	b, _ := json.Marshal(p)
	fp := string(b)
	for _, n := range p.SecretNames() {
		if s := secrets[n]; s != nil {
			fp += "\x00" + n + "@" + s.ResourceVersion
		}
	}
	return fp
}

// brokenIdentityProvider returns the first provider whose condition is
// not True, for Ready to name.
func brokenIdentityProvider(srv *oauthv1.AuthorizationServer) *metav1.Condition {
	for i := range srv.Spec.IdentityProviders {
		c := meta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionIdentityProviderPrefix+srv.Spec.IdentityProviders[i].Name)
		if c != nil && c.Status != metav1.ConditionTrue {
			return c
		}
	}
	return nil
}
