package config

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// world is the cluster state a random test walks through: the server's
// Scopes and every OAuthClient, by namespace/name.
type world struct {
	as      *oauthv1.AuthorizationServer
	scopes  map[string]oauthv1.Scope
	clients map[string]*oauthv1.OAuthClient
}

func (w *world) inputs() Inputs {
	in := Inputs{Server: w.as}
	for _, k := range slices.Sorted(maps.Keys(w.scopes)) {
		in.Scopes = append(in.Scopes, w.scopes[k])
	}
	for _, k := range slices.Sorted(maps.Keys(w.clients)) {
		in.Clients = append(in.Clients, *w.clients[k])
	}
	return in
}

var (
	randNamespaces = []string{"auth", "team-a", "team-b"}
	randScopes     = []string{"read", "write", "admin", "email"} // email is built in
	randAudiences  = []string{"https://orders", "https://billing"}
	randFrom       = []oauthv1.FromNamespaces{oauthv1.NamespacesFromSame, oauthv1.NamespacesFromAll, oauthv1.NamespacesFromSelector}
)

func randomScope(r *rand.Rand, i int) oauthv1.Scope {
	server := "main"
	if r.IntN(8) == 0 {
		server = "other"
	}
	sc := oauthv1.Scope{
		ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: fmt.Sprintf("s%d", i), CreationTimestamp: metav1.Unix(int64(r.IntN(3)), 0)},
		Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: server},
			Name:           oauthv1.ScopeName(randScopes[r.IntN(len(randScopes))]),
			Description:    fmt.Sprintf("d%d", r.IntN(3)),
			AllowedClients: oauthv1.AllowedClients{Namespaces: oauthv1.ClientNamespaces{From: randFrom[r.IntN(len(randFrom))]}}},
	}
	if r.IntN(2) == 0 {
		sc.Spec.Audience = oauthv1.Audience(randAudiences[r.IntN(len(randAudiences))])
	}
	if r.IntN(6) == 0 {
		sc.Status.Conditions = ready(metav1.ConditionFalse)
	}
	return sc
}

func randomClient(r *rand.Rand, i int) *oauthv1.OAuthClient {
	ns := randNamespaces[i%len(randNamespaces)]
	oc := &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c%d", i)},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main", Namespace: "auth"},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
			// A few client_ids repeat, so that duplicates come and go.
			SkipConsent: r.IntN(2) == 0},
		Status: oauthv1.OAuthClientStatus{ClientID: fmt.Sprintf("id%d", r.IntN(30)), Conditions: ready(metav1.ConditionTrue),
			SecretHashes: []oauthv1.SecretHash{{Hash: fmt.Sprintf("h%d", r.IntN(5))}}},
	}
	for _, s := range randScopes {
		if r.IntN(2) == 0 {
			oc.Spec.Scopes = append(oc.Spec.Scopes, oauthv1.ScopeName(s))
		}
	}
	for _, a := range randAudiences {
		if r.IntN(2) == 0 {
			oc.Spec.Audience = append(oc.Spec.Audience, oauthv1.Audience(a))
		}
	}
	switch r.IntN(10) {
	case 0:
		oc.Status.Conditions = ready(metav1.ConditionFalse)
	case 1:
		oc.Spec.ServerRef.Name = "other"
	case 2:
		oc.Spec.ClientType = oauthv1.ClientPublic
		oc.Spec.RedirectURIs = []oauthv1.RedirectURI{oauthv1.RedirectURI(fmt.Sprintf("https://app%d.example/cb", r.IntN(3)))}
	case 3:
		now := metav1.Unix(5, 0)
		oc.DeletionTimestamp = &now
	}
	return oc
}

