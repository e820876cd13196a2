package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrlresult "sigs.k8s.io/controller-runtime/pkg/reconcile"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/operatormetrics"
)

// Event reasons for client secrets. (A weak secret warns with the reason
// of the condition it fails, WeakSecret: failedWarn.)
const (
	EventGenerated        = "Generated"
	EventAdopted          = "Adopted"
	EventRotated          = "Rotated"
	EventRotationExternal = "RotationSkipped"
)

// SecretName is the app Secret of a confidential client.
func SecretName(oc *oauthv1.OAuthClient) string {
	if oc.Spec.SecretName != "" {
		return oc.Spec.SecretName
	}
	return oc.Name + "-oauth-client"
}

// reconcileSecret keeps the app's Secret and status.secretHashes
// consistent, by the rules in the OAuthClient type's documentation. It
// reads the Secret, decides what the operator may do with it
// (classifySecret, by the ordered rules of secretOwnership) and what the
// secret is (decideSecret), and only then
// writes: the Secret first, and the status only once that write is done,
// so that no hash is ever published for a secret that is nowhere.
//
// A client that has no Secret yet does not read one through the API
// server: the Secret is created at once, and only when one already exists
// (someone else's, to adopt; the cache holds only the operator's) is it
// read and the decision made again. A new client costs two writes, the
// Secret and the status.
func (r *OAuthClientReconciler) reconcileSecret(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (ctrlresult.Result, error) {
	name := SecretName(oc)
	sec := &corev1.Secret{}
	var existing *corev1.Secret
	switch err := r.readSecret(ctx, oc, name, sec); {
	case err == nil:
		existing = sec
	case !apierrors.IsNotFound(err):
		return ctrlresult.Result{}, fmt.Errorf("getting Secret %s: %w", name, err)
	}
	res, err := r.applySecret(ctx, oc, srv, existing)
	if existing != nil || !apierrors.IsAlreadyExists(err) {
		return res, err
	}
	// Someone else's Secret, which the cache does not show: look at it.
	if err := r.readUncached(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, sec); err != nil {
		return ctrlresult.Result{}, fmt.Errorf("getting Secret %s: %w", name, err)
	}
	return r.applySecret(ctx, oc, srv, sec)
}

// readSecret reads the client's Secret name from the cache, or through
// the API server when the client already uses that Secret and the cache
// does not hold it (someone else's Secret, which the operator does not
// label for its cache). NotFound for a client that never had it may mean
// "someone else's": reconcileSecret finds out by creating it.
func (r *OAuthClientReconciler) readSecret(ctx context.Context, oc *oauthv1.OAuthClient, name string, sec *corev1.Secret) error {
	key := types.NamespacedName{Namespace: oc.Namespace, Name: name}
	err := r.read(ctx, key, sec)
	if apierrors.IsNotFound(err) && r.fresh != nil && oc.Status.SecretName == name {
		return r.readUncached(ctx, key, sec)
	}
	return err
}

// applySecret decides and writes the Secret (existing is nil when there is
// none), then records the outcome in the client's status.
func (r *OAuthClientReconciler) applySecret(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer, existing *corev1.Secret) (ctrlresult.Result, error) {
	name := SecretName(oc)
	access, written, p := classifySecret(existing, claimantOf(oc))
	if p == nil && (access == secretHosted || access == secretAdopted) {
		want := metadataFor(oc, srv)
		maps.Copy(want, aliasesFor(oc, srv, want, string(existing.Data[oauthv1.SecretKeyClientSecret])))
		p = foreignMetadata(existing, written, want)
	}
	if p != nil {
		// The Secret is not ours to change: say why and leave it as it is.
		failed(oc, &oc.Status.Conditions, oauthv1.ConditionReady, p.reason, p.message)
		return secretRecheck(oc), nil
	}
	hashes := oc.Status.SecretHashes
	if previous := oc.Status.SecretName; previous != "" && previous != name {
		// spec.secretName changed: the old Secret goes like a deleted one,
		// and so does its secret (the new Secret gets a new one, or adopts).
		if err := r.releaseSecret(ctx, oc, previous); err != nil {
			return ctrlresult.Result{}, err
		}
		oc.Status.SecretName, oc.Status.SecretHashes, hashes = name, nil, nil
	}
	if access == secretHosted || access == secretAdopted {
		// Before the first write into someone else's Secret: on deletion
		// the operator must take out what it put in.
		if added, err := addFinalizer(ctx, r.Client, oc, clientFinalizer); err != nil || added {
			if added {
				r.wrote(oc, true)
				err = errFinalizerAdded
			}
			return ctrlresult.Result{}, err
		}
	}
	sec := existing
	if sec == nil {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: oc.Namespace, Name: name}}
	}
	now := r.Clock.Now()
	plan, err := decideSecret(secretFactsOf(oc, sec, access, hashes, now), clientsecret.Generate)
	if err != nil {
		return ctrlresult.Result{}, err
	}
	if plan.weak != nil {
		oc.Status.SecretName = name
		msg := fmt.Sprintf("Secret %s: %v", name, plan.weak)
		failedWarn(ctx, r.Recorder, oc, &oc.Status.Conditions, oauthv1.ConditionReady, oauthv1.ReasonWeakSecret, msg)
		return secretRecheck(oc), nil
	}
	if err := r.writeSecret(ctx, oc, srv, sec, existing == nil, access, written, plan.plaintext); err != nil {
		return ctrlresult.Result{}, err
	}
	return r.secretWritten(ctx, oc, plan, now), nil
}

