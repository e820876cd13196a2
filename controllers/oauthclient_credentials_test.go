package controllers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// serviceAccountClient is a client_credentials client that authenticates
// as the ServiceAccount sa of its namespace.
func serviceAccountClient(ns, name, serverNS, server, sa string) *oauthv1.OAuthClient {
	oc := oauthClient(ns, name, serverNS, server)
	oc.Spec.RedirectURIs = nil
	oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	oc.Spec.Authentication = &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: sa}}
	return oc
}

// noSecretFor fails if any Secret of ns belongs to the client.
func noSecretFor(t *testing.T, ns, name string) {
	t.Helper()
	var list corev1.SecretList
	if err := testenv.Get(t).Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if s.Labels[oauthv1.LabelClient] == name || s.Name == name+"-oauth-client" {
			t.Fatalf("Secret %s exists for client %s: %v", s.Name, name, s.Labels)
		}
		if _, ok := s.Data[oauthv1.SecretKeyClientSecret]; ok {
			t.Fatalf("Secret %s holds a client_secret", s.Name)
		}
	}
}

// A client that authenticates as its ServiceAccount: Ready only while the
// ServiceAccount exists, bound to its UID (a re-created one has another),
// its connection data in a ConfigMap, and no Secret at any point.
func TestServiceAccountClient(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	srv := server(ns, "auth")
	create(t, srv, scope(ns, "orders-read", "auth", "orders:read"))
	oc := serviceAccountClient(ns, "worker", "", "auth", "orders-worker")
	oc.Spec.Scopes = []oauthv1.ScopeName{"orders:read"}
	create(t, oc)

	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonServiceAccountNotFound)
	if !strings.Contains(readyCondition(oc).Message, "kubectl create serviceaccount orders-worker -n "+ns) {
		t.Errorf("message %q does not say how to fix it", readyCondition(oc).Message)
	}
	noSecretFor(t, ns, "worker")

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-worker"}}
	create(t, sa)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if oc.Status.ServiceAccountUID != string(sa.UID) || oc.Status.SecretName != "" || len(oc.Status.SecretHashes) != 0 {
		t.Errorf("status %+v: want the ServiceAccount's UID %s and no secret", oc.Status, sa.UID)
	}
	if oc.Status.ConfigMapName != "worker-oauth-client" {
		t.Errorf("status.configMapName = %q", oc.Status.ConfigMapName)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker-oauth-client"}}
	get(t, cm)
	want := map[string]string{
		"client_id": ns + ".worker", "issuer": testIssuer, "token_endpoint": testIssuer + "/token",
		"jwks_uri": testIssuer + "/jwks", "introspection_endpoint": testIssuer + "/introspect", "revocation_endpoint": testIssuer + "/revoke",
		"token_endpoint_auth_method": "federated_jwt", "client_assertion_type": oauthv1.ClientAssertionTypeJWTBearer,
		"service_account_token_audience": testIssuer, "grant_types": "client_credentials", "scope": "orders:read",
	}
	for k, v := range want {
		if cm.Data[k] != v {
			t.Errorf("ConfigMap %s = %q, want %q", k, cm.Data[k], v)
		}
	}
	for _, k := range []string{"client_secret", "authorization_endpoint", "oidc_discovery_url"} {
		if _, ok := cm.Data[k]; ok {
			t.Errorf("ConfigMap has %s: a client_credentials client without a secret may not use it", k)
		}
	}
	if !metav1.IsControlledBy(cm, oc) || cm.Labels[oauthv1.LabelManagedBy] != oauthv1.LabelManagedByValue {
		t.Errorf("ConfigMap owner %v, labels %v", cm.OwnerReferences, cm.Labels)
	}
	noSecretFor(t, ns, "worker")

	// Deleted and re-created under the same name: a new UID, and the
	// client follows it.
	oldUID := sa.UID
	if err := c.Delete(ctx, sa); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonServiceAccountNotFound)
	if oc.Status.ServiceAccountUID != "" {
		t.Errorf("the deleted ServiceAccount's UID is still in status")
	}
	sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders-worker"}}
	create(t, sa)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if oc.Status.ServiceAccountUID != string(sa.UID) || sa.UID == oldUID {
		t.Errorf("status UID %s, ServiceAccount UID %s (old %s)", oc.Status.ServiceAccountUID, sa.UID, oldUID)
	}

	// Deleting the client takes its ConfigMap along.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap still there (%v)", err)
		}
		return nil
	})
	noSecretFor(t, ns, "worker")
}

