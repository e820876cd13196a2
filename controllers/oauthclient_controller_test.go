package controllers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/clientsecret"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestOAuthClientGeneratesCredentials(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"), scope(ns, "orders-read", "auth", "orders:read"))
	oc := oauthClient(ns, "shop", "", "auth", "orders:read")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	if want := ns + ".shop"; oc.Status.ClientID != want {
		t.Errorf("clientID = %q, want %q", oc.Status.ClientID, want)
	}
	if strings.Contains(oc.Status.ClientID, ":") {
		t.Errorf("clientID %q contains ':', which breaks HTTP Basic auth", oc.Status.ClientID)
	}
	if oc.Status.SecretName != "shop-oauth-client" {
		t.Errorf("status.secretName = %q", oc.Status.SecretName)
	}
	sec := appSecret(t, ns, "shop-oauth-client")
	var keys []string
	for k := range sec.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"authorization_endpoint", "client_id", "client_secret", "grant_types", "issuer", "jwks_uri", "oidc_discovery_url", "scope", "token_endpoint"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("Secret keys = %v, want exactly %v", keys, wantKeys)
	}
	ep := endpoints.For(testIssuer)
	for k, want := range map[string]string{
		"client_id": oc.Status.ClientID, "issuer": testIssuer, "authorization_endpoint": ep.Authorization,
		"token_endpoint": ep.Token, "jwks_uri": ep.JWKS,
		// OpenID Connect Discovery 1.0 §4: the issuer, path and all, then the well-known suffix.
		"oidc_discovery_url": testIssuer + "/.well-known/openid-configuration",
		// What the client may use (RFC 7591 names).
		"grant_types": "authorization_code", "scope": "orders:read",
	} {
		if got := string(sec.Data[k]); got != want {
			t.Errorf("Secret %s = %q, want %q", k, got, want)
		}
	}
	secret := string(sec.Data["client_secret"])
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) < 32 {
		t.Errorf("client_secret is not 256 random bits, base64url encoded (%d bytes, %v)", len(raw), err)
	}
	if !metav1.IsControlledBy(sec, oc) {
		t.Error("the Secret is not owned by the OAuthClient")
	}
	if sec.Labels[oauthv1.LabelClient] != "shop" || sec.Labels[oauthv1.LabelManagedBy] != oauthv1.LabelManagedByValue {
		t.Errorf("Secret labels = %v", sec.Labels)
	}
	// The status hash matches the Secret, and is the only one.
	if len(oc.Status.SecretHashes) != 1 || oc.Status.SecretHashes[0].NotAfter != nil ||
		!clientsecret.Matches(secret, oc.Status.SecretHashes[0].Hash) {
		t.Errorf("status.secretHashes = %+v does not hold exactly the Secret's hash", oc.Status.SecretHashes)
	}

	// A re-reconcile changes nothing.
	reconciled(t, oc)
	for _, e := range eventsFor(t, ns, "shop") {
		if e.Reason == "Generated" {
			t.Errorf("a new client's first secret got an Event (%s): its status says where the secret is", e.Note)
		}
	}
	if again := appSecret(t, ns, "shop-oauth-client"); string(again.Data["client_secret"]) != secret {
		t.Error("a re-reconcile regenerated the secret")
	}
	// A new issuer reaches the app's Secret; the secret stays.
	srv := &oauthv1.AuthorizationServer{}
	if err := testenv.Get(t).Client.Get(context.Background(), objKey(ns, "auth"), srv); err != nil {
		t.Fatal(err)
	}
	srv.Spec.Issuer = "https://127.0.0.1:9443/moved"
	if err := testenv.Get(t).Client.Update(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		sec := appSecret(t, ns, "shop-oauth-client")
		if got := string(sec.Data["token_endpoint"]); got != "https://127.0.0.1:9443/moved/token" {
			return fmt.Errorf("token_endpoint = %q", got)
		}
		if string(sec.Data["client_secret"]) != secret {
			t.Fatal("an issuer change regenerated the secret")
		}
		return nil
	})
	assertNoPlaintext(t, op, ns, secret)
}

