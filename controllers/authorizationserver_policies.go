package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/servercontract"
)

// What the operator writes around the token-server pods besides the
// Deployment: a PodDisruptionBudget from two replicas on, and, when
// spec.network.policy asks for it, a NetworkPolicy. Both are named like
// the Deployment and controlled by the AuthorizationServer (garbage
// collection removes them with it). An object of that name the operator did
// not create is the user's: it is never changed or deleted, and the
// Policies condition and a Warning Event say so.

// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,resourceNames=kubernetes,verbs=get

// apiServerRecheck is how often a server with a NetworkPolicy looks again
// at the API server's addresses, which the policy lets the pods reach: a
// control-plane node replaced under it would otherwise cut the token
// server's watches off until the next change to the AuthorizationServer.
const apiServerRecheck = 5 * time.Minute

// policiesRecheck is when the server's policies need another look that
// no watch event brings: the API server's addresses may have moved, or the
// user's object that holds a policy's name may be gone (the operator
// watches only objects it labelled).
func policiesRecheck(srv *oauthv1.AuthorizationServer, now time.Time) time.Time {
	if c := apimeta.FindStatusCondition(srv.Status.Conditions, oauthv1.ConditionPolicies); c != nil && c.Status == metav1.ConditionFalse {
		return now.Add(time.Minute)
	}
	if srv.Spec.Network.Policy != nil {
		return now.Add(apiServerRecheck)
	}
	return time.Time{}
}

// DNS is allowed on port 53 to any address: cluster DNS runs under
// different labels per distribution, and NodeLocal DNSCache answers on a
// link-local address no pod selector matches.
const dnsPort = 53

// reconcilePolicies writes or removes the PodDisruptionBudget and the
// NetworkPolicy, and sets the Policies condition.
func (r *AuthorizationServerReconciler) reconcilePolicies(ctx context.Context, srv *oauthv1.AuthorizationServer, replicas int32) error {
	meta := metav1.ObjectMeta{Namespace: srv.Namespace, Name: ServerObjectName(srv)}
	var taken, written []string

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: meta}
	if replicas >= 2 {
		ok, err := r.writeOwned(ctx, srv, pdb, func() { mutatePDB(srv, pdb) })
		if err != nil {
			return err
		}
		if ok {
			written = append(written, "PodDisruptionBudget "+pdb.Name)
		} else {
			taken = append(taken, "PodDisruptionBudget "+pdb.Name)
		}
	} else if err := r.deleteOwned(ctx, srv, pdb); err != nil {
		return err
	}

	np := &networkingv1.NetworkPolicy{ObjectMeta: *meta.DeepCopy()}
	if spec := srv.Spec.Network.Policy; spec != nil {
		apiServer, err := r.apiServerEgress(ctx)
		if err != nil {
			return err
		}
		ok, err := r.writeOwned(ctx, srv, np, func() { mutateNetworkPolicy(srv, np, spec, apiServer) })
		if err != nil {
			return err
		}
		if ok {
			written = append(written, "NetworkPolicy "+np.Name)
		} else {
			taken = append(taken, "NetworkPolicy "+np.Name)
		}
	} else if err := r.deleteOwned(ctx, srv, np); err != nil {
		return err
	}

	if len(taken) > 0 {
		failedWarn(ctx, r.Recorder, srv, &srv.Status.Conditions, oauthv1.ConditionPolicies, oauthv1.ReasonPolicyNameTaken, fmt.Sprintf(
			"%s: not created by the operator, which leaves what is not its own as it is; delete or rename it to let the operator write its own",
			strings.Join(taken, ", ")))
		return nil
	}
	msg := "nothing to write: one replica and no spec.network.policy"
	if len(written) > 0 {
		msg = strings.Join(written, " and ") + " written"
	}
	setCondition(&srv.Status.Conditions, srv.Generation, oauthv1.ConditionPolicies, true, oauthv1.ReasonPoliciesWritten, msg)
	return nil
}

// writeOwned creates obj, or updates it if srv controls it, with mutate
// applied. It reports false, and writes nothing, when an object of that
// name exists that srv does not control.
func (r *AuthorizationServerReconciler) writeOwned(ctx context.Context, srv *oauthv1.AuthorizationServer, obj client.Object, mutate func()) (bool, error) {
	kind := fmt.Sprintf("%T", obj)
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	switch {
	case apierrors.IsNotFound(err):
		// The cache holds only objects labelled as the operator's: a
		// user's object of that name shows up as a conflict on create.
		mutate()
		if err := controllerutil.SetControllerReference(srv, obj, r.Scheme()); err != nil {
			return false, err
		}
		err = r.Create(ctx, obj)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return false, fmt.Errorf("creating %s %s: %w", kind, obj.GetName(), err)
			}
			return true, nil
		}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
		}
		if metav1.IsControlledBy(obj, srv) {
			return false, fmt.Errorf("%s %s is the server's but not in the cache yet", kind, obj.GetName())
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
	case !metav1.IsControlledBy(obj, srv):
		return false, nil
	}
	before := obj.DeepCopyObject().(client.Object)
	mutate()
	if equality.Semantic.DeepEqual(before, obj) {
		return true, nil
	}
	if err := r.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return false, fmt.Errorf("updating %s %s: %w", kind, obj.GetName(), err)
	}
	return true, nil
}

