package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/controllers"
	"github.com/gatehouse-dev/gatehouse/internal/devenv"
	"github.com/gatehouse-dev/gatehouse/internal/kubescheme"
	"github.com/gatehouse-dev/gatehouse/internal/servingcert"
)

// kubectlClientID is the client_id of the demo's kubectl client, which
// kube-apiserver takes as the ID tokens' audience.
var kubectlClientID = controllers.ClientID(&oauthv1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: devenv.Namespace, Name: devenv.KubectlClient}})

// checkPrerequisites finds the binaries and CRDs and checks the issuer's
// port before anything starts.
func (d *devRun) checkPrerequisites(context.Context) error {
	scheme := "https"
	if !d.flags.tls {
		scheme = "http"
	}
	d.issuer = fmt.Sprintf("%s://127.0.0.1:%d", scheme, d.flags.port)
	if err := devenv.PortFree(d.flags.port); err != nil {
		return fmt.Errorf("the issuer's port: %w (another gatehouse dev? choose one with --port)", err)
	}
	var err error
	if d.assets, err = devenv.AssetsDir(); err != nil {
		return err
	}
	if d.crdDir = d.flags.crds; d.crdDir == "" {
		d.crdDir, err = devenv.CRDDir()
	}
	return err
}

// openState locks the state directory, stops what a killed earlier run
// left running, applies --reset and opens the logs.
func (d *devRun) openState(context.Context) error {
	state, err := devenv.OpenStateDir(d.flags.stateDir)
	if err != nil {
		return err
	}
	d.state = state
	d.onStop("", state.Close)
	d.envFile = filepath.Join(state.Path, "demo.env")
	// demo.env exists only while everything is up: scripts may wait for it.
	_ = os.Remove(d.envFile)
	d.onStop("", func() error { _ = os.Remove(d.envFile); return nil })
	for _, l := range state.Leftovers() {
		d.say("stopping %s (pid %d), left running by an earlier gatehouse dev that was killed…", l.Name, l.PID)
		step := time.Now()
		if err := l.Stop(); err != nil {
			return fmt.Errorf("stopping %s (pid %d): %w", l.Name, l.PID, err)
		}
		d.say("stopped %s in %s", l.Name, time.Since(step).Round(100*time.Millisecond))
	}
	if d.flags.reset {
		had := state.Reused
		if err := state.Reset(); err != nil {
			return err
		}
		if had {
			d.say("deleted the state of earlier runs (--reset)")
		}
	}
	if state.Reused {
		d.say("reusing the state in %s (--reset starts afresh)", state.Path)
	} else {
		d.say("new state in %s", state.Path)
	}
	if d.logs, err = devenv.OpenLogs(filepath.Join(state.Path, "logs"), "etcd", "kube-apiserver", "operator", "server"); err != nil {
		return err
	}
	d.onStop("", d.logs.Close)
	return nil
}

// makeServingCertificate keeps a local CA in the state directory (so that
// whoever trusted it once keeps trusting it), issues the token server's
// certificate from it, and writes kube-apiserver's authentication
// configuration trusting the issuer's ID tokens.
func (d *devRun) makeServingCertificate(context.Context) error {
	if !d.flags.tls {
		return nil
	}
	dir := filepath.Join(d.state.Path, "tls")
	ca, err := servingcert.EnsureCA(dir)
	if err != nil {
		return fmt.Errorf("the local CA: %w", err)
	}
	t := &devTLS{ca: ca, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"),
		authnConfig: filepath.Join(d.state.Path, "authentication-config.yaml")}
	if err := ca.Issue(t.certFile, t.keyFile, []string{"127.0.0.1", "localhost", "::1"}, servingcert.ServingLifetime); err != nil {
		return fmt.Errorf("the token server's certificate: %w", err)
	}
	authn, err := devenv.AuthenticationConfig(d.issuer, string(ca.CertPEM), kubectlClientID)
	if err != nil {
		return err
	}
	if err := os.WriteFile(t.authnConfig, authn, 0o600); err != nil {
		return err
	}
	d.tls = t
	d.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}
	d.say("local CA %s issued the token server's certificate", ca.CertFile)
	return nil
}