// Moving a client from a secret to its ServiceAccount deletes the Secret
// the operator made (and so the secret stops working everywhere); moving
// back makes a new secret and drops the ConfigMap.
func TestClientMovesBetweenSecretAndServiceAccount(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}})
	oc := oauthClient(ns, "app", "", "auth")
	oc.Spec.RedirectURIs = nil
	oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	sec := appSecret(t, ns, "app-oauth-client")
	if len(sec.Data[oauthv1.SecretKeyClientSecret]) == 0 || len(oc.Status.SecretHashes) == 0 {
		t.Fatal("no secret to begin with")
	}

	oc.Spec.Authentication = &oauthv1.ClientAuthentication{ServiceAccount: &oauthv1.ServiceAccountAuthentication{Name: "app"}}
	if err := c.Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if oc.Status.SecretName != "" || len(oc.Status.SecretHashes) != 0 || oc.Status.ConfigMapName == "" {
		t.Fatalf("status after the move: %+v", oc.Status)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(sec), &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the old Secret is still there (%v)", err)
		}
		return nil
	})

	oc.Spec.Authentication = nil
	if err := c.Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if oc.Status.ConfigMapName != "" || oc.Status.ServiceAccountUID != "" || len(oc.Status.SecretHashes) != 1 {
		t.Fatalf("status after moving back: %+v", oc.Status)
	}
	appSecret(t, ns, "app-oauth-client")
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, "app-oauth-client"), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the ConfigMap is still there (%v)", err)
		}
		return nil
	})
}

// private_key_jwt keys in a Secret: the operator reads them (the token
// server cannot) and publishes only the public keys; a private key there
// is refused, and so is a missing Secret.
func TestPrivateKeyJWTKeysFromSecret(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	create(t, server(ns, "auth"))
	oc := oauthClient(ns, "signer", "", "auth")
	oc.Spec.RedirectURIs = nil
	oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	oc.Spec.Authentication = &oauthv1.ClientAuthentication{PrivateKeyJWT: &oauthv1.PrivateKeyJWTAuthentication{
		SecretRef: &oauthv1.SecretKeyReference{Name: "signer-cert", Key: "tls.crt"}}}
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonClientKeysNotFound)

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "signer"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signer-cert"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
	}}
	create(t, sec)
	// The operator reads that Secret again every 10 seconds at first; a
	// poke saves the test the wait.
	poke(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	if len(oc.Status.PublicKeys) != 1 {
		t.Fatalf("status.publicKeys = %+v", oc.Status.PublicKeys)
	}
	k := oc.Status.PublicKeys[0]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Kid == "" || k.X == "" || k.Y == "" || k.N != "" {
		t.Errorf("published key %+v", k)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signer-oauth-client"}}
	get(t, cm)
	if cm.Data["token_endpoint_auth_method"] != "private_key_jwt" {
		t.Errorf("ConfigMap method %q", cm.Data["token_endpoint_auth_method"])
	}
	// Pointing it at the private key is refused: only public halves.
	oc.Spec.Authentication.PrivateKeyJWT.SecretRef.Key = "tls.key"
	if err := c.Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonInvalidClientKeys)
	if len(oc.Status.PublicKeys) != 0 || !strings.Contains(readyCondition(oc).Message, "private key") {
		t.Errorf("status %+v, message %q", oc.Status.PublicKeys, readyCondition(oc).Message)
	}
	for _, s := range []string{string(sec.Data["tls.key"]), "PRIVATE KEY"} {
		if strings.Contains(fmt.Sprintf("%+v", oc.Status), s) {
			t.Fatal("the private key reached the client's status")
		}
	}
}

// A federated client needs its server to trust the issuer it names and to
// admit its namespace to it; the trusted issuer changing brings the client
// along.
func TestFederatedClientNeedsATrustedIssuer(t *testing.T) {
	ns := newNamespace(t, nil)
	appNS := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns, appNS)
	srv := server(ns, "auth")
	srv.Spec.AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	create(t, srv)
	oc := oauthClient(appNS, "deployer", ns, "auth")
	oc.Spec.RedirectURIs = nil
	oc.Spec.GrantTypes = []oauthv1.GrantType{oauthv1.GrantClientCredentials}
	oc.Spec.Authentication = &oauthv1.ClientAuthentication{Federated: &oauthv1.FederatedAuthentication{
		Issuer: "github", Subject: "repo:org/app:ref:refs/heads/main", Claims: map[string]string{"repository": "org/app"}}}
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonUnknownTrustedIssuer)

	updateServer(t, srv, func(srv *oauthv1.AuthorizationServer) {
		srv.Spec.WorkloadIdentity.TrustedIssuers = []oauthv1.TrustedIssuer{{Name: "github", Issuer: "https://token.actions.githubusercontent.com"}}
	})
	// The issuer admits only the server's namespace by default.
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonTrustedIssuerNotAllowed)

	updateServer(t, srv, func(srv *oauthv1.AuthorizationServer) {
		srv.Spec.WorkloadIdentity.TrustedIssuers[0].AllowedClients.Namespaces.From = oauthv1.NamespacesFromAll
	})
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	noSecretFor(t, appNS, "deployer")
}

