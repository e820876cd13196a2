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

// maxSecretHashes is status.secretHashes' MaxItems.
const maxSecretHashes = 16

// Event reasons for client secrets.
const (
	EventGenerated        = "Generated"
	EventAdopted          = "Adopted"
	EventRotated          = "Rotated"
	EventWeakSecret       = "WeakSecret"
	EventRotationExternal = "RotationSkipped"
)

// metadataKeys are the Secret keys the operator writes besides
// client_secret; on an adopted Secret they are all it writes.
var metadataKeys = append(slices.Clone(legacyMetadataKeys), oauthv1.SecretKeyOIDCDiscoveryURL)

// legacyMetadataKeys are the keys operators before the written-keys
// annotation wrote into Secrets they did not own: on release only these
// are taken out of such a Secret.
var legacyMetadataKeys = []string{
	oauthv1.SecretKeyClientID,
	oauthv1.SecretKeyIssuer,
	oauthv1.SecretKeyAuthorizationEndpoint,
	oauthv1.SecretKeyTokenEndpoint,
	oauthv1.SecretKeyJWKSURI,
}

// SecretName is the app Secret of a confidential client.
func SecretName(oc *oauthv1.OAuthClient) string {
	if oc.Spec.SecretName != "" {
		return oc.Spec.SecretName
	}
	return oc.Name + "-oauth-client"
}

func currentHash(hashes []oauthv1.SecretHash) string {
	for _, h := range hashes {
		if h.NotAfter == nil {
			return h.Hash
		}
	}
	return ""
}

// replaceCurrent makes hash the current secret. The previous current one
// stays valid until graceUntil, or is dropped at once when graceUntil is
// zero.
func replaceCurrent(oc *oauthv1.OAuthClient, hash string, graceUntil time.Time) {
	var kept []oauthv1.SecretHash
	for _, h := range oc.Status.SecretHashes {
		if h.Hash == hash {
			continue
		}
		if h.NotAfter == nil {
			if graceUntil.IsZero() {
				continue
			}
			h.NotAfter = &metav1.Time{Time: graceUntil}
		}
		kept = append(kept, h)
	}
	oc.Status.SecretHashes = append(kept, oauthv1.SecretHash{Hash: hash})
}

// pruneHashes drops hashes past their not-after time and, beyond
// MaxItems, the ones that expire first.
func pruneHashes(oc *oauthv1.OAuthClient, now time.Time) {
	hashes := slices.DeleteFunc(oc.Status.SecretHashes, func(h oauthv1.SecretHash) bool {
		return h.NotAfter != nil && !now.Before(h.NotAfter.Time)
	})
	for len(hashes) > maxSecretHashes {
		oldest := -1
		for i, h := range hashes {
			if h.NotAfter != nil && (oldest < 0 || h.NotAfter.Before(hashes[oldest].NotAfter)) {
				oldest = i
			}
		}
		hashes = slices.Delete(hashes, oldest, oldest+1)
	}
	if len(hashes) == 0 {
		hashes = nil
	}
	oc.Status.SecretHashes = hashes
}

// reconcileSecret keeps the app's Secret and status.secretHashes
// consistent, by the rules in the OAuthClient type's documentation. It
// reads the Secret, decides what the operator may do with it
// (classifySecret) and what the secret is (decideSecret), and only then
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
	access, written, p := classifySecret(existing, oc)
	if p == nil && (access == secretHosted || access == secretAdopted) {
		p = foreignMetadata(existing, written, metadataFor(oc, srv))
	}
	if p != nil {
		// The Secret is not ours to change: say why and leave it as it is.
		notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, p.reason, p.message)
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
		if c := meta.FindStatusCondition(oc.Status.Conditions, oauthv1.ConditionReady); c == nil || c.Reason != ReasonWeakSecret {
			r.event(ctx, oc, corev1.EventTypeWarning, EventWeakSecret, "%s", msg)
		}
		notReady(&oc.Status.Conditions, oc.Generation, kindOAuthClient, ReasonWeakSecret, msg)
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
	if access != secretAdopted {
		want[oauthv1.SecretKeyClientSecret] = plaintext
	}
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	ours := access == secretCreate || access == secretOwned
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

