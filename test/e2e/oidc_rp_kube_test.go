package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gatehouse-dev/gatehouse/internal/devenv"
)

// TestKubernetesTrustsGatehouse makes kube-apiserver a relying party: a
// second control plane whose structured AuthenticationConfiguration
// (apiserver.config.k8s.io/v1) names the https Gatehouse as a JWT issuer,
// with preferred_username and groups mapped (devenv.AuthenticationConfig,
// what `gatehouse dev` uses too). kube-apiserver fetches discovery and
// the keys itself and verifies each ID token. The AuthorizationServer's
// claim mapping gives this client the teams only, as team-<group>, and
// its login rule refuses people in no team: kube-apiserver sees alice in
// gatehouse:team-ops (not gatehouse:ops, nor gatehouse:everyone, which
// the mapping filtered out), and an RBAC binding on that mapped group
// alone lets her list pods; bob, in team-sales, is refused; carol, in no
// team, gets no ID token at all (access_denied); an ID token issued to
// another client is not accepted at all.
//
// Cost: one more etcd and kube-apiserver (about 15s on a quiet machine).
func TestKubernetesTrustsGatehouse(t *testing.T) {
	t.Parallel()
	s := get(t)
	rp := s.rp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, kubectl := s.startRelyingControlPlane(t, rp)

	// RBAC on the relying cluster: group ops may list pods.
	admin := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", cp.admin}, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{
		{"create", "clusterrole", "pod-reader", "--verb=get,list,watch", "--resource=pods"},
		{"create", "clusterrolebinding", "ops-read-pods", "--clusterrole=pod-reader", "--group=" + devenv.KubePrefix + "team-" + rpGroupOps},
	} {
		if out, err := admin(args...); err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, out)
		}
	}

	as := func(user string) func(args ...string) (string, error) {
		tok, err := rp.idToken(ctx, s.clientID(rpClusterLogin), user)
		if err != nil {
			t.Fatalf("ID token for %s: %v", user, err)
		}
		kc := cp.tokenKubeconfig(t, user, tok)
		return func(args ...string) (string, error) {
			out, err := exec.Command(kubectl, append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput()
			return string(out), err
		}
	}
	alice, bob := as(rpUserOps), as(rpUserSales)

	// kube-apiserver initializes the JWT authenticator in the background
	// (it retries discovery every 10s), so the first calls may be refused.
	var who struct {
		Status struct {
			UserInfo struct {
				Username string
				Groups   []string
			}
		}
	}
	took := eventually(t, time.Minute, "kubectl auth whoami as alice", func() error {
		out, err := alice("auth", "whoami", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return json.Unmarshal([]byte(out), &who)
	})
	t.Logf("kube-apiserver accepted a Gatehouse ID token after %s", took.Round(100*time.Millisecond))
	if u := who.Status.UserInfo; u.Username != devenv.KubePrefix+rpUserOps ||
		!slices.Contains(u.Groups, devenv.KubePrefix+"team-"+rpGroupOps) || slices.Contains(u.Groups, devenv.KubePrefix+rpGroupOps) ||
		slices.Contains(u.Groups, devenv.KubePrefix+"everyone") || !slices.Contains(u.Groups, "system:authenticated") {
		t.Errorf("kubectl auth whoami as alice: %+v, want the mapped gatehouse:team-ops and neither ops nor everyone", u)
	}
	if out, err := alice("get", "pods", "-n", "default"); err != nil {
		t.Errorf("alice (mapped group team-ops) cannot list pods: %v: %s", err, out)
	}
	out, err := bob("get", "pods", "-n", "default")
	if err == nil || !strings.Contains(out, `User "gatehouse:bob" cannot list resource "pods"`) {
		t.Errorf("bob (not in ops) listing pods: %v: %s; want Forbidden for gatehouse:bob", err, out)
	}
	if out, err := bob("auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"); err != nil || strings.Contains(out, rpGroupOps) || !strings.Contains(out, "gatehouse:team-sales") {
		t.Errorf("bob's groups: %v: %s", err, out)
	}
	// Carol is in no team: the client's login rule refuses her sign-in.
	if _, err := rp.idToken(ctx, s.clientID(rpClusterLogin), rpUserGuest); err == nil ||
		!strings.Contains(err.Error(), "error=access_denied") || !strings.Contains(err.Error(), "Only+team+members+may+use+the+cluster.") {
		t.Errorf("carol (in no team) signing in to the cluster: %v, want access_denied with the rule's message", err)
	}

	// An ID token for another audience (the web client) is not a
	// credential for this cluster: 401, whoever it names.
	webTok, err := rp.idToken(ctx, s.clientID(rpOtherAudience), rpUserOps)
	if err != nil {
		t.Fatal(err)
	}
	kc := cp.tokenKubeconfig(t, "other-audience", webTok)
	if out, err := exec.Command(kubectl, "--kubeconfig", kc, "get", "pods", "-n", "default").CombinedOutput(); err == nil || !strings.Contains(string(out), "Unauthorized") {
		t.Errorf("an ID token for another client: %v: %s; want Unauthorized", err, out)
	}
}

// relyingControlPlane is a kube-apiserver trusting Gatehouse ID tokens.
type relyingControlPlane struct {
	admin  string // kubeconfig of the admin (client certificate)
	config *clientcmdapi.Config
	dir    string
}

func (s *suite) startRelyingControlPlane(t *testing.T, rp *rpEnv) (*relyingControlPlane, string) {
	t.Helper()
	assets, err := devenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.logDir, "relying-cluster")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	authn, err := devenv.AuthenticationConfig(rp.issuer, string(rp.ca.CertPEM), s.clientID(rpClusterLogin))
	if err != nil {
		t.Fatal(err)
	}
	authnFile := filepath.Join(dir, "authentication-config.yaml")
	if err := os.WriteFile(authnFile, authn, 0o600); err != nil {
		t.Fatal(err)
	}
	logs, err := devenv.OpenLogs(s.logDir, "relying-etcd", "relying-kube-apiserver")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := devenv.StartControlPlane(devenv.Options{AssetsDir: assets, StateDir: dir, AuthenticationConfig: authnFile,
		EtcdLog: logs.File("relying-etcd"), APIServerLog: logs.File("relying-kube-apiserver")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the relying control plane: %v", err)
		}
		_ = logs.Close()
	})
	rc := &relyingControlPlane{admin: filepath.Join(dir, "admin.kubeconfig"), dir: dir}
	if err := os.WriteFile(rc.admin, cp.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	if rc.config, err = clientcmd.Load(cp.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return rc, filepath.Join(assets, "kubectl")
}

// tokenKubeconfig is the cluster with a bearer-token user, as
// client-go's exec plugin (gatehouse login) would supply it.
func (rc *relyingControlPlane) tokenKubeconfig(t *testing.T, name, token string) string {
	t.Helper()
	cfg := rc.config.DeepCopy()
	ctx := cfg.Contexts[cfg.CurrentContext]
	ctx.AuthInfo = name
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{name: {Token: token}}
	path := filepath.Join(rc.dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