// TestIncrementalMatchesBuild walks random sequences of client and Scope
// changes and checks after each that the incrementally updated snapshot
// is what building from scratch gives, and that snapshots published
// earlier did not change.
func TestIncrementalMatchesBuild(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 15))
		w := &world{
			as: &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
				Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example"}},
			scopes: map[string]oauthv1.Scope{}, clients: map[string]*oauthv1.OAuthClient{},
		}
		var b Builder
		if _, err := b.SetServer(w.inputs()); err != nil {
			t.Fatal(err)
		}
		var held []*Snapshot
		var want []*Snapshot
		for step := range 300 {
			var got *Snapshot
			switch op := r.IntN(10); {
			case op < 6:
				i := r.IntN(40)
				oc := randomClient(r, i)
				w.clients[oc.Name] = oc
				got = b.SetClient(oc)
			case op < 8:
				name := fmt.Sprintf("c%d", r.IntN(40))
				if oc := w.clients[name]; oc != nil {
					delete(w.clients, name)
					got = b.DeleteClient(oc.Namespace, oc.Name)
				} else {
					got = b.Snapshot()
				}
			default:
				i := r.IntN(6)
				if r.IntN(4) == 0 {
					delete(w.scopes, fmt.Sprintf("s%d", i))
				} else {
					w.scopes[fmt.Sprintf("s%d", i)] = randomScope(r, i)
				}
				var err error
				if got, err = b.SetServer(w.inputs()); err != nil {
					t.Fatal(err)
				}
			}
			var fresh Builder
			exp, err := fresh.Build(w.inputs())
			if err != nil {
				t.Fatal(err)
			}
			if diff := compareSnapshots(got, exp); diff != "" {
				t.Fatalf("seed %d step %d: incremental snapshot differs from a full build: %s", seed, step, diff)
			}
			if step%25 == 0 {
				held, want = append(held, got), append(want, exp)
			}
		}
		for i := range held {
			if diff := compareSnapshots(held[i], want[i]); diff != "" {
				t.Fatalf("seed %d: snapshot %d changed after it was published: %s", seed, i, diff)
			}
		}
	}
}

func compareSnapshots(got, want *Snapshot) string {
	for id := range got.Clients.All() {
		if want.Clients.Get(id) == nil {
			return fmt.Sprintf("client %s should not be served", id)
		}
	}
	for id, wc := range want.Clients.All() {
		gc := got.Clients.Get(id)
		if gc == nil {
			return fmt.Sprintf("client %s missing", id)
		}
		if !reflect.DeepEqual(gc, wc) {
			return fmt.Sprintf("client %s = %+v, want %+v", id, gc, wc)
		}
	}
	for _, o := range []string{"https://app0.example", "https://app1.example", "https://app2.example"} {
		if got.Clients.AllowsOrigin(o) != want.Clients.AllowsOrigin(o) {
			return fmt.Sprintf("AllowsOrigin(%s) = %v", o, got.Clients.AllowsOrigin(o))
		}
	}
	if g, w := slices.Sorted(slices.Values(got.Problems)), slices.Sorted(slices.Values(want.Problems)); !slices.Equal(g, w) {
		return fmt.Sprintf("problems %q, want %q", g, w)
	}
	return ""
}

// TestClientChangeKeepsServerPart: a client change publishes a snapshot
// with the same server-wide part (what the server derives from it is
// kept), a server change one with a new part.
func TestClientChangeKeepsServerPart(t *testing.T) {
	as := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "main"},
		Spec: oauthv1.AuthorizationServerSpec{Issuer: "https://auth.example"}}
	var b Builder
	s0, err := b.SetServer(Inputs{Server: as})
	if err != nil {
		t.Fatal(err)
	}
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "auth", Name: "app"},
		Spec:   oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "main"}},
		Status: oauthv1.OAuthClientStatus{ClientID: "auth.app", Conditions: ready(metav1.ConditionTrue)}}
	s1 := b.SetClient(oc)
	if !s0.SameServer(s1) || s1.Clients.Get("auth.app") == nil || s0.Clients.Get("auth.app") != nil {
		t.Fatalf("client added: same server %v, client in new %v, in old %v", s0.SameServer(s1), s1.Clients.Get("auth.app"), s0.Clients.Get("auth.app"))
	}
	s2, err := b.SetServer(Inputs{Server: as})
	if err != nil {
		t.Fatal(err)
	}
	if s1.SameServer(s2) || s2.Clients.Get("auth.app") == nil {
		t.Fatalf("server rebuilt: same server %v, client kept %v", s1.SameServer(s2), s2.Clients.Get("auth.app"))
	}
	hand := &Snapshot{Issuer: "https://auth.example"}
	if hand.SameServer(&Snapshot{Issuer: "https://auth.example"}) || !hand.SameServer(hand) {
		t.Fatal("snapshots built by hand share a server part only with themselves")
	}
	// The server going away and coming back keeps the clients.
	if _, err := b.SetServer(Inputs{}); err == nil || b.Snapshot() != nil {
		t.Fatal("no server: want an error and no snapshot")
	}
	if s := b.SetClient(oc); s != nil {
		t.Fatal("no server: a client change makes no snapshot")
	}
	if s, err := b.SetServer(Inputs{Server: as}); err != nil || s.Clients.Get("auth.app") == nil {
		t.Fatalf("server back: %v, clients %d", err, s.Clients.Len())
	}
}
