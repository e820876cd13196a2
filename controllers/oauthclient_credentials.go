package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
)

// keySecretRecheck is how often the operator reads again the Secret a
// private_key_jwt client's keys are in (spec.authentication.privateKeyJWT
// .secretRef): the operator's cache holds only Secrets it labelled, so a
// change to that Secret raises no event.
const keySecretRecheck = 30 * time.Second

// reconcileSecretless serves a client that proves itself with a JWT
// (spec.authentication) instead of a secret, in order:
//  1. a Secret it had when it still used one is released, and its hashes
//     dropped: from now on no client_secret authenticates it;
//  2. its credential is checked and published in status for the token
//     server, which reads no app Secrets and calls no API: the
//     ServiceAccount's UID, the public keys of a key Secret, the trusted
//     issuer it binds to;
//  3. its connection data (client_id, issuer, endpoints, method) go to its
//     ConfigMap, which holds nothing secret;
//  4. Ready.
func (r *OAuthClientReconciler) reconcileSecretless(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (ctrl.Result, error) {
	if name := oc.Status.SecretName; name != "" {
		if err := r.releaseSecret(ctx, oc, name); err != nil {
			return ctrl.Result{}, err
		}
		oc.Status.SecretName, oc.Status.SecretHashes, oc.Status.LastRotationTime = "", nil, nil
	}
	var res ctrl.Result
	if oc.Spec.Authentication.PrivateKeyJWT != nil && oc.Spec.Authentication.PrivateKeyJWT.SecretRef != nil {
		res.RequeueAfter = keySecretRecheck
	}
	p, err := r.checkCredential(ctx, oc, srv)
	if err != nil {
		return ctrl.Result{}, err
	}
	if p != nil {
		failed(oc, &oc.Status.Conditions, oauthv1.ConditionReady, p.reason, p.message)
		if res.RequeueAfter > 0 {
			// Waiting on a Secret the cache does not show: look again
			// soon, then less often (secretRecheck).
			res = secretRecheck(oc)
		}
		return res, nil
	}
	if p, err := r.writeConnectionConfigMap(ctx, oc, srv); err != nil || p != nil {
		if p != nil {
			failed(oc, &oc.Status.Conditions, oauthv1.ConditionReady, p.reason, p.message)
			return ctrl.Result{RequeueAfter: max(res.RequeueAfter, secretRecheck(oc).RequeueAfter)}, nil
		}
		return ctrl.Result{}, err
	}
	setCondition(&oc.Status.Conditions, oc.Generation, oauthv1.ConditionReady, true, oauthv1.ReasonReady,
		fmt.Sprintf("client %s is registered with AuthorizationServer %s and authenticates with %s (%s); no secret; its connection data are in ConfigMap %s",
			oc.Status.ClientID, oc.ServerKey(), credentialName(oc), oc.AuthMethod(), oc.Status.ConfigMapName))
	return res, nil
}

// credentialName says what a client without a secret authenticates with.
func credentialName(oc *oauthv1.OAuthClient) string {
	a := oc.Spec.Authentication
	switch {
	case a.ServiceAccount != nil:
		return "the tokens of ServiceAccount " + oc.Namespace + "/" + a.ServiceAccount.Name
	case a.Federated != nil:
		return "the tokens of trusted issuer " + a.Federated.Issuer + " for subject " + a.Federated.Subject
	case a.PrivateKeyJWT != nil && a.PrivateKeyJWT.JWKSURI != "":
		return "assertions signed by the keys at " + a.PrivateKeyJWT.JWKSURI
	case a.PrivateKeyJWT != nil && a.PrivateKeyJWT.SecretRef != nil:
		return "assertions signed by the keys in Secret " + a.PrivateKeyJWT.SecretRef.Name
	}
	return "assertions signed by its registered keys"
}

// checkCredential checks the client's credential and publishes in status
// what the token server needs of it; a problem says what the user must fix.
func (r *OAuthClientReconciler) checkCredential(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer) (*problem, error) {
	a := oc.Spec.Authentication
	if a.ServiceAccount == nil {
		oc.Status.ServiceAccountUID = ""
	}
	if a.PrivateKeyJWT == nil || a.PrivateKeyJWT.SecretRef == nil {
		oc.Status.PublicKeys = nil
	}
	switch {
	case a.ServiceAccount != nil:
		return r.checkServiceAccount(ctx, oc, a.ServiceAccount.Name)
	case a.PrivateKeyJWT != nil:
		return r.checkClientKeys(ctx, oc, a.PrivateKeyJWT)
	case a.Federated != nil:
		return r.checkTrustedIssuer(ctx, oc, srv, a.Federated)
	}
	return &problem{oauthv1.ReasonInvalidClientKeys, "spec.authentication names no credential"}, nil
}

// checkServiceAccount resolves the ServiceAccount's UID: the token server
// accepts tokens of that very ServiceAccount only, so that tokens of one
// deleted and re-created under the same name are refused.
func (r *OAuthClientReconciler) checkServiceAccount(ctx context.Context, oc *oauthv1.OAuthClient, name string) (*problem, error) {
	sa := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}}
	err := r.serviceAccounts().Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, sa)
	switch {
	case apierrors.IsNotFound(err):
		oc.Status.ServiceAccountUID = ""
		return &problem{oauthv1.ReasonServiceAccountNotFound, fmt.Sprintf(
			"ServiceAccount %s/%s does not exist: create it (kubectl create serviceaccount %s -n %s), or name another one in spec.authentication.serviceAccount",
			oc.Namespace, name, name, oc.Namespace)}, nil
	case err != nil:
		return nil, fmt.Errorf("getting ServiceAccount %s: %w", name, err)
	case !sa.DeletionTimestamp.IsZero():
		oc.Status.ServiceAccountUID = ""
		return &problem{oauthv1.ReasonServiceAccountNotFound, fmt.Sprintf("ServiceAccount %s/%s is being deleted", oc.Namespace, name)}, nil
	}
	oc.Status.ServiceAccountUID = string(sa.UID)
	return nil, nil
}

