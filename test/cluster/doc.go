// Package cluster holds the real-cluster tests (DESIGN.md, test tier 6):
// Gatehouse installed with its Helm chart into the single-node cluster that
// `make cluster` runs on this machine (kubelet, containerd, runc, CNI,
// kube-proxy, CoreDNS), its pods killed and rolled under traffic.
//
// Run them with `make test-cluster`, which builds and loads the image
// (`make image`) and sets
//
//	GATEHOUSE_CLUSTER_KUBECONFIG  the cluster's kubeconfig (.gatehouse-cluster/kubeconfig)
//	GATEHOUSE_CLUSTER_IMAGE       the image to install (default localhost/gatehouse:dev)
//	HELM, KUBEBUILDER_ASSETS      helm, and the directory with kubectl
//
// Without GATEHOUSE_CLUSTER_KUBECONFIG the tests skip, so `go test ./...`
// never needs a cluster. With it, a cluster that is not there is a missing
// dependency: the tests skip loudly, or fail under GATEHOUSE_REQUIRE_ALL=1.
//
// The token servers are reached from this machine through Services of type
// NodePort on 127.0.0.1 (kube-proxy's iptables rules, nodePortAddresses
// 127.0.0.1/32), so the issuer can be an http loopback URL, which the API
// accepts, and every request goes through kube-proxy's load balancing to
// the pods, as an in-cluster client's would.
//
// Scenarios, in order:
//
//   - TestTokenThroughService: a client_credentials token from the
//     in-cluster token server, validated against its JWKS.
//   - TestTokenServerPods: the pods pass their probes, run the local image
//     as 65532 with a read-only root, and never restarted.
//   - TestAppDeploymentUsesClientSecret: an app Deployment mounts its
//     OAuthClient's Secret and gets tokens with it; the secret is rotated
//     and the app picks up the new one within the grace period with zero
//     failed token requests.
//   - TestEnvSecretAppRolledOnRotation: an app that reads its secret from
//     environment variables (envFrom, under secretKeyAliases' names) opts
//     in to restarts on rotation; a rotation rolls it within seconds, well
//     inside the grace period, with no failed request, and a Deployment
//     that did not opt in keeps its pod.
//   - TestOperatorPodKill: the leading operator pod is deleted; the other
//     replica takes the lease, and no client secret or signing key is
//     regenerated.
//   - TestRollingRestartUnderTraffic: `kubectl rollout restart` of the token
//     server while clients keep asking for tokens: zero failures.
//   - TestReplicaKillWithPostgres: two replicas on PostgreSQL (a pod from an
//     image built from Debian's postgresql files); one is deleted under
//     token and refresh traffic (zero failures), then one is killed with
//     SIGKILL (failures counted and reported); every refresh token not
//     caught in a failed request stays usable.
//   - TestOperatorNeverDeletesForeignSecrets: a Secret someone else made is
//     never taken over or deleted, with the garbage collector running.
//   - TestTokenServerTLSFromSecret: an https issuer from a kubernetes.io/tls
//     Secret named in spec.tls; tokens over https validate against the JWKS
//     fetched over https; a renewed certificate in the Secret is served by
//     the same pods, with no restart.
//   - TestWorkloadIdentity: docs/tutorials/workload-identity.md's workload
//     (examples/workload) runs as a ServiceAccount with a projected token
//     for the issuer, gets access tokens and calls examples/orders-api,
//     with no Secret for its client at any point; another ServiceAccount's
//     token, another audience's, a two-hour one, one of a deleted and
//     re-created ServiceAccount and an expired one are refused; deleting
//     the OAuthClient refuses its next request within a second.
//   - TestPrivateKeyJWTReplayAcrossReplicas: on the two PostgreSQL
//     replicas, a private_key_jwt assertion (zitadel/oidc) accepted by one
//     pod is refused by the other and counted as a replay.
//   - TestHelmLifecycle (only with GATEHOUSE_CLUSTER_LIFECYCLE=1, run last
//     by make test-cluster): helm upgrade to a changed value, then helm
//     uninstall, leave the CRDs and the users' objects intact.
package cluster
