package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
)

// TestSigningKeyRotationUnderTraffic forces a signing-key rotation while a
// machine client keeps getting tokens and calling a resource server that
// caches the JWKS. The new key is published a prepublishPeriod (1m here)
// before it signs, and the old one stays published, so not one validation
// may fail: the invariant "key rotation never breaks validation"
// (docs/architecture.md).
func TestSigningKeyRotationUnderTraffic(t *testing.T) {
	t.Parallel()
	s := get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	oc := &oauthv1.OAuthClient{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: machineClient}, oc); err != nil {
		t.Fatal(err)
	}
	sec := s.appSecret(t, oc.Status.SecretName)
	id, secret, tokenURL := sec[oauthv1.SecretKeyClientID], sec[oauthv1.SecretKeyClientSecret], sec[oauthv1.SecretKeyTokenEndpoint]
	srv := &oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: serverName}}
	if err := s.c.Get(ctx, client.ObjectKeyFromObject(srv), srv); err != nil {
		t.Fatal(err)
	}
	oldKid := srv.Status.ActiveKeyID
	if oldKid == "" {
		t.Fatal("no active key id in status")
	}
	before, err := machineToken(ctx, tokenURL, id, secret, "inventory.sync")
	if err != nil {
		t.Fatal(err)
	}
	if kid := jwtHeader(t, before.AccessToken)["kid"]; kid != oldKid {
		t.Fatalf("token signed by %v, status says %s is active", kid, oldKid)
	}

	// Traffic: a new token every ~100ms, each validated by the API.
	var (
		mu                        sync.Mutex
		validated, failed, tokErr int
		byKid                     = map[string]int{}
		failures                  []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			tok, err := machineToken(ctx, tokenURL, id, secret, "inventory.sync")
			if err != nil {
				mu.Lock()
				tokErr++
				failures = append(failures, "token: "+err.Error())
				mu.Unlock()
				continue
			}
			code, body, err := callAPI(ctx, http.MethodGet, s.inventory+"/me", tok.AccessToken, "")
			kid := tokenKid(tok.AccessToken)
			mu.Lock()
			if err != nil || code != http.StatusOK {
				failed++
				failures = append(failures, fmt.Sprintf("kid %s: %d %s %v", kid, code, body, err))
			} else {
				validated++
				byKid[kid]++
			}
			mu.Unlock()
		}
	}()

	began := time.Now()
	s.kubectlT(t, "annotate", "-n", s.ns, "authorizationserver", serverName, oauthv1.AnnotationRotateKeys+"="+began.UTC().Format(time.RFC3339), "--overwrite")
	t.Logf("rotation requested; old key %s", oldKid)
	published := eventually(t, 30*time.Second, "the new key in the JWKS", func() error {
		n, err := jwksKeys(ctx, endpoints.For(s.issuer).JWKS)
		if err != nil {
			return err
		}
		if n < 2 {
			return fmt.Errorf("%d key(s) published", n)
		}
		return nil
	})
	t.Logf("new key published after %s", published.Round(100*time.Millisecond))
	var newKid string
	active := eventually(t, 3*time.Minute, "the new key active", func() error {
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(srv), srv); err != nil {
			return err
		}
		if srv.Status.ActiveKeyID == oldKid {
			return fmt.Errorf("active key is still %s", oldKid)
		}
		newKid = srv.Status.ActiveKeyID
		mu.Lock()
		defer mu.Unlock()
		if byKid[newKid] < 20 {
			return fmt.Errorf("%d tokens signed by the new key validated so far", byKid[newKid])
		}
		return nil
	})
	t.Logf("new key %s active and in use after %s", newKid, active.Round(100*time.Millisecond))
	close(stop)
	<-done

	// A token the old key signed still validates: the retired key stays
	// published until what it signed has expired.
	if code, body, err := callAPI(ctx, http.MethodGet, s.inventory+"/me", before.AccessToken, ""); err != nil || code != http.StatusOK {
		t.Errorf("a token signed by the retired key before the rotation: %d %s %v", code, body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("under rotation: %d validations succeeded (%v by kid), %d failed, %d token requests failed", validated, byKid, failed, tokErr)
	if failed > 0 || tokErr > 0 {
		t.Errorf("%d validations and %d token requests failed during the rotation; first: %v", failed, tokErr, failures[:min(len(failures), 5)])
	}
	if byKid[oldKid] == 0 || byKid[newKid] == 0 {
		t.Errorf("traffic did not span the rotation: %v", byKid)
	}
}

func jwksKeys(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return 0, err
	}
	return len(set.Keys), nil
}

// tokenKid is the kid of a JWT's header, or "" (safe off the test goroutine).
func tokenKid(token string) string {
	part, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}