// errFinalizerAdded ends a reconcile that added the client's finalizer:
// the client changed under the reconcile, whose status patch would fail on
// the old resourceVersion; the finalizer's watch event brings it back.
var errFinalizerAdded = errors.New("finalizer added")

// secretFactsOf gathers what decideSecret looks at.
func secretFactsOf(oc *oauthv1.OAuthClient, sec *corev1.Secret, access secretAccess, hashes []oauthv1.SecretHash, now time.Time) secretFacts {
	f := secretFacts{
		now:        now,
		secretName: sec.Name,
		// the client_secret is the operator's to write and rotate (it
		// created the Secret, or was handed it); otherwise it is adopted
		// and only ever read.
		generatedHere: access != secretAdopted,
		value:         string(sec.Data[oauthv1.SecretKeyClientSecret]),
		hashes:        hashes,
		lastRotation:  oc.Status.LastRotationTime,
		grace:         oc.SecretGracePeriod(),
		interval:      oc.SecretRotationInterval(),
		rotateWanted:  oc.Annotations[oauthv1.AnnotationRotateSecret],
	}
	if handled, ok := sec.Annotations[oauthv1.AnnotationRotateSecretHandled]; ok {
		f.rotateHandled = &handled
	}
	return f
}

// writeSecret writes the Secret: every key on one the operator created;
// on anyone else's only keys it added itself, recorded so that it can
// take them out again. An unchanged Secret costs no request.
func (r *OAuthClientReconciler) writeSecret(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer,
	sec *corev1.Secret, create bool, access secretAccess, written map[string]bool, plaintext string) error {
	before := sec.DeepCopy()
	setAnnotation(sec, oauthv1.AnnotationRotateSecretHandled, oc.Annotations[oauthv1.AnnotationRotateSecret])
	want := metadataFor(oc, srv)
	clientSecret := string(sec.Data[oauthv1.SecretKeyClientSecret])
	if access != secretAdopted {
		want[oauthv1.SecretKeyClientSecret] = plaintext
		clientSecret = plaintext
	}
	aliases := aliasesFor(oc, srv, want, clientSecret)
	maps.Copy(want, aliases)
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	ours := access == secretCreate || access == secretOwned
	resources, err := r.reachableResources(ctx, oc, srv)
	if err != nil {
		return err
	}
	pruneSecretKeys(connectionFor(oc, resources), sec, ours, data, want, aliases, written)
	for k, v := range want {
		if _, present := before.Data[k]; present && !ours && !written[k] {
			continue // the owner's own copy, equal to ours (foreignMetadata checked)
		}
		data[k] = []byte(v)
		written[k] = true
	}
	sec.Data = data
	if ours {
		setLabel(sec, oauthv1.LabelManagedBy, oauthv1.LabelManagedByValue)
	} else {
		setAnnotation(sec, oauthv1.AnnotationWrittenKeys, strings.Join(slices.Sorted(maps.Keys(written)), ","))
	}
	setLabel(sec, oauthv1.LabelClient, oc.Name)
	switch {
	case create:
		sec.Type = corev1.SecretTypeOpaque // immutable once created
		if err := controllerutil.SetControllerReference(oc, sec, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, sec); err != nil {
			*sec = *before
			return fmt.Errorf("creating Secret %s: %w", sec.Name, err)
		}
	case !equality.Semantic.DeepEqual(before, sec):
		if err := r.Patch(ctx, sec, mergeFrom(before)); err != nil {
			return fmt.Errorf("updating Secret %s: %w", sec.Name, err)
		}
	default:
		return nil
	}
	r.wrote(sec, ours)
	return nil
}

