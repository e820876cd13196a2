package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

func TestReplaceCurrentAndPrune(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	oc := &oauthv1.OAuthClient{}
	replaceCurrent(oc, "h1", time.Time{})
	replaceCurrent(oc, "h2", now.Add(time.Hour))
	replaceCurrent(oc, "h3", now.Add(2*time.Hour))
	if got := currentHash(oc.Status.SecretHashes); got != "h3" {
		t.Fatalf("current = %q, want h3", got)
	}
	want := map[string]time.Time{"h1": now.Add(time.Hour), "h2": now.Add(2 * time.Hour)}
	for _, h := range oc.Status.SecretHashes {
		if h.Hash == "h3" {
			continue
		}
		if h.NotAfter == nil || !h.NotAfter.Time.Equal(want[h.Hash]) {
			t.Errorf("%s not after %v, want %s", h.Hash, h.NotAfter, want[h.Hash])
		}
	}
	// Re-publishing the current hash changes nothing.
	replaceCurrent(oc, "h3", now.Add(3*time.Hour))
	if len(oc.Status.SecretHashes) != 3 {
		t.Errorf("replacing with the same hash: %+v", oc.Status.SecretHashes)
	}
	// Without grace the previous current hash goes at once.
	replaceCurrent(oc, "h4", time.Time{})
	for _, h := range oc.Status.SecretHashes {
		if h.Hash == "h3" {
			t.Error("h3 survived a replacement without grace")
		}
	}

	pruneHashes(oc, now.Add(time.Hour)) // h1 expires exactly now
	for _, h := range oc.Status.SecretHashes {
		if h.Hash == "h1" {
			t.Error("an expired hash survived pruning")
		}
	}
	if len(oc.Status.SecretHashes) != 2 {
		t.Errorf("after pruning: %+v", oc.Status.SecretHashes)
	}
}

func TestPruneKeepsWithinMaxItems(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	oc := &oauthv1.OAuthClient{}
	for i := 0; i < 20; i++ { // rotations faster than the grace period
		replaceCurrent(oc, fmt.Sprintf("h%02d", i), now.Add(time.Duration(i+1)*time.Minute))
	}
	pruneHashes(oc, now)
	if len(oc.Status.SecretHashes) != maxSecretHashes {
		t.Fatalf("%d hashes, want %d", len(oc.Status.SecretHashes), maxSecretHashes)
	}
	if currentHash(oc.Status.SecretHashes) != "h19" {
		t.Error("pruning dropped the current hash")
	}
	for _, h := range oc.Status.SecretHashes {
		if h.Hash < "h04" {
			t.Errorf("kept %s, which expires first, over a later one", h.Hash)
		}
	}
}

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
			0, ReasonSecretNotAdoptable, ""},
		{"an empty Secret", &corev1.Secret{}, 0, ReasonSecretNotAdoptable, ""},
		{"handed to another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: adoptBy("other")}},
			0, ReasonSecretNotAdoptable, ""},
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
			Annotations: adoptBy("me")}}, 0, ReasonSecretConflict, ""},
		{"labelled for another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{oauthv1.LabelClient: "other"}},
			Data: data("client_secret", "s")}, 0, ReasonSecretConflict, ""},
		{"owned by another client", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "other", "x")}},
			0, ReasonSecretConflict, ""},
		{"owned by an earlier client of the same name", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "me", "old-uid")}},
			0, ReasonSecretConflict, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sec != nil {
				tc.sec.Name = "creds"
			}
			access, written, p := classifySecret(tc.sec, oc)
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
	if p := foreignMetadata(sec, map[string]bool{}, want); p == nil || p.reason != ReasonSecretConflict || !strings.Contains(p.message, "issuer") {
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

func TestClientIDIsSafeForHTTPBasic(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web.app"}}
	id := ClientID(oc)
	if id != "team-a.web.app" {
		t.Fatalf("ClientID = %q", id)
	}
	// The namespace, a DNS label, ends at the first '.'.
	ns, name, _ := strings.Cut(id, ".")
	if ns != "team-a" || name != "web.app" {
		t.Errorf("split %q into %q and %q", id, ns, name)
	}
}

func TestSecretNameProblem(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 241)}}
	if p := secretNameProblem(oc); p == nil || p.reason != ReasonInvalidSecretName || !strings.Contains(p.message, "spec.secretName") {
		t.Errorf("a 241-character client name: %+v, want InvalidSecretName", p)
	}
	oc.Name = strings.Repeat("a", 240)
	if p := secretNameProblem(oc); p != nil {
		t.Errorf("a 240-character client name: %+v", p)
	}
	oc.Spec.SecretName = "app-creds"
	oc.Name = strings.Repeat("a", 250)
	if p := secretNameProblem(oc); p != nil {
		t.Errorf("spec.secretName set: %+v", p)
	}
}

func TestIssuerKey(t *testing.T) {
	for _, same := range [][2]string{
		{"https://auth.example.com", "https://auth.example.com/"},
		{"https://Auth.Example.com/t/a", "https://auth.example.com/t/a/"},
	} {
		if issuerKey(same[0]) != issuerKey(same[1]) {
			t.Errorf("%q and %q are one issuer", same[0], same[1])
		}
	}
	if issuerKey("https://auth.example.com/t/A") == issuerKey("https://auth.example.com/t/a") {
		t.Error("paths are case-sensitive")
	}
}

func TestSecretRecheckBacksOff(t *testing.T) {
	oc := &oauthv1.OAuthClient{}
	waitingFor := func(d time.Duration) time.Duration {
		oc.Status.Conditions = []metav1.Condition{{Type: oauthv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: ReasonSecretNotAdoptable, LastTransitionTime: metav1.NewTime(time.Now().Add(-d))}}
		return secretRecheck(oc).RequeueAfter
	}
	if got := waitingFor(0); got != 10*time.Second {
		t.Errorf("just refused: recheck in %s, want 10s", got)
	}
	if got := waitingFor(2 * time.Minute); got < 29*time.Second || got > 31*time.Second {
		t.Errorf("waiting 2m: recheck in %s, want about 30s", got)
	}
	if got := waitingFor(48 * time.Hour); got != 5*time.Minute {
		t.Errorf("waiting 2 days: recheck in %s, want 5m", got)
	}
}
