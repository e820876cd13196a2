package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// machineClientYAML is an OAuthClient a team would apply for a job.
func machineClientYAML(name, extra string) string {
	return fmt.Sprintf(`apiVersion: oauth.gatehouse.dev/v1alpha1
kind: OAuthClient
metadata:
  name: %s
spec:
  serverRef:
    name: %s
  grantTypes: [client_credentials]
  scopes: [inventory.sync]
  audience: [%q]
%s`, name, serverName, inventoryAudienc, extra)
}

// applyClient applies an OAuthClient with kubectl and waits until a token
// can be had with the credentials in its Secret.
func (s *suite) applyClient(t *testing.T, ctx context.Context, name, extra string) (id, secret string, oc *oauthv1.OAuthClient) {
	t.Helper()
	began := time.Now()
	s.applyYAML(t, machineClientYAML(name, extra))
	oc = &oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name}}
	if err := waitCondition(ctx, s.c, oc, oauthv1.ConditionReady); err != nil {
		t.Fatal(err)
	}
	sec := s.appSecret(t, oc.Status.SecretName)
	id, secret = sec[oauthv1.SecretKeyClientID], sec[oauthv1.SecretKeyClientSecret]
	tokenURL := endpoints.For(s.issuer).Token
	eventually(t, 15*time.Second, "a token for the new client", func() error {
		_, err := machineToken(ctx, tokenURL, id, secret)
		return err
	})
	t.Logf("kubectl apply → first token for %s in %s", name, time.Since(began).Round(time.Millisecond))
	return id, secret, oc
}

// TestClientSecretRotation: during the grace period both the old and the
// new secret work; after it only the new one does.
func TestClientSecretRotation(t *testing.T) {
	t.Parallel()
	s := get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const grace = 15 * time.Second
	id, oldSecret, oc := s.applyClient(t, ctx, "e2e-rotating", "  secretRotation: {interval: 720h, gracePeriod: 15s}\n")
	tokenURL := endpoints.For(s.issuer).Token

	s.kubectlT(t, "annotate", "-n", s.ns, "oauthclient", oc.Name, oauthv1.AnnotationRotateSecret+"="+time.Now().UTC().Format(time.RFC3339Nano), "--overwrite")
	var newSecret string
	eventually(t, 15*time.Second, "a new secret in the app's Secret", func() error {
		newSecret = s.appSecret(t, oc.Status.SecretName)[oauthv1.SecretKeyClientSecret]
		if newSecret == oldSecret {
			return fmt.Errorf("client_secret unchanged")
		}
		return nil
	})
	rotated := time.Now()
	// The operator writes the Secret, then the status with the old hash's
	// notAfter.
	var notAfter time.Time
	eventually(t, 10*time.Second, "the old secret's notAfter in status", func() error {
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(oc), oc); err != nil {
			return err
		}
		for _, h := range oc.Status.SecretHashes {
			if h.NotAfter != nil {
				notAfter = h.NotAfter.Time
				return nil
			}
		}
		return fmt.Errorf("status.secretHashes %+v", oc.Status.SecretHashes)
	})
	if d := notAfter.Sub(rotated); d > grace+time.Second || d < grace-5*time.Second {
		t.Fatalf("old secret accepted until %s, %s from the rotation; want about %s", notAfter, d, grace)
	}

	// The new secret works at once (the server may need a moment to see it).
	eventually(t, 10*time.Second, "the new secret", func() error {
		_, err := machineToken(ctx, tokenURL, id, newSecret)
		return err
	})
	// The old one keeps working until notAfter, tried once a second: the
	// grace period runs on the operator's and server's real clocks (other
	// processes here), so it is watched over its whole length, not waited on.
	for time.Until(notAfter) > time.Second {
		if _, err := machineToken(ctx, tokenURL, id, oldSecret); err != nil {
			t.Fatalf("old secret refused %s before the grace period ends: %v", time.Until(notAfter).Round(time.Millisecond), err)
		}
		time.Sleep(time.Second)
	}
	// ...and is refused soon after.
	eventually(t, time.Until(notAfter.Add(15*time.Second)), "the old secret refused", func() error {
		_, err := machineToken(ctx, tokenURL, id, oldSecret)
		if tokenError(err) == "invalid_client" {
			return nil
		}
		return fmt.Errorf("old secret: %v", err)
	})
	t.Logf("old secret worked for the grace period and was refused %s after it", time.Since(notAfter).Round(100*time.Millisecond))
	if _, err := machineToken(ctx, tokenURL, id, newSecret); err != nil {
		t.Errorf("new secret after the grace period: %v", err)
	}
}

// TestDeletedClientIsRefused: deleting the OAuthClient takes the client
// away from the token endpoint within seconds.
func TestDeletedClientIsRefused(t *testing.T) {
	t.Parallel()
	s := get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, secret, oc := s.applyClient(t, ctx, "e2e-doomed", "")
	tokenURL := endpoints.For(s.issuer).Token

	began := time.Now()
	s.kubectlT(t, "delete", "-n", s.ns, "oauthclient", oc.Name, "--wait=false")
	took := eventually(t, 10*time.Second, "the deleted client refused", func() error {
		_, err := machineToken(ctx, tokenURL, id, secret)
		if tokenError(err) == "invalid_client" {
			return nil
		}
		return fmt.Errorf("token request after delete: %v", err)
	})
	t.Logf("deleted client refused %s after kubectl delete returned (%s after it was called)", took.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