// TestOAuthClientRequeuesForItsNextDeadline reconciles directly, with no
// manager, to see the RequeueAfter: the next scheduled rotation, or the end
// of a grace period if that comes first. No polling.
func TestOAuthClientRequeuesForItsNextDeadline(t *testing.T) {
	ns := newNamespace(t, nil)
	cp := testenv.Get(t)
	ctx := context.Background()
	clock := newFakeClock()
	r := &controllers.OAuthClientReconciler{Client: cp.Client, APIReader: cp.Client, Clock: clock}
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "timed", "", "auth")
	oc.Spec.SecretRotation = &oauthv1.SecretRotation{
		Interval:    &metav1.Duration{Duration: 3 * time.Hour},
		GracePeriod: &metav1.Duration{Duration: 20 * time.Minute},
	}
	create(t, oc)
	req := ctrl.Request{NamespacedName: objKey(ns, "timed")}
	reconcileExpect := func(want time.Duration) {
		t.Helper()
		res, err := r.Reconcile(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.RequeueAfter != want {
			t.Fatalf("RequeueAfter = %s, want %s", res.RequeueAfter, want)
		}
	}
	reconcileExpect(3 * time.Hour)
	clock.Add(time.Hour)
	reconcileExpect(2 * time.Hour)
	setAnnotation(t, oc, oauthv1.AnnotationRotateSecret, "now")
	reconcileExpect(20 * time.Minute) // the old secret's grace ends first
	clock.Add(20 * time.Minute)
	reconcileExpect(3*time.Hour - 20*time.Minute)
	get(t, oc)
	if len(oc.Status.SecretHashes) != 1 {
		t.Errorf("after the grace period: %d hashes, want 1", len(oc.Status.SecretHashes))
	}
	clock.Add(3*time.Hour - 20*time.Minute)
	reconcileExpect(20 * time.Minute) // rotated on schedule: the next rotation is 3h away, the grace ends sooner
}

func TestOAuthClientPublicHasNoSecret(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "cli", "", "auth")
	oc.Spec.ClientType = oauthv1.ClientPublic
	oc.Spec.TokenEndpointAuthMethod = oauthv1.AuthNone
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	if len(oc.Status.SecretHashes) != 0 || oc.Status.SecretName != "" {
		t.Errorf("a public client got secret state: %+v", oc.Status)
	}
	err := testenv.Get(t).Client.Get(context.Background(), objKey(ns, "cli-oauth-client"), &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a public client got a Secret (err %v)", err)
	}
}

func TestOAuthClientReferences(t *testing.T) {
	serverNS := newNamespace(t, nil)
	appNS := newNamespace(t, map[string]string{"team": "shop"})
	startOperator(t, newFakeClock(), serverNS, appNS)
	c := testenv.Get(t).Client
	ctx := context.Background()

	t.Run("ServerNotFound until the server exists", func(t *testing.T) {
		oc := oauthClient(serverNS, "early", "", "later")
		create(t, oc)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "ServerNotFound")
		if msg := readyCondition(oc).Message; !strings.Contains(msg, serverNS+"/later") {
			t.Errorf("message %q does not name the missing server", msg)
		}
		create(t, server(serverNS, "later"))
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	})

	t.Run("Same admits only the server's namespace", func(t *testing.T) {
		create(t, server(serverNS, "same"))
		oc := oauthClient(appNS, "foreign", serverNS, "same")
		create(t, oc)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "NamespaceNotAllowed")
		if msg := readyCondition(oc).Message; !strings.Contains(msg, appNS) {
			t.Errorf("message %q does not name the namespace", msg)
		}
		err := c.Get(ctx, objKey(appNS, "foreign-oauth-client"), &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a refused client got a Secret (err %v)", err)
		}
	})

	t.Run("All admits every namespace", func(t *testing.T) {
		srv := server(serverNS, "all")
		srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
		create(t, srv)
		oc := oauthClient(appNS, "anywhere", serverNS, "all")
		create(t, oc)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	})

	t.Run("Selector follows namespace labels", func(t *testing.T) {
		srv := server(serverNS, "selective")
		srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromSelector
		srv.Spec.AllowedClients.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}
		create(t, srv)
		oc := oauthClient(appNS, "picky", serverNS, "selective")
		create(t, oc)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "NamespaceNotAllowed")
		if msg := readyCondition(oc).Message; !strings.Contains(msg, "team=payments") {
			t.Errorf("message %q does not show the selector", msg)
		}
		// Relabelling the namespace admits the client, without touching it.
		nsObj := &corev1.Namespace{}
		if err := c.Get(ctx, objKey("", appNS), nsObj); err != nil {
			t.Fatal(err)
		}
		nsObj.Labels["team"] = "payments"
		if err := c.Update(ctx, nsObj); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	})

	t.Run("UnknownScope until every scope exists", func(t *testing.T) {
		create(t, server(serverNS, "scoped"), scope(serverNS, "a", "scoped", "orders:read"))
		oc := oauthClient(serverNS, "wants-scopes", "", "scoped", "orders:read", "orders:write")
		create(t, oc)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "UnknownScope")
		msg := readyCondition(oc).Message
		if !strings.Contains(msg, `"orders:write"`) || strings.Contains(msg, `"orders:read"`) {
			t.Errorf("message %q should name orders:write, and only it", msg)
		}
		// A Scope of another server does not count: once the operator has
		// it (its own reconcile says so), the client still lacks one.
		elsewhere := scope(serverNS, "elsewhere", "other", "orders:write")
		create(t, server(serverNS, "other"), elsewhere)
		waitCondition(t, elsewhere, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
		reconciled(t, oc)
		if msg := readyCondition(oc).Message; !strings.Contains(msg, `"orders:write"`) {
			t.Errorf("message %q should still name orders:write", msg)
		}
		// The Scope appearing makes the client Ready; it going away does not.
		w := scope(serverNS, "b", "scoped", "orders:write")
		create(t, w)
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
		if err := c.Delete(ctx, w); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "UnknownScope")
	})
}

