// Package e2e holds the whole-system tests (docs/architecture.md, test
// tier 4): a control plane, `gatehouse operator` and `gatehouse server` as
// real processes, the YAML of config/samples applied with kubectl, login
// and consent clicked in headless Chromium, golang.org/x/oauth2 as the
// client, and examples/orders-api as the resource server that validates
// the tokens.
//
// Run them with
//
//	go test -count=1 -v ./test/e2e/...
//
// The suite builds bin/gatehouse's sources and examples/orders-api itself
// (into a temporary directory, from the Go build cache), so it always tests
// the code in the checkout.
//
// Scenarios:
//
//   - TestAuthorizationCodeFlow: /authorize → login → consent → callback on
//     127.0.0.1, code exchange with PKCE, calls to orders-api, refresh
//     (rotation and reuse detection), revocation, introspection.
//   - TestSigningKeyRotationUnderTraffic: rotation forced with the
//     oauth.gatehouse.dev/rotate-keys annotation while a client keeps
//     getting tokens and calling orders-api; zero validations may fail.
//   - TestClientSecretRotation: the old secret works during the grace
//     period, the new one after, the old one fails once it is over.
//   - TestDeletedClientIsRefused: after the OAuthClient is deleted, the
//     token endpoint refuses the client within seconds.
//   - TestKubernetesTrustsGatehouse (tier 7, local mode): a second
//     kube-apiserver whose AuthenticationConfiguration trusts a second,
//     https Gatehouse (oidc_rp_test.go; `gatehouse server --tls-cert-file`
//     with a local CA): kubectl auth whoami, RBAC on a group, another
//     client's ID token refused.
//   - TestOAuth2ProxyInFrontOfAnApp (tier 7, local mode): oauth2-proxy
//     with --provider=oidc in front of a small app, login and consent in
//     Chromium, the identity headers the app sees, sign-out through
//     Gatehouse's end_session_endpoint.
//   - TestBackchannelLogoutReachesRelyingParty (tier 7, local mode): a
//     relying party with golang.org/x/oauth2, go-oidc and sessions by sid;
//     another client's logout in the same Chromium ends alice's session,
//     and the relying party verifies Gatehouse's logout token and drops
//     its session; forged and unsigned logout tokens are refused.
//   - TestAPIServerDownUnderLoad (fault tier, local mode): kube-apiserver
//     killed for $GATEHOUSE_FAULT_APISERVER_DOWN (20 s; 2m in make
//     test-faults) under logins, refreshes, client_credentials and
//     introspection: none may fail, nothing acknowledged is lost, a
//     server started meanwhile never becomes ready, and the operator
//     resumes without a burst of writes.
//
// Local mode (default). The suite starts kube-apiserver and etcd (the
// binaries `make envtest` builds into bin/k8s, or $KUBEBUILDER_ASSETS),
// installs the CRDs, runs `gatehouse operator` and `gatehouse server` as
// child processes, and applies the samples into a fresh namespace through
// a kustomize overlay in a temporary directory. The overlay changes only
// what must differ on one machine: the issuer (http on a loopback port),
// the web app's redirect URI (the test's callback on 127.0.0.1), a users
// Secret, a one-minute prepublishPeriod (so the rotation scenario takes a
// minute, not a day). No kubelet runs the Deployment the operator creates
// in this mode; the test's `gatehouse server` process stands in for it.
//
// Real-cluster mode. Set
//
//	GATEHOUSE_E2E_KUBECONFIG  a kubeconfig for a cluster where the Helm chart
//	                          charts/gatehouse is installed (the operator runs)
//	GATEHOUSE_E2E_ISSUER      the issuer URL to configure, which must reach the
//	                          token server the operator deploys from this test
//	                          machine (an Ingress, or `kubectl port-forward
//	                          svc/gatehouse-server 8080:80` with
//	                          http://127.0.0.1:8080)
//	GATEHOUSE_E2E_NAMESPACE   optional: the namespace to apply the samples in
//	                          (default gatehouse-e2e; created if missing)
//
// and the suite starts no processes of its own except orders-api and
// Chromium: it applies the same overlay, waits for the AuthorizationServer
// to be Ready (its Deployment available), and runs the same scenarios.
//
// Dependencies. Chromium (/usr/bin/chromium, Debian package chromium; or
// $GATEHOUSE_E2E_CHROMIUM), kubectl and the control-plane binaries, and
// oauth2-proxy, which hack/oauth2-proxy.sh builds from its Go module into
// bin/oauth2-proxy-v7.15.6 the first time (a few minutes; the Go module
// proxy must be reachable then). A
// missing one skips the tests that need it loudly, or fails them under
// GATEHOUSE_REQUIRE_ALL=1, as CI runs.
package e2e