// pruneSecretKeys takes out of data the keys this client no longer wants
// and adds to want the connection data, when the Secret is the operator's
// (ours); in someone else's Secret it takes out only keys it wrote itself.
func pruneSecretKeys(conn map[string]string, sec *corev1.Secret, ours bool, data map[string][]byte,
	want, aliases map[string]string, written map[string]bool) {
	if ours {
		// Aliases the spec no longer names go; the annotation says which
		// keys were aliases, so nothing else is ever taken out.
		for k := range strings.SplitSeq(sec.Annotations[oauthv1.AnnotationAliasKeys], ",") {
			if _, still := aliases[k]; !still && k != "" && !slices.Contains(operatorKeys, k) {
				delete(data, k)
			}
		}
		if _, had := sec.Annotations[oauthv1.AnnotationAliasKeys]; had || len(aliases) > 0 {
			setAnnotation(sec, oauthv1.AnnotationAliasKeys, strings.Join(slices.Sorted(maps.Keys(aliases)), ","))
		}
	} else {
		// In someone else's Secret only keys it wrote itself, and no
		// longer wants, go (an alias taken out of the spec).
		for k := range written {
			if _, still := want[k]; !still && k != oauthv1.SecretKeyClientSecret {
				delete(data, k)
				delete(written, k)
			}
		}
	}
	if ours {
		// What the client may use, only where every key is the
		// operator's: a key of that name in someone else's Secret is
		// theirs. A key the client no longer has goes.
		for _, k := range connectionKeys {
			if v, ok := conn[k]; ok {
				want[k] = v
			} else {
				delete(data, k)
			}
		}
	}
}

// secretWritten records a written secret in status, tells the user, and
// schedules the next look: a grace period ending or a rotation due.
func (r *OAuthClientReconciler) secretWritten(ctx context.Context, oc *oauthv1.OAuthClient, plan secretPlan, now time.Time) ctrlresult.Result {
	name := SecretName(oc)
	oc.Status.SecretName = name
	oc.Status.SecretHashes = plan.hashes
	oc.Status.LastRotationTime = plan.lastRotation
	for _, e := range plan.events {
		auditSecret(r.Audit, oc, e)
		if e.reason != "" {
			r.event(ctx, oc, e.typ, e.reason, "%s", e.note)
		}
		if e.counted != "" {
			operatormetrics.ClientSecrets.WithLabelValues(e.counted).Inc()
		}
	}
	setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, oauthv1.ReasonReady,
		fmt.Sprintf("client %s is registered with AuthorizationServer %s; its credentials are in Secret %s",
			oc.Status.ClientID, oc.ServerKey(), name))
	var expiries []time.Time
	for _, h := range oc.Status.SecretHashes {
		if h.NotAfter != nil {
			expiries = append(expiries, h.NotAfter.Time)
		}
	}
	return requeueAt(now, append(expiries, plan.nextRotation)...)
}

// secretRecheck schedules another look at a Secret the client is waiting
// on. The operator's cache holds only the Secrets it labelled, so a fix to
// someone else's Secret (an adopt-by annotation, a stronger client_secret)
// raises no event; a change to the client itself still comes at once. The
// interval grows with how long the client has been waiting, from 10s to
// 5m, so that clients left broken cost next to nothing. The wait is
// measured on the wall clock, the clock of LastTransitionTime, not on the
// reconciler's Clock, which drives rotations.
func secretRecheck(oc *oauthv1.OAuthClient) ctrlresult.Result {
	waited := time.Duration(0)
	if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		waited = time.Since(c.LastTransitionTime.Time)
	}
	return ctrlresult.Result{RequeueAfter: min(max(waited/4, 10*time.Second), 5*time.Minute)}
}

