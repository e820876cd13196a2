package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
)

// preStopSleepSeconds is how long a terminating token-server pod keeps
// serving before it gets SIGTERM.
const preStopSleepSeconds = 5

// ServerObjectName names the ServiceAccount, Role, RoleBinding, Deployment
// and Service of a server's token server.
func ServerObjectName(srv *oauthv1.AuthorizationServer) string { return srv.Name + "-server" }

// clusterRBACName names the ClusterRole and ClusterRoleBinding that let a
// server read OAuthClients in every namespace. ':' cannot occur in a
// namespace or name, so the name is unique per server.
func clusterRBACName(srv *oauthv1.AuthorizationServer) string {
	return "gatehouse:server:" + srv.Namespace + ":" + srv.Name
}

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

func (r *AuthorizationServerReconciler) reconcileRuntime(ctx context.Context, srv *oauthv1.AuthorizationServer) error {
	if err := r.reconcileRBAC(ctx, srv); err != nil {
		return err
	}
	replicas := int32(1)
	if srv.Spec.Replicas != nil {
		replicas = *srv.Spec.Replicas
	}
	if replicas > 1 && srv.Spec.Storage.Type != oauthv1.StoragePostgres {
		// The API schema refuses this already; keep the Deployment as it is
		// if an older schema let it through.
		failed(srv, &srv.Status.Conditions, oauthv1.ConditionAvailable, oauthv1.ReasonUnsupportedReplicas,
			fmt.Sprintf("%d replicas need storage type Postgres: Memory storage lives in one process; the Deployment is left unchanged", replicas))
		return nil
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: ServerObjectName(srv)}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, dep, func() error {
		r.mutateDeployment(srv, dep, replicas)
		return controllerutil.SetControllerReference(srv, dep, r.Scheme())
	}); err != nil {
		return fmt.Errorf("writing Deployment %s: %w", dep.Name, err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: ServerObjectName(srv)}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		svc.Labels = serverLabels(srv, svc.Labels)
		svc.Spec.Selector = selectorLabels(srv)
		svc.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
			{Name: "metrics", Port: servercontract.MetricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
		}
		return controllerutil.SetControllerReference(srv, svc, r.Scheme())
	}); err != nil {
		return fmt.Errorf("writing Service %s: %w", svc.Name, err)
	}
	srv.Status.Replicas = dep.Status.Replicas
	srv.Status.Selector = labels.SelectorFromSet(selectorLabels(srv)).String()
	deploymentReady(srv, dep, replicas)
	return r.reconcilePolicies(ctx, srv, replicas)
}

// deploymentReady sets Available from the Deployment's real availability.
func deploymentReady(srv *oauthv1.AuthorizationServer, dep *appsv1.Deployment, replicas int32) {
	st := dep.Status
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse {
			failed(srv, &srv.Status.Conditions, oauthv1.ConditionAvailable, oauthv1.ReasonDeploymentFailed,
				fmt.Sprintf("Deployment %s: %s", dep.Name, c.Message))
			return
		}
	}
	switch {
	case replicas == 0:
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAvailable, false, oauthv1.ReasonScaledToZero,
			fmt.Sprintf("Deployment %s is scaled to zero replicas", dep.Name))
	case st.ObservedGeneration < dep.Generation || st.UpdatedReplicas < replicas || st.AvailableReplicas < replicas:
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAvailable, false, oauthv1.ReasonProgressing,
			fmt.Sprintf("Deployment %s: %d of %d replicas updated and available", dep.Name, min(st.UpdatedReplicas, st.AvailableReplicas), replicas))
	default:
		setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionAvailable, true, oauthv1.ReasonAvailable,
			fmt.Sprintf("Deployment %s: %d of %d replicas available", dep.Name, st.AvailableReplicas, replicas))
	}
}

func selectorLabels(srv *oauthv1.AuthorizationServer) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "gatehouse-server",
		"app.kubernetes.io/instance": srv.Name,
	}
}

func (r *AuthorizationServerReconciler) image(srv *oauthv1.AuthorizationServer) string {
	if srv.Spec.Image != "" {
		return srv.Spec.Image
	}
	return r.ServerImage
}

// DefaultServerResources are the token-server container's resources when
// spec.resources is empty, sized by docs/operations.md ("Sizing"): the
// server peaks at about 100 MiB RSS with 10,000 clients (it measured 143
// MiB at 6,000 before its incremental snapshot, when 256Mi would not have
// held 11,000), so the 512Mi limit leaves room for several times that, and
// the request is what one replica with a few thousand clients uses. No CPU
// limit: throttling a token endpoint shows up as latency for every client.
func DefaultServerResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

