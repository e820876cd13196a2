package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
)

func TestDecideSecret(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	strong := strings.Repeat("9f86d081884c7d659a2feaa0c55ad015", 2)
	edited := "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla"
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	current := func(secret string) oauthv1.SecretHash { return oauthv1.SecretHash{Hash: clientsecret.Hash(secret)} }
	until := func(secret string, d time.Duration) oauthv1.SecretHash {
		return oauthv1.SecretHash{Hash: clientsecret.Hash(secret), NotAfter: at(d)}
	}
	str := func(s string) *string { return &s }

	for _, tc := range []struct {
		name string
		f    secretFacts
		// want: the secret written, the accepted secrets (not-after offsets
		// from now; 0 for the current one), the event reasons, a refusal.
		written  string
		accepted map[string]time.Duration
		events   []string
		next     time.Duration // of the next rotation; 0 for none
		weak     bool
	}{
		{name: "new Secret: no Event, the status says it", f: secretFacts{generatedHere: true},
			written: "gen-1", accepted: map[string]time.Duration{"gen-1": 0}},
		{name: "Secret deleted: the old secret and its predecessors are revoked at once",
			f:       secretFacts{generatedHere: true, hashes: []oauthv1.SecretHash{current(strong), until(edited, time.Hour)}},
			written: "gen-1", accepted: map[string]time.Duration{"gen-1": 0}, events: []string{EventGenerated}},
		{name: "steady state", f: secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-time.Hour)},
			written: strong, accepted: map[string]time.Duration{strong: 0}},
		{name: "own secret, status write lost", f: secretFacts{generatedHere: true, value: "short-but-ours"},
			written: "short-but-ours", accepted: map[string]time.Duration{"short-but-ours": 0}},
		{name: "adopt on first sight", f: secretFacts{value: strong},
			written: strong, accepted: map[string]time.Duration{strong: 0}, events: []string{EventAdopted}},
		{name: "external rotation: the previous secret keeps the grace period",
			f:       secretFacts{value: edited, hashes: []oauthv1.SecretHash{current(strong)}, grace: 24 * time.Hour},
			written: edited, accepted: map[string]time.Duration{edited: 0, strong: 24 * time.Hour}, events: []string{EventAdopted}},
		{name: "weak value refused", f: secretFacts{value: "hunter2hunter2", hashes: []oauthv1.SecretHash{current(strong)}}, weak: true},
		{name: "rotation due on the interval",
			f: secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-49 * time.Hour),
				interval: 48 * time.Hour, grace: time.Hour},
			written: "gen-1", accepted: map[string]time.Duration{"gen-1": 0, strong: time.Hour}, events: []string{EventRotated}, next: 48 * time.Hour},
		{name: "rotation not due yet",
			f: secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-47 * time.Hour),
				interval: 48 * time.Hour},
			written: strong, accepted: map[string]time.Duration{strong: 0}, next: time.Hour},
		{name: "rotation on demand",
			f: secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-time.Hour),
				rotateWanted: "v2", rotateHandled: str("v1"), grace: time.Hour},
			written: "gen-1", accepted: map[string]time.Duration{"gen-1": 0, strong: time.Hour}, events: []string{EventRotated}},
		{name: "a first rotate-secret value is only recorded",
			f: secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-time.Hour),
				rotateWanted: "v1"},
			written: strong, accepted: map[string]time.Duration{strong: 0}},
		{name: "rotating an adopted secret only warns",
			f: secretFacts{value: strong, hashes: []oauthv1.SecretHash{current(strong)}, lastRotation: at(-time.Hour),
				rotateWanted: "v2", rotateHandled: str("v1"), interval: time.Hour},
			written: strong, accepted: map[string]time.Duration{strong: 0}, events: []string{EventRotationExternal}},
		{name: "grace period over: the old hash goes",
			f:       secretFacts{generatedHere: true, value: strong, hashes: []oauthv1.SecretHash{until(edited, 0), current(strong)}},
			written: strong, accepted: map[string]time.Duration{strong: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.now, tc.f.secretName = now, "creds"
			n := 0
			generate := func() (string, error) { n++; return fmt.Sprintf("gen-%d", n), nil }
			plan, err := decideSecret(tc.f, generate)
			if err != nil {
				t.Fatal(err)
			}
			if tc.weak {
				if plan.weak == nil {
					t.Fatal("a weak secret was not refused")
				}
				return
			}
			if plan.weak != nil {
				t.Fatalf("refused: %v", plan.weak)
			}
			if plan.plaintext != tc.written {
				t.Errorf("writes %q, want %q", plan.plaintext, tc.written)
			}
			if len(plan.hashes) != len(tc.accepted) {
				t.Errorf("%d hashes published, want %d: %+v", len(plan.hashes), len(tc.accepted), plan.hashes)
			}
			for secret, notAfter := range tc.accepted {
				found := false
				for _, h := range plan.hashes {
					if !clientsecret.Matches(secret, h.Hash) {
						continue
					}
					found = true
					switch {
					case notAfter == 0 && h.NotAfter != nil:
						t.Errorf("%s: not after %s, want current", secret, h.NotAfter)
					case notAfter != 0 && (h.NotAfter == nil || !h.NotAfter.Time.Equal(now.Add(notAfter))):
						t.Errorf("%s: not after %v, want %s", secret, h.NotAfter, now.Add(notAfter))
					}
				}
				if !found {
					t.Errorf("%s is not accepted", secret)
				}
			}
			var reasons []string
			for _, e := range plan.events {
				if e.reason == "" {
					continue // counted, not told
				}
				reasons = append(reasons, e.reason)
				if strings.Contains(e.note, strong) || strings.Contains(e.note, "gen-") {
					t.Errorf("event note %q carries a secret", e.note)
				}
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tc.events) && !(len(reasons) == 0 && len(tc.events) == 0) {
				t.Errorf("events %v, want %v", reasons, tc.events)
			}
			if want := now.Add(tc.next); (tc.next == 0) != plan.nextRotation.IsZero() || (tc.next != 0 && !plan.nextRotation.Equal(want)) {
				t.Errorf("next rotation %s, want %s", plan.nextRotation, want)
			}
		})
	}
}
