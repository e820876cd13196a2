package controllers

import (
	"fmt"
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

func TestSecretConflict(t *testing.T) {
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "me", UID: types.UID("me-uid")}}
	yes := true
	owner := func(kind, name, uid string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: oauthv1.GroupVersion.String(), Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}}
	}
	for _, tc := range []struct {
		name     string
		sec      corev1.Secret
		conflict bool
	}{
		{"plain Secret", corev1.Secret{}, false},
		{"ours", corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "me", "me-uid"),
			Labels: map[string]string{oauthv1.LabelClient: "me"}}}, false},
		{"labelled for another client", corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{oauthv1.LabelClient: "other"}}}, true},
		{"owned by another client", corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("OAuthClient", "other", "x")}}, true},
		{"External Secrets with a secret", corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("ExternalSecret", "es", "y")},
			Data: map[string][]byte{"client_secret": []byte("s")}}, false},
		{"another controller, no secret", corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owner("ExternalSecret", "es", "y")}}, true},
	} {
		sec := tc.sec
		sec.Name = "creds"
		if got := secretConflict(&sec, oc) != ""; got != tc.conflict {
			t.Errorf("%s: conflict = %v (%q), want %v", tc.name, got, secretConflict(&sec, oc), tc.conflict)
		}
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