func TestOAuthClientAdoption(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))

	strong := strings.Repeat("9f86d081884c7d659a2feaa0c55ad015", 2) // 64 hex characters
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "external"},
		Data:       map[string][]byte{"client_secret": []byte(strong)},
	})
	oc := oauthClient(ns, "adopter", "", "auth")
	oc.Spec.SecretName = "external"
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	sec := appSecret(t, ns, "external")
	if string(sec.Data["client_secret"]) != strong {
		t.Fatal("the adopted client_secret was overwritten")
	}
	if string(sec.Data["client_id"]) != oc.Status.ClientID || string(sec.Data["token_endpoint"]) == "" {
		t.Errorf("the adopted Secret did not get the client's metadata: %v", keysOf(sec))
	}
	if metav1.GetControllerOf(sec) != nil {
		t.Error("the operator took ownership of an adopted Secret")
	}
	if len(oc.Status.SecretHashes) != 1 || !clientsecret.Matches(strong, oc.Status.SecretHashes[0].Hash) {
		t.Errorf("status.secretHashes = %+v, want the adopted secret's hash", oc.Status.SecretHashes)
	}
	waitEvent(t, ns, "adopter", "Adopted")

	// Asking to rotate an adopted secret does not overwrite it.
	setAnnotation(t, oc, oauthv1.AnnotationRotateSecret, "now")
	waitEvent(t, ns, "adopter", "RotationSkipped")
	if sec := appSecret(t, ns, "external"); string(sec.Data["client_secret"]) != strong {
		t.Fatal("rotation overwrote an adopted secret")
	}

	// A weak secret is refused and left alone.
	weak := "password1234567890"
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weak"},
		Data:       map[string][]byte{"client_secret": []byte(weak)},
	})
	wc := oauthClient(ns, "weakling", "", "auth")
	wc.Spec.SecretName = "weak"
	create(t, wc)
	waitCondition(t, wc, oauthv1.ConditionReady, metav1.ConditionFalse, "WeakSecret")
	if msg := readyCondition(wc).Message; !strings.Contains(msg, "weak") || strings.Contains(msg, weak) {
		t.Errorf("WeakSecret message %q should explain, without the secret", msg)
	}
	if s := appSecret(t, ns, "weak"); string(s.Data["client_secret"]) != weak || len(s.Data) != 1 {
		t.Errorf("a refused Secret was changed: %v", keysOf(s))
	}
	if len(wc.Status.SecretHashes) != 0 {
		t.Errorf("a weak secret's hash was published: %+v", wc.Status.SecretHashes)
	}
	assertNoPlaintext(t, op, ns, weak)
	// Fixing it at the source is picked up: not by a watch (the operator
	// watches only the Secrets it labelled) but when the client looks
	// again.
	s := appSecret(t, ns, "weak")
	s.Data["client_secret"] = []byte(strong + "x")
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitRecheck(t, op, wc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")

	// A client writing into someone else's Secret holds a finalizer, so
	// that it can take out what it put in.
	get(t, oc)
	if !slices.Contains(oc.Finalizers, "oauth.gatehouse.dev/oauthclient") {
		t.Errorf("the adopting client has finalizers %v, want the operator's", oc.Finalizers)
	}
	// Deleting the client leaves the adopted secret and removes the rest.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, "adopter"), &oauthv1.OAuthClient{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("OAuthClient still there (%v)", err)
		}
		return nil
	})
	sec = appSecret(t, ns, "external")
	if len(sec.Data) != 1 || string(sec.Data["client_secret"]) != strong {
		t.Errorf("after deletion the adopted Secret holds %v, want only its own client_secret", keysOf(sec))
	}
	if _, ok := sec.Labels[oauthv1.LabelClient]; ok {
		t.Error("after deletion the adopted Secret still carries the client label")
	}
	assertNoPlaintext(t, op, ns, strong)
}

