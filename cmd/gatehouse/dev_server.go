package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
)

// startTokenServer runs `gatehouse server` as a child, the command a
// cluster's pods run. Its stop sends SIGTERM and waits (SIGKILL after
// 15s); a server that stops when told is no error.
func (d *devRun) startTokenServer(context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	metrics := strings.TrimSuffix(strings.TrimPrefix(d.readyz, "http://"), servercontract.ReadyzPath)
	args := d.flags.proxyArgs
	args.AuthorizationServer = devenv.Namespace + "/" + devenv.Server
	args.Listen = "127.0.0.1:" + strconv.Itoa(d.flags.port)
	args.MetricsListen = metrics
	args.GCInterval = "1m"
	args.AuditLog = d.auditLogPath()
	if d.tls != nil {
		args.TLSCertFile, args.TLSKeyFile = d.tls.certFile, d.tls.keyFile
	}
	cmd := exec.Command(exe, args.CommandLine()...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig())
	cmd.Stdout, cmd.Stderr = d.logs.File("server"), d.logs.File("server")
	// Own process group: Ctrl-C reaches only us, and we stop the server
	// first. Pdeathsig: it never outlives us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the token server: %w", err)
	}
	d.srvDone = make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		d.srvDone <- err
		close(exited)
	}()
	d.onStop("the token server", func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("still running 15s after SIGTERM: killed")
		}
	})
	d.say("starting the token server on %s (log: %s, audit log: %s)…", d.issuer, d.logs.File("server").Name(), args.AuditLog)
	return nil
}

// auditLogPath is the local installation's audit log: the token
// server's lines and the operator's.
func (d *devRun) auditLogPath() string { return filepath.Join(d.logs.Dir, "audit.log") }

// waitUntilReady waits for the AuthorizationServer to report Ready (which
// the operator derives from the token server's /readyz) and for the demo
// clients.
func (d *devRun) waitUntilReady(ctx context.Context) error {
	step := time.Now()
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no status yet"
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-d.srvDone:
			d.srvDone <- nil
			return fmt.Errorf("the token server exited: %v (logs in %s)", err, d.logs.Dir)
		case <-deadline:
			return fmt.Errorf("not ready after 2 minutes: %s (logs in %s)", last, d.logs.Dir)
		case <-tick.C:
		}
		// The server's own readiness first: on a reused state the status
		// may still say what the last run saw.
		if err := probeReady(ctx, probe, d.readyz); err != nil {
			last = err.Error()
			continue
		}
		if last = d.demoNotReady(ctx); last == "" {
			d.say("token server ready in %s", time.Since(step).Round(100*time.Millisecond))
			return nil
		}
	}
}

// demoNotReady says what of the demo is not Ready for its current
// generation, or "".
func (d *devRun) demoNotReady(ctx context.Context) string {
	objs := []client.Object{
		&oauthv1.AuthorizationServer{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: devenv.Server}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: devenv.Client}},
		&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: devenv.KubectlClient}},
	}
	for _, o := range objs {
		if err := d.c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			return err.Error()
		}
		var conds []metav1.Condition
		switch o := o.(type) {
		case *oauthv1.AuthorizationServer:
			conds = o.Status.Conditions
		case *oauthv1.OAuthClient:
			conds = o.Status.Conditions
		}
		cond := meta.FindStatusCondition(conds, oauthv1.ConditionReady)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != o.GetGeneration() {
			if cond == nil {
				return fmt.Sprintf("%T %s: no Ready condition yet", o, o.GetName())
			}
			return fmt.Sprintf("%T %s: Ready=%s %s: %s", o, o.GetName(), cond.Status, cond.Reason, cond.Message)
		}
	}
	return ""
}

// checkClientCredentials gets a token as the demo client, so that what is
// printed is known to work. The token server learns of the client from
// its informer a moment after the operator reports it Ready: retry briefly.
func checkClientCredentials(ctx context.Context, hc *http.Client, issuer, id, secret string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {string(devenv.ScopeRead)}}
	var last error
	for range 50 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoints.For(issuer).Token, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &tok) == nil && tok.AccessToken != "" {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last
}

// waitUntilKubeTrustsIssuer waits until kube-apiserver has read the
// issuer's discovery document and keys: it initializes its JWT
// authenticator in the background and retries every 10s, and until then
// refuses every ID token, so the printed kubectl commands would fail. A
// TokenReview of an unsigned token naming the issuer tells the two states
// apart by its error.
func (d *devRun) waitUntilKubeTrustsIssuer(ctx context.Context) error {
	if d.tls == nil {
		return nil
	}
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"iss": d.issuer, "aud": kubectlClientID, "sub": "probe", "exp": time.Now().Add(time.Hour).Unix()})
	probe := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("x"))
	step := time.Now()
	for {
		review := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: probe}}
		if err := d.c.Create(ctx, review); err != nil {
			return fmt.Errorf("asking kube-apiserver whether it trusts the issuer: %w", err)
		}
		if !strings.Contains(review.Status.Error, "not initialized") {
			d.say("kube-apiserver trusts the issuer's ID tokens (after %s)", time.Since(step).Round(100*time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Since(step) > time.Minute {
			return fmt.Errorf("kube-apiserver has not read the issuer's keys after a minute: %s (see %s)", review.Status.Error, d.logs.File("kube-apiserver").Name())
		}
	}
}
