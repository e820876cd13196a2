package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// readKeySet reads the signing keys of the AuthorizationServer named keys
// in ns.
func readKeySet(t *testing.T, ns string) (*keyset.Set, *corev1.Secret) {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("keys")}}
	get(t, sec)
	set, err := keyset.Parse(sec.Data[keyset.SecretDataKey])
	if err != nil {
		t.Fatal(err)
	}
	return set, sec
}

// readJWKS returns the kids published in the JWKS ConfigMap, and fails if
// it holds anything private.
func readJWKS(t *testing.T, ns, server string) []string {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.JWKSConfigMapName(server)}}
	get(t, cm)
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(cm.Data[keyset.JWKSDataKey]), &jwks); err != nil {
		t.Fatalf("JWKS ConfigMap: %v", err)
	}
	var kids []string
	for _, k := range jwks.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Fatalf("the JWKS ConfigMap holds private member %q", private)
			}
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

// TestSigningKeyLifecycle drives a server's keys with the injected clock,
// reconciling exactly when the reconciler asks to be requeued, through
// next -> active -> retired -> removed, and checks at every step that the
// JWKS holds the signing key and every key whose tokens may still be valid.
func TestSigningKeyLifecycle(t *testing.T) {
	ns := newNamespace(t, nil)
	cp := testenv.Get(t)
	ctx := context.Background()
	clock := newFakeClock()
	// No manager watches this namespace: the test is the only reconciler.
	r := &controllers.AuthorizationServerReconciler{Client: cp.Client, APIReader: cp.Client, Clock: clock, ServerImage: "gatehouse:test"}
	const (
		interval    = 2 * time.Hour
		prepublish  = 30 * time.Minute
		accessToken = 10 * time.Minute
	)
	srv := server(ns, "keys")
	// This reconciler lists servers cluster-wide, where other tests' servers
	// have testIssuer and are older: an issuer of its own, or IssuerConflict.
	srv.Spec.Issuer = testIssuer + "/" + ns
	srv.Spec.Signing.RotationInterval = &metav1.Duration{Duration: interval}
	srv.Spec.Signing.PrepublishPeriod = &metav1.Duration{Duration: prepublish}
	srv.Spec.Tokens.AccessToken = &metav1.Duration{Duration: accessToken}
	create(t, srv)
	req := ctrl.Request{NamespacedName: objKey(ns, "keys")}

	type life struct {
		published      time.Time
		states         []keyset.State
		stoppedSigning time.Time
		removed        time.Time
	}
	lives := map[string]*life{}
	var signer, bootstrap string
	for step := 0; step < 14; step++ {
		res, err := r.Reconcile(ctx, req)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		now := clock.Now()
		set, sec := readKeySet(t, ns)
		if step == 0 && !metav1.IsControlledBy(sec, srv) {
			get(t, srv)
			if !metav1.IsControlledBy(sec, srv) {
				t.Error("the keys Secret is not owned by the server")
			}
		}
		kids := readJWKS(t, ns, "keys")
		inSet := map[string]bool{}
		for _, k := range set.Keys {
			inSet[k.ID] = true
			l := lives[k.ID]
			if l == nil {
				l = &life{published: now}
				lives[k.ID] = l
				if bootstrap == "" {
					bootstrap = k.ID
				}
			}
			if len(l.states) == 0 || l.states[len(l.states)-1] != k.State {
				l.states = append(l.states, k.State)
			}
		}
		for id, l := range lives {
			if !inSet[id] && l.removed.IsZero() {
				l.removed = now
				l.states = append(l.states, "removed")
			}
		}
		// The JWKS is the key set's public half, always in sync.
		var setIDs []string
		for _, k := range set.Keys {
			setIDs = append(setIDs, k.ID)
		}
		if !sameSet(kids, setIDs) {
			t.Fatalf("step %d: JWKS %v differs from the key set %v", step, kids, setIDs)
		}
		k, ok := set.SigningKey(now)
		if !ok {
			t.Fatalf("step %d: no key signs at %s", step, now)
		}
		if k.ID != signer {
			if signer != "" {
				lives[signer].stoppedSigning = now
			}
			signer = k.ID
		}
		// Published before it signs, for at least the prepublish period.
		if k.ID != bootstrap && k.ActivatesAt.Sub(lives[k.ID].published) < prepublish {
			t.Errorf("step %d: key %s signs %s after it was published, want >= %s", step, k.ID, k.ActivatesAt.Sub(lives[k.ID].published), prepublish)
		}
		// Every key whose tokens may still be valid is published.
		for id, l := range lives {
			mayBeValid := id == signer || (!l.stoppedSigning.IsZero() && now.Before(l.stoppedSigning.Add(accessToken+controllers.ClockSkew)))
			if mayBeValid && !slices.Contains(kids, id) {
				t.Errorf("step %d: key %s may still have valid tokens but is not in the JWKS", step, id)
			}
		}
		// Status.
		get(t, srv)
		if srv.Status.ActiveKeyID != set.ActiveKeyID() || srv.Status.JWKSURI != srv.Spec.Issuer+"/jwks" || srv.Status.Issuer != srv.Spec.Issuer {
			t.Errorf("step %d: status = %+v", step, srv.Status)
		}
		// Requeue at exactly the next transition.
		want := expectedTransition(set, interval, prepublish).Sub(now)
		if res.RequeueAfter != want {
			t.Fatalf("step %d: RequeueAfter = %s, want %s", step, res.RequeueAfter, want)
		}
		clock.Add(res.RequeueAfter)
	}
	full := 0
	for id, l := range lives {
		if slices.Equal(l.states, []keyset.State{keyset.StateNext, keyset.StateActive, keyset.StateRetired, "removed"}) {
			full++
			if l.removed.Before(l.stoppedSigning.Add(accessToken + controllers.ClockSkew)) {
				t.Errorf("key %s was removed %s after it stopped signing", id, l.removed.Sub(l.stoppedSigning))
			}
		}
	}
	if full < 2 {
		t.Fatalf("want at least two keys through next -> active -> retired -> removed, got %d: %+v", full, lives)
	}

	// A re-reconcile at the same instant writes nothing.
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, before := readKeySet(t, ns)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, after := readKeySet(t, ns); after.ResourceVersion != before.ResourceVersion {
		t.Error("a reconcile with nothing due rewrote the keys Secret")
	}

	// The rotate-keys annotation publishes a new key at once, which signs
	// after the prepublish period; handled once only.
	set, _ := readKeySet(t, ns)
	if next := stateKey(set, keyset.StateNext); next != nil {
		clock.Add(next.ActivatesAt.Sub(clock.Now()))
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	setAnnotation(t, srv, oauthv1.AnnotationRotateKeys, "compromised-1")
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	set, _ = readKeySet(t, ns)
	next := stateKey(set, keyset.StateNext)
	if next == nil || !next.ActivatesAt.Equal(clock.Now().Add(prepublish)) {
		t.Fatalf("rotate-keys did not publish a key that signs after the prepublish period: %+v", next)
	}
	count := len(set.Keys)
	clock.Add(time.Minute)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if set, _ = readKeySet(t, ns); len(set.Keys) != count {
		t.Error("a handled rotate-keys annotation rotated again")
	}
}

func expectedTransition(set *keyset.Set, interval, prepublish time.Duration) time.Time {
	var t time.Time
	if next := stateKey(set, keyset.StateNext); next != nil {
		t = next.ActivatesAt
	} else {
		t = stateKey(set, keyset.StateActive).ActivatesAt.Add(interval - prepublish)
	}
	for _, k := range set.Keys {
		if k.State == keyset.StateRetired && k.RemoveAfter.Before(t) {
			t = *k.RemoveAfter
		}
	}
	return t
}

func stateKey(set *keyset.Set, s keyset.State) *keyset.Key {
	for i := range set.Keys {
		if set.Keys[i].State == s {
			return &set.Keys[i]
		}
	}
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestAuthorizationServerRuntime(t *testing.T) {
	ns := newNamespace(t, nil)
	appNS := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns, appNS)
	c := testenv.Get(t).Client
	ctx := context.Background()

	srv := server(ns, "ha")
	srv.Spec.Replicas = ptr(int32(2))
	srv.Spec.Storage = oauthv1.StorageSpec{Type: oauthv1.StoragePostgres, Postgres: &oauthv1.PostgresStorage{
		URLSecretRef: oauthv1.SecretKeyReference{Name: "db", Key: "url"},
	}}
	srv.Spec.Users = &oauthv1.UsersSpec{SecretRef: oauthv1.LocalObjectReference{Name: "people"}}
	srv.Spec.WorkloadIdentity.TrustedIssuers = []oauthv1.TrustedIssuer{{Name: "corp", Issuer: "https://ci.corp.example",
		CAConfigMapRef: &oauthv1.ConfigMapKeyReference{Name: "corp-ca", Key: "ca.crt"}}}
	srv.Spec.Branding.LogoConfigMapRef = &oauthv1.ConfigMapKeyReference{Name: "corp-logo", Key: "logo.svg"}
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, "KeysReady")
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, "Progressing")
	if srv.Status.ActiveKeyID == "" || srv.Status.NextRotationTime == nil {
		t.Errorf("status lacks key information: %+v", srv.Status)
	}
	if kids := readJWKS(t, ns, "ha"); !slices.Contains(kids, srv.Status.ActiveKeyID) {
		t.Errorf("JWKS %v lacks the active key %s", kids, srv.Status.ActiveKeyID)
	}
	// One KeyPublished per key (access tokens' and ID tokens'); the events
	// API folds events that differ only in their note into one series, so
	// the one left names one of the two.
	e := waitEvent(t, ns, "ha", "KeyPublished")
	if !slices.ContainsFunc(readJWKS(t, ns, "ha"), func(kid string) bool { return strings.Contains(e.Note, kid) }) {
		t.Errorf("KeyPublished event %q does not name a published key", e.Note)
	}

	// Deleting the keys Secret is repaired, loudly.
	lost := srv.Status.ActiveKeyID
	lostKeys := readJWKS(t, ns, "ha") // the access-token key and the ID-token key
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: keyset.SecretName("ha")}}
	if err := c.Delete(ctx, keys); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ns, "ha", "SigningKeysLost")
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, srv)
		if srv.Status.ActiveKeyID == lost || srv.Status.ActiveKeyID == "" {
			return fmt.Errorf("active key is still %q", srv.Status.ActiveKeyID)
		}
		kids := readJWKS(t, ns, "ha")
		if !slices.Contains(kids, srv.Status.ActiveKeyID) {
			return fmt.Errorf("JWKS %v lacks the new key %s", kids, srv.Status.ActiveKeyID)
		}
		for _, k := range lostKeys {
			if slices.Contains(kids, k) {
				return fmt.Errorf("JWKS %v still has %s from the deleted Secret, want only new keys", kids, k)
			}
		}
		return nil
	})

	name := controllers.ServerObjectName(srv)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	get(t, dep)
	if *dep.Spec.Replicas != 2 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %s", *dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != name {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if len(pod.TopologySpreadConstraints) != 2 {
		t.Errorf("topology spread = %+v, want nodes and zones", pod.TopologySpreadConstraints)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v", pod.SecurityContext)
	}
	ctr := pod.Containers[0]
	if ctr.Image != "gatehouse:test" {
		t.Errorf("image = %q, want the operator's", ctr.Image)
	}
	wantArgs := []string{"server", "--authorization-server", ns + "/ha", "--listen", ":8080", "--metrics-listen", ":9090"}
	if !slices.Equal(ctr.Args, wantArgs) {
		t.Errorf("args = %v, want %v", ctr.Args, wantArgs)
	}
	if len(ctr.Env) != 1 || ctr.Env[0].Name != "GATEHOUSE_POSTGRES_URL" || ctr.Env[0].ValueFrom.SecretKeyRef.Name != "db" || ctr.Env[0].ValueFrom.SecretKeyRef.Key != "url" {
		t.Errorf("env = %+v", ctr.Env)
	}
	sc := ctr.SecurityContext
	if sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context = %+v", sc)
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/healthz" || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" || ctr.ReadinessProbe.HTTPGet.Port.String() != "metrics" {
		t.Errorf("probes = %+v %+v", ctr.LivenessProbe.HTTPGet, ctr.ReadinessProbe.HTTPGet)
	}
	if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() {
		t.Errorf("no resource requests: %+v", ctr.Resources)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	get(t, svc)
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service ports = %+v", svc.Spec.Ports)
	}

	// Ready follows the Deployment's availability.
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}
	if err := c.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionTrue, "Available")
	get(t, dep)
	dep.Status.AvailableReplicas = 1
	if err := c.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, "Progressing")

	// Least privilege, checked by the API server's own RBAC authorizer.
	for _, tc := range []struct {
		ns, verb, group, resource, name string
		allowed                         bool
	}{
		{ns, "get", "", "secrets", keyset.SecretName("ha"), true},
		{ns, "watch", "", "secrets", keyset.SecretName("ha"), true},
		{ns, "get", "", "secrets", "people", true},
		{ns, "get", "", "secrets", "db", false},
		{ns, "list", "", "secrets", "", false},
		{ns, "update", "", "secrets", keyset.SecretName("ha"), false},
		{appNS, "get", "", "secrets", "app-oauth-client", false},
		{appNS, "list", "", "secrets", "", false},
		{"", "list", oauthv1.GroupVersion.Group, "oauthclients", "", true},
		{appNS, "watch", oauthv1.GroupVersion.Group, "oauthclients", "", true},
		{appNS, "update", oauthv1.GroupVersion.Group, "oauthclients", "x", false},
		{appNS, "update", oauthv1.GroupVersion.Group, "oauthclients/status", "x", false},
		{ns, "list", oauthv1.GroupVersion.Group, "scopes", "", true},
		{ns, "get", oauthv1.GroupVersion.Group, "authorizationservers", "ha", true},
		{appNS, "list", oauthv1.GroupVersion.Group, "scopes", "", false},
		{ns, "get", "", "configmaps", keyset.JWKSConfigMapName("ha"), false},
		{ns, "get", "", "configmaps", "corp-ca", true},
		{ns, "watch", "", "configmaps", "corp-ca", true},
		{ns, "get", "", "configmaps", "corp-logo", true},
		{ns, "watch", "", "configmaps", "corp-logo", true},
		{ns, "list", "", "configmaps", "", false},
		{appNS, "get", "", "configmaps", "app-oauth-client", false},
		{"", "list", "", "serviceaccounts", "", false},
		{ns, "create", "", "serviceaccounts/token", name, false},
		{"", "create", "authentication.k8s.io", "tokenreviews", "", false},
		{ns, "create", "", "pods", "", false},
		// It carries out its SessionRevocations and records what it did.
		{ns, "watch", oauthv1.GroupVersion.Group, "sessionrevocations", "", true},
		{ns, "patch", oauthv1.GroupVersion.Group, "sessionrevocations/status", "x", true},
		{ns, "update", oauthv1.GroupVersion.Group, "sessionrevocations", "x", false},
		{ns, "create", oauthv1.GroupVersion.Group, "sessionrevocations", "", false},
		{appNS, "list", oauthv1.GroupVersion.Group, "sessionrevocations", "", false},
		{appNS, "patch", oauthv1.GroupVersion.Group, "sessionrevocations/status", "x", false},
		// It reports failed back-channel logout deliveries as Events on
		// the OAuthClient, in its namespace, and reads none.
		{appNS, "create", "events.k8s.io", "events", "", true},
		{appNS, "patch", "events.k8s.io", "events", "x", true},
		{appNS, "list", "events.k8s.io", "events", "", false},
		{appNS, "create", "", "events", "", false},
	} {
		t.Run(fmt.Sprintf("%s %s %s/%s in %q", tc.verb, tc.resource, tc.group, tc.name, tc.ns), func(t *testing.T) {
			res, sub, _ := strings.Cut(tc.resource, "/")
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   "system:serviceaccount:" + ns + ":" + name,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: tc.ns, Verb: tc.verb, Group: tc.group, Resource: res, Subresource: sub, Name: tc.name,
				},
			}}
			if err := c.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, tc.allowed, sar.Status.Reason)
			}
		})
	}

	// The cluster's service-account issuer discovery, for ServiceAccount
	// clients, granted by the server's own ClusterRole: the reviews leave
	// out the groups, so that no default binding to
	// system:serviceaccounts answers for it. Nothing else of the API's
	// non-resource URLs.
	for path, allowed := range map[string]bool{"/.well-known/openid-configuration": true, "/openid/v1/jwks": true, "/metrics": false, "/version": false} {
		t.Run("get "+path, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:                  "system:serviceaccount:" + ns + ":" + name,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
			}}
			if err := c.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != allowed {
				t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, allowed, sar.Status.Reason)
			}
		})
	}

	// Deleting the server removes its cluster-scoped RBAC too.
	if err := c.Delete(ctx, srv); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, o := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}, &oauthv1.AuthorizationServer{}} {
			key := objKey("", "gatehouse:server:"+ns+":ha")
			if _, ok := o.(*oauthv1.AuthorizationServer); ok {
				key = objKey(ns, "ha")
			}
			if err := c.Get(ctx, key, o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s still there (%v)", o, key, err)
			}
		}
		return nil
	})
}

func TestAuthorizationServerSpecImageAndDefaults(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	srv := server(ns, "dev")
	srv.Spec.Image = "registry.local/gatehouse:v9"
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, "KeysReady")
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllers.ServerObjectName(srv)}}
	testenv.Eventually(t, 10*time.Second, func() error {
		return testenv.Get(t).Client.Get(context.Background(), client.ObjectKeyFromObject(dep), dep)
	})
	ctr := dep.Spec.Template.Spec.Containers[0]
	if ctr.Image != "registry.local/gatehouse:v9" {
		t.Errorf("image = %q, want spec.image", ctr.Image)
	}
	if len(ctr.Env) != 0 {
		t.Errorf("memory storage got env %+v", ctr.Env)
	}
	// Scaling to zero is not Ready.
	before := srv.DeepCopy()
	srv.Spec.Replicas = ptr(int32(0))
	if err := testenv.Get(t).Client.Patch(context.Background(), srv, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, srv, oauthv1.ConditionReady, metav1.ConditionFalse, "ScaledToZero")
	get(t, dep)
	if *dep.Spec.Replicas != 0 {
		t.Errorf("Deployment replicas = %d after scaling the server to zero", *dep.Spec.Replicas)
	}
}