func TestOAuthClientRotation(t *testing.T) {
	ns := newNamespace(t, nil)
	clock := newFakeClock()
	op := startOperator(t, clock, ns)
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "rotating", "", "auth")
	oc.Spec.SecretRotation = &oauthv1.SecretRotation{
		Interval:    &metav1.Duration{Duration: 2 * time.Hour},
		GracePeriod: &metav1.Duration{Duration: 10 * time.Minute},
	}
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	first := string(appSecret(t, ns, "rotating-oauth-client").Data["client_secret"])

	// On demand.
	setAnnotation(t, oc, oauthv1.AnnotationRotateSecret, "2030-01-01")
	second := waitSecretChange(t, ns, "rotating-oauth-client", first)
	waitEvent(t, ns, "rotating", "Rotated")
	rotatedAt := clock.Now()
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		return checkHashes(oc, map[string]*time.Time{second: nil, first: ptr(rotatedAt.Add(10 * time.Minute))})
	})

	// The same annotation value, again, does not rotate again.
	reconciled(t, oc)
	if got := string(appSecret(t, ns, "rotating-oauth-client").Data["client_secret"]); got != second {
		t.Fatal("a re-reconcile rotated again")
	}

	// After the grace period the old hash goes.
	clock.Add(10*time.Minute + time.Second)
	poke(t, oc)
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		return checkHashes(oc, map[string]*time.Time{second: nil})
	})

	// On the interval.
	clock.Add(2 * time.Hour)
	poke(t, oc)
	third := waitSecretChange(t, ns, "rotating-oauth-client", second)
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		return checkHashes(oc, map[string]*time.Time{third: nil, second: ptr(clock.Now().Add(10 * time.Minute))})
	})
	for _, s := range []string{first, second, third} {
		assertNoPlaintext(t, op, ns, s)
	}
	// The operator made every change: none may be mistaken for an outside
	// edit (which would mean it acted on a stale copy of the client).
	for _, e := range eventsFor(t, ns, "rotating") {
		if e.Reason == "Adopted" {
			t.Errorf("unexpected Adopted event: %s", e.Note)
		}
	}
}

func TestOAuthClientDriftRepair(t *testing.T) {
	ns := newNamespace(t, nil)
	clock := newFakeClock()
	op := startOperator(t, clock, ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "drifty", "", "auth")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	name := "drifty-oauth-client"
	first := string(appSecret(t, ns, name).Data["client_secret"])

	// Deleted: regenerated, and the old secret is revoked at once.
	if err := c.Delete(ctx, appSecret(t, ns, name)); err != nil {
		t.Fatal(err)
	}
	second := waitSecretChange(t, ns, name, first)
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		return checkHashes(oc, map[string]*time.Time{second: nil})
	})

	// Edited to a strong value: adopted; the previous one keeps working for
	// the grace period (default 24h).
	edited := "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla"
	sec := appSecret(t, ns, name)
	sec.Data["client_secret"] = []byte(edited)
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, oc)
		return checkHashes(oc, map[string]*time.Time{edited: nil, second: ptr(clock.Now().Add(24 * time.Hour))})
	})
	if got := string(appSecret(t, ns, name).Data["client_secret"]); got != edited {
		t.Error("the operator overwrote an edited strong secret")
	}

	// Edited to a weak value: refused, left in place, hashes unchanged.
	sec = appSecret(t, ns, name)
	sec.Data["client_secret"] = []byte("hunter2hunter2hunter2")
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, "WeakSecret")
	if err := checkHashes(oc, map[string]*time.Time{edited: nil, second: ptr(clock.Now().Add(24 * time.Hour))}); err != nil {
		t.Error(err)
	}
	// Removing the key makes the operator generate a fresh secret.
	sec = appSecret(t, ns, name)
	delete(sec.Data, "client_secret")
	if err := c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	fresh := string(appSecret(t, ns, name).Data["client_secret"])
	if err := checkHashes(oc, map[string]*time.Time{fresh: nil}); err != nil {
		t.Error(err)
	}
	for _, s := range []string{first, second, edited, fresh} {
		assertNoPlaintext(t, op, ns, s)
	}

	// Deletion removes the client and its Secret.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, name), &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Secret still there (%v)", err)
		}
		if err := c.Get(ctx, objKey(ns, "drifty"), &oauthv1.OAuthClient{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("OAuthClient still there (%v)", err)
		}
		return nil
	})
}