func (r *AuthorizationServerReconciler) mutateDeployment(srv *oauthv1.AuthorizationServer, dep *appsv1.Deployment, replicas int32) {
	dep.Labels = serverLabels(srv, dep.Labels)
	podLabels := serverLabels(srv, selectorLabels(srv))
	dep.Spec.Replicas = &replicas
	if dep.Spec.Selector == nil { // immutable once set
		dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(srv)}
	}
	maxUnavailable := intstr.FromInt32(0)
	maxSurge := intstr.FromString("25%")
	dep.Spec.Strategy = appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
	}
	tpl := &dep.Spec.Template
	tpl.Labels = podLabels
	tpl.Spec.ServiceAccountName = ServerObjectName(srv)
	yes := true
	tpl.Spec.AutomountServiceAccountToken = &yes // it watches the API
	// The spread replaces the preferred anti-affinity of earlier versions.
	tpl.Spec.Affinity = nil
	tpl.Spec.TopologySpreadConstraints = topologySpread(srv)
	// A writable /tmp on the read-only root: the binary's package init
	// (controller-runtime's envtest, linked in for `gatehouse dev`) creates
	// a directory there and panics if it cannot.
	tpl.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptrQuantity(resource.MustParse("16Mi"))},
	}}}
	tlsVolume, tlsMount, tlsArgs := servingCert(srv)
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, tlsVolume...)
	uid := int64(65532)
	tpl.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   &yes,
		RunAsUser:      &uid,
		RunAsGroup:     &uid,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	mergeContainer(tpl, r.serverContainer(srv, tlsMount, tlsArgs))
}

// serverContainer is the token-server container.
func (r *AuthorizationServerReconciler) serverContainer(srv *oauthv1.AuthorizationServer, tlsMount []corev1.VolumeMount, tlsArgs servercontract.Args) corev1.Container {
	env := slices.Clone(r.ServerEnv)
	if srv.Spec.Storage.Type == oauthv1.StoragePostgres && srv.Spec.Storage.Postgres != nil {
		ref := srv.Spec.Storage.Postgres.URLSecretRef
		env = append(env, corev1.EnvVar{Name: servercontract.EnvPostgresURL, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key},
		}})
	}
	resources := DefaultServerResources()
	if srv.Spec.Resources != nil {
		resources = *srv.Spec.Resources
	}
	yes, no := true, false
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("metrics")}},
			PeriodSeconds: period, TimeoutSeconds: 2, FailureThreshold: 3,
		}
	}
	return corev1.Container{
		Name:  "server",
		Image: r.image(srv),
		Args:  r.serverArgs(srv, tlsArgs).CommandLine(),
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: servercontract.HTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: servercontract.MetricsPort, Protocol: corev1.ProtocolTCP},
		},
		Env:          env,
		Resources:    resources,
		VolumeMounts: append([]corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}, tlsMount...),
		// A terminating pod keeps serving until kube-proxy and the load
		// balancers have taken it out of the Service (seen in a real
		// cluster: a rollout restart without this refuses connections for
		// ~100ms); the server stops only after this sleep.
		Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: preStopSleepSeconds}}},
		LivenessProbe:  probe(servercontract.HealthzPath, 10),
		ReadinessProbe: probe(servercontract.ReadyzPath, 5),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			RunAsNonRoot:             &yes,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// topologySpread spreads the replicas evenly over nodes and over zones,
// counting only the pods of the current ReplicaSet (pod-template-hash), so
// that a rollout's old pods do not skew where the new ones go. It is a
// preference (ScheduleAnyway): a single-node or single-zone cluster, or
// nodes without the zone label, still run every replica, where
// DoNotSchedule would leave replicas Pending. It is there at any replica
// count, so that an autoscaler going from one replica to two changes the
// Deployment's replicas and not its pod template, which would roll every
// pod.
func topologySpread(srv *oauthv1.AuthorizationServer) []corev1.TopologySpreadConstraint {
	var spread []corev1.TopologySpreadConstraint
	for _, key := range []string{corev1.LabelHostname, corev1.LabelTopologyZone} {
		spread = append(spread, corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(srv)},
			MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
		})
	}
	return spread
}

