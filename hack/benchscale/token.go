package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

type creds struct{ id, secret string }

// credentials reads a client's Secret (named in the spec the harness wrote).
func (e *env) credentials(ctx context.Context, namespace, name string) (creds, error) {
	sec := &corev1.Secret{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name + "-credentials"}, sec); err != nil {
		return creds{}, fmt.Errorf("reading the Secret of %s/%s: %w", namespace, name, err)
	}
	return creds{string(sec.Data[oauthv1.SecretKeyClientID]), string(sec.Data[oauthv1.SecretKeyClientSecret])}, nil
}

var tokenClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// token asks for a client-credentials token and returns the HTTP status.
func (e *env) token(ctx context.Context, c creds) (int, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {benchScope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: form-encode both parts before Basic.
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	resp, err := tokenClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// untilToken waits until the client named namespace/name is Ready, reads
// its Secret and asks for tokens until one is issued. It returns when the
// Secret was read and when the token came.
func (e *env) untilToken(ctx context.Context, namespace, name string, timeout time.Duration) (secretAt, tokenAt time.Time, err error) {
	key := namespace + "/" + name
	if err = waitFor(ctx, timeout, "client "+key+" Ready", func() bool { return e.tracker.isReady(key) }, nil); err != nil {
		return
	}
	c, err := e.credentials(ctx, namespace, name)
	if err != nil {
		return
	}
	secretAt = time.Now()
	deadline := time.Now().Add(timeout)
	for {
		code, terr := e.token(ctx, c)
		if terr == nil && code == http.StatusOK {
			return secretAt, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return secretAt, time.Time{}, fmt.Errorf("no token for %s: status %d, %v", key, code, terr)
		}
		select {
		case <-ctx.Done():
			return secretAt, time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
