package devenv

import (
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// KubePrefix is put before the usernames and groups a kube-apiserver takes
// from Gatehouse ID tokens, so that no Gatehouse user or group can pass
// for a Kubernetes one (system:masters, system:node:…).
const KubePrefix = "gatehouse:"

// The parts of kube-apiserver's AuthenticationConfiguration
// (apiserver.config.k8s.io/v1, --authentication-config) used here.
type (
	authenticationConfiguration struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		JWT        []jwtAuthConfig `json:"jwt"`
	}
	jwtAuthConfig struct {
		Issuer        jwtIssuer     `json:"issuer"`
		ClaimMappings claimMappings `json:"claimMappings"`
	}
	jwtIssuer struct {
		URL                  string   `json:"url"`
		Audiences            []string `json:"audiences"`
		CertificateAuthority string   `json:"certificateAuthority,omitempty"`
	}
	claimMappings struct {
		Username prefixedClaim `json:"username"`
		Groups   prefixedClaim `json:"groups"`
	}
	prefixedClaim struct {
		Claim  string  `json:"claim"`
		Prefix *string `json:"prefix"`
	}
)

// AuthenticationConfig is a kube-apiserver AuthenticationConfiguration
// that accepts ID tokens Gatehouse issues to audience: the username is
// preferred_username and the groups are groups, both with KubePrefix.
// caPEM is the issuer's CA when its certificate is not publicly trusted.
// kube-apiserver fetches the issuer's discovery document and keys itself
// (OpenID Connect Discovery 1.0), over https only.
func AuthenticationConfig(issuer, caPEM, audience string) ([]byte, error) {
	prefix := KubePrefix
	return yaml.Marshal(authenticationConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "AuthenticationConfiguration",
		JWT: []jwtAuthConfig{{
			Issuer: jwtIssuer{URL: issuer, Audiences: []string{audience}, CertificateAuthority: caPEM},
			ClaimMappings: claimMappings{
				Username: prefixedClaim{Claim: "preferred_username", Prefix: &prefix},
				Groups:   prefixedClaim{Claim: "groups", Prefix: &prefix},
			},
		}},
	})
}

// DemoKubeconfig is adminKubeconfig's cluster with a user that logs in
// through `exe login` (a client-go exec credential plugin): what a
// person's kubeconfig holds to log in to a cluster with Gatehouse.
func DemoKubeconfig(adminKubeconfig []byte, exe, issuer, caFile, clientID string) ([]byte, error) {
	cfg, err := clientcmd.Load(adminKubeconfig)
	if err != nil {
		return nil, err
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		return nil, fmt.Errorf("the admin kubeconfig has no current context")
	}
	args := []string{"login", "--issuer", issuer, "--client-id", clientID}
	if caFile != "" {
		args = append(args, "--ca-file", caFile)
	}
	ctx.AuthInfo = "gatehouse-" + Username
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{ctx.AuthInfo: {Exec: &clientcmdapi.ExecConfig{
		APIVersion: "client.authentication.k8s.io/v1", Command: exe, Args: args,
		InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode,
	}}}
	return clientcmd.Write(*cfg)
}

// DemoViewRole lets its subjects read what the demo is about: namespaces,
// pods, services, config maps, events and the Gatehouse objects. Not the
// built-in view role: without kube-controller-manager (which aggregates
// it) it grants nothing here.
func DemoViewRole() *rbacv1.ClusterRole {
	r := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-dev-demo-view"}}
	read := []string{"get", "list", "watch"}
	r.Rules = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "pods", "services", "configmaps", "events"}, Verbs: read},
		{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: read},
	}
	return r
}

// DemoViewBinding gives DemoViewRole to the demo user's group, as
// kube-apiserver names it (KubePrefix).
func DemoViewBinding() *rbacv1.ClusterRoleBinding {
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "gatehouse-dev-demo-view"}}
	b.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: DemoViewRole().Name}
	b.Subjects = []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: KubePrefix + Group}}
	return b
}