// updateServer changes a server's spec, retrying on conflicts with the
// operator's own writes (finalizer, status).
func updateServer(t *testing.T, srv *oauthv1.AuthorizationServer, change func(*oauthv1.AuthorizationServer)) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		get(t, srv)
		change(srv)
		return testenv.Get(t).Client.Update(context.Background(), srv)
	})
}

// The operator never takes over a ConfigMap it did not create.
func TestConnectionConfigMapConflict(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	c := testenv.Get(t).Client
	ctx := context.Background()
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker-oauth-client"}, Data: map[string]string{"x": "y"}}
	create(t, server(ns, "auth"), theirs, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"}})
	oc := serviceAccountClient(ns, "worker", "", "auth", "worker")
	create(t, oc)
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionFalse, oauthv1.ReasonConfigMapConflict)
	get(t, theirs)
	if len(theirs.Data) != 1 || theirs.Labels != nil || len(theirs.OwnerReferences) != 0 {
		t.Fatalf("someone else's ConfigMap was changed: %+v", theirs)
	}
	oc.Spec.ConfigMapName = "worker-connection"
	if err := c.Update(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, oc, oauthv1.ConditionReady, metav1.ConditionTrue, oauthv1.ReasonReady)
	get(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker-connection"}})
	// Deleting the client leaves their ConfigMap alone.
	if err := c.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := c.Get(ctx, objKey(ns, "worker-connection"), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the client's ConfigMap is still there (%v)", err)
		}
		return nil
	})
	get(t, theirs)
}

// The RBAC the operator grants the token server is enough to verify
// ServiceAccount clients' tokens against the real API server: discovery
// and keys read as that ServiceAccount (without the default binding of
// system:serviceaccounts, which hardened clusters remove), a projected
// token from the TokenRequest API verified offline, and a token of
// another audience refused. An account without the grant cannot read
// them.
func TestTokenServerVerifiesServiceAccountTokens(t *testing.T) {
	ns := newNamespace(t, nil)
	startOperator(t, newFakeClock(), ns)
	cp := testenv.Get(t)
	ctx := t.Context()
	srv := server(ns, "auth")
	create(t, srv)
	waitCondition(t, srv, oauthv1.ConditionKeysReady, metav1.ConditionTrue, "KeysReady")
	testenv.Eventually(t, 10*time.Second, func() error {
		return cp.Client.Get(ctx, objKey("", "gatehouse:server:"+ns+":auth"), &rbacv1.ClusterRoleBinding{})
	})
	as := func(user string) *rest.Config {
		cfg := rest.CopyConfig(cp.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
		return cfg
	}
	issuer, err := jwtverify.NewKubernetes(ctx, as("system:serviceaccount:"+ns+":"+controllers.ServerObjectName(srv)), jwtverify.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := issuer.Wait(ctx); err != nil {
		t.Fatalf("the token server's account cannot read the service-account issuer: %v", err)
	}
	if issuer.Issuer() == "" {
		t.Fatal("no issuer discovered")
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "worker"}}
	create(t, sa)
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	tokenFor := func(audience string) string {
		exp := int64(600)
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "worker", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	policy := &jwtverify.Policy{Issuer: issuer.Issuer(), Audiences: []string{testIssuer},
		Subject: "system:serviceaccount:" + ns + ":worker", MaxLifetime: time.Hour}
	claims, err := jwtverify.Verify(tokenFor(testIssuer), issuer, policy, time.Now())
	if err != nil {
		t.Fatalf("a projected token for the issuer: %v", err)
	}
	if k := claims.Kubernetes; k == nil || k.ServiceAccount.UID != string(sa.UID) || k.Namespace != ns {
		t.Errorf("kubernetes.io claims %+v, want the ServiceAccount's UID %s", claims.Kubernetes, sa.UID)
	}
	if _, err := jwtverify.Verify(tokenFor("https://kubernetes.default.svc"), issuer, policy, time.Now()); jwtverify.ReasonOf(err) != jwtverify.ReasonAudience {
		t.Errorf("a token for the API server: %v", err)
	}

	other, err := jwtverify.NewKubernetes(ctx, as("system:serviceaccount:"+ns+":someone-else"), jwtverify.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Wait(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an account without the grant read the issuer: %v", err)
	}
}