// mergeContainer merges the wanted container into the existing one, so
// that API-server defaults (imagePullPolicy, terminationMessagePath) do
// not cause endless updates.
func mergeContainer(tpl *corev1.PodTemplateSpec, container corev1.Container) {
	if len(tpl.Spec.Containers) == 1 && tpl.Spec.Containers[0].Name == container.Name {
		c := &tpl.Spec.Containers[0]
		c.Image, c.Args, c.Ports, c.Env, c.Resources = container.Image, container.Args, container.Ports, container.Env, container.Resources
		c.SecurityContext = container.SecurityContext
		c.VolumeMounts = container.VolumeMounts
		c.Lifecycle = container.Lifecycle
		for _, p := range []struct{ have, want *corev1.Probe }{{c.LivenessProbe, container.LivenessProbe}, {c.ReadinessProbe, container.ReadinessProbe}} {
			if p.have == nil || p.have.HTTPGet == nil {
				continue
			}
			p.have.HTTPGet.Path, p.have.HTTPGet.Port = p.want.HTTPGet.Path, p.want.HTTPGet.Port
			p.have.PeriodSeconds, p.have.TimeoutSeconds, p.have.FailureThreshold = p.want.PeriodSeconds, p.want.TimeoutSeconds, p.want.FailureThreshold
		}
		if c.LivenessProbe == nil {
			c.LivenessProbe = container.LivenessProbe
		}
		if c.ReadinessProbe == nil {
			c.ReadinessProbe = container.ReadinessProbe
		}
	} else {
		tpl.Spec.Containers = []corev1.Container{container}
	}
}

// servingCert mounts spec.tls's Secret and points the server at it. A
// whole-Secret volume (no subPath), so that the kubelet updates the files
// when the Secret is renewed and the server reloads them.
func servingCert(srv *oauthv1.AuthorizationServer) ([]corev1.Volume, []corev1.VolumeMount, servercontract.Args) {
	if srv.Spec.TLS == nil {
		return nil, nil, servercontract.Args{}
	}
	dir := servercontract.TLSDir
	return []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: srv.Spec.TLS.SecretRef.Name}}}},
		[]corev1.VolumeMount{{Name: "tls", MountPath: dir, ReadOnly: true}},
		servercontract.Args{TLSCertFile: dir + "/" + corev1.TLSCertKey, TLSKeyFile: dir + "/" + corev1.TLSPrivateKeyKey}
}

// serverArgs is the server's command line: the server to serve, the
// container's ports, spec.network's proxies and spec.tls's files.
func (r *AuthorizationServerReconciler) serverArgs(srv *oauthv1.AuthorizationServer, tls servercontract.Args) servercontract.Args {
	a := proxyArgs(srv.Spec.Network)
	a.AuditLog = r.ServerAuditLog
	a.AuthorizationServer = srv.Namespace + "/" + srv.Name
	a.Listen = servercontract.ListenAddress(servercontract.HTTPPort)
	a.MetricsListen = servercontract.ListenAddress(servercontract.MetricsPort)
	a.TLSCertFile, a.TLSKeyFile = tls.TLSCertFile, tls.TLSKeyFile
	return a
}

// proxyArgs are the server flags for spec.network. The server takes them as
// flags rather than from its watch of the AuthorizationServer, so that
// whom it trusts is fixed for the life of a pod and a change rolls out as
// a new ReplicaSet. None without trusted proxies, so that servers without
// proxies keep the pod template they had.
func proxyArgs(n oauthv1.NetworkSpec) servercontract.Args {
	if len(n.TrustedProxies) == 0 {
		return servercontract.Args{}
	}
	cidrs := make([]string, len(n.TrustedProxies))
	for i, c := range n.TrustedProxies {
		cidrs[i] = string(c)
	}
	header := n.ForwardedHeader
	if header == "" {
		header = oauthv1.ForwardedHeaderXForwardedFor
	}
	return servercontract.Args{TrustedProxies: strings.Join(cidrs, ","), ForwardedHeader: string(header)}
}

func ptrQuantity(q resource.Quantity) *resource.Quantity { return &q }

// The operator holds what it grants the token server (RBAC forbids
// granting more than one has):
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=sessionrevocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=oauth.gatehouse.dev,resources=sessionrevocations/status,verbs=get;patch
// +kubebuilder:rbac:urls=/.well-known/openid-configuration;/openid/v1/jwks,verbs=get

// serviceAccountIssuerURLs are the kube-apiserver's service-account
// issuer discovery document and keys (jwtverify.KubernetesDiscoveryPath,
// KubernetesJWKSPath).
var serviceAccountIssuerURLs = []string{jwtverify.KubernetesDiscoveryPath, jwtverify.KubernetesJWKSPath}

