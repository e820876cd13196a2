package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// What the operator may do with a client's Secret. It is decided from the
// Secret as found, before anything is written, so that naming a Secret in
// spec.secretName never hands the operator a Secret that was not meant for
// it (the confused deputy: the operator may write every Secret, the author
// of an OAuthClient perhaps none).

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

// secretAccess is what the operator may do with a client's Secret.
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

// secretClaimant is the client whose Secret is being decided about.
type secretClaimant struct {
	name string
	uid  types.UID
}

func claimantOf(oc *oauthv1.OAuthClient) secretClaimant {
	return secretClaimant{name: oc.Name, uid: oc.UID}
}

// secretFound is what the ownership rules look at, read from the Secret
// once.
type secretFound struct {
	sec        *corev1.Secret // nil: there is none
	client     secretClaimant
	controller *metav1.OwnerReference // the Secret's controller, if any
	written    map[string]bool        // the keys the operator wrote into it
	hasSecret  bool                   // it holds a client_secret
}

// otherClient is the OAuthClient other than this one that the Secret is
// labelled for or controlled by, "" for none.
func (f *secretFound) otherClient() string {
	if other := f.sec.Labels[oauthv1.LabelClient]; other != "" && other != f.client.name {
		return other
	}
	if c := f.controller; c != nil && c.UID != f.client.uid && c.Kind == kindOAuthClient && c.APIVersion == oauthv1.GroupVersion.String() {
		return c.Name
	}
	return ""
}

// secretRule is one ownership rule: the first that applies decides.
type secretRule struct {
	applies func(f *secretFound) bool
	decide  func(f *secretFound) (secretAccess, *problem)
}

// secretOwnership are the ownership rules, in order. The first rule that
// applies to the Secret as found decides; the last always applies. On
// release (the client is deleted, or names another Secret) the same rules
// decide: only a Secret of rule 3 is deleted (ownsSecret); from any other
// Secret labelled for the client the operator removes exactly the keys it
// wrote (releaseSecret).
var secretOwnership = []secretRule{
	// 1. No Secret: the operator creates it.
	{func(f *secretFound) bool { return f.sec == nil }, access(secretCreate)},
	// 2. Labelled for another OAuthClient, or controlled by one (an
	// earlier client of the same name included): its credentials.
	{func(f *secretFound) bool { return f.otherClient() != "" }, func(f *secretFound) (secretAccess, *problem) {
		return secretConflict("Secret %s holds the credentials of OAuthClient %s", f.sec.Name, f.otherClient())
	}},
	// 3. Controlled by this client: the operator's own.
	{func(f *secretFound) bool { return f.controller != nil && f.controller.UID == f.client.uid }, access(secretOwned)},
	// 4. A client_secret the operator did not write: adopt it, and never
	// write it.
	{func(f *secretFound) bool { return f.hasSecret && !f.written[oauthv1.SecretKeyClientSecret] }, access(secretAdopted)},
	// 5. Controlled by another controller, with nothing to adopt: the
	// operator does not write into what another controller manages.
	{func(f *secretFound) bool { return f.controller != nil }, func(f *secretFound) (secretAccess, *problem) {
		return secretConflict("Secret %s belongs to %s %s and holds no client_secret to adopt", f.sec.Name, f.controller.Kind, f.controller.Name)
	}},
	// 6. Handed over with the adopt-by annotation, or holding a
	// client_secret the operator wrote there: hosted.
	{func(f *secretFound) bool {
		return f.sec.Annotations[oauthv1.AnnotationAdoptBy] == f.client.name || f.written[oauthv1.SecretKeyClientSecret]
	}, access(secretHosted)},
	// 7. Anything else is somebody's unrelated Secret: not adoptable.
	{func(*secretFound) bool { return true }, notAdoptable},
}

func access(a secretAccess) func(*secretFound) (secretAccess, *problem) {
	return func(*secretFound) (secretAccess, *problem) { return a, nil }
}

func secretConflict(format string, args ...any) (secretAccess, *problem) {
	return 0, &problem{oauthv1.ReasonSecretConflict, fmt.Sprintf(format, args...) + "; choose another spec.secretName"}
}

func notAdoptable(f *secretFound) (secretAccess, *problem) {
	why := "it holds no client_secret to adopt"
	if by, ok := f.sec.Annotations[oauthv1.AnnotationAdoptBy]; ok {
		why = fmt.Sprintf("its annotation %s=%q names another client", oauthv1.AnnotationAdoptBy, by)
	}
	return 0, &problem{oauthv1.ReasonSecretNotAdoptable, fmt.Sprintf(
		"Secret %s was not created by Gatehouse and %s, so the operator leaves it untouched; "+
			"choose another spec.secretName, or let this client use it by annotating the Secret %s=%s",
		f.sec.Name, why, oauthv1.AnnotationAdoptBy, f.client.name)}
}

// classifySecret applies secretOwnership to sec (nil when there is none).
// written lists the keys the operator wrote into someone else's Secret
// (never nil); for its own Secrets every key is its own anyway.
func classifySecret(sec *corev1.Secret, client secretClaimant) (secretAccess, map[string]bool, *problem) {
	f := &secretFound{sec: sec, client: client, written: map[string]bool{}}
	if sec != nil {
		f.controller = metav1.GetControllerOf(sec)
		f.written = writtenKeys(sec, client.name)
		f.hasSecret = len(sec.Data[oauthv1.SecretKeyClientSecret]) > 0
	}
	i := slices.IndexFunc(secretOwnership, func(r secretRule) bool { return r.applies(f) })
	a, p := secretOwnership[i].decide(f)
	switch {
	case p != nil:
		return 0, nil, p
	case a == secretCreate || a == secretOwned:
		return a, map[string]bool{}, nil
	}
	return a, f.written, nil
}

// ownsSecret reports whether the rules make sec the operator's own Secret
// for client (rule 3): the only kind it ever deletes.
func ownsSecret(sec *corev1.Secret, client secretClaimant) bool {
	a, _, p := classifySecret(sec, client)
	return p == nil && a == secretOwned
}

// writtenKeys are the data keys the operator wrote into a Secret it does
// not own, as recorded in the written-keys annotation. A Secret labelled
// for the client by an operator older than that annotation got the
// metadata keys only.
func writtenKeys(sec *corev1.Secret, client string) map[string]bool {
	keys := map[string]bool{}
	if sec.Labels[oauthv1.LabelClient] != client {
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

// foreignMetadata refuses a Secret the operator does not own that already
// has one of the keys of want (the metadata keys and the aliases; never
// client_secret, whose rules are the adoption's) with another value:
// writing it would overwrite the owner's data, and removing it on release
// would lose it.
func foreignMetadata(sec *corev1.Secret, written map[string]bool, want map[string]string) *problem {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == oauthv1.SecretKeyClientSecret {
			continue
		}
		if old, ok := sec.Data[k]; ok && !written[k] && string(old) != want[k] {
			return &problem{oauthv1.ReasonSecretConflict, fmt.Sprintf(
				"Secret %s already has a %s that Gatehouse did not write; remove that key or choose another spec.secretName",
				sec.Name, k)}
		}
	}
	return nil
}