// secretWritten records a written secret in status, tells the user, and
// schedules the next look: a grace period ending or a rotation due.
func (r *OAuthClientReconciler) secretWritten(ctx context.Context, oc *oauthv1.OAuthClient, plan secretPlan, now time.Time) ctrlresult.Result {
	name := SecretName(oc)
	oc.Status.SecretName = name
	oc.Status.SecretHashes = plan.hashes
	oc.Status.LastRotationTime = plan.lastRotation
	for _, e := range plan.events {
		if e.reason != "" {
			r.event(ctx, oc, e.typ, e.reason, "%s", e.note)
		}
		if e.counted != "" {
			operatormetrics.ClientSecrets.WithLabelValues(e.counted).Inc()
		}
	}
	setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, ReasonReady,
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

// secretFacts is everything the secret decision looks at, read before it.
type secretFacts struct {
	now           time.Time
	secretName    string
	generatedHere bool   // the operator may write and rotate client_secret
	value         string // the client_secret in the Secret; "" for none
	hashes        []oauthv1.SecretHash
	lastRotation  *metav1.Time
	grace         time.Duration
	interval      time.Duration // between rotations; 0 for on demand only
	rotateWanted  string        // the client's rotate-secret annotation
	rotateHandled *string       // the value last acted on, as recorded on the Secret; nil: none
}

// secretPlan is what reconcileSecret writes: the client_secret (used only
// when the operator may write it), the status, and what to tell the user.
type secretPlan struct {
	// weak, when set, refuses the value found; nothing else applies.
	weak         error
	plaintext    string
	hashes       []oauthv1.SecretHash
	lastRotation *metav1.Time
	nextRotation time.Time
	events       []secretEvent
}

type secretEvent struct {
	typ, reason, note string // no Event when reason is empty
	counted           string // the operatormetrics.ClientSecrets label, if any
}

// decideSecret is the secret decision, in two ordered steps, with no I/O
// (generate makes new secrets):
//
//  1. The value in the Secret against the current hash:
//     a. none: generate one; every earlier hash goes at once (deleting the
//     Secret, or its key, is how to revoke a leaked secret);
//     b. the current one: keep it;
//     c. none published yet, in a Secret the operator writes: its own
//     secret whose status write was lost: take it back, no strength check;
//     d. anything else was put there by someone else: refuse it if weak,
//     otherwise adopt it, the previous secret staying valid for the grace
//     period.
//  2. Rotation, for secrets the operator writes: on the interval, or when
//     the rotate-secret annotation changed since it was last acted on (a
//     first value is only recorded). An adopted secret is rotated at its
//     source: asking the operator to rotate it only gets a warning.
//
// Hashes past their grace period are pruned last.
func decideSecret(f secretFacts, generate func() (string, error)) (secretPlan, error) {
	d := &secretDecision{f: f, generate: generate, oc: &oauthv1.OAuthClient{Status: oauthv1.OAuthClientStatus{
		SecretHashes: slices.Clone(f.hashes), LastRotationTime: f.lastRotation}}}
	d.recorded = f.rotateHandled != nil
	if d.recorded {
		d.handled = *f.rotateHandled
	}
	if err := d.valueFound(); err != nil || d.plan.weak != nil {
		return d.plan, err
	}
	if err := d.rotation(); err != nil {
		return secretPlan{}, err
	}
	pruneHashes(d.oc, f.now)
	d.plan.hashes, d.plan.lastRotation = d.oc.Status.SecretHashes, d.oc.Status.LastRotationTime
	return d.plan, nil
}

// secretDecision is decideSecret's state between its two steps.
type secretDecision struct {
	f        secretFacts
	generate func() (string, error)
	oc       *oauthv1.OAuthClient // holds the status being decided
	plan     secretPlan
	handled  string // the rotate-secret value last acted on
	recorded bool   // handled is known
}

func (d *secretDecision) tell(typ, reason, counted, format string, args ...any) {
	d.plan.events = append(d.plan.events, secretEvent{typ, reason, fmt.Sprintf(format, args...), counted})
}

// count counts a change in the metrics without an Event.
func (d *secretDecision) count(counted string) {
	d.plan.events = append(d.plan.events, secretEvent{counted: counted})
}

// valueFound is step 1: the value in the Secret against the current hash.
func (d *secretDecision) valueFound() error {
	f, oc, plan := d.f, d.oc, &d.plan
	current := currentHash(oc.Status.SecretHashes)
	switch {
	case f.value == "":
		var err error
		if plan.plaintext, err = d.generate(); err != nil {
			return err
		}
		oc.Status.SecretHashes = []oauthv1.SecretHash{{Hash: clientsecret.Hash(plan.plaintext)}}
		oc.Status.LastRotationTime = &metav1.Time{Time: f.now}
		d.handled, d.recorded = f.rotateWanted, true
		if current == "" {
			// A new client's first secret is news to nobody: its status
			// says where the secret is. An Event for each would be one
			// more API write per client, and held in the operator's event
			// cache for minutes, for nothing anyone acts on.
			d.count(operatormetrics.SecretGenerated)
			break
		}
		d.tell(corev1.EventTypeNormal, EventGenerated, operatormetrics.SecretGenerated,
			"the client secret in Secret %s was deleted: generated a new one and revoked the old one", f.secretName)
	case clientsecret.Hash(f.value) == current:
		plan.plaintext = f.value
	case current == "" && f.generatedHere:
		plan.plaintext = f.value
		replaceCurrent(oc, clientsecret.Hash(f.value), time.Time{})
		if oc.Status.LastRotationTime == nil {
			oc.Status.LastRotationTime = &metav1.Time{Time: f.now}
		}
	default:
		if err := clientsecret.CheckAdoptable(f.value); err != nil {
			d.plan = secretPlan{weak: err}
			return nil
		}
		plan.plaintext = f.value
		graceUntil := time.Time{}
		if current != "" {
			graceUntil = f.now.Add(f.grace)
		}
		replaceCurrent(oc, clientsecret.Hash(f.value), graceUntil)
		oc.Status.LastRotationTime = &metav1.Time{Time: f.now}
		d.handled, d.recorded = f.rotateWanted, true
		note := "adopted the client secret found in Secret %s"
		if current != "" {
			note = "the client secret in Secret %s changed outside the operator: adopted it; the previous one is accepted for the grace period"
		}
		d.tell(corev1.EventTypeNormal, EventAdopted, operatormetrics.SecretAdopted, note, f.secretName)
	}
	return nil
}

// rotation is step 2, for secrets the operator writes: on the interval,
// or when the rotate-secret annotation changed since it was last acted on.
func (d *secretDecision) rotation() error {
	f, oc, plan := d.f, d.oc, &d.plan
	onDemand := f.rotateWanted != "" && d.recorded && d.handled != f.rotateWanted
	switch {
	case f.generatedHere:
		if f.interval > 0 && oc.Status.LastRotationTime != nil {
			plan.nextRotation = oc.Status.LastRotationTime.Add(f.interval)
		}
		due := !plan.nextRotation.IsZero() && !f.now.Before(plan.nextRotation)
		if onDemand || due {
			var err error
			if plan.plaintext, err = d.generate(); err != nil {
				return err
			}
			replaceCurrent(oc, clientsecret.Hash(plan.plaintext), f.now.Add(f.grace))
			oc.Status.LastRotationTime = &metav1.Time{Time: f.now}
			if !plan.nextRotation.IsZero() {
				plan.nextRotation = f.now.Add(f.interval)
			}
			d.tell(corev1.EventTypeNormal, EventRotated, operatormetrics.SecretRotated,
				"rotated the client secret in Secret %s; the previous one is accepted for %s", f.secretName, f.grace)
		}
	case onDemand:
		d.tell(corev1.EventTypeWarning, EventRotationExternal, "",
			"the client secret in Secret %s is adopted: rotate it where it comes from; the operator never overwrites it", f.secretName)
	}
	return nil
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

// secretAccess is what the operator may do with a client's Secret. It is
// decided from the Secret as found, before anything is written, so that
// naming a Secret in spec.secretName never hands the operator a Secret
// that was not meant for it (the confused deputy: the operator may write
// every Secret, the author of an OAuthClient perhaps none).
type secretAccess int

const (
	// secretCreate: there is no Secret; the operator creates it, with the
	// client as its controlling owner.
	secretCreate secretAccess = iota
	// secretOwned: the operator created it (the client is its controller):
	// it writes every key, rotates, and deletes the Secret with the client.
	secretOwned
	// secretHosted: someone else's Secret, handed to this client with the
	// adopt-by annotation. The operator writes the credentials into it,
	// generating client_secret when there is none, and rotates what it
	// generated; it never owns the Secret and on release removes only the
	// keys it wrote.
	secretHosted
	// secretAdopted: someone else's Secret with a client_secret of its own
	// (External Secrets, Sealed Secrets, an edit): the operator publishes
	// its hash and adds the other keys, but never writes client_secret.
	secretAdopted
)

// classifySecret decides, in order:
//  1. no Secret: create it;
//  2. labelled for, or controlled by, another OAuthClient: conflict;
//  3. controlled by this client: the operator's own;
//  4. a client_secret the operator did not write: adopt it;
//  5. controlled by another controller: conflict (nothing to adopt, and
//     the operator does not write into what another controller manages);
//  6. handed over with the adopt-by annotation, or holding a client_secret
//     the operator wrote there: hosted;
//  7. anything else is somebody's unrelated Secret: not adoptable.
//
// written lists the keys the operator wrote into someone else's Secret
// (never nil); for its own Secrets every key is its own anyway.
func classifySecret(sec *corev1.Secret, oc *oauthv1.OAuthClient) (secretAccess, map[string]bool, *problem) {
	written := map[string]bool{}
	if sec == nil {
		return secretCreate, written, nil
	}
	conflict := func(format string, args ...any) (secretAccess, map[string]bool, *problem) {
		msg := fmt.Sprintf(format, args...) + "; choose another spec.secretName"
		return 0, nil, &problem{ReasonSecretConflict, msg}
	}
	if other := sec.Labels[oauthv1.LabelClient]; other != "" && other != oc.Name {
		return conflict("Secret %s holds the credentials of OAuthClient %s", sec.Name, other)
	}
	ctl := metav1.GetControllerOf(sec)
	if ctl != nil && ctl.UID == oc.UID {
		return secretOwned, written, nil
	}
	if ctl != nil && ctl.Kind == kindOAuthClient && ctl.APIVersion == oauthv1.GroupVersion.String() {
		return conflict("Secret %s holds the credentials of OAuthClient %s", sec.Name, ctl.Name)
	}
	written = writtenKeys(sec, oc)
	hasSecret := len(sec.Data[oauthv1.SecretKeyClientSecret]) > 0
	switch {
	case hasSecret && !written[oauthv1.SecretKeyClientSecret]:
		return secretAdopted, written, nil
	case ctl != nil:
		return conflict("Secret %s belongs to %s %s and holds no client_secret to adopt", sec.Name, ctl.Kind, ctl.Name)
	case sec.Annotations[oauthv1.AnnotationAdoptBy] == oc.Name || written[oauthv1.SecretKeyClientSecret]:
		return secretHosted, written, nil
	}
	why := "it holds no client_secret to adopt"
	if by, ok := sec.Annotations[oauthv1.AnnotationAdoptBy]; ok {
		why = fmt.Sprintf("its annotation %s=%q names another client", oauthv1.AnnotationAdoptBy, by)
	}
	return 0, nil, &problem{ReasonSecretNotAdoptable, fmt.Sprintf(
		"Secret %s was not created by Gatehouse and %s, so the operator leaves it untouched; "+
			"choose another spec.secretName, or let this client use it by annotating the Secret %s=%s",
		sec.Name, why, oauthv1.AnnotationAdoptBy, oc.Name)}
}

// writtenKeys are the data keys the operator wrote into a Secret it does
// not own, as recorded in the written-keys annotation. A Secret labelled
// for the client by an operator older than that annotation got the
// metadata keys only.
func writtenKeys(sec *corev1.Secret, oc *oauthv1.OAuthClient) map[string]bool {
	keys := map[string]bool{}
	if sec.Labels[oauthv1.LabelClient] != oc.Name {
		return keys
	}
	list, ok := sec.Annotations[oauthv1.AnnotationWrittenKeys]
	if !ok {
		for _, k := range legacyMetadataKeys {
			keys[k] = true
		}
		return keys
	}
	for k := range strings.SplitSeq(list, ",") {
		if k != "" {
			keys[k] = true
		}
	}
	return keys
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

// foreignMetadata refuses a Secret the operator does not own that already
// has one of the metadata keys with another value: writing it would
// overwrite the owner's data, and removing it on release would lose it.
func foreignMetadata(sec *corev1.Secret, written map[string]bool, want map[string]string) *problem {
	for _, k := range metadataKeys {
		if old, ok := sec.Data[k]; ok && !written[k] && string(old) != want[k] {
			return &problem{ReasonSecretConflict, fmt.Sprintf(
				"Secret %s already has a %s that Gatehouse did not write; remove that key or choose another spec.secretName",
				sec.Name, k)}
		}
	}
	return nil
}