// serverConfigMaps are the ConfigMaps the token server reads: the trusted
// issuers' CA bundles and the brand's logo.
func serverConfigMaps(srv *oauthv1.AuthorizationServer) []string {
	var names []string
	for _, ti := range srv.Spec.WorkloadIdentity.TrustedIssuers {
		if ref := ti.CAConfigMapRef; ref != nil && !slices.Contains(names, ref.Name) {
			names = append(names, ref.Name)
		}
	}
	if ref := srv.Spec.Branding.LogoConfigMapRef; ref != nil && !slices.Contains(names, ref.Name) {
		names = append(names, ref.Name)
	}
	return names
}

// reconcileRBAC gives the token server read access to exactly what it
// serves from: this server and its Scopes, its keys Secret, users Secret
// and identity providers' Secrets (by name), the ConfigMaps it reads
// (serverConfigMaps, by name), OAuthClients, which hold only secret hashes and
// public keys, and the cluster's service-account issuer discovery. It
// cannot read any other Secret or ConfigMap, in its namespace or in the
// apps'. It writes two things only: the status of the
// SessionRevocations in its namespace, which it carries out, and Events
// (events.k8s.io, create and patch, no reads), which report a client's
// failed back-channel logout deliveries on that OAuthClient, in the
// client's namespace.
func (r *AuthorizationServerReconciler) reconcileRBAC(ctx context.Context, srv *oauthv1.AuthorizationServer) error {
	name := ServerObjectName(srv)
	read := []string{"get", "list", "watch"}
	secrets := []string{keyset.SecretName(srv.Name)}
	if srv.Spec.Users != nil {
		secrets = append(secrets, srv.Spec.Users.SecretRef.Name)
	}
	for i := range srv.Spec.IdentityProviders {
		for _, n := range srv.Spec.IdentityProviders[i].SecretNames() {
			if !slices.Contains(secrets, n) {
				secrets = append(secrets, n)
			}
		}
	}
	configMaps := serverConfigMaps(srv)
	owned := func(o client.Object) error { return controllerutil.SetControllerReference(srv, o, r.Scheme()) }

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: name}}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: name}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: srv.Namespace, Name: name}}
	cr := &rbacv1.ClusterRole{ObjectMeta: metaName(clusterRBACName(srv))}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metaName(clusterRBACName(srv))}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: srv.Namespace}}

	for _, step := range []struct {
		obj    client.Object
		mutate func() error
	}{
		{sa, func() error { sa.Labels = serverLabels(srv, sa.Labels); return owned(sa) }},
		{role, func() error {
			role.Labels = serverLabels(srv, role.Labels)
			role.Rules = []rbacv1.PolicyRule{
				{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"authorizationservers", "scopes", "sessionrevocations"}, Verbs: read},
				{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"sessionrevocations/status"}, Verbs: []string{"patch"}},
				{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: secrets, Verbs: read},
			}
			if len(configMaps) > 0 {
				// The trusted issuers' CA bundles and the brand's logo, by name.
				role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: configMaps, Verbs: read})
			}
			return owned(role)
		}},
		{rb, func() error {
			rb.Labels = serverLabels(srv, rb.Labels)
			rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
			rb.Subjects = subject
			return owned(rb)
		}},
		{cr, func() error {
			cr.Labels = clusterLabels(srv, cr.Labels)
			cr.Rules = []rbacv1.PolicyRule{
				{APIGroups: []string{oauthv1.GroupVersion.Group}, Resources: []string{"oauthclients"}, Verbs: read},
				{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				// The cluster's service-account issuer discovery, what the
				// built-in ClusterRole system:service-account-issuer-discovery
				// grants: to verify ServiceAccount clients' tokens offline.
				{NonResourceURLs: serviceAccountIssuerURLs, Verbs: []string{"get"}},
			}
			return nil
		}},
		{crb, func() error {
			crb.Labels = clusterLabels(srv, crb.Labels)
			crb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}
			crb.Subjects = subject
			return nil
		}},
	} {
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, step.obj, step.mutate); err != nil {
			return fmt.Errorf("writing %T %s: %w", step.obj, step.obj.GetName(), err)
		}
	}
	return nil
}

// LabelServerNamespace names, on cluster-scoped objects, the namespace of
// the AuthorizationServer they belong to.
const LabelServerNamespace = "oauth.gatehouse.dev/server-namespace"

func clusterLabels(srv *oauthv1.AuthorizationServer, l map[string]string) map[string]string {
	l = serverLabels(srv, l)
	l[LabelServerNamespace] = srv.Namespace
	return l
}