// resolveExchangeServiceAccounts publishes the UIDs of the ServiceAccounts
// whose tokens the client may exchange (spec.tokenExchange), as
// checkServiceAccount does for the one it authenticates as: the token
// server accepts tokens of those very ServiceAccounts only. One that does
// not exist (or is being deleted) is left out, so its tokens are refused
// until it is there; the ServiceAccount watch brings the client back when
// it is created, deleted or re-created.
func (r *OAuthClientReconciler) resolveExchangeServiceAccounts(ctx context.Context, oc *oauthv1.OAuthClient) error {
	names := oc.ExchangeServiceAccountNames()
	var out []oauthv1.ServiceAccountUID
	for _, name := range names {
		sa := serviceAccountMetadata()
		err := r.serviceAccounts().Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: name}, sa)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("getting ServiceAccount %s: %w", name, err)
		case sa.DeletionTimestamp.IsZero():
			out = append(out, oauthv1.ServiceAccountUID{Name: name, UID: string(sa.UID)})
		}
	}
	oc.Status.ExchangeServiceAccounts = out
	return nil
}

// checkClientKeys checks a private_key_jwt client's keys. Keys in the spec
// must parse; keys in a Secret are read (the token server cannot) and
// their public halves published in status.publicKeys; a jwksURI is the
// token server's to fetch.
func (r *OAuthClientReconciler) checkClientKeys(ctx context.Context, oc *oauthv1.OAuthClient, pk *oauthv1.PrivateKeyJWTAuthentication) (*problem, error) {
	switch {
	case len(pk.Keys) > 0:
		doc, err := json.Marshal(map[string]any{"keys": pk.Keys})
		if err != nil {
			return nil, err
		}
		if _, err := jwtverify.ParseJWKS(doc); err != nil {
			return &problem{oauthv1.ReasonInvalidClientKeys, "spec.authentication.privateKeyJWT.keys: " + err.Error()}, nil
		}
	case pk.SecretRef != nil:
		ref := pk.SecretRef
		sec := &corev1.Secret{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: oc.Namespace, Name: ref.Name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			oc.Status.PublicKeys = nil
			return &problem{oauthv1.ReasonClientKeysNotFound, fmt.Sprintf("Secret %s/%s with the client's public keys does not exist", oc.Namespace, ref.Name)}, nil
		case err != nil:
			return nil, fmt.Errorf("getting Secret %s: %w", ref.Name, err)
		}
		data, ok := sec.Data[ref.Key]
		if !ok || len(data) == 0 {
			oc.Status.PublicKeys = nil
			return &problem{oauthv1.ReasonClientKeysNotFound, fmt.Sprintf("Secret %s/%s has no key %s", oc.Namespace, ref.Name, ref.Key)}, nil
		}
		keys, err := jwtverify.ParseKeys(data)
		if err != nil {
			oc.Status.PublicKeys = nil
			return &problem{oauthv1.ReasonInvalidClientKeys, fmt.Sprintf("Secret %s/%s key %s: %v", oc.Namespace, ref.Name, ref.Key, err)}, nil
		}
		if len(keys) > maxPublishedKeys {
			return &problem{oauthv1.ReasonInvalidClientKeys, fmt.Sprintf("Secret %s/%s key %s holds %d keys, more than %d", oc.Namespace, ref.Name, ref.Key, len(keys), maxPublishedKeys)}, nil
		}
		oc.Status.PublicKeys = publishedKeys(keys)
	}
	return nil, nil
}

// maxPublishedKeys is status.publicKeys' MaxItems.
const maxPublishedKeys = 8

// publishedKeys are keys in the API's JSON Web Key form, one per kid (a
// certificate and its public key name the same key once).
func publishedKeys(keys []*jwtverify.Key) []oauthv1.JSONWebKey {
	var out []oauthv1.JSONWebKey
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		j := k.JWK()
		out = append(out, oauthv1.JSONWebKey{Kty: j.Kty, Kid: j.Kid, Alg: j.Alg, Use: "sig", Crv: j.Crv, X: j.X, Y: j.Y, N: j.N, E: j.E})
	}
	return out
}

// checkTrustedIssuer checks that the client's server trusts the issuer it
// binds to and lets this namespace bind to it.
func (r *OAuthClientReconciler) checkTrustedIssuer(ctx context.Context, oc *oauthv1.OAuthClient, srv *oauthv1.AuthorizationServer, f *oauthv1.FederatedAuthentication) (*problem, error) {
	ti := srv.TrustedIssuer(f.Issuer)
	if ti == nil {
		return &problem{oauthv1.ReasonUnknownTrustedIssuer, fmt.Sprintf(
			"AuthorizationServer %s/%s trusts no issuer named %q (spec.workloadIdentity.trustedIssuers); ask its owner to add it, or name one it has",
			srv.Namespace, srv.Name, f.Issuer)}, nil
	}
	why, err := r.admitsNamespace(ctx, ti.AllowedClients.Namespaces, srv.Namespace, oc.Namespace)
	if err != nil || why == "" {
		return nil, err
	}
	return &problem{oauthv1.ReasonTrustedIssuerNotAllowed, fmt.Sprintf("trusted issuer %s of AuthorizationServer %s/%s does not admit clients from namespace %q: %s",
		f.Issuer, srv.Namespace, srv.Name, oc.Namespace, why)}, nil
}