func (r *OAuthClientReconciler) event(ctx context.Context, oc *oauthv1.OAuthClient, typ, reason, note string, args ...any) {
	emit(ctx, r.Recorder, oc, typ, reason, note, args...)
}

// connectionKeys are the keys of connectionFor.
var connectionKeys = []string{oauthv1.ConnectionKeyGrantTypes, oauthv1.ConnectionKeyScope,
	oauthv1.ConnectionKeySubjectTokenTypes, oauthv1.ConnectionKeyActorTokenTypes, oauthv1.ConnectionKeyResources}

// connectionFor is what the client may use, space-separated under RFC 7591
// names where they exist: its grant types and scopes, the APIs it may get
// a token for (resources, from reachableResources), and with token
// exchange the token types it may present (RFC 8693 §3). Empty lists are
// left out.
func connectionFor(oc *oauthv1.OAuthClient, resources []string) map[string]string {
	out := map[string]string{}
	grants := oc.Spec.GrantTypes
	if len(grants) == 0 {
		grants = []oauthv1.GrantType{oauthv1.GrantAuthorizationCode}
	}
	out[oauthv1.ConnectionKeyGrantTypes] = joinStrings(grants)
	if len(oc.Spec.Scopes) > 0 {
		out[oauthv1.ConnectionKeyScope] = joinStrings(oc.Spec.Scopes)
	}
	if len(resources) > 0 {
		out[oauthv1.ConnectionKeyResources] = strings.Join(resources, " ")
	}
	if te := oc.Spec.TokenExchange; te != nil && slices.Contains(grants, oauthv1.GrantTokenExchange) {
		if types := tokenTypes(te.SubjectTokens); types != "" {
			out[oauthv1.ConnectionKeySubjectTokenTypes] = types
		}
		if types := tokenTypes(te.ActorTokens); types != "" {
			out[oauthv1.ConnectionKeyActorTokenTypes] = types
		}
	}
	return out
}

func tokenTypes(list []oauthv1.ExchangeableToken) string {
	var urns []string
	for _, t := range list {
		if u := t.Type.URN(); u != "" && !slices.Contains(urns, u) {
			urns = append(urns, u)
		}
	}
	return strings.Join(urns, " ")
}

func joinStrings[S ~string](in []S) string {
	parts := make([]string, len(in))
	for i, s := range in {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// operatorKeys are every key the operator writes under its own names;
// no alias may take one (the CRD refuses it too).
var operatorKeys = append(append([]string{oauthv1.SecretKeyClientSecret}, metadataKeys...), connectionKeys...)

// aliasesFor is spec.secretKeyAliases with their values: those of the
// operator's keys in values, client_secret's the secret itself, and the
// two endpoints written only under an alias. An alias that would take an
// operator key's name (which the CRD refuses) is left out.
func aliasesFor(oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer, values map[string]string, clientSecret string) map[string]string {
	if len(oc.Spec.SecretKeyAliases) == 0 {
		return nil
	}
	ep := endpoints.For(srv.Spec.Issuer)
	out := make(map[string]string, len(oc.Spec.SecretKeyAliases))
	for _, a := range oc.Spec.SecretKeyAliases {
		if slices.Contains(operatorKeys, a.Name) {
			continue
		}
		switch a.From {
		case oauthv1.SecretKeyClientSecret:
			out[a.Name] = clientSecret
		case oauthv1.SecretKeyUserinfoEndpoint:
			out[a.Name] = ep.Userinfo
		case oauthv1.SecretKeyEndSessionEndpoint:
			out[a.Name] = ep.EndSession
		default:
			if v, ok := values[string(a.From)]; ok {
				out[a.Name] = v
			}
		}
	}
	return out
}

// metadataFor is what the app needs besides client_secret, by Secret key.
func metadataFor(oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) map[string]string {
	ep := endpoints.For(srv.Spec.Issuer)
	return map[string]string{
		oauthv1.SecretKeyClientID:              oc.Status.ClientID,
		oauthv1.SecretKeyIssuer:                srv.Spec.Issuer,
		oauthv1.SecretKeyAuthorizationEndpoint: ep.Authorization,
		oauthv1.SecretKeyTokenEndpoint:         ep.Token,
		oauthv1.SecretKeyJWKSURI:               ep.JWKS,
		oauthv1.SecretKeyOIDCDiscoveryURL:      ep.OpenIDConfiguration,
	}
}
