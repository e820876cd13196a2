package config

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func keysSecretData(t *testing.T, now time.Time) (map[string][]byte, string) {
	t.Helper()
	k, err := keyset.Generate(keyset.ES256)
	if err != nil {
		t.Fatal(err)
	}
	k.State, k.Created, k.ActivatesAt = keyset.StateActive, now.Add(-time.Hour), now.Add(-time.Hour)
	data, err := (&keyset.Set{Keys: []keyset.Key{k}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{keyset.SecretDataKey: data}, k.ID
}

// waitFor polls cond and reports how long it took to become true.
// start is when the change was made, so the API round trips count too.
func waitFor(t *testing.T, start time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := time.Since(start)
	t.Logf("%s took %v", what, d)
	return d
}

// runSource starts src until the test ends, and fails the test if it
// stopped with an error.
func runSource(ctx context.Context, t *testing.T, src *Kube) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Start(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the source stopped with %v", err)
		}
	})
}

// readyClient creates an OAuthClient in team-a, the app namespace of these
// tests, and gives it the status the operator would: a client_id, a secret
// hash and Ready=True.
func readyClient(ctx context.Context, t *testing.T, cp *testenv.ControlPlane, name, serverNS string) {
	t.Helper()
	const ns = "team-a"
	oc := &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: oauthv1.OAuthClientSpec{
			ServerRef:  oauthv1.ServerReference{Name: "auth", Namespace: serverNS},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials},
			Scopes:     []oauthv1.ScopeName{"orders:read"},
		},
	}
	if err := cp.Client.Create(ctx, oc); err != nil {
		t.Fatal(err)
	}
	oc.Status.ClientID = ns + "." + name
	oc.Status.SecretHashes = []oauthv1.SecretHash{{Hash: clientsecret.Hash("s3cret-" + name)}}
	meta.SetStatusCondition(&oc.Status.Conditions, metav1.Condition{Type: oauthv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ready"})
	if err := cp.Client.Status().Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
}

// TestKubeSourceFollowsTheCluster starts the real informer cache against a
// real API server and shows that a new OAuthClient and a rotated key take
// effect within about a second.
func TestKubeSourceFollowsTheCluster(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	now := time.Now()
	for _, ns := range []string{"auth-system", "team-a"} {
		if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	as := &oauthv1.AuthorizationServer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "auth-system", Name: "auth"},
		Spec:       oauthv1.AuthorizationServerSpec{Issuer: "http://127.0.0.1:8080"},
	}
	if err := cp.Client.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	keyData, firstKID := keysSecretData(t, now)
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth-system", Name: keyset.SecretName("auth")}, Data: keyData}
	// A Secret the server must not see: only the two named ones are watched.
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth-system", Name: "unrelated"}, Data: keyData}
	for _, s := range []*corev1.Secret{keys, other} {
		if err := cp.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	scope := &oauthv1.Scope{
		ObjectMeta: metav1.ObjectMeta{Namespace: "auth-system", Name: "orders-read"},
		Spec: oauthv1.ScopeSpec{ServerRef: oauthv1.LocalObjectReference{Name: "auth"}, Name: "orders:read",
			Description: "Read orders", Audience: "https://orders.example.test"},
	}
	if err := cp.Client.Create(ctx, scope); err != nil {
		t.Fatal(err)
	}
	readyClient(ctx, t, cp, "first", "auth-system")

	src, err := NewKube(cp.Config, cp.Scheme, "auth-system", "auth", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runSource(ctx, t, src)

	waitFor(t, time.Now(), 30*time.Second, "initial sync", func() bool { return src.Ready() == nil })
	snap := src.Current()
	if snap.Issuer != "http://127.0.0.1:8080" || snap.Clients.Get("team-a.first") == nil || snap.Scopes["orders:read"] == nil {
		t.Fatalf("snapshot = %+v", snap)
	}
	if k, _ := snap.SigningKey(time.Now()); k.ID != firstKID {
		t.Fatalf("signing kid %s, want %s", k.ID, firstKID)
	}

	// A new client, in another namespace, takes effect within about a second.
	start := time.Now()
	readyClient(ctx, t, cp, "second", "auth-system")
	if d := waitFor(t, start, 5*time.Second, "new client", func() bool { return src.Current().Clients.Get("team-a.second") != nil }); d > 1500*time.Millisecond {
		t.Errorf("a new client took %v to take effect, want about a second", d)
	}

	// A rotated key, too.
	newData, newKID := keysSecretData(t, time.Now())
	keys.Data = newData
	start = time.Now()
	if err := cp.Client.Update(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if d := waitFor(t, start, 5*time.Second, "rotated key", func() bool {
		k, ok := src.Current().SigningKey(time.Now())
		return ok && k.ID == newKID
	}); d > 1500*time.Millisecond {
		t.Errorf("a rotated key took %v to take effect", d)
	}

	// A client that is not Ready is not served; one for another server
	// neither.
	notReady := &oauthv1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "pending"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth", Namespace: "auth-system"},
			GrantTypes: []oauthv1.GrantType{oauthv1.GrantClientCredentials}},
	}
	if err := cp.Client.Create(ctx, notReady); err != nil {
		t.Fatal(err)
	}
	readyClient(ctx, t, cp, "elsewhere", "other-ns")
	readyClient(ctx, t, cp, "third", "auth-system")
	waitFor(t, time.Now(), 5*time.Second, "third client", func() bool { return src.Current().Clients.Get("team-a.third") != nil })
	if c := src.Current().Clients; c.Get("team-a.pending") != nil || c.Get("team-a.elsewhere") != nil {
		t.Fatalf("served a client that is not Ready or not ours: %v", c)
	}

	// A deleted client is refused at once: its event removes that one
	// client, whatever the number of others.
	start = time.Now()
	if err := cp.Client.Delete(ctx, &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "third"}}); err != nil {
		t.Fatal(err)
	}
	if d := waitFor(t, start, 5*time.Second, "deleted client gone", func() bool { return src.Current().Clients.Get("team-a.third") == nil }); d > 1500*time.Millisecond {
		t.Errorf("a deleted client was served for %v", d)
	}
	// A Scope that changes whom it admits changes the scopes of the
	// clients listing it, both ways.
	for _, from := range []oauthv1.FromNamespaces{oauthv1.NamespacesFromAll, oauthv1.NamespacesFromSame} {
		if err := cp.Client.Get(ctx, clientKey(scope), scope); err != nil {
			t.Fatal(err)
		}
		scope.Spec.AllowedClients.Namespaces.From = from
		if err := cp.Client.Update(ctx, scope); err != nil {
			t.Fatal(err)
		}
		want := from == oauthv1.NamespacesFromAll
		waitFor(t, time.Now(), 5*time.Second, "scope admission "+string(from), func() bool {
			c := src.Current().Clients.Get("team-a.first")
			return c != nil && c.AllowsScope("orders:read") == want
		})
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+6)
	if err != nil {
		t.Fatal(err)
	}
	// Users Secret named by the server is picked up once spec.users appears.
	usersSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "auth-system", Name: "people"},
		Data: map[string][]byte{"users.yaml": []byte("users:\n- username: bob\n  passwordHash: " + string(hash) + "\n")}}
	if err := cp.Client.Create(ctx, usersSecret); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Get(ctx, clientKey(as), as); err != nil {
		t.Fatal(err)
	}
	as.Spec.Users = &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "people"}}
	if err := cp.Client.Update(ctx, as); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Now(), 5*time.Second, "users directory", func() bool {
		u := src.Current().Users
		if u == nil {
			return false
		}
		_, ok := u.Lookup("bob")
		return ok
	})
}