// deleteOwned deletes obj if srv controls it; anything else of that name
// stays.
func (r *AuthorizationServerReconciler) deleteOwned(ctx context.Context, srv *oauthv1.AuthorizationServer, obj client.Object) error {
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(obj, srv)) {
		return nil
	}
	if err == nil {
		uid := obj.GetUID()
		err = client.IgnoreNotFound(r.Delete(ctx, obj, client.Preconditions{UID: &uid}))
	}
	if err != nil {
		return fmt.Errorf("removing %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// mutatePDB lets one token-server pod at a time be evicted (maxUnavailable
// 1): a node drain proceeds pod by pod, and at any number of replicas all
// but one keep serving. minAvailable 1 would let a drain take all but one
// of ten replicas at once. A pod that is not ready may always be evicted
// (AlwaysAllow): it serves nothing, and a crash-looping pod must not block
// a drain.
func mutatePDB(srv *oauthv1.AuthorizationServer, pdb *policyv1.PodDisruptionBudget) {
	pdb.Labels = serverLabels(srv, pdb.Labels)
	one := intstr.FromInt32(1)
	alwaysAllow := policyv1.AlwaysAllow
	pdb.Spec = policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable:             &one,
		Selector:                   &metav1.LabelSelector{MatchLabels: selectorLabels(srv)},
		UnhealthyPodEvictionPolicy: &alwaysAllow,
	}
}

// mutateNetworkPolicy: see oauthv1.NetworkPolicySpec.
func mutateNetworkPolicy(srv *oauthv1.AuthorizationServer, np *networkingv1.NetworkPolicy, spec *oauthv1.NetworkPolicySpec, apiServer networkingv1.NetworkPolicyEgressRule) {
	np.Labels = serverLabels(srv, np.Labels)
	metricsFrom := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}} // this namespace
	if len(spec.MetricsNamespaces) > 0 {
		names := make([]string, len(spec.MetricsNamespaces))
		for i, n := range spec.MetricsNamespaces {
			names[i] = string(n)
		}
		metricsFrom = append(metricsFrom, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: names}},
		}})
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolUDP, dnsPort), policyPort(corev1.ProtocolTCP, dnsPort)}},
		apiServer,
	}
	if srv.Spec.Storage.Type == oauthv1.StoragePostgres {
		egress = append(egress, egressRule(spec.Postgres, 5432))
	}
	egress = append(egress, egressRule(spec.Upstreams, 443))
	np.Spec = networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(srv)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolTCP, servercontract.HTTPPort)}},
			{Ports: []networkingv1.NetworkPolicyPort{policyPort(corev1.ProtocolTCP, servercontract.MetricsPort)}, From: metricsFrom},
		},
		Egress: egress,
	}
}

// egressRule is target's rule; def is its port when it names none (an
// object written before the API server defaulted it).
func egressRule(target oauthv1.EgressTarget, def int32) networkingv1.NetworkPolicyEgressRule {
	ports := target.Ports
	if len(ports) == 0 {
		ports = []int32{def}
	}
	rule := networkingv1.NetworkPolicyEgressRule{To: target.To}
	for _, p := range ports {
		rule.Ports = append(rule.Ports, policyPort(corev1.ProtocolTCP, p))
	}
	return rule
}

func policyPort(proto corev1.Protocol, port int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(port)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

// apiServerEgress lets the pods reach the Kubernetes API server at the
// addresses and ports of the `kubernetes` Service's endpoints, which is
// where connections to the Service's cluster IP end up after kube-proxy
// (NetworkPolicy implementations see the translated address). Without
// that EndpointSlice (a cluster that does not publish it) the rule falls
// back to the usual API server ports, 443 and 6443, at any address.
func (r *AuthorizationServerReconciler) apiServerEgress(ctx context.Context) (networkingv1.NetworkPolicyEgressRule, error) {
	slice := &discoveryv1.EndpointSlice{}
	fallback := networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{
		policyPort(corev1.ProtocolTCP, 443), policyPort(corev1.ProtocolTCP, 6443),
	}}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: metav1.NamespaceDefault, Name: "kubernetes"}, slice)
	if apierrors.IsNotFound(err) {
		return fallback, nil
	}
	if err != nil {
		return networkingv1.NetworkPolicyEgressRule{}, fmt.Errorf("reading the API server's addresses (EndpointSlice default/kubernetes): %w", err)
	}
	var rule networkingv1.NetworkPolicyEgressRule
	for _, ep := range slice.Endpoints {
		for _, a := range ep.Addresses {
			bits := "/32"
			if slice.AddressType == discoveryv1.AddressTypeIPv6 {
				bits = "/128"
			}
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: a + bits}})
		}
	}
	for _, p := range slice.Ports {
		if p.Port != nil {
			rule.Ports = append(rule.Ports, policyPort(corev1.ProtocolTCP, *p.Port))
		}
	}
	if len(rule.To) == 0 || len(rule.Ports) == 0 {
		// A rule without peers or ports allows every address or port.
		return fallback, nil
	}
	return rule, nil
}