// waitSecretChange waits until the Secret's client_secret differs from old.
func waitSecretChange(t *testing.T, ns, name, old string) string {
	t.Helper()
	var now string
	testenv.Eventually(t, 10*time.Second, func() error {
		sec := &corev1.Secret{}
		if err := testenv.Get(t).Client.Get(context.Background(), objKey(ns, name), sec); err != nil {
			return err
		}
		now = string(sec.Data["client_secret"])
		if now == "" || now == old {
			return fmt.Errorf("client_secret of %s has not changed", name)
		}
		return nil
	})
	return now
}

// checkHashes compares status.secretHashes with the secrets that should be
// accepted and their not-after times (nil for the current one).
func checkHashes(oc *oauthv1.OAuthClient, want map[string]*time.Time) error {
	if len(oc.Status.SecretHashes) != len(want) {
		return fmt.Errorf("status has %d secret hashes, want %d: %+v", len(oc.Status.SecretHashes), len(want), oc.Status.SecretHashes)
	}
next:
	for secret, notAfter := range want {
		for _, h := range oc.Status.SecretHashes {
			if !clientsecret.Matches(secret, h.Hash) {
				continue
			}
			switch {
			case notAfter == nil && h.NotAfter != nil:
				return fmt.Errorf("hash %s has notAfter %s, want none", h.Hash, h.NotAfter)
			case notAfter != nil && (h.NotAfter == nil || !h.NotAfter.Time.Equal(notAfter.Truncate(time.Second))):
				return fmt.Errorf("hash %s has notAfter %v, want %s", h.Hash, h.NotAfter, notAfter)
			}
			continue next
		}
		return fmt.Errorf("no hash in status matches one of the secrets that should be accepted")
	}
	return nil
}

func keysOf(s *corev1.Secret) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

func TestOAuthClientSecretNameConflict(t *testing.T) {
	ns := newNamespace(t, nil)
	op := startOperator(t, newFakeClock(), ns)
	create(t, server(ns, "auth"))
	first := oauthClient(ns, "first", "", "auth")
	first.Spec.SecretName = "shared"
	create(t, first)
	waitCondition(t, first, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	secret := string(appSecret(t, ns, "shared").Data["client_secret"])

	second := oauthClient(ns, "second", "", "auth")
	second.Spec.SecretName = "shared"
	create(t, second)
	waitCondition(t, second, oauthv1.ConditionReady, metav1.ConditionFalse, "SecretConflict")
	if msg := readyCondition(second).Message; !strings.Contains(msg, "OAuthClient first") {
		t.Errorf("message %q does not name the client that holds the Secret", msg)
	}
	if len(second.Status.SecretHashes) != 0 {
		t.Error("the second client published the first one's secret hash")
	}
	// Neither client's next reconcile changes that.
	reconciled(t, second)
	reconciled(t, first)
	sec := appSecret(t, ns, "shared")
	if string(sec.Data["client_secret"]) != secret || sec.Labels[oauthv1.LabelClient] != "first" ||
		string(sec.Data["client_id"]) != ns+".first" {
		t.Error("the conflicting client changed the first client's Secret")
	}
	assertNoPlaintext(t, op, ns, secret)

	// When the first client goes, its Secret goes, and the second gets one.
	if err := testenv.Get(t).Client.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, second, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	sec = appSecret(t, ns, "shared")
	if string(sec.Data["client_id"]) != ns+".second" || string(sec.Data["client_secret"]) == secret {
		t.Error("the second client did not get fresh credentials in the freed Secret")
	}
}

func TestOAuthClientSecretRename(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "mover", "", "auth")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	old := string(appSecret(t, ns, "mover-oauth-client").Data["client_secret"])

	oc.Spec.SecretName = "mover-credentials"
	if err := c.Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, "Ready")
	if oc.Status.SecretName != "mover-credentials" {
		t.Fatalf("status.secretName = %q", oc.Status.SecretName)
	}
	fresh := string(appSecret(t, ns, "mover-credentials").Data["client_secret"])
	if err := checkHashes(oc, map[string]*time.Time{fresh: nil}); err != nil {
		t.Error(err)
	}
	if fresh == old {
		t.Error("the secret moved with the Secret's name instead of being replaced")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, "mover-oauth-client"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the old Secret is still there (%v)", err)
		}
		return nil
	})
}
