package kubeactions

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// fakeRevoker records whom it revoked.
type fakeRevoker struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeRevoker) RevokePerson(_ context.Context, subject, reason string) (storage.Ended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, subject+" | "+reason)
	return storage.Ended{Sessions: make([]storage.EndedSession, 2), FamiliesRevoked: 3, ConsentsDeleted: 1,
		Deliveries: make([]storage.LogoutDelivery, 4)}, nil
}

func (f *fakeRevoker) SubjectForUsername(username string) (string, bool) {
	if username == "alice" {
		return "2f0c-alice", true
	}
	return "", false
}

func (f *fakeRevoker) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// tokenServerConfig is the control plane as the token server's
// ServiceAccount, with exactly the RBAC the operator grants it for these
// actions (controllers/authorizationserver_runtime.go, which
// TestAuthorizationServerRuntime checks rule by rule).
func tokenServerConfig(t *testing.T, cp *testenv.ControlPlane, ns string) *rest.Config {
	t.Helper()
	ctx := t.Context()
	sa := "token-server"
	read := []string{"get", "list", "watch"}
	for _, o := range []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"sessionrevocations"}, Verbs: read},
			{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"sessionrevocations/status"}, Verbs: []string{"patch"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kubeactions-" + ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubeactions-" + ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kubeactions-" + ns},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
	} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	restricted := rest.CopyConfig(cp.Config)
	restricted.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	return restricted
}

func namespace(t *testing.T, cp *testenv.ControlPlane, name string) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// TestSessionRevocationsCarriedOutOnce: two replicas watch; each
// SessionRevocation of their server is carried out once, by one of them,
// and its status says what was done; a username is looked up in the users
// Secret, and one that is not there is reported; another server's is left
// alone. All with the token server's own RBAC.
func TestSessionRevocationsCarriedOutOnce(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns = "kubeactions-revoke"
	namespace(t, cp, ns)
	restricted := tokenServerConfig(t, cp, ns)
	revoker, claims := &fakeRevoker{}, memory.New()
	var replicas []*SessionRevocations
	for range 2 {
		r, err := NewSessionRevocations(restricted, cp.Scheme, ns, "auth", revoker, claims, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, r)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	rev := func(name, server, subject, username string) *oauthv1.SessionRevocation {
		return &oauthv1.SessionRevocation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: oauthv1.SessionRevocationSpec{ServerRef: oauthv1.LocalObjectReference{Name: server},
				Subject: subject, Username: username, Reason: "ticket " + name}}
	}
	for _, sr := range []*oauthv1.SessionRevocation{
		rev("by-subject", "auth", "idp:corp:abc", ""), rev("by-username", "auth", "", "alice"),
		rev("unknown", "auth", "", "mallory"), rev("other-server", "other", "bob", ""),
	} {
		if err := cp.Client.Create(ctx, sr); err != nil {
			t.Fatal(err)
		}
	}
	complete := func(name string) *metav1.Condition {
		var sr oauthv1.SessionRevocation
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sr); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(sr.Status.Conditions, oauthv1.ConditionComplete)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, n := range []string{"by-subject", "by-username", "unknown"} {
			if complete(n) == nil {
				return fmt.Errorf("%s is not complete", n)
			}
		}
		return nil
	})
	var sr oauthv1.SessionRevocation
	if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "by-username"}, &sr); err != nil {
		t.Fatal(err)
	}
	c := complete("by-username")
	if c.Status != metav1.ConditionTrue || c.Reason != oauthv1.ReasonCompleted || sr.Status.Subject != "2f0c-alice" ||
		sr.Status.SessionsEnded != 2 || sr.Status.GrantsRevoked != 3 || sr.Status.ConsentsDeleted != 1 || sr.Status.LogoutTokensQueued != 4 ||
		sr.Status.CompletionTime == nil {
		t.Errorf("status %+v, condition %+v", sr.Status, c)
	}
	if c := complete("unknown"); c.Status != metav1.ConditionFalse || c.Reason != oauthv1.ReasonUnknownUsername {
		t.Errorf("an unknown username: %+v", c)
	}
	// Count once the slower replica, too, has had its chance to act
	// twice: its cache has every one of them complete and it has nothing
	// ready in its queue (a look again after a claim held by the other
	// replica is not due for claimTTL, and finds them complete).
	testenv.Eventually(t, 10*time.Second, func() error {
		for i, r := range replicas {
			for _, n := range []string{"by-subject", "by-username", "unknown"} {
				var seen oauthv1.SessionRevocation
				if err := r.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, &seen); err != nil {
					return err
				}
				if meta.FindStatusCondition(seen.Status.Conditions, oauthv1.ConditionComplete) == nil {
					return fmt.Errorf("replica %d has not seen %s complete", i, n)
				}
			}
			if l := r.queue.Len(); l > 0 {
				return fmt.Errorf("replica %d has %d SessionRevocations queued", i, l)
			}
		}
		return nil
	})
	calls := revoker.all()
	slices.Sort(calls)
	want := []string{"2f0c-alice | SessionRevocation " + ns + "/by-username: ticket by-username",
		"idp:corp:abc | SessionRevocation " + ns + "/by-subject: ticket by-subject"}
	if !slices.Equal(calls, want) {
		t.Errorf("revoked\n %q\nwant each once\n %q", calls, want)
	}
	if complete("other-server") != nil {
		t.Error("another server's SessionRevocation was touched")
	}
}

// TestClientEventsReachTheOAuthClient: a Warning about a client is an
// Event regarding that OAuthClient, in its namespace, written with the
// token server's RBAC (create and patch Events, nothing else).
func TestClientEventsReachTheOAuthClient(t *testing.T) {
	cp := testenv.Get(t)
	ctx := t.Context()
	const ns, appNS = "kubeactions-events", "kubeactions-app"
	namespace(t, cp, ns)
	namespace(t, cp, appNS)
	restricted := tokenServerConfig(t, cp, ns)
	oc := &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "wiki"},
		Spec: oauthv1.OAuthClientSpec{ServerRef: oauthv1.ServerReference{Name: "auth", Namespace: ns},
			RedirectURIs: []oauthv1.RedirectURI{"https://wiki.example/cb"}}}
	if err := cp.Client.Create(ctx, oc); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(restricted)
	if err != nil {
		t.Fatal(err)
	}
	events, err := NewClientEvents(ctx, cs, cp.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Stop()
	events.Warning(&config.Client{ID: appNS + ".wiki", Namespace: appNS, UID: oc.UID}, "BackchannelLogoutFailed", "gave up after 10 attempts")

	testenv.Eventually(t, 30*time.Second, func() error {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(appNS)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "OAuthClient" && e.Regarding.Name == "wiki" && e.Regarding.UID == oc.UID && e.Type == corev1.EventTypeWarning &&
				e.Reason == "BackchannelLogoutFailed" && e.Note == "gave up after 10 attempts" && e.ReportingController == "gatehouse-server" {
				return nil
			}
		}
		return fmt.Errorf("no such Event among %d", len(list.Items))
	})
}
