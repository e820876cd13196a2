package config

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// The client map counts listed CORS origins and clients' own refresh
// lifetimes as clients come, change and go; listed origins are
// introspection's, and any client's, public or not, opens the others.
func TestClientMapListedOriginsAndLifetimes(t *testing.T) {
	refresh := func(d time.Duration) *oauthv1.ClientTokenLifetimes {
		return &oauthv1.ClientTokenLifetimes{RefreshToken: &metav1.Duration{Duration: d}}
	}
	a := &Client{ID: "a", CORSOrigins: []string{"https://dash.example"}, TokenLifetimes: refresh(48 * time.Hour)}
	b := &Client{ID: "b", CORSOrigins: []string{"https://dash.example", "https://b.example"}, TokenLifetimes: refresh(9000 * time.Hour)}
	spa := &Client{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"}}
	m := NewClientMap(a, b, spa)
	for origin, want := range map[string][2]bool{
		"https://dash.example": {true, true}, "https://b.example": {true, true},
		"https://spa.example": {true, false}, "https://other.example": {false, false},
	} {
		if got := [2]bool{m.AllowsOrigin(origin), m.ListsOrigin(origin)}; got != want {
			t.Errorf("%s: allows, lists = %v, want %v", origin, got, want)
		}
	}
	if got := m.LongestRefreshTTL(); got != 9000*time.Hour {
		t.Errorf("longest refresh lifetime %s", got)
	}
	m = m.With(&Client{ID: "b"}).Without("spa")
	if m.ListsOrigin("https://b.example") || !m.ListsOrigin("https://dash.example") || m.AllowsOrigin("https://spa.example") {
		t.Error("origins not updated when clients changed and went")
	}
	if got := m.LongestRefreshTTL(); got != 48*time.Hour {
		t.Errorf("longest refresh lifetime after b changed: %s", got)
	}
	if got := m.Without("a").LongestRefreshTTL(); got != 0 {
		t.Errorf("no client with a lifetime of its own: %s", got)
	}
}