// startControlPlane starts etcd and kube-apiserver and writes the admin
// kubeconfig.
func (d *devRun) startControlPlane(context.Context) error {
	opts := devenv.Options{
		AssetsDir: d.assets, StateDir: d.state.Path, Progress: d.say,
		EtcdLog: d.logs.File("etcd"), APIServerLog: d.logs.File("kube-apiserver"),
	}
	if d.tls != nil {
		opts.AuthenticationConfig = d.tls.authnConfig
	}
	cp, err := devenv.StartControlPlane(opts)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, d.logs.Dir)
	}
	d.cp = cp
	d.onStop("kube-apiserver and etcd", cp.Stop)
	if err := os.WriteFile(d.kubeconfig(), cp.Kubeconfig, 0o600); err != nil {
		return err
	}
	if d.scheme, err = kubescheme.New(); err != nil {
		return err
	}
	d.c, err = client.New(cp.Config, client.Options{Scheme: d.scheme})
	return err
}

func (d *devRun) kubeconfig() string { return filepath.Join(d.state.Path, "kubeconfig") }

func (d *devRun) installCRDs(context.Context) error {
	step := time.Now()
	n, err := devenv.InstallCRDs(d.cp.Config, d.crdDir)
	if err != nil {
		return err
	}
	d.say("installed %d CRDs from %s in %s", n, d.crdDir, time.Since(step).Round(100*time.Millisecond))
	return nil
}

func (d *devRun) applyDemoData(ctx context.Context) error {
	var err error
	if d.password, err = devenv.DemoPassword(filepath.Join(d.state.Path, "demo-password")); err != nil {
		return err
	}
	if err := devenv.ApplyDemoData(ctx, d.c, d.issuer, d.password); err != nil {
		return err
	}
	d.say("applied the demo data: AuthorizationServer %s/%s, Scopes %s and %s, user %q (group %s), OAuthClients %s, %s (no secret: ServiceAccount %s) and %s",
		devenv.Namespace, devenv.Server, devenv.ScopeRead, devenv.ScopeWrite, devenv.Username, devenv.Group, devenv.Client,
		devenv.WorkloadClient, devenv.WorkloadClient, devenv.KubectlClient)
	return nil
}

// printSummary reads what an app needs back from the cluster, as an app
// would, checks that it works, and prints it and demo.env.
func (d *devRun) printSummary(ctx context.Context) error {
	sec := &corev1.Secret{}
	if err := d.c.Get(ctx, client.ObjectKey{Namespace: devenv.Namespace, Name: devenv.ClientSecret}, sec); err != nil {
		return fmt.Errorf("reading the demo client's Secret: %w", err)
	}
	clientID, clientSecret := string(sec.Data[oauthv1.SecretKeyClientID]), string(sec.Data[oauthv1.SecretKeyClientSecret])
	if err := checkClientCredentials(ctx, d.http, d.issuer, clientID, clientSecret); err != nil {
		return fmt.Errorf("the demo client cannot get a token: %w (logs in %s)", err, d.logs.Dir)
	}
	d.env = map[string]string{
		"GATEHOUSE_ISSUER":   d.issuer,
		"KUBECONFIG":         d.kubeconfig(),
		"DEMO_CLIENT_ID":     clientID,
		"DEMO_CLIENT_SECRET": clientSecret,
		"DEMO_USERNAME":      devenv.Username,
		"DEMO_PASSWORD":      d.password,
		"DEMO_REDIRECT_URI":  devenv.RedirectURI,
	}
	if d.tls != nil {
		if err := d.writeDemoKubeconfig(); err != nil {
			return err
		}
	}
	if err := devenv.WriteEnvFile(d.envFile, d.env); err != nil {
		return err
	}
	devenv.Summary{Env: d.env, EnvFile: d.envFile, Kubectl: devenv.KubectlPath(d.assets), Took: time.Since(d.began)}.Print(d.out)
	return nil
}

// writeDemoKubeconfig writes a kubeconfig whose user logs in through
// `gatehouse login`, this very binary.
func (d *devRun) writeDemoKubeconfig() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	kc, err := devenv.DemoKubeconfig(d.cp.Kubeconfig, exe, d.issuer, d.tls.ca.CertFile, kubectlClientID)
	if err != nil {
		return err
	}
	path := filepath.Join(d.state.Path, "demo-user.kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return err
	}
	d.env["GATEHOUSE_CA_FILE"] = d.tls.ca.CertFile
	d.env["DEMO_KUBECONFIG"] = path
	return nil
}