// A server whose users Secret exists from the start loads it before its
// first snapshot: no "users Secret does not exist" problem is reported for
// a Secret that merely had not been listed yet.
func TestKubeSourceLoadsUsersBeforeFirstSnapshot(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns = "auth-users-first"
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+6)
	if err != nil {
		t.Fatal(err)
	}
	keyData, _ := keysSecretData(t, time.Now())
	for _, o := range []client.Object{
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}, Spec: oauthv1.AuthorizationServerSpec{
			Issuer: "http://127.0.0.1:8080",
			Users:  &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "people"}},
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("auth")}, Data: keyData},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "people"},
			Data: map[string][]byte{"users.yaml": []byte("users:\n- username: bob\n  passwordHash: " + string(hash) + "\n")}},
	} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	var logs testenv.LogBuffer
	src, err := NewKube(cp.Config, cp.Scheme, ns, "auth", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runSource(ctx, t, src)

	waitFor(t, time.Now(), 30*time.Second, "initial sync", func() bool { return src.Ready() == nil })
	if u := src.Current().Users; u == nil || u.Len() != 1 {
		t.Fatalf("the first ready snapshot has users %v", u)
	}
	if strings.Contains(logs.String(), "users Secret") {
		t.Errorf("a false problem was logged:\n%s", logs.String())
	}
}
