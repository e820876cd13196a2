package controllers

import (
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func TestClassifySecret(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "me", UID: types.UID("me-uid")}}
	yes := true
	owner := func(kind, name, uid string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: oauthv1.GroupVersion.String(), Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}}
	}
	data := func(kv ...string) map[string][]byte {
		d := map[string][]byte{}
		for i := 0; i < len(kv); i += 2 {
			d[kv[i]] = []byte(kv[i+1])
		}
		return d
	}
	mine := map[string]string{oauthv1.LabelClient: "me"}
	adoptBy := func(name string) map[string]string { return map[string]string{oauthv1.AnnotationAdoptBy: name} }
	for _, tc := range []struct {
		name    string
		sec     *corev1.Secret
		want    secretAccess
		reason  string // of the problem, "" for none
		written string // the keys recorded as the operator's
	}{
		{"no Secret", nil, secretCreate, "", ""},
		{"created by the operator", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "me", "me-uid"), Labels: mine},
			Data: data("client_secret", "s", "username", "u")}, secretOwned, "", ""},
		{"somebody's Secret without client_secret", &corev1.Secret{Data: data("username", "app", "password", "db")},
			0, oauthv1.ReasonSecretNotAdoptable, ""},
		{"an empty Secret", &corev1.Secret{}, 0, oauthv1.ReasonSecretNotAdoptable, ""},
		{"handed to another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: adoptBy("other")}},
			0, oauthv1.ReasonSecretNotAdoptable, ""},
		{"handed to this client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: adoptBy("me")}, Data: data("username", "u")},
			secretHosted, "", ""},
		{"hosted, with the secret the operator wrote", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: mine,
			Annotations: map[string]string{oauthv1.AnnotationWrittenKeys: "client_id,client_secret"}}, Data: data("client_secret", "s", "client_id", "x")},
			secretHosted, "", "client_id,client_secret"},
		{"a client_secret to adopt", &corev1.Secret{Data: data("client_secret", "s")}, secretAdopted, "", ""},
		{"adopted by an operator before written-keys", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: mine}, Data: data("client_secret", "s")},
			secretAdopted, "", strings.Join(slices.Sorted(slices.Values(legacyMetadataKeys)), ",")},
		{"External Secrets with a secret", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("ExternalSecret", "es", "y")},
			Data: data("client_secret", "s")}, secretAdopted, "", ""},
		{"another controller, no secret", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("ExternalSecret", "es", "y"),
			Annotations: adoptBy("me")}}, 0, oauthv1.ReasonSecretConflict, ""},
		{"labelled for another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{oauthv1.LabelClient: "other"}},
			Data: data("client_secret", "s")}, 0, oauthv1.ReasonSecretConflict, ""},
		{"owned by another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "other", "x")}},
			0, oauthv1.ReasonSecretConflict, ""},
		{"owned by an earlier client of the same name", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "me", "old-uid")}},
			0, oauthv1.ReasonSecretConflict, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sec != nil {
				tc.sec.Name = "creds"
			}
			access, written, p := classifySecret(tc.sec, claimantOf(oc))
			switch {
			case tc.reason == "" && p != nil:
				t.Fatalf("problem %s: %s", p.reason, p.message)
			case tc.reason != "" && (p == nil || p.reason != tc.reason):
				t.Fatalf("problem %+v, want reason %s", p, tc.reason)
			case tc.reason != "":
				if !strings.Contains(p.message, "creds") {
					t.Errorf("message %q does not name the Secret", p.message)
				}
				return
			}
			if access != tc.want {
				t.Errorf("access = %d, want %d", access, tc.want)
			}
			if got := strings.Join(slices.Sorted(maps.Keys(written)), ","); got != tc.written {
				t.Errorf("written keys = %q, want %q", got, tc.written)
			}
		})
	}
}

func TestForeignMetadata(t *testing.T) {
	want := map[string]string{"client_id": "ns.me", "issuer": "https://auth.test"}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{
		"client_secret": []byte("s"), "client_id": []byte("ns.me"), "issuer": []byte("https://elsewhere.test"),
	}}
	if p := foreignMetadata(sec, map[string]bool{}, want); p == nil || p.reason != oauthv1.ReasonSecretConflict || !strings.Contains(p.message, "issuer") {
		t.Errorf("an issuer the operator did not write, with another value: %+v, want a SecretConflict naming issuer", p)
	}
	if p := foreignMetadata(sec, map[string]bool{"issuer": true}, want); p != nil {
		t.Errorf("an issuer the operator wrote itself is its to change: %+v", p)
	}
	sec.Data["issuer"] = []byte("https://auth.test")
	if p := foreignMetadata(sec, map[string]bool{}, want); p != nil {
		t.Errorf("keys equal to what the operator would write: %+v", p)
	}
}

// The operator deletes only a Secret the rules make its own: controlled by
// this very client (not an earlier one of the same name) and not labelled
// for another client.
func TestOwnsSecret(t *testing.T) {
	yes := true
	me := secretClaimant{name: "me", uid: "me-uid"}
	controlledBy := func(uid string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: oauthv1.GroupVersion.String(), Kind: kindOAuthClient, Name: "me", UID: types.UID(uid), Controller: &yes}}}}
	}
	for _, tc := range []struct {
		name string
		sec  *corev1.Secret
		want bool
	}{
		{"controlled by this client", controlledBy("me-uid", map[string]string{oauthv1.LabelClient: "me"}), true},
		{"controlled by an earlier client of the same name", controlledBy("old-uid", map[string]string{oauthv1.LabelClient: "me"}), false},
		{"controlled by this client, labelled for another", controlledBy("me-uid", map[string]string{oauthv1.LabelClient: "other"}), false},
		{"labelled for this client, not controlled", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds",
			Labels: map[string]string{oauthv1.LabelClient: "me"}}, Data: map[string][]byte{"client_secret": []byte("s")}}, false},
	} {
		if got := ownsSecret(tc.sec, me); got != tc.want {
			t.Errorf("%s: owns %v, want %v", tc.name, got, tc.want)
		}
	}
}
